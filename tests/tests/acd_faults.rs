//! The ACD's faults end to end, with test phones: a recording directory that cannot be
//! written loses the recording, not the call. (The agent's phone that never answers,
//! vanishes or answers with a codec nobody offered, and the caller who hangs up while it
//! rings, run in virtual time in `engine/tests/calls/queue.rs`.)

use std::path::Path;
use std::time::Duration;

use svi_tests::contact::{agent_phone, queued_caller, AUTO_ANSWER};
use svi_tests::phone::{deadline, AnswerMode, Ended, Phone, TONE_1700_HZ};
use svi_tests::proc::{EngineOptions, EngineProc};

const WINDOW: Duration = svi_tests::contact::TONE_WINDOW;

fn engine_with(dir: &Path, queue_extra: &str, more: &str) -> EngineProc {
    let extra = format!(
        "{queue_extra}\n[[agents]]\nid = \"1001\"\nname = \"A\"\npassword = \"pass-1001\"\n{more}"
    );
    let config = svi_tests::config::write(
        dir,
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        &extra,
    );
    EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    })
}

async fn queued(engine: &EngineProc) -> Phone {
    queued_caller(engine, "caller", 1).await
}

async fn agent(engine: &EngineProc, mode: AnswerMode) -> Phone {
    agent_phone(engine, "1001", "pass-1001", mode).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unwritable_recording_directory_loses_the_recording_not_the_call() {
    let dir = tempfile::tempdir().expect("tmp");
    // A regular file where the recordings directory should be.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let engine = engine_with(
        dir.path(),
        "record = \"all\"",
        &format!("[recording]\ndir = \"{}\"\n", blocker.join("rec").display()),
    );
    let mut agent = agent(&engine, AUTO_ANSWER).await;
    let mut caller = queued(&engine).await;
    agent.wait_answered(deadline(10)).await.expect("answers");
    agent.set_tone(TONE_1700_HZ, -12.0);
    caller
        .wait_hears(TONE_1700_HZ, WINDOW, deadline(5))
        .await
        .expect("the call is bridged all the same");
    caller.hangup().await.expect("hang up");
    assert_eq!(
        agent.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert!(calls[0]["recording"].is_null(), "{:#}", calls[0]);
    assert_eq!(calls[0]["queue_outcome"], "answered", "{:#}", calls[0]);
    let log = engine.log_text();
    assert!(
        log.contains("the call is not recorded") && log.contains("not-a-dir"),
        "the log names the problem and the path"
    );
}
