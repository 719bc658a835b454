//! The ACD end to end: an agent's phone registers with the engine (digest), a caller keys 2
//! in the demo flow, the engine rings the agent, bridges both legs through itself, and when
//! the caller hangs up, sends BYE to the agent. The call record names queue and agent.
//! (Skills, a paused agent, overflow and ring-no-answer run in virtual time in
//! `engine/tests/calls/queue.rs`.)

use std::time::Duration;

use chrono::DateTime;
use svi_tests::config::prompt_len;
use svi_tests::contact::{register_phone, svi};
use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

/// The embedded default's configuration, with MD5 challenges for sipp's REGISTERs; the
/// directory holding it lives as long as the engine is used.
fn sample_for_sipp() -> (tempfile::TempDir, EngineProc) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = svi_tests::config::sample(dir.path(), svi_tests::config::md5_only);
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    (dir, engine)
}

fn ms_between(a: &serde_json::Value, b: &serde_json::Value) -> i64 {
    let t = |v: &serde_json::Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).expect("time")
    };
    (t(b) - t(a)).num_milliseconds()
}

#[test]
fn a_queued_call_is_bridged_to_a_registered_agent() {
    let (_config, engine) = sample_for_sipp();
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(30));

    let talk = Duration::from_secs(5);
    let mut caller = Caller::new(Codec::Pcma).dtmf(
        prompt_len("welcome") + Duration::from_secs(1),
        Dtmf::Info('2'),
    );
    caller.hangup_after = Some(talk);
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(engine.dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let phone = phone.join().expect("phone thread");
    assert!(
        phone.success(),
        "the agent's phone rang, answered and got the engine's BYE:\n{}\n{}",
        phone.report(),
        engine.log_text()
    );

    let calls = engine.wait_calls(1, Duration::from_secs(10));
    let call = &calls[0];
    assert_eq!(call["queue"], "support", "{call:#}");
    assert_eq!(call["agent"], "1001", "{call:#}");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
    assert_eq!(call["queue_outcome"], "answered", "{call:#}");
    let wait = ms_between(&call["queued_at"], &call["agent_answered_at"]);
    let talked = ms_between(&call["agent_answered_at"], &call["ended_at"]);
    assert!((0..3000).contains(&wait), "wait {wait} ms");
    assert!(
        (talk.as_millis() as i64 - 1500..talk.as_millis() as i64 + 1500).contains(&talked),
        "talk {talked} ms"
    );
    assert!(engine
        .wait_log("caller and agent bridged", Duration::from_secs(1))
        .is_some());

    // The statistics come from the persisted ACD events (written in batches).
    let stats = wait_stats(&engine, "support", |s| s["handled"] == 1);
    assert_eq!(
        (&stats["offered"], &stats["answered"], &stats["abandoned"]),
        (&1.into(), &1.into(), &0.into()),
        "{stats:#}"
    );
    let asa = stats["average_speed_of_answer"].as_u64().expect("ASA");
    assert!(
        (asa as i64 - wait).abs() < 1000,
        "ASA {asa} ms, wait {wait} ms"
    );
    let aht = stats["average_handle_time"].as_u64().expect("AHT");
    assert!(
        aht as i64 >= talked - 1000,
        "AHT {aht} ms, talk {talked} ms"
    );
}

/// `svi stats --queue Q --since 1h --json` once `done` holds for its single interval.
fn wait_stats(
    engine: &EngineProc,
    queue: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, text) = svi(
            engine,
            &["stats", "--queue", queue, "--since", "1h", "--json"],
        );
        assert_eq!(code, 0, "{text}");
        let rows: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let row = rows[0].clone();
        if done(&row) {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics never matched: {row:#}"
        );
    }
}

#[test]
fn agent_and_queue_commands_reach_the_running_engine() {
    let engine = EngineProc::start(EngineOptions::default());
    assert_eq!(svi(&engine, &["agent", "login", "1002"]).0, 0);
    assert_eq!(
        svi(&engine, &["agent", "pause", "1002", "--reason", "lunch"]).0,
        0
    );
    let (code, text) = svi(&engine, &["agent", "list", "--json"]);
    assert_eq!(code, 0, "{text}");
    let agents: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let a1002 = agents
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "1002"))
        .expect("1002");
    assert_eq!(a1002["state"]["state"], "not_ready", "{a1002:#}");
    assert_eq!(a1002["state"]["reason"], "lunch", "{a1002:#}");
    let (code, text) = svi(&engine, &["queue", "list", "--json"]);
    assert_eq!(code, 0, "{text}");
    let queues: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let support = queues
        .as_array()
        .and_then(|a| a.iter().find(|q| q["id"] == "support"))
        .expect("support");
    assert_eq!(
        (
            support["agents_logged_in"].as_u64(),
            support["agents_available"].as_u64()
        ),
        (Some(1), Some(0)),
        "{support:#}"
    );
    // A refused change says why and fails.
    let (code, text) = svi(&engine, &["agent", "ready", "1001"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("1001") && text.contains("logged_out"),
        "{text}"
    );
}

