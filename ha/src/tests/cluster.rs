//! Two full nodes and a witness.

use std::time::Duration;

use super::{call, failover_bound, wait_applied, Cluster};
use crate::config::LogRetention;
use crate::types::{Command, MemberKind, Role};

pub(super) const SPEC: &[(u64, MemberKind)] = &[
    (1, MemberKind::Full),
    (2, MemberKind::Full),
    (3, MemberKind::Witness),
];

pub(super) async fn calls_in(c: &Cluster, id: u64) -> Vec<String> {
    let mut ids: Vec<String> = c
        .node(id)
        .storage()
        .latest_calls(10_000)
        .await
        .expect("read calls")
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

/// Proposes calls `range` on `id`; returns the last index.
pub(super) async fn write(c: &Cluster, id: u64, range: std::ops::Range<usize>) -> u64 {
    let mut last = 0;
    for i in range {
        last = c
            .node(id)
            .propose(Command::InsertCall(Box::new(call(i))))
            .await
            .expect("propose")
            .index;
    }
    last
}

/// The whole story: first start, replication, failover, catch-up by snapshot, fail-back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_with_witness_fails_over_catches_up_and_fails_back() {
    // Snapshot every 20 entries and keep none: a node that misses 20 writes needs the snapshot.
    let retention = LogRetention {
        snapshot_every: 20,
        keep_after_snapshot: 0,
    };
    let mut c = Cluster::start(SPEC, retention).await;
    let t = super::timings();
    let form = Duration::from_secs(10);

    // First start: the lowest full node initialises and becomes active.
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    c.wait_role(3, Role::Witness, form).await;
    // A standby refuses writes.
    assert!(c
        .node(2)
        .propose(Command::InsertCall(Box::new(call(999))))
        .await
        .is_err());

    // Replication: every database holds the acknowledged records.
    let last = write(&c, 1, 0..10).await;
    for id in [1, 2, 3] {
        wait_applied(c.node(id), last, Duration::from_secs(5)).await;
    }
    let expected: Vec<String> = (0..10).map(|i| call(i).id).collect();
    for id in [1, 2, 3] {
        assert_eq!(calls_in(&c, id).await, expected, "node {id}");
    }

    // Failover: the active node dies (its connections close); the standby takes over within
    // the bound, and not before the old leader's lease could have run out: the voters wait
    // `lease + heartbeat` after their last heartbeat, which came at most about a heartbeat
    // before the kill.
    let sampler = c.sampler();
    c.kill(1).await;
    let started = std::time::Instant::now();
    c.wait_role(2, Role::Active, failover_bound()).await;
    let took = started.elapsed();
    assert!(
        took >= t.lease - t.heartbeat,
        "took over too early: {took:?}"
    );
    assert_eq!(
        calls_in(&c, 2).await,
        expected,
        "no acknowledged record lost"
    );
    let (max_active, _) = sampler.finish();
    assert!(max_active <= 1);

    // Writes continue on the new active node, past a snapshot and a purge.
    let last = write(&c, 2, 10..60).await;
    let raft2 = c.node(2).raft().await.expect("raft");
    raft2
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= 40), "purged")
        .await
        .expect("node 2 purged its log after a snapshot");

    // The old node comes back: standby, caught up through the snapshot.
    c.restart(1).await;
    c.wait_role(1, Role::Standby, failover_bound()).await;
    wait_applied(c.node(1), last, Duration::from_secs(10)).await;
    let expected: Vec<String> = (0..60).map(|i| call(i).id).collect();
    assert_eq!(calls_in(&c, 1).await, expected);
    let raft1 = c.node(1).raft().await.expect("raft");
    assert!(
        raft1
            .metrics()
            .borrow()
            .snapshot
            .is_some_and(|s| s.index >= 40),
        "node 1 caught up by snapshot"
    );

    // Fail-back: promote node 1; never two active nodes at a sampled instant.
    let sampler = c.sampler();
    c.node(1).promote(false).await.expect("promote");
    assert_eq!(*c.node(1).role().borrow(), Role::Active);
    c.wait_role(2, Role::Standby, Duration::from_secs(2)).await;
    let (max_active, samples) = sampler.finish();
    assert!(
        samples >= 3,
        "the sampler saw the switch ({samples} samples)"
    );
    assert_eq!(
        max_active, 1,
        "exactly one active node at every sampled instant"
    );
    write(&c, 1, 60..61).await;

    let status = c.node(1).status().await.expect("status");
    let json = serde_json::to_value(&status).expect("json");
    for key in [
        "node",
        "role",
        "leader",
        "term",
        "commit_index",
        "applied_index",
        "members",
    ] {
        assert!(json.get(key).is_some(), "status has {key}");
    }
    assert_eq!(json["role"], "active");
    assert_eq!(status.members.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_active_node_fences_itself_before_another_is_elected() {
    let c = Cluster::start(SPEC, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    let t = super::timings();
    write(&c, 1, 0..5).await;

    let sampler = c.sampler();
    let mut events = c.node(1).events();
    c.node(1).set_isolated(true);
    let cut = std::time::Instant::now();
    c.wait_role(1, Role::Fenced, t.lease + Duration::from_millis(500))
        .await;
    let fenced_after = cut.elapsed();
    c.wait_role(2, Role::Active, failover_bound()).await;
    let other_after = cut.elapsed();
    assert!(
        fenced_after < other_after,
        "fenced at {fenced_after:?}, other active at {other_after:?}"
    );
    // The alarm stream carried the change (the watch is updated first, so an earlier
    // event may still be queued).
    let ev = loop {
        let ev = events.recv().await.expect("role event");
        if ev.to == Role::Fenced {
            break ev;
        }
    };
    assert_eq!((ev.node, ev.from), (1, Role::Active));
    // An isolated node cannot write.
    assert!(c
        .node(1)
        .propose(Command::InsertCall(Box::new(call(1))))
        .await
        .is_err());

    // The new active node has every acknowledged record and takes writes.
    let expected: Vec<String> = (0..5).map(|i| call(i).id).collect();
    assert_eq!(calls_in(&c, 2).await, expected);
    let last = write(&c, 2, 5..8).await;

    // Healed: it sees the new leader, becomes a standby and catches up.
    c.node(1).set_isolated(false);
    c.wait_role(1, Role::Standby, failover_bound()).await;
    wait_applied(c.node(1), last, Duration::from_secs(5)).await;
    assert_eq!(calls_in(&c, 1).await.len(), 8);
    let (max_active, _) = sampler.finish();
    assert_eq!(max_active, 1);
}

/// The standby missed writes that only the witness has, then the active node dies: the
/// standby cannot win alone, so the witness leads briefly and hands over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_with_the_longest_log_hands_over_to_the_standby() {
    let mut c = Cluster::start(SPEC, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    let before = write(&c, 1, 0..3).await;
    wait_applied(c.node(2), before, Duration::from_secs(5)).await;

    // Node 2 misses the next writes (committed by node 1 and the witness).
    c.node(2).set_isolated(true);
    let last = write(&c, 1, 3..8).await;
    wait_applied(c.node(3), last, Duration::from_secs(5)).await;
    let lagging = c
        .node(2)
        .raft()
        .await
        .expect("raft")
        .metrics()
        .borrow()
        .last_log_index;
    assert!(lagging < Some(last), "node 2 really missed the writes");
    c.kill(1).await;
    c.node(2).set_isolated(false);

    // Witness patience (3 election timeouts) + its election + the handover.
    let t = super::timings();
    c.wait_role(2, Role::Active, t.election_timeout_max * 10)
        .await;
    assert_eq!(*c.node(3).role().borrow(), Role::Witness);
    let expected: Vec<String> = (0..8).map(|i| call(i).id).collect();
    assert_eq!(
        calls_in(&c, 2).await,
        expected,
        "the witness's entries reached node 2"
    );
}
