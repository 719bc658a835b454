//! The ACD: a queued caller bridged to an agent's phone registered with the engine, the
//! best skill first, a paused agent, overflow past the maximum wait, ring-no-answer (the
//! agent paused, the caller keeps its place or goes to the next agent), a caller who hangs
//! up while the agent rings, ring-all, an agent's phone that vanishes or answers with a
//! codec nobody offered. (Moved from `tests/tests/acd.rs`, `acd_faults.rs` and
//! `bridge_audio.rs`, which keep the wire: sipp agent phones, audio heard both ways, the
//! recording, an agent behind the IPBX, states across a restart.)

use chrono::{DateTime, Utc};
use engine::acd::AgentState;
use engine::handle::AgentCommand;
use engine::storage::{EndReason, QueueOutcome};

use crate::harness::*;

fn ms_between(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> i64 {
    (b.expect("a time") - a.expect("a time")).num_milliseconds()
}

#[tokio::test]
async fn a_queued_call_is_bridged_to_a_registered_agent() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut agent = h.agent("1001", "demo-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(3)).await;
    let leg = agent.answer(ring, true).await;
    // Each hears the other, and only the other.
    let heard = h.media.hearing(&[caller.rtp, agent.rtp], ms(200)).await;
    assert_eq!(heard, [vec![agent.rtp], vec![caller.rtp]]);
    assert!(
        h.log.contains("caller and agent bridged"),
        "{}",
        h.log.text()
    );
    tokio::time::sleep(secs(5)).await;
    caller.hang_up(&mut call).await;
    agent.expect_bye(&leg, secs(5)).await;

    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.queue.as_deref(), Some("support"));
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(r.end_reason, EndReason::CallerHangup);
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Answered));
    let wait = ms_between(r.queued_at, r.agent_answered_at);
    let talked = ms_between(r.agent_answered_at, Some(r.ended_at));
    assert!((0..3000).contains(&wait), "wait {wait} ms");
    assert!((3500..6500).contains(&talked), "talk {talked} ms");

    // The statistics come from the persisted ACD events (written in batches).
    let stats = h.stats("support", secs(10), |s| s.handled == 1).await;
    assert_eq!((stats.offered, stats.answered, stats.abandoned), (1, 1, 0));
    let asa = stats.average_speed_of_answer.expect("ASA").as_millis() as i64;
    assert!((asa - wait).abs() < 1000, "ASA {asa} ms, wait {wait} ms");
    let aht = stats.average_handle_time.expect("AHT").as_millis() as i64;
    assert!(aht >= talked - 1000, "AHT {aht} ms, talk {talked} ms");
    h.idle(secs(5)).await;
}

#[tokio::test]
async fn the_best_skill_level_gets_the_call_first() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    // 1001 has support level 5, 1002 level 3.
    let mut second = h.agent("1002", "demo-1002").await;
    let mut best = h.agent("1001", "demo-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = best.ringing(secs(3)).await;
    best.answer(ring, true).await;
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert!(!second.got_invite(), "1002's phone never rang");
}

#[tokio::test]
async fn with_the_best_agent_busy_the_next_call_goes_to_the_other() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut second = h.agent("1002", "demo-1002").await;
    let mut best = h.agent("1001", "demo-1001").await;
    let (mut first_caller, mut first) = h.queued_caller("caller1", 1).await;
    let ring = best.ringing(secs(3)).await;
    best.answer(ring, true).await;
    // The second call finds 1001 talking: 1002 (level 3) gets it.
    let (mut caller, mut call) = h.queued_caller("caller2", 1).await;
    let ring = second.ringing(secs(3)).await;
    second.answer(ring, true).await;
    caller.hang_up(&mut call).await;
    first_caller.hang_up(&mut first).await;
    let records = h.records(2, secs(5)).await;
    let mut agents: Vec<_> = records.iter().filter_map(|r| r.agent.clone()).collect();
    agents.sort();
    assert_eq!(agents, ["1001", "1002"]);
}

