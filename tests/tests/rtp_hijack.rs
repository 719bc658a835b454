//! Media hijack attempts (issue 13, acceptance 3): a host outside `sip.allowed_networks`
//! sprays the engine's whole RTP range with steady, well-sequenced RTP (a tone and a digit)
//! and RTCP, from before the call until after it. The call's media is never latched to it,
//! nothing is sent to it, and both parties hear each other only, digits included.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use svi_tests::contact::{
    bridged_transfer_engine, call_service, digit_then_caller_hangs_up, hear_each_other,
};
use svi_tests::intruder::{Intruder, INTRUDER_HZ};
use svi_tests::phone::{deadline, TONE_1700_HZ, TONE_500_HZ};

const WINDOW: Duration = svi_tests::contact::TONE_WINDOW;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too, but outside the engine's allow-list (`127.0.0.1/32`).
const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtp_from_outside_the_allow_list_is_never_latched_nor_answered() {
    let (_dir, engine, mut target) = bridged_transfer_engine(Duration::ZERO, "127.0.0.1/32").await;
    // Before the call: every port of the range is already sprayed.
    let intruder = Intruder::start(OUTSIDE, LOCALHOST, engine.rtp).await;

    let mut caller = call_service(&engine, "caller").await;
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
    digit_then_caller_hangs_up(&engine, &mut caller, &mut target).await;
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
