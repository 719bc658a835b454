//! A call's replica (`call::survival`): where it stands ([`PhaseMark`]), and a call adopted
//! by another node from its replicated document, which continues in its flow.

use super::*;
use crate::call::survival::{adoptable, moved_away, ReplicaDoc};

#[test]
fn the_phase_mark_follows_the_call_and_is_none_when_it_cannot_be_adopted() {
    let mut sim = Sim::demo();
    let first = sim.core.phase_mark().expect("answered, in its flow");
    assert_eq!(
        (first.phase, first.step.as_deref()),
        ("flow", Some("welcome"))
    );
    sim.play_ends();
    let menu = sim.core.phase_mark().expect("in the menu");
    assert_eq!(menu.step.as_deref(), Some("main_menu"));
    assert_ne!(menu, first);
    sim.play_ends();
    sim.key("2");
    let queued = sim.core.phase_mark().expect("queued");
    assert_eq!(queued.phase, "queued");
    sim.caller_hangs_up();
    assert_eq!(sim.core.phase_mark(), None, "ending: not adoptable");
}

#[test]
fn a_call_adopted_from_its_replica_resumes_in_its_menu_with_the_failover_named() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.play_ends();
    sim.after(secs(1));
    let id = sim.core.id().to_string();
    let doc = ReplicaDoc {
        node: "a".into(),
        snapshot: sim.core.snapshot(sim.now),
    };
    let text = serde_json::to_string(&doc).expect("a replica serialises");
    let docs = vec![(id.clone(), text), ("broken".into(), "{".into())];

    // A call this node runs itself is not adopted; an unreadable replica is skipped.
    assert!(adoptable(docs.clone(), |c| c == id, "b", wall()).is_empty());
    let mut adopted = adoptable(docs, |_| false, "b", wall());
    assert_eq!(adopted.len(), 1);
    let claimed = adopted.remove(0).doc;
    assert_eq!(claimed.node, "b");
    let failover = claimed
        .snapshot
        .failover
        .clone()
        .expect("the failover is named");
    assert_eq!((failover.from.as_str(), failover.to.as_str()), ("a", "b"));
    assert_eq!(failover.at.timestamp(), 1_700_000_000);

    // The old node, reading the claimed document, knows the call moved; the new one does
    // not yield it; a call without a replica stays where it runs.
    let stored = serde_json::to_string(&claimed).expect("serialises");
    assert!(moved_away(Some(&stored), "a"));
    assert!(!moved_away(Some(&stored), "b"));
    assert!(!moved_away(None, "a"));
    assert!(moved_away(Some("not json"), "a"), "unreadable: fail closed");

    // Rebuilt from the claimed snapshot, the call goes on in its menu.
    sim.restore(claimed.snapshot);
    sim.key("1");
    sim.play_ends();
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(r.path, ["welcome", "main_menu", "option1", "end"]);
    assert_eq!(
        r.failover,
        Some(failover),
        "the one record names the failover"
    );
}