#[tokio::test]
async fn a_waiting_caller_hears_its_position_and_gets_the_next_ready_agent() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut agent = h.agent("1001", "demo-1001").await;
    let pause = AgentCommand::Pause {
        reason: "break".into(),
    };
    h.handle.agent("1001", pause).await.expect("paused");
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    // Nobody is ready: the caller waits, hears music and its position (on arrival).
    tokio::time::sleep(secs(10)).await;
    assert!(
        h.log.find(&["position announced", "position=1"]).is_some(),
        "{}",
        h.log.text()
    );
    assert!(h
        .media
        .heard(caller.rtp)
        .iter()
        .any(|p| p == "queue_position"));
    assert!(!agent.got_invite(), "a paused agent is not rung");
    h.handle
        .agent("1001", AgentCommand::Ready)
        .await
        .expect("ready");
    let ring = agent.ringing(secs(3)).await;
    agent.answer(ring, true).await;
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(r.queue.as_deref(), Some("support"));
}

#[tokio::test]
async fn past_its_max_wait_a_call_overflows_to_the_flow() {
    let config = queue(
        "max_wait = 2000\non_max_wait = { flow = {} }",
        &[("1001", "pass-1001")],
    );
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    // Logged in but paused: the queue is staffed, so the caller waits (no `on_no_agents`).
    h.handle
        .agent("1001", AgentCommand::Login)
        .await
        .expect("login");
    let pause = AgentCommand::Pause {
        reason: "busy".into(),
    };
    h.handle.agent("1001", pause).await.expect("paused");
    let (mut caller, call) = h.queued_caller("caller", 1).await;
    caller
        .expect_bye(&call, secs(2) + prompt_len("no_agent_available") + secs(3))
        .await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.path.last().map(String::as_str), Some("end"), "{r:?}");
    assert!(
        r.path.iter().any(|s| s == "no_agent"),
        "the overflow branch played: {r:?}"
    );
    // Queued, 2 s of max wait, then the overflow branch's message before the hangup.
    let waited = ms_between(r.queued_at, Some(r.ended_at));
    let floor = 2000 + prompt_len("no_agent_available").as_millis() as i64 - 300;
    assert!(
        waited >= floor,
        "waited {waited} ms, expected at least {floor}"
    );
    assert!(h.log.contains("queue overflow"), "{}", h.log.text());
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Overflow));
    let stats = h.stats("support", secs(10), |s| s.overflowed == 1).await;
    assert_eq!((stats.offered, stats.answered), (1, 0));
    assert!(stats.longest_wait.expect("a wait") >= secs(2), "{stats:?}");
}

#[tokio::test]
async fn an_agent_who_never_answers_is_paused_and_the_caller_keeps_waiting() {
    let config = queue("ring_timeout = 2000", &[("1001", "pass-1001")]);
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut agent = h.agent("1001", "pass-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(5)).await;
    let rang = tokio::time::Instant::now();
    // The engine stops ringing after the ring timeout.
    agent.expect_cancel(&ring, secs(5)).await;
    assert!(rang.elapsed() >= ms(1900), "{:?}", rang.elapsed());
    let a = h
        .wait_agent("1001", secs(5), |a| {
            matches!(a.state, AgentState::NotReady { .. })
        })
        .await;
    assert!(a.pause_reason.is_some(), "{a:?}");
    h.wait_acd("the caller keeps its place", secs(5), |s| {
        s.queues.iter().any(|q| q.waiting == 1)
    })
    .await;
    // The caller is still there, hearing the queue's music.
    let before = h.media.heard(caller.rtp).len();
    tokio::time::sleep(secs(40)).await;
    assert!(
        h.media.heard(caller.rtp).len() > before,
        "the caller still gets audio"
    );
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Abandoned));
}

