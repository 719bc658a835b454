//! A single node (no `[ha]` section: a one-voter cluster) with real processes: it has no
//! lease to lose, so a stall keeps its calls and its role; and one data directory serves
//! one process at a time (the data directory lock).

use std::process::Command;
use std::time::Duration;

use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

/// How long the node is stopped: four times the default lease (0.5 s), which fenced a
/// single node and ended its calls before the one-voter rule.
const STALL: Duration = Duration::from_secs(2);

/// Audio frames (20 ms) that show media flowing: half a second.
const FRAMES: u64 = 25;

fn single_node(dir: &std::path::Path) -> EngineProc {
    let config = svi_tests::config::write(dir, &[("hold", svi_tests::config::HOLD_FLOW)], "");
    EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_single_node_keeps_its_calls_and_takes_new_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = single_node(dir.path());
    let mut callers = Vec::new();
    for i in 0..3 {
        let mut phone = Phone::start(PhoneConfig::new(&format!("caller{i}")))
            .await
            .expect("phone");
        phone
            .call(&format!("sip:hold@{}", engine.sip))
            .await
            .expect("call");
        phone.wait_answered(deadline(10)).await.expect("answered");
        phone.wait_frames(FRAMES, deadline(5)).await.expect("media");
        callers.push(phone);
    }

    engine.send_signal("STOP");
    // The fault itself: the process stays stopped this long (nothing is awaited here).
    std::thread::sleep(STALL);
    engine.send_signal("CONT");

    for phone in &mut callers {
        phone.clear_received();
        phone
            .wait_frames(FRAMES, deadline(5))
            .await
            .expect("media resumes after the stall");
        let level = phone.level_dbfs(Duration::from_millis(400));
        assert!(level > -40.0, "the prompt is heard again: {level} dBFS");
    }
    let mut late = Phone::start(PhoneConfig::new("late")).await.expect("phone");
    late.call(&format!("sip:hold@{}", engine.sip))
        .await
        .expect("call");
    late.wait_answered(deadline(10))
        .await
        .expect("a new call is answered after the stall");
    callers.push(late);

    // Each call ends by our BYE: a BYE from the engine would have ended it first.
    for phone in &mut callers {
        phone.hangup().await.expect("hang up");
        assert_eq!(
            phone.wait_ended(deadline(5)).await.expect("ended"),
            Ended::LocalBye,
            "the engine never hung up:\n{}",
            engine.log_text()
        );
    }
    let calls = engine.wait_calls(4, Duration::from_secs(10));
    let calls = calls.as_array().expect("records");
    assert_eq!(calls.len(), 4, "{calls:#?}");
    for c in calls {
        assert_eq!(c["end_reason"], "caller_hangup", "{c:#}");
    }
    let log = engine.log_text();
    let left_active: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ha role changed") && l.contains("from=active"))
        .collect();
    assert!(
        left_active.is_empty(),
        "the node never left the active role on the stall: {left_active:#?}"
    );
    assert!(
        !log.contains("no longer active"),
        "the node never left the active role:\n{log}"
    );
}

#[test]
fn a_second_engine_on_the_same_data_directory_is_refused_naming_the_lock() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = single_node(dir.path());
    let config = dir.path().join("svi.toml");
    let out = Command::new(svi_bin())
        .args(["run", "--sip-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(first.data_dir())
        .output()
        .expect("svi run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "refused: {err}");
    let lock = first.data_dir().join("svi.lock");
    assert!(
        err.contains(&lock.display().to_string()),
        "names the lock file: {err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.child.id())),
        "names the other process: {err}"
    );
    // The first engine is untouched and still serves.
    let mut probe = svi_tests::probe::Probe::new(first.sip);
    assert!(probe.wait_ready(Duration::from_secs(5)), "first engine up");
}

#[test]
fn a_second_witness_on_the_same_data_directory_is_refused_naming_the_lock() {
    let spec = svi_tests::ha::HaSpec::new("");
    let data = spec.dir.path().join("witness-data");
    let first = spec.witness();
    let lock = data.join("svi.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while svi_tests::ha::status(&data).is_none() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(lock.exists(), "the witness holds {}", lock.display());
    let out = Command::new(svi_bin())
        .args(["witness", "--config"])
        .arg(&spec.configs[2])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("svi witness");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "refused: {err}");
    assert!(err.contains(&lock.display().to_string()), "{err}");
    drop(first);
}
