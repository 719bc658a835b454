//! The ACD's faults end to end, with test phones: an agent's phone that never answers, a
//! caller who hangs up while the agent's phone rings, an agent's phone that vanishes in
//! the middle of a call, an agent's phone that answers with a codec the engine did not
//! offer, and a recording directory that cannot be written. In each: no stuck agent, no
//! lost caller, no crash.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use svi_tests::contact::{agent_phone, queued_caller, svi, wait_agent, AUTO_ANSWER};
use svi_tests::phone::{deadline, AnswerMode, Ended, Phone, TONE_1700_HZ};
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{agent_register_xml, Sipp};

const WINDOW: Duration = svi_tests::contact::TONE_WINDOW;

fn engine_with(dir: &Path, queue_extra: &str, more: &str) -> EngineProc {
    let extra = format!(
        "{queue_extra}\n[[agents]]\nid = \"1001\"\nname = \"A\"\npassword = \"pw-1001\"\n{more}"
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

fn svi_json(engine: &EngineProc, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&svi(engine, &all).1).unwrap_or(Value::Null)
}

async fn queued(engine: &EngineProc) -> Phone {
    queued_caller(engine, "caller", 1).await
}

async fn agent(engine: &EngineProc, mode: AnswerMode) -> Phone {
    agent_phone(engine, "1001", "pw-1001", mode).await
}

fn wait_1001(engine: &EngineProc, want: impl Fn(&Value) -> bool) -> Value {
    wait_agent(engine, "1001", want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_who_never_answers_is_paused_and_the_caller_keeps_waiting() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_with(dir.path(), "ring_timeout = 2000", "");
    let mut agent = agent(&engine, AnswerMode::Manual).await;
    let mut caller = queued(&engine).await;
    agent.wait_incoming(deadline(5)).await.expect("rings");
    assert_eq!(
        agent.wait_ended(deadline(5)).await.expect("CANCEL"),
        Ended::RemoteCancel,
        "the engine stops ringing after the ring timeout"
    );
    let state = wait_1001(&engine, |s| s["state"] == "not_ready");
    assert!(state["reason"].is_string(), "{state}");
    let queues = svi_json(&engine, &["queue", "list"]);
    let support = queues
        .as_array()
        .and_then(|q| q.iter().find(|q| q["id"] == "support").cloned())
        .expect("support");
    assert_eq!(
        support["waiting"], 1,
        "the caller keeps its place: {support}"
    );
    // The caller is still there, hearing the queue's music.
    caller
        .wait_frames(25, deadline(3))
        .await
        .expect("the caller still gets audio");
    caller.hangup().await.expect("hang up");
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(calls[0]["queue_outcome"], "abandoned", "{:#}", calls[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_with(dir.path(), "", "");
    let mut agent = agent(&engine, AnswerMode::Manual).await;
    let caller = queued(&engine).await;
    agent.wait_incoming(deadline(5)).await.expect("rings");
    caller.hangup().await.expect("hang up");
    assert_eq!(
        agent.wait_ended(deadline(5)).await.expect("CANCEL"),
        Ended::RemoteCancel
    );
    wait_1001(&engine, |s| s["state"] == "ready");
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(calls[0]["queue_outcome"], "abandoned", "{:#}", calls[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_phone_that_vanishes_mid_call_ends_the_call_cleanly() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_with(dir.path(), "wrap_up = 0", "[rtp]\ntimeout_secs = 2\n");
    let mut agent = agent(&engine, AUTO_ANSWER).await;
    let mut caller = queued(&engine).await;
    agent.wait_answered(deadline(10)).await.expect("answers");
    agent.set_tone(TONE_1700_HZ, -12.0);
    caller
        .wait_hears(TONE_1700_HZ, WINDOW, deadline(5))
        .await
        .expect("bridged");
    // The phone disappears: no BYE, no more RTP.
    drop(agent);
    assert_eq!(
        caller.wait_ended(deadline(10)).await.expect("BYE"),
        Ended::RemoteBye,
        "the engine hangs up the caller"
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(calls[0]["end_reason"], "rtp_timeout", "{:#}", calls[0]);
    assert_eq!(calls[0]["agent"], "1001", "{:#}", calls[0]);
    // Not stuck talking: the ACD got the end of the call.
    wait_1001(&engine, |s| s["state"] != "talking");
}

/// A phone that answers with G.729 only (payload 18), which the engine never offers.
fn g729_phone_xml() -> String {
    r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="g729 phone">
  <recv request="INVITE"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]g729[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:1001@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 40000 RTP/AVP 18
a=rtpmap:18 G729/8000
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"#
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_phone_answering_with_an_unoffered_codec_is_hung_up_and_the_caller_waits() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_with(dir.path(), "", "");
    let port = svi_tests::ports::free_sip_port();
    let phone_dir = dir.path().to_path_buf();
    let phone = std::thread::spawn(move || {
        let mut s = Sipp::new(g729_phone_xml())
            .arg("-p")
            .arg(port.to_string())
            .calls(1);
        s.timeout = Duration::from_secs(30);
        s.run(&phone_dir, None)
    });
    let reg = Sipp::new(agent_register_xml("1001", "pw-1001", port))
        .calls(1)
        .run(dir.path(), Some(engine.sip));
    assert!(reg.success(), "{}", reg.report());
    let mut caller = queued(&engine).await;
    let phone = tokio::task::spawn_blocking(move || phone.join().expect("phone"))
        .await
        .expect("join");
    assert!(
        phone.success(),
        "the engine ACKs the answer, then sends BYE: {}",
        phone.report()
    );
    assert!(engine
        .log_text()
        .contains("answered without a usable SDP answer"));
    // The agent is taken out of rotation, not left reserved; the caller waits on.
    wait_1001(&engine, |s| s["state"] == "not_ready");
    caller
        .wait_frames(25, deadline(3))
        .await
        .expect("the caller is still in the queue");
    caller.hangup().await.expect("hang up");
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