/// The IPBX: challenges the engine's INVITE (401, digest; sipp checks only `Authorization`), checks the credentials of the
/// trunk, then the agent's extension answers; BYE at the end.
fn pbx_extension_xml(username: &str, password: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="pbx extension">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=[pid]pbx[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="pbx.test", nonce="4f8a2c1d9e7b", algorithm=MD5
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <recv request="INVITE">
    <action>
      <verifyauth assign_to="authvalid" username="{username}" password="{password}"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <send><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=[pid]pbx2[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK" next="end"/>
  <label id="good"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]pbx2[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:2001@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv request="ACK"/>
  <recv request="BYE" timeout="30000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="end"/>
</scenario>
"#
    )
}

#[test]
fn an_agent_behind_the_ipbx_is_rung_through_the_trunk_with_its_credentials() {
    let dir = tempfile::tempdir().expect("tmp");
    let pbx_port = free_sip_port();
    let extra = format!(
        "[[trunks]]\nname = \"ipbx\"\nregistrar = \"sip:127.0.0.1:{pbx_port}\"\n\
         username = \"svi\"\npassword = \"trunk-secret\"\nregister = false\n\
         [[agents]]\nid = \"2001\"\nname = \"Desk 2001\"\ncontact = \"2001\"\n"
    );
    let config = svi_tests::config::write(
        dir.path(),
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        &extra,
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let pbx_dir = dir.path().to_path_buf();
    let pbx = std::thread::spawn(move || {
        let mut s = Sipp::new(pbx_extension_xml("svi", "trunk-secret"))
            .arg("-p")
            .arg(pbx_port.to_string())
            .calls(1)
            .with_media();
        s.timeout = Duration::from_secs(30);
        s.run(&pbx_dir, None)
    });
    assert_eq!(svi(&engine, &["agent", "login", "2001"]).0, 0);
    let mut caller = Caller::new(Codec::Pcma).dtmf(
        prompt_len("welcome") + Duration::from_secs(1),
        Dtmf::Info('2'),
    );
    caller.hangup_after = Some(Duration::from_secs(3));
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let pbx = pbx.join().expect("pbx");
    assert!(pbx.success(), "{}\n{}", pbx.report(), engine.log_text());
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    let call = &calls[0];
    assert_eq!(call["agent"], "2001", "{call:#}\n{}", pbx.messages());
    assert_eq!(call["queue_outcome"], "answered", "{call:#}");
    let messages = pbx.messages();
    assert!(
        messages.contains("INVITE sip:2001@127.0.0.1"),
        "the agent's extension at the PBX: {messages}"
    );
    assert!(
        messages.contains("Authorization: Digest") && !messages.contains("403 Forbidden"),
        "the PBX accepted the trunk's credentials: {messages}"
    );
}

/// The raft log index the node has applied (every durable write goes through it).
fn applied(engine: &EngineProc) -> u64 {
    let (_, text) = svi(engine, &["ha", "status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["applied_index"].as_u64())
        .unwrap_or(0)
}

/// Polls until the node has applied `index` (a deadline, not a sleep).
fn wait_applied(engine: &EngineProc, index: u64) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while applied(engine) < index {
        assert!(
            std::time::Instant::now() < end,
            "index {index} never applied"
        );
    }
}

#[test]
fn agents_keep_their_states_across_an_engine_restart() {
    let data = tempfile::tempdir().expect("tmp");
    let opts = || EngineOptions {
        data_dir: Some(data.path().to_path_buf()),
        // The debug line tells when the ACD's events went to the replicated writer.
        extra: vec!["--log".into(), "info,engine::acd::driver=debug".into()],
        ..EngineOptions::default()
    };
    let mut engine = EngineProc::start(opts());
    let start = applied(&engine);
    // Each command's events are one batch, one raft entry: wait until it is applied.
    assert_eq!(svi(&engine, &["agent", "login", "1002"]).0, 0);
    assert!(engine
        .wait_log("ACD events sent to the writer", Duration::from_secs(5))
        .is_some());
    wait_applied(&engine, start + 1);
    assert_eq!(
        svi(&engine, &["agent", "pause", "1002", "--reason", "training"]).0,
        0
    );
    assert!(engine
        .wait_log_count("ACD events sent to the writer", 2, Duration::from_secs(5))
        .is_some());
    wait_applied(&engine, start + 2);
    engine.kill9();

    let engine = EngineProc::start(opts());
    assert!(
        engine
            .wait_log("agent states restored", Duration::from_secs(5))
            .is_some(),
        "{}",
        engine.log_text()
    );
    let (code, text) = svi(&engine, &["agent", "list", "--json"]);
    assert_eq!(code, 0, "{text}");
    let agents: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let a1002 = agents
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "1002"))
        .expect("1002");
    assert_eq!(a1002["state"]["state"], "not_ready", "{a1002:#}");
    assert_eq!(a1002["state"]["reason"], "training", "{a1002:#}");
}