#[tokio::test]
async fn an_agent_who_never_answers_is_followed_by_the_next_one() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut second = h.agent("1002", "demo-1002").await;
    let mut best = h.agent("1001", "demo-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = best.ringing(secs(3)).await;
    // 1001 lets it ring past the queue's 15 s ring timeout: the engine cancels, pauses
    // 1001 and rings 1002.
    best.expect_cancel(&ring, secs(16)).await;
    let ring = second.ringing(secs(3)).await;
    second.answer(ring, true).await;
    h.wait_agent("1001", secs(1), |a| {
        matches!(a.state, AgentState::NotReady { .. })
    })
    .await;
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.agent.as_deref(), Some("1002"));
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Answered));
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent() {
    let config = queue("", &[("1001", "pass-1001")]);
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut agent = h.agent("1001", "pass-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(5)).await;
    caller.hang_up(&mut call).await;
    agent.expect_cancel(&ring, secs(5)).await;
    h.wait_agent("1001", secs(5), |a| a.state == AgentState::Ready)
        .await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Abandoned));
}

#[tokio::test]
async fn an_agent_phone_that_vanishes_mid_call_ends_the_call_cleanly() {
    let config = queue("wrap_up = 0", &[("1001", "pass-1001")]);
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut agent = h.agent("1001", "pass-1001").await;
    let (mut caller, call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(5)).await;
    agent.answer(ring, true).await;
    let heard = h.media.hearing(&[caller.rtp, agent.rtp], ms(200)).await;
    assert_eq!(heard[0], [agent.rtp], "bridged");
    // The phone disappears: no BYE, no more RTP.
    h.media.silence(agent.rtp);
    caller.expect_bye(&call, secs(35)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.end_reason, EndReason::RtpTimeout);
    assert_eq!(r.agent.as_deref(), Some("1001"));
    // Not stuck talking: the ACD got the end of the call.
    h.wait_agent("1001", secs(5), |a| {
        !matches!(a.state, AgentState::Talking { .. })
    })
    .await;
}

#[tokio::test]
async fn an_agent_phone_answering_with_an_unoffered_codec_is_hung_up_and_the_caller_waits() {
    let config = queue("", &[("1001", "pass-1001")]);
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut agent = h.agent("1001", "pass-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(5)).await;
    // G.729 only (payload 18), which the engine never offers.
    let g729 = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
        agent.rtp.port()
    );
    let leg = agent.answer_with(ring, Some(g729)).await;
    // The engine ACKs the answer, then sends BYE.
    agent.expect_bye(&leg, secs(5)).await;
    assert!(
        h.log.contains("answered without a usable SDP answer"),
        "{}",
        h.log.text()
    );
    // The agent is taken out of rotation, not left reserved; the caller waits on.
    h.wait_agent("1001", secs(5), |a| {
        matches!(a.state, AgentState::NotReady { .. })
    })
    .await;
    let before = h.media.heard(caller.rtp).len();
    tokio::time::sleep(secs(40)).await;
    assert!(
        h.media.heard(caller.rtp).len() > before,
        "the caller is still in the queue"
    );
    caller.hang_up(&mut call).await;
    h.records(1, secs(5)).await;
}

#[tokio::test]
async fn ring_all_rings_every_ready_agent_and_cancels_the_others() {
    let config = queue(
        "strategy = \"ring_all\"",
        &[("1001", "pass-1001"), ("1002", "pass-1002")],
    );
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut slow = h.agent("1001", "pass-1001").await;
    let mut quick = h.agent("1002", "pass-1002").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let slow_ring = slow.ringing(secs(5)).await;
    let quick_ring = quick.ringing(secs(5)).await;
    tokio::time::sleep(secs(1)).await;
    let leg = quick.answer(quick_ring, true).await;
    // The other phone stops ringing.
    slow.expect_cancel(&slow_ring, secs(5)).await;
    let heard = h
        .media
        .hearing(&[caller.rtp, quick.rtp, slow.rtp], ms(200))
        .await;
    assert_eq!(heard[0], [quick.rtp], "the caller talks to 1002");
    caller.hang_up(&mut call).await;
    quick.expect_bye(&leg, secs(5)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.agent.as_deref(), Some("1002"));
}
