//! The agent's side: missed rings, abandons while ringing, failed legs, wrap-up, pauses.

use super::*;

fn not_ready(reason: &str) -> AgentState {
    AgentState::NotReady {
        reason: reason.into(),
    }
}

#[test]
fn ring_no_answer_pauses_the_agent_and_requeues_at_the_original_place() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1), ("1002", 1)]);
    s.login("1001");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1001"]);
    s.ok(Input::AgentRinging {
        call: c("c1"),
        agent: a("1001"),
    });
    assert_eq!(s.state("1001"), AgentState::Ringing { call: c("c1") });
    s.at(secs(5));
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(s.acd.poll_timeout(), Some(s.t0 + secs(20)));
    s.at(secs(20));
    assert!(s.take().contains(&Action::CancelRing {
        call: c("c1"),
        agent: a("1001"),
    }));
    assert_eq!(s.state("1001"), not_ready("no answer"));
    assert_eq!(s.acd.position(&c("c1")), Some(1));
    assert_eq!(s.acd.position(&c("c2")), Some(2));
    s.login("1002");
    assert_eq!(s.rung("c1"), ["1002"]);
    // The first agent's late answer is refused: the driver hangs up that leg.
    assert!(matches!(
        s.input(Input::AgentAnswered {
            call: c("c1"),
            agent: a("1001"),
        }),
        Err(AcdError::NotOffered { .. })
    ));
    s.acd.audit().expect("consistent");
}

#[test]
fn caller_abandoning_while_ringing_frees_the_agent() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1), ("1002", 1)]);
    s.login("1001");
    s.at(secs(1));
    s.login("1002");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1001"]);
    s.at(secs(3));
    s.ok(Input::CallAbandoned { call: c("c1") });
    assert_eq!(
        s.take(),
        [Action::CancelRing {
            call: c("c1"),
            agent: a("1001"),
        }]
    );
    assert_eq!(s.state("1001"), AgentState::Ready);
    assert_eq!(s.acd.poll_timeout(), None, "no ring timer left behind");
    // Not the agent's fault: 1001 keeps its turn as the longest idle.
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(s.rung("c2"), ["1001"]);
    assert!(s.events.iter().any(|e| matches!(&e.kind,
        EventKind::CallAbandoned { call, wait, .. } if *call == c("c1") && *wait == secs(2))));
}

#[test]
fn rejected_or_failed_legs_never_leave_an_agent_stuck() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1), ("1002", 1)]);
    s.login("1001");
    s.at(secs(1));
    s.login("1002");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1001"]);
    s.ok(Input::RingFailed {
        call: c("c1"),
        agent: a("1001"),
        failure: RingFailure::Rejected,
    });
    assert_eq!(s.state("1001"), not_ready("rejected"));
    assert_eq!(s.rung("c1"), ["1002"]);
    s.ok(Input::RingFailed {
        call: c("c1"),
        agent: a("1002"),
        failure: RingFailure::Failed("488 no common codec".into()),
    });
    assert_eq!(s.state("1002"), not_ready("failed: 488 no common codec"));
    assert_eq!(s.acd.position(&c("c1")), Some(1));
    // Both back later: the call is offered again.
    s.ok(Input::AgentReady { agent: a("1002") });
    assert_eq!(s.rung("c1"), ["1002"]);
    s.acd.audit().expect("consistent");
}

#[test]
fn ring_all_requeues_only_when_every_agent_failed() {
    let mut s = support(Strategy::RingAll, &[("1001", 1), ("1002", 1)]);
    s.login("1001");
    s.login("1002");
    s.arrive("c1", "support", Priority::Normal);
    s.take();
    s.ok(Input::RingFailed {
        call: c("c1"),
        agent: a("1001"),
        failure: RingFailure::Rejected,
    });
    assert_eq!(s.state("1002"), AgentState::Reserved { call: c("c1") });
    assert_eq!(s.acd.position(&c("c1")), None);
    s.at(secs(20));
    assert_eq!(s.state("1002"), not_ready("no answer"));
    assert_eq!(s.acd.position(&c("c1")), Some(1));
    s.acd.audit().expect("consistent");
}

