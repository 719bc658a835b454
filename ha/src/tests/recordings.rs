//! Recording copies in a real pair (loopback TCP, SQLite): the standby fetches a recording
//! the active node indexed, resuming a partial copy, and the index ends up naming both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{wait_role, Cluster};
use crate::config::{LogRetention, RecordingStore};
use crate::network::{Reply, Request};
use crate::node::HaNode;
use crate::types::{Command, MemberKind, NodeId, Role};

fn audio(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 241) as u8).collect()
}

/// The entry's `present_on` on `node` (empty if none).
async fn present_on(node: &HaNode, call: &str) -> Vec<String> {
    let text = node
        .storage()
        .get_doc("recordings", call)
        .await
        .expect("read")
        .unwrap_or_else(|| "{}".into());
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["present_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Waits (on the node's raft metrics, under `within`) until the entry names `want`.
async fn wait_present(node: &HaNode, call: &str, want: &[&str], within: Duration) {
    let mut metrics = node.raft().await.expect("raft").metrics();
    let res = tokio::time::timeout(within, async {
        loop {
            let mut got = present_on(node, call).await;
            got.sort();
            if got == want {
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        res.is_ok(),
        "node {} never listed {want:?} for {call}: {:?}",
        node.id(),
        present_on(node, call).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_standby_copies_a_recording_and_the_index_names_both_nodes() {
    let mut c = Cluster::configure(
        &[
            (1, MemberKind::Full),
            (2, MemberKind::Full),
            (3, MemberKind::Witness),
        ],
        LogRetention::default(),
    );
    let files = tempfile::tempdir().expect("tmp");
    let dir = |name: &str| files.path().join(name);
    for (id, name) in [(1, "node-a"), (2, "node-b")] {
        c.cfgs.get_mut(&id).expect("cfg").recordings = Some(RecordingStore {
            dir: dir(name),
            node_name: name.into(),
            min_free_bytes: 0,
        });
    }
    let mut nodes: BTreeMap<NodeId, Arc<HaNode>> = BTreeMap::new();
    for (id, cfg) in &c.cfgs {
        let node = Arc::new(HaNode::start(cfg.clone()).await.expect("start"));
        assert_eq!(node.copy_recordings(), *id != 3, "node {id}");
        nodes.insert(*id, node);
    }
    wait_role(&nodes[&1], Role::Active, Duration::from_secs(10)).await;
    wait_role(&nodes[&2], Role::Standby, Duration::from_secs(10)).await;

    // The recording on the active node, several chunks long; the standby already has the
    // first part of it (a copy interrupted earlier).
    let content = audio(600 * 1024 + 123);
    std::fs::create_dir_all(dir("node-a")).expect("dir a");
    std::fs::create_dir_all(dir("node-b")).expect("dir b");
    std::fs::write(dir("node-a").join("c1.wav"), &content).expect("write");
    std::fs::write(dir("node-b").join("c1.wav.part"), &content[..100_000]).expect("part");
    let doc = serde_json::json!({
        "call": "c1", "file": "c1.wav", "bytes": content.len(),
        "sha256": hex::encode(Sha256::digest(&content)), "duration_ms": 1000,
        "recorded_at": "2026-11-21T10:00:00Z", "origin": "node-a", "present_on": ["node-a"],
    });
    nodes[&1]
        .propose(Command::Put {
            collection: "recordings".into(),
            key: "c1".into(),
            value: doc,
        })
        .await
        .expect("index entry");

    for id in [1, 2] {
        wait_present(
            &nodes[&id],
            "c1",
            &["node-a", "node-b"],
            Duration::from_secs(15),
        )
        .await;
    }
    let copy = std::fs::read(dir("node-b").join("c1.wav")).expect("copied");
    assert!(copy == content, "the copy differs from the original");
    assert!(!dir("node-b").join("c1.wav.part").exists());

    // The fetch refuses paths and missing files, over the authenticated link.
    let addr = c.cfgs[&1].members[&1].cluster_addr.clone();
    let mut client = nodes[&2].client(1, &addr);
    for (file, expect) in [
        ("../svi.db", "not a recording file name"),
        ("c2.wav", "not on this node"),
    ] {
        let req = Request::FetchRecording {
            file: file.into(),
            offset: 0,
            max: 1024,
        };
        let reply = client.call(&req, &[], Duration::from_secs(5)).await;
        match reply {
            Ok((Reply::Refused(e), bin)) => {
                assert!(e.contains(expect), "{file}: {e}");
                assert!(bin.is_empty());
            }
            _ => panic!("{file}: not refused"),
        }
    }
    // The witness serves none.
    let waddr = c.cfgs[&3].members[&3].cluster_addr.clone();
    let req = Request::FetchRecording {
        file: "c1.wav".into(),
        offset: 0,
        max: 1024,
    };
    let reply = nodes[&2]
        .client(3, &waddr)
        .call(&req, &[], Duration::from_secs(5))
        .await;
    assert!(
        matches!(reply, Ok((Reply::Refused(ref e), _)) if e.contains("keeps no recordings")),
        "witness"
    );
    for n in nodes.values() {
        n.shutdown().await;
    }
}
