//! The replicated writer on a real one-voter node: group commit.

use std::sync::Arc;

use engine::replication::RecordWriter;

use super::{call, failover_bound, wait_role};
use crate::config::HaConfig;
use crate::node::HaNode;
use crate::types::Role;
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