#[test]
fn wrap_up_then_ready_after_the_configured_time() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.wrap_up = secs(30);
    let mut quick = AgentConfig::new("1002", "Bob", "1002");
    quick.wrap_up = Some(secs(5));
    let mut s = Sim::new(
        vec![queue],
        vec![AgentConfig::new("1001", "Ann", "1001"), quick],
    );
    s.login("1001");
    s.arrive("c1", "support", Priority::Normal);
    s.answer("c1", "1001");
    s.at(secs(100));
    s.end("c1");
    assert!(matches!(s.state("1001"), AgentState::WrapUp { call, .. } if call == c("c1")));
    s.arrive("c2", "support", Priority::Normal);
    assert!(s.rung("c2").is_empty());
    assert_eq!(s.acd.poll_timeout(), Some(s.t0 + secs(130)));
    s.at(secs(129));
    assert!(s.rung("c2").is_empty());
    s.at(secs(130));
    assert_eq!(s.rung("c2"), ["1001"]);
    let wrap = s.events.iter().find_map(|e| match &e.kind {
        EventKind::WrapUpEnded { wrap, .. } => Some(*wrap),
        _ => None,
    });
    assert_eq!(wrap, Some(secs(30)));
    // The agent's own wrap-up overrides the queue's; `ready` ends it early.
    s.answer("c2", "1001");
    s.login("1002");
    s.arrive("c3", "support", Priority::Normal);
    s.answer("c3", "1002");
    s.end("c3");
    assert_eq!(s.acd.poll_timeout(), Some(s.now + secs(5)));
    s.end("c2");
    s.ok(Input::AgentReady { agent: a("1001") });
    assert_eq!(s.state("1001"), AgentState::Ready);
}

#[test]
fn pause_or_logout_while_busy_waits_for_the_work_to_end() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.wrap_up = secs(10);
    let mut s = Sim::new(vec![queue], vec![AgentConfig::new("1001", "Ann", "1001")]);
    s.login("1001");
    s.arrive("c1", "support", Priority::Normal);
    s.answer("c1", "1001");
    s.ok(Input::AgentPause {
        agent: a("1001"),
        reason: "lunch".into(),
    });
    assert_eq!(s.state("1001"), AgentState::Talking { call: c("c1") });
    s.end("c1");
    s.arrive("c2", "support", Priority::Normal);
    s.at(secs(10));
    assert_eq!(s.state("1001"), not_ready("lunch"));
    assert!(s.rung("c2").is_empty());
    // Logout while ringing withdraws the offer; the call keeps its place.
    s.ok(Input::AgentReady { agent: a("1001") });
    assert_eq!(s.rung("c2"), ["1001"]);
    s.ok(Input::AgentLogout { agent: a("1001") });
    assert_eq!(s.state("1001"), AgentState::LoggedOut);
    assert_eq!(s.acd.position(&c("c2")), Some(1));
    assert!(s.take().contains(&Action::CancelRing {
        call: c("c2"),
        agent: a("1001"),
    }));
    s.acd.audit().expect("consistent");
}

#[test]
fn unknown_ids_and_wrong_states_are_refused_and_counted() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1)]);
    let before = s.acd.counters();
    let refused = [
        Input::CallAbandoned { call: c("nope") },
        Input::AgentLogin { agent: a("nobody") },
        Input::AgentReady { agent: a("1001") },
        Input::CallArrived {
            call: c("c1"),
            queue: q("nowhere"),
            priority: Priority::Normal,
            max_wait: None,
        },
        Input::CallEnded { call: c("c1") },
        Input::RingFailed {
            call: c("c1"),
            agent: a("1001"),
            failure: RingFailure::NoAnswer,
        },
        Input::RemoveQueue {
            queue: q("nowhere"),
        },
        Input::UpsertQueue(QueueConfig::new("bad", "Bad").require("x", 0)),
    ];
    let n = refused.len() as u64;
    for input in refused {
        assert!(s.input(input).is_err());
    }
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(
        s.input(Input::CallArrived {
            call: c("c1"),
            queue: q("support"),
            priority: Priority::Normal,
            max_wait: None,
        }),
        Err(AcdError::DuplicateCall(c("c1")))
    );
    assert_eq!(
        s.input(Input::RemoveQueue {
            queue: q("support")
        }),
        Err(AcdError::QueueInUse(q("support")))
    );
    let after = s.acd.counters();
    assert_eq!(after.refused - before.refused, n + 2);
    s.acd.audit().expect("consistent");
}
