//! The sample flows load against the sample configuration, pass their flow tests, and the
//! prompt lists the audio is generated from are complete and in sync.

mod common;

use std::collections::BTreeSet;

use common::{prompt_lines, repo, sample, samples_context};
use ivr_scripts::{cli, compile};

const SAMPLES: &[&str] = &[
    "demo",
    "service-desk",
    "reception",
    "badge-hotline",
    "door",
    "alarm-callout",
];

#[test]
fn samples_load_without_warnings() {
    let ctx = samples_context();
    for name in SAMPLES {
        let path = sample(&format!("{name}.yaml"));
        let source = std::fs::read_to_string(&path).expect("sample exists");
        match compile(&source, &path, &ctx) {
            Ok(flow) => assert!(flow.warnings().is_empty(), "{name}: {:#?}", flow.warnings()),
            Err(d) => panic!(
                "{name} does not load:\n{}",
                d.iter().map(|d| d.render()).collect::<Vec<_>>().join("\n")
            ),
        }
    }
}

#[test]
fn sample_flow_tests_pass() {
    let ctx = samples_context();
    for name in SAMPLES {
        let mut out = Vec::new();
        let code = cli::test_flow(&sample(&format!("tests/{name}.test.yaml")), &ctx, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "{name}:\n{text}");
        assert!(text.contains(" 0 failed"), "{text}");
    }
}

#[test]
fn check_command_accepts_all_samples() {
    let files: Vec<_> = SAMPLES
        .iter()
        .map(|n| sample(&format!("{n}.yaml")))
        .collect();
    let mut out = Vec::new();
    let code = cli::check(&files, &samples_context(), false, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("6 file(s) checked: 0 error(s), 0 warning(s)"),
        "{text}"
    );
}

#[test]
fn prompts_file_lists_exactly_what_the_samples_play() {
    let ctx = ivr_scripts::CheckContext::permissive();
    let mut used = BTreeSet::new();
    for name in SAMPLES {
        let path = sample(&format!("{name}.yaml"));
        let source = std::fs::read_to_string(&path).expect("sample exists");
        let flow = compile(&source, &path, &ctx).expect("loads");
        for p in flow.prompts() {
            if !ivr_scripts::say::catalog(&p.language)
                .iter()
                .any(|(n, _)| *n == p.name)
            {
                used.insert((p.language, p.name));
            }
        }
    }
    // Played by the engine itself in queues (position and expected-wait announcements,
    // the callback offer and confirmation), in every language of the samples.
    for language in ["en", "fr"] {
        for name in [
            "queue_position",
            "queue_wait",
            "queue_minutes",
            "queue_wait_under_minute",
            "queue_callback_offer",
            "queue_callback_confirm",
        ] {
            used.insert((language.to_string(), name.to_string()));
        }
    }
    let listed: BTreeSet<(String, String)> = prompt_lines("prompts.txt")
        .into_iter()
        .map(|(l, n, _)| (l, n))
        .collect();
    assert_eq!(used, listed);
}

/// `samples/prompts/fragments.txt` is generated from the `say` catalogs; regenerate it with
/// `UPDATE_GOLDENS=1 cargo test -p svi-ivr-scripts --test samples`.
#[test]
fn fragments_file_is_up_to_date() {
    let mut expected = String::new();
    for language in ivr_scripts::say::LANGUAGES {
        for (name, text) in ivr_scripts::say::catalog(language) {
            expected.push_str(&format!("{language}\t{name}\t{text}\n"));
        }
    }
    let path = repo().join("samples/prompts/fragments.txt");
    if std::env::var_os("UPDATE_GOLDENS").is_some() {
        std::fs::write(&path, &expected).expect("write fragments.txt");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "fragments.txt is stale; run with UPDATE_GOLDENS=1"
    );
}
