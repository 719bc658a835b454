//! The engine spine end to end: a real `svi run` on loopback called by sipp.
//! Issue acceptance: OPTIONS, the demo flow with DTMF as RFC 4733 (PCMA and PCMU), SIP INFO
//! and in-band tones, and a 50-call load. (The no-input and invalid-digit paths run in
//! virtual time in `engine/tests/calls/flow.rs`.)

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use svi_tests::path_of;
use svi_tests::pcap::{dtmf_pcm, write_rtp_pcap};
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{sipp_dtmf_pcap, Caller, Codec, Dtmf, Sipp};

use svi_tests::config::prompt_len;

/// A moment inside the main menu prompt: after the welcome, one second into the menu.
fn in_menu() -> Duration {
    prompt_len("welcome") + Duration::from_secs(1)
}

/// One sipp call. With `echo`, sipp sends back every RTP packet it gets from the engine,
/// which proves the caller received the engine's audio (counted in the call record).
fn run_caller(engine: &EngineProc, caller: Caller, echo: bool) -> svi_tests::sipp::SippRun {
    let mut sipp = Sipp::new(caller.xml()).calls(1).with_media();
    if echo {
        sipp = sipp.arg("-rtp_echo");
    }
    sipp.run(engine.dir.path(), Some(engine.sip))
}

fn last_call(engine: &EngineProc, n: usize) -> Value {
    let calls = engine.wait_calls(n, Duration::from_secs(10));
    calls
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null)
}

fn assert_option1(call: &Value, codec: &str, echo: bool) {
    assert_eq!(
        path_of(call),
        ["welcome", "main_menu", "option1", "end"],
        "call record: {call:#}"
    );
    assert_eq!(call["end_reason"], "engine_hangup", "{call:#}");
    assert_eq!(call["codec"], codec, "{call:#}");
    assert_eq!(call["flow"], "demo");
    // sipp echoes every RTP packet it receives (-rtp_echo): the engine got its audio back.
    assert!(
        call["rtp_sent"].as_u64().unwrap_or(0) > 100,
        "engine sent RTP: {call:#}"
    );
    let received = call["rtp_received"].as_u64().unwrap_or(0);
    if echo {
        assert!(received > 50, "the caller received RTP (echoed): {call:#}");
    } else {
        assert!(
            received > 0,
            "the engine received the caller's RTP: {call:#}"
        );
    }
}

#[test]
fn rfc4733_digit_with_pcma_then_pcmu() {
    let engine = EngineProc::start(EngineOptions::default());
    for (i, codec) in [Codec::Pcma, Codec::Pcmu].into_iter().enumerate() {
        let caller = Caller::new(codec).dtmf(in_menu(), Dtmf::Rfc2833Pcap(sipp_dtmf_pcap('1')));
        let run = run_caller(&engine, caller, true);
        assert!(
            run.success(),
            "{}\nengine log:\n{}",
            run.report(),
            engine.log_text()
        );
        assert_option1(&last_call(&engine, i + 1), codec.name(), true);
    }
}

#[test]
fn sip_info_digit() {
    let engine = EngineProc::start(EngineOptions::default());
    let run = run_caller(
        &engine,
        Caller::new(Codec::Pcma).dtmf(in_menu(), Dtmf::Info('1')),
        true,
    );
    assert!(
        run.success(),
        "{}\nengine log:\n{}",
        run.report(),
        engine.log_text()
    );
    assert_option1(&last_call(&engine, 1), "PCMA", true);
}

#[test]
fn in_band_tones() {
    let engine = EngineProc::start(EngineOptions::default());
    let pcap: PathBuf = engine.dir.path().join("dtmf1-inband.pcap");
    write_rtp_pcap(&pcap, &dtmf_pcm('1', 120, 60), 8).expect("write pcap");
    // No echo here: the tones must be the only audio the engine hears, as from a real phone.
    let run = run_caller(
        &engine,
        Caller::new(Codec::Pcma).dtmf(in_menu(), Dtmf::InbandPcap(pcap)),
        false,
    );
    assert!(
        run.success(),
        "{}\nengine log:\n{}",
        run.report(),
        engine.log_text()
    );
    assert_option1(&last_call(&engine, 1), "PCMA", false);
}

#[test]
fn fifty_calls_at_ten_per_second_leave_nothing_behind() {
    let engine = EngineProc::start(EngineOptions::default());
    // One call first, so that lazily built state (pools, caches) is in the idle baseline.
    let warm = run_caller(
        &engine,
        Caller::new(Codec::Pcma).dtmf(in_menu(), Dtmf::Info('1')),
        false,
    );
    assert!(warm.success(), "{}", warm.report());
    engine.wait_calls(1, Duration::from_secs(10));
    let idle = engine.rss_kib();
    let caller = Caller::new(Codec::Pcma).dtmf(in_menu(), Dtmf::Info('1'));
    let run = Sipp::new(caller.xml())
        .arg("-m")
        .arg("50")
        .arg("-r")
        .arg("10")
        .arg("-l")
        .arg("100")
        .arg("-i")
        .arg("127.0.0.1")
        .with_media()
        .run(engine.dir.path(), Some(engine.sip));
    assert!(
        run.success(),
        "{}\nengine log:\n{}",
        run.report(),
        engine.log_text()
    );
    let calls = engine.wait_calls(51, Duration::from_secs(20));
    let calls = calls.as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 51, "every call has its record");
    for c in &calls {
        assert_eq!(
            path_of(c),
            ["welcome", "main_menu", "option1", "end"],
            "{c:#}"
        );
    }
    let last = engine.wait_log_count("call closed", 51, Duration::from_secs(10));
    assert!(
        last.as_deref()
            .is_some_and(|l| l.contains("active_calls=0")),
        "no call left in the engine: {last:?}\n{}",
        engine.log_text()
    );
    let after = engine.rss_kib();
    // The allocator may keep some freed pages; a leak of 50 calls' state would show well
    // above this (each call holds buffers, channels, a stream and an interpreter).
    assert!(
        after <= idle + 8 * 1024,
        "resident memory {after} KiB after the calls, {idle} KiB idle"
    );
}

#[test]
fn a_call_over_tcp() {
    let engine = EngineProc::start(EngineOptions::default());
    let caller = Caller::new(Codec::Pcma).dtmf(in_menu(), Dtmf::Info('1'));
    let run = Sipp::new(caller.xml())
        .arg("-t")
        .arg("t1")
        .calls(1)
        .with_media()
        .run(engine.dir.path(), Some(engine.sip));
    assert!(
        run.success(),
        "{}\nengine log:\n{}",
        run.report(),
        engine.log_text()
    );
    let call = last_call(&engine, 1);
    assert_eq!(
        path_of(&call),
        ["welcome", "main_menu", "option1", "end"],
        "{call:#}"
    );
    assert_eq!(call["end_reason"], "engine_hangup");
}
