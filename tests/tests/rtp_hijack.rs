//! Media hijack attempts (issue 13, acceptance 3): a host outside `sip.allowed_networks`
//! sprays the engine's whole RTP range with steady, well-sequenced RTP (a tone and a digit)
//! and RTCP, from before the call until after it. The call's media is never latched to it,
//! nothing is sent to it, and both parties hear each other only, digits included.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use svi_tests::contact::hear_each_other;
use svi_tests::intruder::{Intruder, INTRUDER_HZ};
use svi_tests::phone::{
    deadline, AnswerMode, Ended, Phone, PhoneConfig, TONE_1700_HZ, TONE_500_HZ,
};
use svi_tests::proc::{EngineOptions, EngineProc};

const WINDOW: Duration = svi_tests::contact::TONE_WINDOW;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too, but outside the engine's allow-list (`127.0.0.1/32`).
const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtp_from_outside_the_allow_list_is_never_latched_nor_answered() {
    let mut target = Phone::start(PhoneConfig::new("desk").answer(AnswerMode::Auto {
        ring: Duration::ZERO,
    }))
    .await
    .expect("target phone");
    let dir = tempfile::tempdir().expect("tmp");
    let flow = svi_tests::config::bridged_transfer_flow(&target.uri());
    let config = svi_tests::config::write_allowing(
        dir.path(),
        &[("bridged", flow.as_str())],
        "127.0.0.1/32",
        "",
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    // Before the call: every port of the range is already sprayed.
    let intruder = Intruder::start(OUTSIDE, LOCALHOST, engine.rtp).await;

    let mut caller = Phone::start(PhoneConfig::new("caller"))
        .await
        .expect("caller phone");
    caller
        .call(&format!("sip:service@{}", engine.sip))
        .await
        .expect("call");
    caller
        .wait_answered(deadline(10))
        .await
        .expect("the engine answers");
    target
        .wait_answered(deadline(10))
        .await
        .expect("the engine calls the target, which answers");

    // During the call: both parties hear each other, and only each other.
    hear_each_other(&mut caller, &mut target).await;
    caller.clear_received();
    target.clear_received();
    caller.wait_frames(50, deadline(5)).await.expect("audio");
    target.wait_frames(50, deadline(5)).await.expect("audio");
    assert!(
        target.hears(TONE_500_HZ, WINDOW) && !target.hears(INTRUDER_HZ, WINDOW),
        "the target hears the caller only: 500 Hz {}, intruder {}",
        target.heard(TONE_500_HZ, WINDOW),
        target.heard(INTRUDER_HZ, WINDOW)
    );
    assert!(
        caller.hears(TONE_1700_HZ, WINDOW) && !caller.hears(INTRUDER_HZ, WINDOW),
        "the caller hears the target only: 1700 Hz {}, intruder {}",
        caller.heard(TONE_1700_HZ, WINDOW),
        caller.heard(INTRUDER_HZ, WINDOW)
    );
    // The intruder's digit (9, every 200 ms on every port) never reached the target; the
    // caller's does.
    caller.send_dtmf("7").expect("dtmf");
    let (digit, _) = target
        .wait_dtmf(deadline(5))
        .await
        .expect("the caller's digit reaches the target");
    assert_eq!(
        digit, '7',
        "the first digit the target gets is the caller's"
    );

    caller.hangup().await.expect("hang up");
    assert_eq!(
        target.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(calls[0]["end_reason"], "caller_hangup", "{:#}", calls[0]);
    assert!(
        intruder.sent() > 1000,
        "the intruder sprayed all along: {}",
        intruder.sent()
    );
    assert_eq!(
        intruder.received(),
        0,
        "nothing was ever sent to the intruder"
    );
    let line = engine
        .wait_log("RTP from an unexpected source", Duration::from_secs(5))
        .expect("the refusals are logged");
    assert!(line.contains(&OUTSIDE.to_string()), "{line}");
}
