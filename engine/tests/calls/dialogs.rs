//! A caller's dialog: re-INVITE hold and resume, BYE from either side, a caller that went
//! silent, refusals (no common codec, the engine at `max_calls` or its call rate). (Moved from
//! `tests/tests/dialogs.rs`, which keeps the configuration and log checks of the process.)

use engine::storage::EndReason;
use sip::message::{HeaderName, Method, Response};
use sip::sdp::{Direction, SessionDescription};

use crate::harness::*;

fn direction(r: &Response) -> Direction {
    let sdp = SessionDescription::parse_bytes(&r.body).expect("an SDP answer");
    sdp.direction_of(&sdp.media[0])
}

#[tokio::test]
async fn hold_resume_then_caller_bye() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut caller = h.ua("caller");
    let mut call = caller.dial("3000", secs(5)).await;
    let r = caller.reinvite(&mut call, "sendonly").await;
    assert_eq!(
        (r.status, direction(&r)),
        (200, Direction::RecvOnly),
        "hold is mirrored"
    );
    let r = caller.reinvite(&mut call, "sendrecv").await;
    assert_eq!(
        (r.status, direction(&r)),
        (200, Direction::SendRecv),
        "resume"
    );
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.end_reason, EndReason::CallerHangup);
    // The dialog is gone: a second BYE is answered 481.
    let again = caller.request(&mut call, Method::Bye, None).await;
    assert_eq!(again.status, 481);
    h.idle(secs(5)).await;
}

#[tokio::test]
async fn a_silent_caller_is_hung_up_after_the_rtp_timeout() {
    let flow = "flow: wait\nlanguage: en\nstart: menu\nsteps:\n  menu:\n    menu: main_menu\n    \
                options:\n      \"1\": end\n    timeout: 60s\n    attempts: 3\n    \
                exhausted: end\n  end:\n    hangup:\n";
    let mut h = Harness::start(&[("wait", flow)], "").await;
    let mut caller = h.ua("caller");
    h.media.silence(caller.rtp);
    let t0 = tokio::time::Instant::now();
    let call = caller.dial("3000", secs(5)).await;
    // The engine ends the call with a BYE of its own, after `rtp.timeout_secs` (30 s).
    caller.expect_bye(&call, secs(35)).await;
    assert!(t0.elapsed() >= secs(30), "{:?}", t0.elapsed());
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.end_reason, EndReason::RtpTimeout);
}

#[tokio::test]
async fn the_engine_hangs_up_and_the_caller_answers_its_bye() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut caller = h.ua("caller");
    let mut call = caller.dial("3000", secs(5)).await;
    tokio::time::sleep(prompt_len("welcome") + secs(1)).await;
    caller.info(&mut call, "1").await;
    let bye = caller
        .expect_bye(&call, prompt_len("option1_info") + secs(2))
        .await;
    assert_eq!(bye.headers.call_id(), Some(call.dialog.id.call_id.as_str()));
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    // Nothing left: the dialog is gone on the engine's side too.
    let after = caller.request(&mut call, Method::Info, None).await;
    assert_eq!(after.status, 481);
}

#[tokio::test]
async fn an_offer_without_g711_gets_488() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut caller = h.ua("caller");
    let g729 = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
        caller.rtp.port()
    );
    let (tx, _) = caller.invite("3000", Some(g729)).await;
    let r = caller.final_response(tx, secs(5)).await;
    assert_eq!(r.status, 488);
    assert!(
        r.headers
            .get(&HeaderName::Warning)
            .is_some_and(|w| w.starts_with("305")),
        "{r:?}"
    );
    let rec = &h.records(1, secs(5)).await[0];
    assert_eq!(rec.end_reason, EndReason::Rejected);
    // The engine still takes calls.
    caller.dial("3000", secs(5)).await;
}

/// A first call is answered, a second one at once is refused with 503 and `retry_after`;
/// once the first ended, or a second later, a new call is taken.
async fn second_call_refused(sip: &str, retry_after: &str, warning: &str) -> Harness {
    let mut h = Harness::start_with(&[("demo", &demo_flow())], sip, SUPPORT).await;
    let mut first = h.ua("first");
    let mut call = first.dial("3000", secs(5)).await;
    let mut second = h.ua("second");
    let (tx, _) = second
        .invite("3000", Some(sdp(second.rtp, "sendrecv")))
        .await;
    let r = second.final_response(tx, secs(5)).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some(retry_after));
    assert_eq!(r.headers.get(&HeaderName::Warning), Some(warning));
    first.hang_up(&mut call).await;
    h.records(1, secs(5)).await;
    tokio::time::sleep(secs(1)).await;
    second.dial("3000", secs(5)).await;
    h
}

#[tokio::test]
async fn calls_beyond_max_calls_are_refused_with_503() {
    second_call_refused("max_calls = 1", "5", "399 svi \"overloaded\"").await;
}

#[tokio::test]
async fn calls_beyond_max_calls_per_second_are_refused_with_503() {
    // One call a second: the second INVITE, sent right after the first, finds no token.
    let h = second_call_refused(
        "max_calls_per_second = 1",
        "1",
        "399 svi \"call rate limit\"",
    )
    .await;
    assert!(
        h.log.contains("sip.max_calls_per_second exceeded"),
        "{}",
        h.log.text()
    );
}
