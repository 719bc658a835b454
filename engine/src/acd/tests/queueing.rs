//! Waiting: announcements, overflow on max wait, max length and no agents, callbacks.

use super::*;

fn announcements(actions: &[Action]) -> Vec<(String, u32, Option<Duration>)> {
    actions
        .iter()
        .filter_map(|x| match x {
            Action::Announce {
                call,
                position,
                expected_wait,
                ..
            } => Some((call.to_string(), *position, *expected_wait)),
            _ => None,
        })
        .collect()
}

#[test]
fn calls_wait_and_hear_position_and_expected_wait_on_schedule() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.expected_handle_time = secs(120);
    queue.announce = Some(AnnounceConfig {
        every: secs(30),
        on_arrival: true,
    });
    let mut s = Sim::new(vec![queue], vec![AgentConfig::new("1001", "Ann", "1001")]);
    // One agent, busy on c0: staffed, but nobody ready.
    s.login("1001");
    s.arrive("c0", "support", Priority::Normal);
    s.answer("c0", "1001");
    s.take();
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(
        announcements(&s.take()),
        [("c1".into(), 1, Some(secs(120)))]
    );
    s.at(secs(10));
    s.arrive("c2", "support", Priority::Normal);
    let arrival = s.take();
    assert!(arrival.contains(&Action::Hold {
        call: c("c2"),
        queue: q("support"),
    }));
    assert_eq!(announcements(&arrival), [("c2".into(), 2, Some(secs(240)))]);
    assert_eq!(s.acd.poll_timeout(), Some(s.t0 + secs(30)));
    s.at(secs(29));
    assert!(announcements(&s.take()).is_empty());
    // First round: c1 has waited 30 s, c2 only 20 s.
    s.at(secs(30));
    assert_eq!(
        announcements(&s.take()),
        [("c1".into(), 1, Some(secs(120)))]
    );
    s.at(secs(60));
    assert_eq!(
        announcements(&s.take()),
        [
            ("c1".into(), 1, Some(secs(120))),
            ("c2".into(), 2, Some(secs(240)))
        ]
    );
    // c1 leaves: c2 moves up; the rounds stop once the queue is empty.
    s.ok(Input::CallAbandoned { call: c("c1") });
    s.at(secs(90));
    assert_eq!(
        announcements(&s.take()),
        [("c2".into(), 1, Some(secs(120)))]
    );
    s.ok(Input::CallAbandoned { call: c("c2") });
    s.at(secs(120));
    assert!(announcements(&s.take()).is_empty());
    assert_eq!(s.acd.poll_timeout(), None);
}

#[test]
fn expected_wait_is_unknown_without_staffed_agents() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.announce = Some(AnnounceConfig {
        every: secs(30),
        on_arrival: true,
    });
    let mut s = Sim::new(vec![queue], vec![]);
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(announcements(&s.take()), [("c1".into(), 1, None)]);
}

#[test]
fn max_wait_overflows_to_the_configured_message() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.max_wait = Some(secs(60));
    queue.on_max_wait = OverflowTarget::Message {
        prompt: "closed".into(),
    };
    let mut s = Sim::new(vec![queue], vec![]);
    s.arrive("c1", "support", Priority::Normal);
    s.at(secs(20));
    // The flow's own max wait overrides the queue's.
    s.ok(Input::CallArrived {
        call: c("c2"),
        queue: q("support"),
        priority: Priority::Normal,
        max_wait: Some(secs(10)),
    });
    s.take();
    s.at(secs(30));
    assert_eq!(
        s.take(),
        [Action::Overflow {
            call: c("c2"),
            queue: q("support"),
            reason: OverflowReason::MaxWait,
            target: ExitTarget::Message {
                prompt: "closed".into()
            },
        }]
    );
    s.at(secs(60));
    assert_eq!(
        s.take(),
        [Action::Overflow {
            call: c("c1"),
            queue: q("support"),
            reason: OverflowReason::MaxWait,
            target: ExitTarget::Message {
                prompt: "closed".into()
            },
        }]
    );
    assert_eq!(s.acd.queues(s.now)[0].waiting, 0);
}

#[test]
fn max_wait_can_move_the_call_to_another_queue() {
    let mut first = QueueConfig::new("level1", "Level 1").require("l1", 1);
    first.max_wait = Some(secs(60));
    first.on_max_wait = OverflowTarget::Queue(q("level2"));
    let second = QueueConfig::new("level2", "Level 2").require("l2", 1);
    let agents = vec![AgentConfig::new("2001", "Zoe", "2001").skill("l2", 5)];
    let mut s = Sim::new(vec![first, second], agents);
    s.login("2001");
    s.arrive("c1", "level1", Priority::Normal);
    s.take();
    s.at(secs(60));
    let actions = s.take();
    assert_eq!(
        actions[0],
        Action::Moved {
            call: c("c1"),
            from: q("level1"),
            to: q("level2"),
        }
    );
    assert!(matches!(&actions[2], Action::RingAgent { call, agent, .. }
        if *call == c("c1") && *agent == a("2001")));
}

#[test]
fn a_full_queue_overflows_on_arrival() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.max_length = Some(2);
    let mut s = Sim::new(vec![queue], vec![]);
    s.arrive("c1", "support", Priority::Normal);
    s.arrive("c2", "support", Priority::Normal);
    s.take();
    s.arrive("c3", "support", Priority::Urgent);
    assert_eq!(
        s.take(),
        [Action::Overflow {
            call: c("c3"),
            queue: q("support"),
            reason: OverflowReason::QueueFull,
            target: ExitTarget::Flow { step: None },
        }]
    );
}

