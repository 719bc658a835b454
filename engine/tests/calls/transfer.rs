//! Transfers from a flow: blind (REFER, the outcome in the NOTIFYs) and bridged (the engine
//! calls the target and relays both ways), answered, refused, unanswered, hung up by either
//! side, or refused by the dial plan before anything is sent. (Moved from
//! `tests/tests/steps.rs` and `bridge_audio.rs`, which keep the wire: sipp's REFER scenario
//! and the audio both ways with test phones.)

use engine::storage::EndReason;
use sip::message::Method;
use sip::transport::SipEvent;

use crate::harness::*;

const BLIND: &str = "flow: xfer
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

/// The target's address in the bridged flow.
const DESK: u16 = 7000;

fn bridged_flow() -> String {
    format!(
        "flow: bridged
language: en
start: go
steps:
  go:
    transfer: '\"sip:desk@127.0.0.1:{DESK}\"'
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

/// A blind transfer whose target answers `status` (as the caller's PBX reports it).
async fn blind(status: &str) -> (Harness, Vec<String>) {
    let mut h = Harness::start(&[("xfer", BLIND)], "").await;
    let mut caller = h.ua("caller");
    let mut call = caller.dial("3000", secs(5)).await;
    let refer_to = caller.accept_refer(&mut call, status, secs(5)).await;
    assert!(refer_to.starts_with("<sip:2000@"), "{refer_to}");
    if status.starts_with('2') {
        // Transferred: the engine leaves the call.
        caller.expect_bye(&call, secs(5)).await;
    } else {
        caller
            .expect_bye(&call, prompt_len("no_agent_available") + secs(5))
            .await;
    }
    let path = h.records(1, secs(5)).await[0].path.clone();
    (h, path)
}

#[tokio::test]
async fn blind_transfer_completes_when_the_target_answers() {
    let (h, path) = blind("200 OK").await;
    assert_eq!(path, ["go"]);
    assert!(h.log.contains("transfer completed"), "{}", h.log.text());
}

#[tokio::test]
async fn blind_transfer_failure_takes_the_failed_branch() {
    let (_h, path) = blind("486 Busy Here").await;
    assert_eq!(path, ["go", "sorry", "end"]);
}

/// Toll-fraud protection: a number outside the PBX's `dial_prefixes` is never sent in a
/// REFER; the flow takes its failed branch and the call record says why.
#[tokio::test]
async fn a_transfer_to_a_number_outside_the_dial_plan_is_refused_and_recorded() {
    let mut h = Harness::start_with(&[("xfer", BLIND)], "dial_prefixes = [\"0\"]", "").await;
    let mut caller = h.ua("caller");
    let call = caller.dial("3000", secs(5)).await;
    caller
        .expect_bye(&call, prompt_len("no_agent_available") + secs(5))
        .await;
    assert!(
        !caller.got(
            |e| matches!(e, SipEvent::Request { request, .. } if request.method == Method::Refer)
        ),
        "no REFER"
    );
    let record = h.records(1, secs(5)).await.remove(0);
    assert_eq!(record.path, ["go", "sorry", "end"]);
    assert_eq!(
        record.dial_refused.as_deref(),
        Some("transfer to <redacted: 4 chars> refused: no prefix the PBX the call came from allows (0)")
    );
}

/// The bridged flow called; the target's phone rings.
async fn bridged() -> (Harness, Ua, Call, Ua, Ringing) {
    let mut h = Harness::start(&[("bridged", &bridged_flow())], "").await;
    let mut desk = h.ua_at("desk", DESK);
    let mut caller = h.ua("caller");
    let call = caller.dial("3000", secs(5)).await;
    let ring = desk.ringing(secs(5)).await;
    (h, caller, call, desk, ring)
}

#[tokio::test]
async fn a_bridged_transfer_rings_back_then_relays_until_the_caller_hangs_up() {
    let (mut h, mut caller, mut call, mut desk, ring) = bridged().await;
    tokio::time::sleep(ms(1500)).await;
    // While the target rings, the caller hears ringback.
    assert_eq!(h.media.heard(caller.rtp), ["ringback"]);
    let leg = desk.answer(ring, true).await;
    let heard = h.media.hearing(&[caller.rtp, desk.rtp], ms(200)).await;
    assert_eq!(
        heard,
        [vec![desk.rtp], vec![caller.rtp]],
        "relayed both ways"
    );
    // The caller's digit reaches the target as RFC 4733.
    h.media.key(caller.rtp, "7");
    tokio::time::sleep(ms(100)).await;
    assert_eq!(h.media.sent_dtmf(desk.rtp), "7");
    tokio::time::sleep(secs(4)).await;
    caller.hang_up(&mut call).await;
    // The engine hangs up the target after the caller.
    desk.expect_bye(&leg, secs(5)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.path, ["go"]);
    assert_eq!(r.end_reason, EndReason::CallerHangup);
    assert!(
        h.log.contains("bridged transfer answered"),
        "{}",
        h.log.text()
    );
    assert!(
        h.log
            .find(&["caller and second leg bridged", "ok=true"])
            .is_some(),
        "the relay was set up: {}",
        h.log.text()
    );
}

#[tokio::test]
async fn when_the_target_hangs_up_the_engine_hangs_up_the_caller() {
    let (mut h, mut caller, call, mut desk, ring) = bridged().await;
    let mut leg = desk.answer(ring, true).await;
    desk.hang_up(&mut leg).await;
    caller.expect_bye(&call, secs(5)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.end_reason, EndReason::TargetHangup);
}

#[tokio::test]
async fn a_bridged_transfer_to_a_busy_target_takes_the_failed_branch() {
    let (mut h, mut caller, call, desk, ring) = bridged().await;
    desk.reject(&ring, 486);
    caller
        .expect_bye(&call, prompt_len("no_agent_available") + secs(5))
        .await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.path, ["go", "sorry", "end"]);
    assert!(
        h.log.contains("486"),
        "the failure names the status: {}",
        h.log.text()
    );
}

#[tokio::test]
async fn an_unanswered_bridged_transfer_is_cancelled_after_its_timeout() {
    let (mut h, mut caller, call, mut desk, ring) = bridged().await;
    let rang = tokio::time::Instant::now();
    desk.expect_cancel(&ring, secs(11)).await;
    assert!(rang.elapsed() >= ms(9900), "{:?}", rang.elapsed());
    caller
        .expect_bye(&call, prompt_len("no_agent_available") + secs(5))
        .await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.path, ["go", "sorry", "end"]);
    assert!(h
        .media
        .heard(caller.rtp)
        .contains(&"no_agent_available".to_string()));
}
