//! The call-flow commands of the `svi` binary, and a live call against `svi simulate`.
//! Issue acceptance: `svi check` on the samples and on broken flows (line and column),
//! simulate of the demo and service-desk flows, live path = simulated path, hot reload.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use svi_tests::path_of;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

fn svi(args: &[&str]) -> (i32, String) {
    let out = Command::new(svi_bin())
        .args(args)
        .output()
        .expect("run svi");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn samples() -> PathBuf {
    svi_tests::repo_root().join("samples")
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn check_accepts_the_samples() {
    let flows = samples().join("flows");
    let files = [
        "demo.yaml",
        "service-desk.yaml",
        "reception.yaml",
        "badge-hotline.yaml",
        "door.yaml",
        "alarm-callout.yaml",
    ]
    .map(|f| s(&flows.join(f)));
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let (code, text) = svi(&args);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 error(s), 0 warning(s)"), "{text}");
}

#[test]
fn check_refuses_each_broken_flow_at_its_line_and_column() {
    let dir = svi_tests::repo_root().join("ivr-scripts/tests/broken");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("broken flows") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        // Each file states what it must produce: `# expect: LINE:COL code`.
        let Some(expect) = text.lines().find_map(|l| l.strip_prefix("# expect: ")) else {
            continue;
        };
        let position = expect.split_whitespace().next().expect("position");
        let (code, out) = svi(&["check", &s(&path)]);
        assert_eq!(code, 1, "{}: {out}", path.display());
        let needle = format!("{}:{position}:", path.display());
        assert!(
            out.contains(&needle),
            "{} must report {needle}:\n{out}",
            path.display()
        );
        assert!(
            out.contains("hint:"),
            "{}: a hint to fix it:\n{out}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 10, "at least ten broken flows, found {seen}");
}

fn simulate(args: &[&str]) -> Vec<Value> {
    let (code, out) = svi(&[&["simulate"], args, &["--json"]].concat());
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn simulate_demo_paths() {
    let demo = s(&samples().join("flows/demo.yaml"));
    let effects = simulate(&[&demo, "--input", "1"]);
    let last = effects.last().expect("effects");
    assert_eq!(last["effect"]["type"], "hangup");
    assert_eq!(effects[effects.len() - 2]["step"], "option1");
    let effects = simulate(&[&demo, "--input", ""]);
    let menus = effects.iter().filter(|e| e["step"] == "main_menu").count();
    assert_eq!(menus, 3, "{effects:#?}");
    let steps: Vec<&str> = effects
        .iter()
        .rev()
        .take(2)
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(steps, ["end", "goodbye"]);
}

#[test]
fn simulate_service_desk_closed_on_sunday_and_vip_on_tuesday() {
    let flow = s(&samples().join("flows/service-desk.yaml"));
    let effects = simulate(&[&flow, "--at", "2026-11-22T10:00:00+01:00"]);
    let path = effects.last().expect("end")["path"].clone();
    assert!(
        path.to_string().contains("closed"),
        "Sunday takes the closed branch: {path}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let stubs = dir.path().join("stubs.yaml");
    std::fs::write(
        &stubs,
        "lookups:\n  helpdesk_user:\n    found: { id: \"1\", name: Ada, vip: true }\n",
    )
    .expect("stubs");
    let effects = simulate(&[
        &flow,
        "--at",
        "2026-11-24T10:00:00+01:00",
        "--caller",
        "+33100000001",
        "--stubs",
        &s(&stubs),
    ]);
    let last = effects.last().expect("end");
    assert_eq!(last["effect"]["type"], "queue", "{last:#}");
    assert_eq!(last["effect"]["queue"], "vip", "{last:#}");
}

use svi_tests::config::prompt_len;

#[test]
fn a_live_call_follows_the_simulated_path() {
    let demo = s(&samples().join("flows/demo.yaml"));
    let simulated = simulate(&[&demo, "--input", "9 1"]);
    let expected = simulated.last().expect("end")["path"].clone();
    let engine = EngineProc::start(EngineOptions::default());
    let caller = Caller::new(Codec::Pcma)
        .dtmf(
            prompt_len("welcome") + Duration::from_secs(1),
            Dtmf::Info('9'),
        )
        .dtmf(
            prompt_len("invalid_choice") + Duration::from_secs(1),
            Dtmf::Info('1'),
        );
    let run = Sipp::new(caller.xml())
        .calls(1)
        .run(engine.dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(
        calls[0]["path"], expected,
        "live record {:#} vs simulated {expected}",
        calls[0]
    );
}

#[test]
fn hot_reload_keeps_calls_in_progress_on_their_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let v1 = std::fs::read_to_string(samples().join("flows/demo.yaml")).expect("demo");
    // Version 2 renames the option-1 step, so paths tell the versions apart.
    let v2 = v1
        .replace("\"1\": option1", "\"1\": option_one")
        .replace("  option1:\n", "  option_one:\n");
    assert_ne!(v1, v2);
    let config = svi_tests::config::write(dir.path(), &[("demo", &v1)], "");
    let demo_file = dir.path().join("flows/demo.yaml");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });

    let in_menu = prompt_len("welcome") + Duration::from_secs(1);
    let caller = Caller::new(Codec::Pcma).dtmf(in_menu, Dtmf::Info('1'));
    let target = engine.sip;
    let sipp_dir = dir.path().to_path_buf();
    let xml = caller.xml();
    let batch = std::thread::spawn(move || {
        Sipp::new(xml)
            .arg("-m")
            .arg("20")
            .arg("-r")
            .arg("20")
            .arg("-l")
            .arg("20")
            .arg("-i")
            .arg("127.0.0.1")
            .run(&sipp_dir, Some(target))
    });
    assert!(
        engine
            .wait_log_count("call started", 20, Duration::from_secs(20))
            .is_some(),
        "20 calls up:\n{}",
        engine.log_text()
    );
    std::fs::write(&demo_file, &v2).expect("write v2");
    let reloaded = engine.wait_log("flow reloaded", Duration::from_secs(10));
    assert!(
        reloaded.is_some(),
        "the new version is loaded:\n{}",
        engine.log_text()
    );
    let run = batch.join().expect("sipp thread");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let first = engine.wait_calls(20, Duration::from_secs(10));
    let first = first.as_array().cloned().unwrap_or_default();
    assert_eq!(first.len(), 20);
    let old_version = first[0]["flow_version"].clone();
    for c in &first {
        assert_eq!(
            path_of(c),
            ["welcome", "main_menu", "option1", "end"],
            "calls in progress finish on the old version: {c:#}"
        );
        assert_eq!(c["flow_version"], old_version);
    }

    // An invalid replacement is refused, with the reason, and the valid version stays live.
    std::fs::write(&demo_file, v2.replace("next: end", "next: nowhere")).expect("write v3");
    let refused = engine.wait_log("flow reload refused", Duration::from_secs(10));
    assert!(
        refused.is_some(),
        "invalid version refused:\n{}",
        engine.log_text()
    );
    assert!(
        engine.wait_log("nowhere", Duration::from_secs(2)).is_some(),
        "the log names the problem:\n{}",
        engine.log_text()
    );

    let run = Sipp::new(
        Caller::new(Codec::Pcma)
            .dtmf(in_menu, Dtmf::Info('1'))
            .xml(),
    )
    .calls(1)
    .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(21, Duration::from_secs(10));
    let newest = &calls[0];
    assert_eq!(
        path_of(newest),
        ["welcome", "main_menu", "option_one", "end"],
        "new calls take the new version: {newest:#}"
    );
    assert_ne!(newest["flow_version"], old_version);
}
