//! Golden transcripts of `svi flow simulate` on the samples. Regenerate after an intended
//! change with `UPDATE_GOLDENS=1 cargo test -p svi-ivr-scripts --test simulate` and review the
//! diff like code.

mod common;

use std::path::PathBuf;

use chrono::DateTime;
use common::{sample, samples_context};
use ivr_scripts::cli::{self, SimulateOptions};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn simulate(flow: &str, inputs: &str, at: &str, stubs: Option<&str>, json: bool) -> (i32, String) {
    let opts = SimulateOptions {
        file: sample(flow),
        inputs: inputs.into(),
        at: Some(DateTime::parse_from_rfc3339(at).expect("time")),
        caller: "+33612345678".into(),
        called: "3000".into(),
        language: None,
        stubs: stubs.map(|s| golden_dir().join(s)),
        json,
    };
    let mut out = Vec::new();
    let code = cli::simulate(&opts, &samples_context(), &mut out);
    (code, String::from_utf8_lossy(&out).into_owned())
}

fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDENS").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from its golden (UPDATE_GOLDENS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

const TUESDAY: &str = "2026-03-10T10:00:00+01:00";
const SUNDAY: &str = "2026-03-08T10:00:00+01:00";

#[test]
fn demo_option_1_plays_the_message_then_hangs_up() {
    let (code, out) = simulate("demo.yaml", "1", TUESDAY, None, false);
    assert_eq!(code, 0);
    assert!(out.contains("option1    play en/option1_info"), "{out}");
    assert!(
        out.ends_with("path: welcome > main_menu > option1 > end\nresult: hangup\n"),
        "{out}"
    );
    golden("demo-option1.txt", &out);
}

#[test]
fn demo_without_input_repeats_the_menu_three_times() {
    let (code, out) = simulate("demo.yaml", "", TUESDAY, None, false);
    assert_eq!(code, 0);
    assert_eq!(
        out.matches("collect after en/main_menu").count(),
        3,
        "{out}"
    );
    assert_eq!(out.matches("no input (timeout)").count(), 3, "{out}");
    assert!(out.contains("goodbye    play en/goodbye"), "{out}");
    assert!(out.ends_with("result: hangup\n"), "{out}");
    golden("demo-no-input.txt", &out);
}

#[test]
fn demo_json_lines_name_effect_and_step() {
    let (code, out) = simulate("demo.yaml", "2", TUESDAY, None, true);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l.get("effect").is_some() && l.get("step").is_some()));
    let last = lines.last().expect("lines");
    assert_eq!(last["effect"]["type"], "queue");
    assert_eq!(last["effect"]["queue"], "support");
    assert_eq!(
        last["path"],
        serde_json::json!(["welcome", "main_menu", "support"])
    );
    golden("demo-option2.jsonl", &out);
}

#[test]
fn service_desk_on_sunday_is_closed() {
    let (code, out) = simulate("service-desk.yaml", "", SUNDAY, None, false);
    assert_eq!(code, 0);
    assert!(out.contains("closed"), "{out}");
    assert!(
        out.contains("path: opening_hours > closed > offer_message > goodbye > end"),
        "{out}"
    );
    golden("service-desk-sunday.txt", &out);
}

#[test]
fn service_desk_vip_on_tuesday_morning_goes_to_the_priority_queue() {
    let (code, out) = simulate(
        "service-desk.yaml",
        "",
        TUESDAY,
        Some("vip-stubs.yaml"),
        false,
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("found {\"id\":\"1\",\"name\":\"Ada Lovelace\",\"vip\":true}"),
        "{out}"
    );
    assert!(
        out.ends_with("result: routed: queue vip (priority urgent)\n"),
        "{out}"
    );
    golden("service-desk-vip.txt", &out);
}

#[test]
fn a_flow_that_does_not_load_prints_its_errors() {
    let dir = std::env::temp_dir().join(format!("ivr-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        "flow: x\nstart: a\nsteps:\n  a: { play: welcome, next: b }\n",
    )
    .expect("write");
    let opts = SimulateOptions {
        file: file.clone(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let code = cli::simulate(&opts, &ivr_scripts::CheckContext::permissive(), &mut out);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 1);
    assert!(text.contains(":4:29: error: unknown step `b`"), "{text}");
    let missing = SimulateOptions {
        file: dir.join("nope.yaml"),
        ..Default::default()
    };
    let mut out = Vec::new();
    assert_eq!(
        cli::simulate(&missing, &ivr_scripts::CheckContext::permissive(), &mut out),
        2
    );
    let _ = std::fs::remove_dir_all(&dir);
}
