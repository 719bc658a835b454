//! What each party of a bridged call really hears, checked with test phones that send a
//! distinct tone each and detect tones in what they receive: a bridged transfer (ringback,
//! then both directions relayed, DTMF passed through as RFC 4733), and an ACD call bridged
//! to an agent, recorded in stereo (caller left, agent right), also across a crash;
//! supervision and a paused recording. (Who is rung, callbacks and hangups run in virtual
//! time in `engine/tests/calls/`.)

use std::time::Duration;

use svi_tests::contact::{
    agent_phone, bridged_transfer_engine, call_service, digit_then_caller_hangs_up,
    hear_each_other, queued_caller, svi_ok, AUTO_ANSWER,
};
use svi_tests::phone::{
    deadline, wav_channel_tone_power, Ended, Phone, PhoneConfig, TONE_1100_HZ, TONE_1700_HZ,
    TONE_500_HZ,
};
use svi_tests::proc::{EngineOptions, EngineProc};

/// Long enough to judge a tone, short enough to follow changes.
const WINDOW: Duration = svi_tests::contact::TONE_WINDOW;
/// The engine's ringback when the prompts have none.
const RINGBACK_HZ: f32 = 425.0;

/// An engine whose flow transfers (bridged) to a target phone that answers after `ring`,
/// and a caller calling it (the directory holds the engine's configuration).
async fn transfer_call(ring: Duration) -> (tempfile::TempDir, EngineProc, Phone, Phone) {
    let (dir, engine, target) = bridged_transfer_engine(ring, "127.0.0.0/8").await;
    let caller = call_service(&engine, "caller").await;
    (dir, engine, target, caller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bridged_transfer_rings_back_then_relays_both_ways() {
    let (_dir, engine, mut target, mut caller) = transfer_call(Duration::from_millis(1500)).await;
    caller
        .wait_answered(deadline(5))
        .await
        .expect("the engine answers");
    target
        .wait_incoming(deadline(5))
        .await
        .expect("the engine calls the target");
    // While the target rings, the caller hears ringback.
    caller
        .wait_hears(RINGBACK_HZ, WINDOW, deadline(3))
        .await
        .expect("ringback while the target rings");

    target
        .wait_answered(deadline(5))
        .await
        .expect("the target answers");
    hear_each_other(&mut caller, &mut target).await;
    // A fresh window, after the switch from ringback to the relay.
    caller.clear_received();
    target.clear_received();
    caller.wait_frames(25, deadline(3)).await.expect("audio");
    target.wait_frames(25, deadline(3)).await.expect("audio");
    assert!(
        target.hears(TONE_500_HZ, WINDOW) && !target.hears(TONE_1700_HZ, WINDOW),
        "the target hears the caller, without echo of its own voice"
    );
    assert!(
        caller.hears(TONE_1700_HZ, WINDOW)
            && !caller.hears(TONE_500_HZ, WINDOW)
            && !caller.hears(RINGBACK_HZ, WINDOW),
        "the caller hears the target only: 1700 Hz {}, 500 Hz {}, ringback {}",
        caller.heard(TONE_1700_HZ, WINDOW),
        caller.heard(TONE_500_HZ, WINDOW),
        caller.heard(RINGBACK_HZ, WINDOW)
    );

    digit_then_caller_hangs_up(&engine, &mut caller, &mut target).await;
}

/// The demo flow's option 2 with agent 1001 registered: returns once caller (500 Hz) and
/// agent (1700 Hz) hear each other through the engine.
async fn bridged_to_agent(engine: &EngineProc) -> (Phone, Phone) {
    let mut agent = agent_phone(engine, "1001", "demo-1001", AUTO_ANSWER).await;
    let mut caller = queued_caller(engine, "caller", 1).await;
    agent
        .wait_answered(deadline(20))
        .await
        .expect("the agent's phone rings and answers");
    hear_each_other(&mut caller, &mut agent).await;
    (caller, agent)
}

fn ms(v: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .expect("time")
        .timestamp_millis()
}

/// The recording is a stereo 8 kHz 16-bit WAV with the caller's tone on the left and the
/// agent's on the right; returns its length in ms.
fn check_recording(call: &serde_json::Value) -> i64 {
    let path = std::path::PathBuf::from(call["recording"].as_str().expect("recording path"));
    let reader = hound::WavReader::open(&path).expect("a playable WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let len_ms = i64::from(reader.duration()) / 8;
    assert_eq!(call["recording_ms"].as_i64(), Some(len_ms), "{call:#}");
    let (from, to) = (Duration::from_millis(1000), Duration::from_millis(2500));
    let power = |ch, f| wav_channel_tone_power(&path, ch, f, from, to).expect("analysis");
    assert!(
        power(0, TONE_500_HZ) > 0.5 && power(0, TONE_1700_HZ) < 0.1,
        "left: the caller"
    );
    assert!(
        power(1, TONE_1700_HZ) > 0.5 && power(1, TONE_500_HZ) < 0.1,
        "right: the agent"
    );
    let sum = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(
        sum.split_whitespace().next(),
        call["recording_sha256"].as_str(),
        "the record's SHA-256 is the file's"
    );
    len_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_and_a_queued_caller_hear_each_other_and_are_recorded() {
    let engine = EngineProc::start(EngineOptions::default());
    let (caller, mut agent) = bridged_to_agent(&engine).await;
    // Five seconds of conversation (counted in the agent's received frames).
    agent.clear_received();
    agent.wait_frames(250, deadline(10)).await.expect("talk");
    agent.send_dtmf("4").expect("dtmf");
    let mut caller = caller;
    let (digit, _) = caller
        .wait_dtmf(deadline(5))
        .await
        .expect("the agent's digit reaches the caller");
    assert_eq!(digit, '4');
    caller.hangup().await.expect("hang up");
    assert_eq!(
        agent.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    let call = &calls[0];
    assert_eq!(call["agent"], "1001", "{call:#}");
    assert_eq!(call["queue"], "support", "{call:#}");
    let talk = ms(&call["ended_at"]) - ms(&call["agent_answered_at"]);
    let recorded = check_recording(call);
    assert!(
        (recorded - talk).abs() <= 500,
        "the recording lasts the talk time: {recorded} ms recorded, {talk} ms talked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_cut_by_a_crash_is_repaired_at_the_next_start() {
    let mut engine = EngineProc::start(EngineOptions::default());
    let (_caller, mut agent) = bridged_to_agent(&engine).await;
    agent.clear_received();
    agent.wait_frames(250, deadline(10)).await.expect("talk");
    assert!(engine.log_text().contains("recording the call"));
    engine.kill9();

    let restarted = EngineProc::start(EngineOptions {
        data_dir: Some(engine.data_dir()),
        ..EngineOptions::default()
    });
    let calls = restarted.wait_calls(1, Duration::from_secs(10));
    let call = &calls[0];
    assert_eq!(call["end_reason"], "engine_failure", "{call:#}");
    assert_eq!(call["agent"], "1001", "{call:#}");
    let recorded = check_recording(call);
    // Flushed every 2 s: at most that much of the 5 s is lost.
    assert!(
        recorded >= 2900,
        "the repaired recording keeps the flushed audio: {recorded} ms"
    );
    assert!(restarted
        .log_text()
        .contains("recording of a call cut by an engine failure repaired"));
}

/// `svi supervise MODE CALL [EXT] --data-dir DIR`, which must succeed.
fn supervise(engine: &EngineProc, args: &[&str]) {
    let mut all = vec!["supervise"];
    all.extend_from_slice(args);
    svi_ok(engine, &all);
}

/// A fresh window of what `phone` hears now.
async fn listen_again(phone: &mut Phone) {
    phone.clear_received();
    phone
        .wait_frames(25, deadline(3))
        .await
        .expect("audio keeps coming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervisor_listens_whispers_then_barges_in() {
    let engine = EngineProc::start(EngineOptions::default());
    let (mut caller, mut agent) = bridged_to_agent(&engine).await;
    let mut sup = Phone::start(PhoneConfig::new("supervisor"))
        .await
        .expect("supervisor phone");

    // Listen: the supervisor hears both; nobody hears the supervisor.
    supervise(&engine, &["listen", "1001", &sup.uri()]);
    sup.wait_answered(deadline(5))
        .await
        .expect("the engine calls the supervisor");
    sup.set_tone(TONE_1100_HZ, -12.0);
    sup.wait_hears(TONE_500_HZ, WINDOW, deadline(5))
        .await
        .expect("listen: the supervisor hears the caller");
    sup.wait_hears(TONE_1700_HZ, WINDOW, deadline(5))
        .await
        .expect("listen: the supervisor hears the agent");
    listen_again(&mut caller).await;
    listen_again(&mut agent).await;
    assert!(
        !caller.hears(TONE_1100_HZ, WINDOW),
        "listen: not the caller"
    );
    assert!(!agent.hears(TONE_1100_HZ, WINDOW), "listen: not the agent");

    // Whisper: the agent hears the supervisor too; the caller still does not.
    supervise(&engine, &["whisper", "1001"]);
    agent
        .wait_hears(TONE_1100_HZ, WINDOW, deadline(5))
        .await
        .expect("whisper: the agent hears the supervisor");
    listen_again(&mut agent).await;
    assert!(
        agent.hears(TONE_500_HZ, WINDOW),
        "whisper: the agent still hears the caller"
    );
    listen_again(&mut caller).await;
    assert!(
        !caller.hears(TONE_1100_HZ, WINDOW),
        "whisper: the caller does not hear the supervisor"
    );

    // Barge: everyone hears everyone.
    supervise(&engine, &["barge", "1001"]);
    caller
        .wait_hears(TONE_1100_HZ, WINDOW, deadline(5))
        .await
        .expect("barge: the caller hears the supervisor");
    listen_again(&mut caller).await;
    assert!(
        caller.hears(TONE_1700_HZ, WINDOW),
        "barge: the caller still hears the agent"
    );
    listen_again(&mut agent).await;
    assert!(
        agent.hears(TONE_1100_HZ, WINDOW) && agent.hears(TONE_500_HZ, WINDOW),
        "barge: the agent hears the caller and the supervisor"
    );

    // Stop: the supervisor's phone is hung up; the call goes on.
    supervise(&engine, &["stop", "1001"]);
    assert_eq!(
        sup.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
    listen_again(&mut caller).await;
    assert!(
        caller.hears(TONE_1700_HZ, WINDOW) && !caller.hears(TONE_1100_HZ, WINDOW),
        "after stop: the caller hears the agent only"
    );
    caller.hangup().await.expect("hang up");
    assert_eq!(
        agent.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_recording_holds_silence_for_the_pause() {
    let engine = EngineProc::start(EngineOptions::default());
    let (caller, mut agent) = bridged_to_agent(&engine).await;
    agent.clear_received();
    agent
        .wait_frames(100, deadline(5))
        .await
        .expect("2 s of talk");
    svi_ok(&engine, &["record", "pause", "1001"]);
    agent.clear_received();
    agent
        .wait_frames(100, deadline(5))
        .await
        .expect("2 s paused");
    svi_ok(&engine, &["record", "resume", "1001"]);
    agent.clear_received();
    agent.wait_frames(100, deadline(5)).await.expect("2 s more");
    caller.hangup().await.expect("hang up");
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    let path = std::path::PathBuf::from(calls[0]["recording"].as_str().expect("recorded"));
    // Seconds 0-2 hold both voices, 2-4 silence on both channels, then both again: find
    // the silent stretch rather than rely on exact times.
    let reader = hound::WavReader::open(&path).expect("wav");
    let total = reader.duration() as u64 / 8;
    let silent: Vec<u64> = (0..total / 100)
        .filter(|i| {
            let (from, to) = (
                Duration::from_millis(i * 100),
                Duration::from_millis(i * 100 + 100),
            );
            [0u16, 1].iter().all(|&ch| {
                let (samples, _) =
                    svi_tests::phone::wav_channel_samples(&path, ch, from, to).expect("samples");
                samples.iter().all(|s| *s == 0)
            })
        })
        .collect();
    assert!(
        (15..=25).contains(&silent.len()),
        "about 2 s of silence in {total} ms: {} × 100 ms silent",
        silent.len()
    );
    assert!(
        engine
            .log_text()
            .contains("recording paused by an operator"),
        "the log says who paused"
    );
}
