//! Callbacks: a waiting caller keys 1, keeps its place in the queue and hangs up; when an
//! agent is free the engine rings the agent, then dials the caller back, and tries again
//! after `retry_after` when the caller does not answer. (Moved from
//! `tests/tests/bridge_audio.rs`; the retries are new.)

use engine::acd::AgentState;
use engine::handle::AgentCommand;
use engine::storage::{EndReason, QueueOutcome};

use crate::harness::*;

/// A caller dials from a number, so that it can be called back.
const CALLER: &str = "0612345678";

/// An engine with a callback offer (`max_attempts` 2, retried after 1 s), agent 1001's
/// phone registered then paused, and a caller who asked to be called back: the engine
/// confirmed and hung up.
async fn callback_requested() -> (Harness, Ua, Ua) {
    let config = queue(
        "callback = { max_attempts = 2, retry_after = 1000 }\n\
         announce = { every = 30000, on_arrival = true }",
        &[("1001", "pass-1001")],
    );
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let agent = h.agent("1001", "pass-1001").await;
    let pause = AgentCommand::Pause {
        reason: "busy".into(),
    };
    h.handle.agent("1001", pause).await.expect("paused");
    let (mut caller, call) = h.queued_caller(CALLER, 1).await;
    tokio::time::sleep(secs(1)).await;
    assert!(h
        .media
        .heard(caller.rtp)
        .iter()
        .any(|p| p == "queue_callback_offer"));
    h.media.key(caller.rtp, "1");
    // The engine confirms and hangs up.
    caller.expect_bye(&call, secs(15)).await;
    assert!(
        h.log.contains("the call keeps its place"),
        "{}",
        h.log.text()
    );
    h.wait_acd("the callback keeps its place", secs(5), |s| {
        s.queues.iter().any(|q| q.waiting == 1 && q.callbacks == 1)
    })
    .await;
    (h, agent, caller)
}

#[tokio::test]
async fn a_caller_who_asks_for_a_callback_is_called_back_when_an_agent_is_free() {
    let (mut h, mut agent, mut caller) = callback_requested().await;
    // An agent becomes free: the engine rings it, then calls the caller back.
    h.handle
        .agent("1001", AgentCommand::Ready)
        .await
        .expect("ready");
    let ring = agent.ringing(secs(10)).await;
    let leg = agent.answer(ring, true).await;
    let ring = caller.ringing(secs(10)).await;
    assert_eq!(
        ring.invite.uri.user(),
        Some(CALLER),
        "the caller's number is dialled"
    );
    let mut back = caller.answer(ring, true).await;
    let heard = h.media.hearing(&[caller.rtp, agent.rtp], ms(200)).await;
    assert_eq!(heard, [vec![agent.rtp], vec![caller.rtp]], "bridged");
    caller.hang_up(&mut back).await;
    agent.expect_bye(&leg, secs(5)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Callback));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(r.end_reason, EndReason::CallerHangup);
}

#[tokio::test]
async fn a_caller_who_does_not_answer_is_tried_again_then_given_up() {
    let (mut h, mut agent, mut caller) = callback_requested().await;
    h.handle
        .agent("1001", AgentCommand::Ready)
        .await
        .expect("ready");
    let mut tried = Vec::new();
    for _ in 1..=2 {
        let ring = agent.ringing(secs(20)).await;
        let leg = agent.answer(ring, true).await;
        let ring = caller.ringing(secs(10)).await;
        tried.push(tokio::time::Instant::now());
        caller.reject(&ring, 486);
        // The agent's leg is hung up after each failed attempt.
        agent.expect_bye(&leg, secs(5)).await;
    }
    assert!(
        tried[1] - tried[0] >= secs(1),
        "the second attempt waited retry_after: {:?}",
        tried[1] - tried[0]
    );
    let r = &h.records(1, secs(10)).await[0];
    assert_eq!(r.queue_outcome, Some(QueueOutcome::CallbackFailed));
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    // No third attempt; the agent is free again.
    h.wait_agent("1001", secs(30), |a| a.state == AgentState::Ready)
        .await;
    tokio::time::sleep(secs(30)).await;
    assert!(!agent.got_invite(), "no third attempt");
}
