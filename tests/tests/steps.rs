//! Flow steps that need more than prompts and digits, end to end: `record` (a message left
//! after the beep, ended by `#`), blind `transfer` (REFER answered by the PBX's NOTIFYs) and
//! bridged `transfer` (the engine calls the target and relays the audio).

use std::time::Duration;

use serde_json::Value;
use svi_tests::path_of;
use svi_tests::pcap::{dtmf_pcm, write_rtp_pcap};
use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{agent_phone_xml, Caller, Codec, Dtmf, Sipp};

use svi_tests::config::prompt_len;

const RECORD_FLOW: &str = "flow: message
language: en
start: leave
steps:
  leave:
    record: welcome
    max_length: 10s
    into: msg
    next: thanks
  thanks:
    play: goodbye
    next: end
  end:
    hangup:
";

#[test]
fn record_step_keeps_the_callers_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = svi_tests::config::write(dir.path(), &[("message", RECORD_FLOW)], "");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    // Half a second of tones after the welcome and the beep, then `#`.
    let pcap = dir.path().join("voice.pcap");
    write_rtp_pcap(&pcap, &dtmf_pcm('5', 500, 20), 8).expect("pcap");
    let after_beep = prompt_len("welcome") + prompt_len("beep") + Duration::from_millis(300);
    let caller = Caller::new(Codec::Pcma)
        .dtmf(after_beep, Dtmf::InbandPcap(pcap))
        .dtmf(Duration::from_millis(1200), Dtmf::Info('#'));
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(
        path_of(&calls[0]),
        ["leave", "thanks", "end"],
        "{:#}",
        calls[0]
    );
    let line = engine
        .wait_log("message recorded", Duration::from_secs(5))
        .expect("recorded");
    let messages = engine.data_dir().join("messages");
    let file = std::fs::read_dir(&messages)
        .expect("messages dir")
        .flatten()
        .next()
        .expect("one message")
        .path();
    let mut wav = hound::WavReader::open(&file).expect("wav");
    let spec = wav.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16),
        "{line}"
    );
    let samples: Vec<i16> = wav.samples::<i16>().map_while(Result::ok).collect();
    let secs = samples.len() as f64 / 8000.0;
    assert!(
        (0.8..4.0).contains(&secs),
        "the message lasts from the beep to `#`: {secs} s"
    );
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(
        loud > 2000,
        "the caller's tones are in the recording ({loud} loud samples)"
    );
}

const TRANSFER_FLOW: &str = "flow: xfer
language: en
start: go
steps:
  go:
    transfer: 2000
    failed: sorry
  sorry:
    play: no_agent_available
    next: end
  end:
    hangup:
";

/// Accepts the REFER and reports `status` in a NOTIFY, as a PBX does.
fn answer_refer(status: &str) -> String {
    format!(
        r#"  <recv request="REFER" timeout="10000">
    <action><ereg regexp="Refer-To: *&lt;sip:2000@" search_in="msg" check_it="true" assign_to="refer_to"/></action>
  </recv>
  <nop hide="true"><action><log message="REFER to [$refer_to]"/></action></nop>
  <send><![CDATA[
SIP/2.0 202 Accepted
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
NOTIFY [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
[routes]
Call-ID: [call_id]
CSeq: 10 NOTIFY
Max-Forwards: 70
Event: refer
Subscription-State: terminated;reason=noresource
Content-Type: message/sipfrag
Content-Length: [len]

SIP/2.0 {status}
]]></send>
  <recv response="200"/>
"#
    )
}

fn transfer_call(status: &str) -> (Value, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = svi_tests::config::write(dir.path(), &[("xfer", TRANSFER_FLOW)], "");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let mut caller = Caller::new(Codec::Pcma);
    caller.raw.push(answer_refer(status));
    let run = Sipp::new(caller.xml())
        .calls(1)
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    (calls[0].clone(), engine.log_text())
}

#[test]
fn blind_transfer_completes_when_the_target_answers() {
    let (call, log) = transfer_call("200 OK");
    assert_eq!(path_of(&call), ["go"], "{call:#}");
    assert!(log.contains("transfer completed"), "{log}");
}

#[test]
fn blind_transfer_failure_takes_the_failed_branch() {
    let (call, _) = transfer_call("486 Busy Here");
    assert_eq!(path_of(&call), ["go", "sorry", "end"], "{call:#}");
}

fn bridged_flow(target_port: u16) -> String {
    format!(
        "flow: bridged
language: en
start: go
steps:
  go:
    transfer: '\"sip:desk@127.0.0.1:{target_port}\"'
    mode: bridged
    timeout: 10s
    failed: sorry
  sorry:
    play: no_agent_available
    next: end
  end:
    hangup:
"
    )
}

/// A phone that refuses every call with 486 Busy Here.
fn busy_phone_xml() -> String {
    r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy phone">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]busy[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK"/>
</scenario>
"#
    .to_string()
}

fn bridged_call(target_xml: String, caller: Caller) -> (Value, String, bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_sip_port();
    let flow = bridged_flow(port);
    let config = svi_tests::config::write(dir.path(), &[("bridged", flow.as_str())], "");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let target_dir = dir.path().to_path_buf();
    let target = std::thread::spawn(move || {
        Sipp::new(target_xml)
            .arg("-p")
            .arg(port.to_string())
            .calls(1)
            .with_media()
            .arg("-rtp_echo")
            .run(&target_dir, None)
    });
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let target = target.join().expect("target thread");
    assert!(
        target.success(),
        "the target's phone: {}\n{}",
        target.report(),
        engine.log_text()
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    let log = engine.log_text();
    (calls[0].clone(), log, target.success())
}

#[test]
fn bridged_transfer_relays_audio_until_the_caller_hangs_up() {
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(Duration::from_secs(4));
    let (call, log, _) = bridged_call(agent_phone_xml("desk"), caller);
    assert_eq!(path_of(&call), ["go"], "{call:#}");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
    assert!(
        log.contains("bridged transfer answered"),
        "the engine bridged the call: {log}"
    );
    assert!(
        log.contains("caller and second leg bridged") && log.contains("ok=true"),
        "the relay was set up: {log}"
    );
}

#[test]
fn bridged_transfer_to_a_busy_target_takes_the_failed_branch() {
    let (call, log, _) = bridged_call(busy_phone_xml(), Caller::new(Codec::Pcma));
    assert_eq!(path_of(&call), ["go", "sorry", "end"], "{call:#}");
    assert!(log.contains("486"), "the failure names the status: {log}");
}
