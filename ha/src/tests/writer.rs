//! The replicated writer on real nodes: group commit, and batches only once every member
//! reads them.

use std::sync::Arc;
use std::time::Duration;

use engine::replication::RecordWriter;

use super::{call, failover_bound, wait_applied, wait_role, Cluster};
use crate::config::{HaConfig, LogRetention};
use crate::log_format;
use crate::node::HaNode;
use crate::types::{Command, MemberKind, Role};
use crate::writer::ReplicatedWriter;

/// On the current-thread runtime every write below is queued before the committer task runs
/// again, so they wait together: all of them go out in one log entry, and each is
/// acknowledged only once that entry is committed and applied.
#[tokio::test]
async fn writes_that_wait_together_are_committed_in_one_log_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HaConfig::single(1, dir.path().to_path_buf());
    let node = Arc::new(HaNode::start(cfg.clone()).await.expect("node"));
    wait_role(&node, Role::Active, failover_bound()).await;
    let writer = ReplicatedWriter::start(node.clone(), &cfg.data_dir).expect("writer");
    let raft = node.raft().await.expect("raft");
    let last_index = || raft.metrics().borrow().last_log_index.unwrap_or(0);

    writer.write_call(call(0)).await.expect("first write");
    let before = last_index();
    let writes: Vec<_> = (1..=40)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.write_call(call(i)).await })
        })
        .collect();
    for w in writes {
        w.await.expect("task").expect("write acknowledged");
    }
    assert_eq!(
        last_index(),
        before + 1,
        "40 writes waiting together make one log entry"
    );
    let stored = node.storage().latest_calls(100).await.expect("calls");
    assert_eq!(
        stored.len(),
        41,
        "every acknowledged write is in the database"
    );
    assert_eq!(writer.spooled(), 0, "committed, not spooled");
}

/// A pair whose standby plays a node of the previous release (it advertises log format 0):
/// the active node writes a batch's writes one entry each, in order, and both nodes apply
/// them; once the standby advertises the current format, the same batch is one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_wait_until_every_member_reads_them() {
    let spec = [(1, MemberKind::Full), (2, MemberKind::Full)];
    let c = Cluster::start(&spec, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    let raft = c.node(1).raft().await.expect("raft");
    let last_index = || raft.metrics().borrow().last_log_index.unwrap_or(0);
    let put = |n: usize| Command::Put {
        collection: "counters".into(),
        key: "k".into(),
        value: serde_json::json!(n),
    };
    let batch = |from: usize| Command::Batch((from..from + 40).map(put).collect());

    c.node(2).advertise_log_format(0);
    c.node(1).probe_log_formats().await;
    let before = last_index();
    let r = c.node(1).propose(batch(1)).await.expect("committed");
    assert_eq!(
        last_index(),
        before + 40,
        "one entry per write while a member cannot read batches"
    );
    assert_eq!(r.index, before + 40, "the answer is the last write's");
    wait_applied(c.node(2), r.index, form).await;
    for id in [1, 2] {
        let doc = c.node(id).storage().get_doc("counters", "k").await;
        assert_eq!(
            doc.expect("read").as_deref(),
            Some("40"),
            "node {id} applied the writes in order"
        );
    }

    c.node(2).advertise_log_format(log_format::CURRENT);
    c.node(1).probe_log_formats().await;
    let before = last_index();
    let r = c.node(1).propose(batch(41)).await.expect("committed");
    assert_eq!(
        last_index(),
        before + 1,
        "one entry once every member reads it"
    );
    wait_applied(c.node(2), r.index, form).await;
    let doc = c.node(2).storage().get_doc("counters", "k").await;
    assert_eq!(doc.expect("read").as_deref(), Some("80"));
}

/// Live state (a call's replica) is committed at once on the active node, and refused,
/// not spooled, on the standby: a write kept and committed later could undo a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_state_is_committed_on_the_active_node_and_never_spooled_elsewhere() {
    let spec = [(1, MemberKind::Full), (2, MemberKind::Full)];
    let mut c = Cluster::start(&spec, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    let dir = |id: u64| c.cfgs[&id].data_dir.clone();
    let (dir1, dir2) = (dir(1), dir(2));
    let active = Arc::new(c.nodes.remove(&1).expect("node 1"));
    let standby = Arc::new(c.nodes.remove(&2).expect("node 2"));
    let on_active = ReplicatedWriter::start(active.clone(), &dir1).expect("writer 1");
    let on_standby = ReplicatedWriter::start(standby.clone(), &dir2).expect("writer 2");
    let live = |w: &Arc<ReplicatedWriter>, v: Option<serde_json::Value>| {
        let w = w.clone();
        async move { w.write_live("live_calls".into(), "c1".into(), v).await }
    };

    live(&on_active, Some(serde_json::json!({"node": "a"})))
        .await
        .expect("committed");
    let doc = active.storage().get_doc("live_calls", "c1").await;
    assert_eq!(doc.expect("read").as_deref(), Some(r#"{"node":"a"}"#));

    let refused = live(&on_standby, Some(serde_json::json!({"node": "b"}))).await;
    assert!(refused.is_err(), "not active: refused");
    assert_eq!(on_standby.spooled(), 0, "and not spooled");

    live(&on_active, None).await.expect("removed");
    let raft = active.raft().await.expect("raft");
    let last = raft.metrics().borrow().last_log_index.unwrap_or(0);
    wait_applied(&standby, last, form).await;
    for node in [&active, &standby] {
        let doc = node.storage().get_doc("live_calls", "c1").await;
        assert_eq!(
            doc.expect("read"),
            None,
            "removed on both, the standby's never written"
        );
    }
}