#[test]
fn overflow_between_full_queues_never_loops() {
    let mut a_q = QueueConfig::new("a", "A");
    a_q.max_length = Some(0);
    a_q.on_full = OverflowTarget::Queue(q("b"));
    let mut b_q = QueueConfig::new("b", "B");
    b_q.max_length = Some(0);
    b_q.on_full = OverflowTarget::Queue(q("a"));
    let mut s = Sim::new(vec![a_q, b_q], vec![]);
    s.arrive("c1", "a", Priority::Normal);
    let actions = s.take();
    assert_eq!(actions.len(), 2);
    assert_eq!(
        actions[1],
        Action::Overflow {
            call: c("c1"),
            queue: q("b"),
            reason: OverflowReason::QueueFull,
            target: ExitTarget::Flow { step: None },
        }
    );
}

#[test]
fn no_agent_logged_in_overflows_when_configured() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.on_no_agents = Some(OverflowTarget::Flow {
        step: Some("voicemail".into()),
    });
    let mut s = Sim::new(vec![queue], vec![AgentConfig::new("1001", "Ann", "1001")]);
    s.arrive("c1", "support", Priority::Normal);
    assert!(matches!(
        &s.take()[..],
        [Action::Overflow {
            reason: OverflowReason::NoAgents,
            ..
        }]
    ));
    s.login("1001");
    s.ok(Input::AgentPause {
        agent: a("1001"),
        reason: "lunch".into(),
    });
    // Logged in but paused: the call waits for them.
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(
        s.take(),
        [Action::Hold {
            call: c("c2"),
            queue: q("support")
        }]
    );
}

fn callback_queue() -> Sim {
    let mut queue = QueueConfig::new("support", "Support");
    queue.max_wait = Some(secs(600));
    queue.callback = Some(CallbackConfig {
        max_attempts: 2,
        retry_after: secs(120),
    });
    Sim::new(vec![queue], vec![AgentConfig::new("1001", "Ann", "1001")])
}

#[test]
fn callback_keeps_the_place_and_calls_the_agent_then_the_caller() {
    let mut s = callback_queue();
    s.arrive("c1", "support", Priority::Normal);
    s.arrive("c2", "support", Priority::Normal);
    s.take();
    s.at(secs(30));
    s.ok(Input::CallbackRequested { call: c("c1") });
    assert_eq!(s.take(), [Action::CallbackAccepted { call: c("c1") }]);
    s.arrive("c3", "support", Priority::Normal);
    assert_eq!(s.acd.position(&c("c1")), Some(1));
    assert_eq!(s.acd.position(&c("c3")), Some(3));
    // Max wait no longer applies to the virtual entry (c2 and c3 overflow).
    s.at(secs(700));
    s.take();
    s.arrive("c4", "support", Priority::Normal);
    s.login("1001");
    let actions = s.take();
    assert!(
        matches!(&actions[..], [Action::Hold { .. }, Action::CallbackCall { call, agent, contact, .. }]
        if *call == c("c1") && *agent == a("1001") && contact == "1001")
    );
    s.answer("c1", "1001");
    assert!(s.take().is_empty(), "no bridge before the caller answers");
    s.ok(Input::CallbackResult {
        call: c("c1"),
        result: CallbackResult::Connected,
    });
    assert_eq!(
        s.take(),
        [Action::Bridge {
            call: c("c1"),
            agent: a("1001")
        }]
    );
    assert!(s.events.iter().any(|e| matches!(&e.kind,
        EventKind::CallAnswered { call, callback: true, .. } if *call == c("c1"))));
    s.end("c1");
    assert_eq!(s.rung("c4"), ["1001"]);
}

#[test]
fn an_unanswered_callback_retries_at_its_place_then_gives_up() {
    let mut s = callback_queue();
    s.arrive("c1", "support", Priority::Normal);
    s.ok(Input::CallbackRequested { call: c("c1") });
    s.login("1001");
    assert_eq!(s.offers(), [("c1".into(), "1001".into())]);
    s.answer("c1", "1001");
    s.ok(Input::CallbackResult {
        call: c("c1"),
        result: CallbackResult::NoAnswer,
    });
    assert_eq!(s.state("1001"), AgentState::Ready);
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(s.offers(), [("c2".into(), "1001".into())]);
    s.answer("c2", "1001");
    s.arrive("c3", "support", Priority::Normal);
    s.at(secs(120));
    // Back at its original place: ahead of c3, which arrived after it.
    assert_eq!(s.acd.position(&c("c1")), Some(1));
    s.end("c2");
    assert_eq!(s.offers(), [("c1".into(), "1001".into())]);
    s.answer("c1", "1001");
    s.ok(Input::CallbackResult {
        call: c("c1"),
        result: CallbackResult::Failed("busy".into()),
    });
    assert!(s.events.iter().any(|e| matches!(&e.kind,
        EventKind::CallbackFailed { call, attempts: 2, .. } if *call == c("c1"))));
    assert_eq!(s.offers(), [("c3".into(), "1001".into())]);
    s.acd.audit().expect("consistent");
}

#[test]
fn callback_is_refused_where_not_offered() {
    let mut s = support(Strategy::LongestIdle, &[]);
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(
        s.input(Input::CallbackRequested { call: c("c1") }),
        Err(AcdError::CallbackNotOffered(q("support")))
    );
}
