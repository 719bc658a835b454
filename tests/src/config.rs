//! Configuration files for tests: the repository's sample prompts, a flows directory of the
//! test's own, and whatever extra TOML the test needs (trunks, timeouts...).

use std::path::{Path, PathBuf};

/// The sample flow `name` (`samples/flows/<name>.yaml`).
pub fn sample_flow(name: &str) -> String {
    let path = crate::repo_root()
        .join("samples/flows")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `DIR/flows/<name>.yaml` for each flow and `DIR/svi.toml`; the first flow is the
/// default. Loopback is the only allowed network and queue `support` exists.
pub fn write(dir: &Path, flows: &[(&str, &str)], extra: &str) -> PathBuf {
    write_allowing(dir, flows, "127.0.0.0/8", extra)
}

/// [`write`] with `allowed` (a network) as the only entry of `sip.allowed_networks`.
pub fn write_allowing(dir: &Path, flows: &[(&str, &str)], allowed: &str, extra: &str) -> PathBuf {
    write_with_sip(
        dir,
        flows,
        &format!("allowed_networks = [\"{allowed}\"]\n"),
        extra,
    )
}

/// As [`write`], with `sip` as the `[sip]` table's keys (it must give `allowed_networks`).
pub fn write_with_sip(dir: &Path, flows: &[(&str, &str)], sip: &str, extra: &str) -> PathBuf {
    let flows_dir = dir.join("flows");
    std::fs::create_dir_all(&flows_dir).expect("flows dir");
    for (name, text) in flows {
        std::fs::write(flows_dir.join(format!("{name}.yaml")), text).expect("write flow");
    }
    let default = flows.first().map(|f| f.0).unwrap_or("demo");
    let text = format!(
        "[sip]\n{sip}[prompts]\ndir = \"{prompts}\"\n[flows]\ndir = \"{flows}\"\ndefault = \"{default}\"\n[[queues]]\nid = \"support\"\n{extra}",
        prompts = crate::repo_root().join("samples/prompts").display(),
        flows = flows_dir.display(),
    );
    let config = dir.join("svi.toml");
    std::fs::write(&config, text).expect("write config");
    config
}

/// A flow (`hold`) that keeps the caller listening: the welcome prompt, again and again
/// (a call that lasts until the caller hangs up, with media from the engine throughout).
pub const HOLD_FLOW: &str = "flow: hold
language: en
start: talk
steps:
  talk:
    play: welcome
    next: talk
";

/// An HA pair's engine configuration (everything but `[node]` and `[ha]`, for
/// `ha::HaSpec::with_engine`): the hold flow as default in `DIR/flows`, loopback allowed, no
/// call-rate limit, and `extra` TOML at the end (trunks...).
pub fn hold_engine(dir: &Path, extra: &str) -> String {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("flows dir");
    std::fs::write(flows.join("hold.yaml"), HOLD_FLOW).expect("write flow");
    format!(
        "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\nmax_calls_per_second = 0\n\n[prompts]\ndir = \"{prompts}\"\ndefault_language = \"en\"\n\n[flows]\ndir = \"{flows}\"\ndefault = \"hold\"\n\n{extra}",
        prompts = crate::repo_root().join("samples/prompts").display(),
        flows = flows.display(),
    )
}

/// The sample configuration (`samples/svi.toml`, the embedded default) written to
/// `DIR/svi.toml` with `edit` applied to its text; its prompts and flows are the
/// repository's, its connector databases are made in `DIR/data`.
pub fn sample(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let samples = crate::repo_root().join("samples");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    for sql in ["sample.sql", "helpdesk.sql"] {
        std::fs::copy(samples.join("data").join(sql), dir.join("data").join(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let text = std::fs::read_to_string(samples.join("svi.toml")).expect("samples/svi.toml");
    let text = text
        .replace(
            "dir = \"prompts\"",
            &format!("dir = \"{}\"", samples.join("prompts").display()),
        )
        .replace(
            "dir = \"flows\"",
            &format!("dir = \"{}\"", samples.join("flows").display()),
        );
    let config = dir.join("svi.toml");
    std::fs::write(&config, edit(&text)).expect("write config");
    config
}

/// Agents' phones get MD5 challenges only (`sip.digest_algorithms`): sipp's digest knows
/// no SHA-256.
pub fn md5_only(sample_text: &str) -> String {
    let default = "digest_algorithms = [\"SHA-256\", \"MD5\"]";
    assert!(sample_text.contains(default), "the sample sets {default}");
    sample_text.replace(default, "digest_algorithms = [\"MD5\"]")
}

/// The length of a sample prompt (English).
pub fn prompt_len(name: &str) -> std::time::Duration {
    let path = crate::repo_root()
        .join("samples/prompts/en")
        .join(format!("{name}.wav"));
    let r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::time::Duration::from_secs_f64(r.duration() as f64 / r.spec().sample_rate as f64)
}

/// A flow (`bridged`) that transfers every call, bridged, to `target` (a SIP URI); the call
/// ends when the transfer fails.
pub fn bridged_transfer_flow(target: &str) -> String {
    format!(
        "flow: bridged
language: en
start: go
steps:
  go:
    transfer: '\"{target}\"'
    mode: bridged
    timeout: 10s
    failed: end
  end:
    hangup:
"
    )
}

/// The demo flow, and a second version whose option-1 step has another name, so that a
/// call's path tells the versions apart.
pub fn two_demo_versions() -> (String, String) {
    let v1 = sample_flow("demo");
    let v2 = v1
        .replace("\"1\": option1", "\"1\": option_one")
        .replace("  option1:\n", "  option_one:\n");
    assert_ne!(v1, v2);
    (v1, v2)
}
