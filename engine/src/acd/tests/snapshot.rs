//! Supervision views: where each call waits and its place, agents per state per queue,
//! time in state and pause reasons.

use super::*;

#[test]
fn queued_calls_show_their_place_state_and_wait() {
    let queue = QueueConfig::new("support", "Support");
    let mut s = Sim::new(
        vec![queue],
        vec![
            AgentConfig::new("1001", "Ann", "1001"),
            AgentConfig::new("1002", "Bob", "1002"),
        ],
    );
    s.login("1001");
    s.login("1002");
    s.ok(Input::AgentPause {
        agent: a("1002"),
        reason: "lunch".into(),
    });
    s.arrive("c1", "support", Priority::Normal);
    s.at(secs(5));
    s.arrive("c2", "support", Priority::Normal);
    s.arrive("c3", "support", Priority::High);
    s.at(secs(9));

    let snap = s.acd.snapshot(s.now);
    let calls: Vec<(String, Option<u32>, &str, Option<String>)> = snap
        .calls
        .iter()
        .map(|x| {
            (
                x.call.to_string(),
                x.position,
                x.state.name(),
                x.agent().map(|a| a.to_string()),
            )
        })
        .collect();
    // c1 is offered to the ready agent; c3 (high priority) is ahead of c2.
    assert_eq!(
        calls,
        [
            ("c3".to_string(), Some(1), "waiting", None),
            ("c2".to_string(), Some(2), "waiting", None),
            ("c1".to_string(), None, "offered", Some("1001".to_string())),
        ]
    );
    let c2 = snap.calls.iter().find(|x| x.call == c("c2")).expect("c2");
    assert_eq!(c2.waited, secs(4));
    assert_eq!(c2.queue, q("support"));
    // The ACD's own position lookup agrees with the listing.
    assert_eq!(s.acd.position(&c("c2")), Some(2));

    let counts = &snap.queues[0].agents;
    assert_eq!((counts.offered, counts.not_ready, counts.ready), (1, 1, 0));
    let bob = snap.agents.iter().find(|x| x.id == a("1002")).expect("bob");
    assert_eq!(bob.pause_reason.as_deref(), Some("lunch"));
    assert_eq!(bob.time_in_state, secs(9));
    let ann = snap.agents.iter().find(|x| x.id == a("1001")).expect("ann");
    assert_eq!(ann.pause_reason, None);
    assert_eq!(ann.time_in_state, secs(9));
}
