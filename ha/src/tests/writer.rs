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
