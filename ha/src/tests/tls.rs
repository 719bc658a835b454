//! The cluster link inside TLS, each member's certificate pinned (real nodes, loopback TCP):
//! the pair forms and replicates; the witness's credentials cannot fetch a recording; a
//! certificate that is not pinned cannot join, and the witness's cannot pass for a full node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{wait_role, Cluster, SECRET};
use crate::config::{LogRetention, RecordingStore, Secret};
use crate::network::client::Network;
use crate::network::tls::{member_fingerprint, ClusterTls, Identity, TLS_DIR};
use crate::network::{NetState, Reply, Request};
use crate::node::HaNode;
use crate::types::{Command, MemberKind, NodeId, Role};

/// A client of member 1 that says it is `claims`, holding `identity`, which trusts the real
/// pins for the members it calls (`pins`, with `identity` pinned as `claims` in its copy).
fn outsider(
    identity: &Identity,
    claims: NodeId,
    pins: &BTreeMap<NodeId, Vec<crate::network::tls::Fingerprint>>,
) -> Network {
    let mut own = pins.clone();
    own.insert(claims, vec![identity.fingerprint()]);
    Network {
        me: claims,
        secret: Secret::new(SECRET),
        state: Arc::new(NetState::new()),
        retry: Duration::from_millis(100),
        bind: None,
        tls: Some(Arc::new(
            ClusterTls::new(claims, identity, &own).expect("tls"),
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_witness_credentials_cannot_fetch_a_recording_and_strangers_cannot_join() {
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
    // Each member's certificate, made as `svi ha cert` makes it, pinned everywhere.
    let pins: BTreeMap<NodeId, Vec<_>> = c
        .cfgs
        .iter()
        .map(|(id, cfg)| (*id, vec![member_fingerprint(&cfg.data_dir).expect("cert")]))
        .collect();
    for (id, cfg) in c.cfgs.iter_mut() {
        cfg.pins = pins.clone();
        if *id != 3 {
            let name = if *id == 1 { "node-a" } else { "node-b" };
            cfg.recordings = Some(RecordingStore {
                dir: dir(name),
                node_name: name.into(),
                min_free_bytes: 0,
            });
        }
    }
    let mut nodes: BTreeMap<NodeId, HaNode> = BTreeMap::new();
    for (id, cfg) in &c.cfgs {
        nodes.insert(*id, HaNode::start(cfg.clone()).await.expect("start"));
    }
    wait_role(&nodes[&1], Role::Active, Duration::from_secs(10)).await;
    wait_role(&nodes[&2], Role::Standby, Duration::from_secs(10)).await;
    // The log reaches the standby through TLS.
    nodes[&1]
        .propose(Command::InsertCall(Box::new(super::call(1))))
        .await
        .expect("committed");
    let index = nodes[&1]
        .raft()
        .await
        .expect("raft")
        .metrics()
        .borrow()
        .last_applied
        .map(|l| l.index)
        .expect("applied");
    super::wait_applied(&nodes[&2], index, Duration::from_secs(10)).await;

    std::fs::create_dir_all(dir("node-a")).expect("dir a");
    std::fs::write(dir("node-a").join("c1.wav"), b"RIFF recorded audio").expect("write");
    let addr = c.cfgs[&1].members[&1].cluster_addr.clone();
    let fetch = Request::FetchRecording {
        file: "c1.wav".into(),
        offset: 0,
        max: 1024,
    };
    let ttl = Duration::from_secs(5);

    // The other full node may fetch it.
    let got = nodes[&2].client(1, &addr).call(&fetch, &[], ttl).await;
    assert!(
        matches!(&got, Ok((Reply::Chunk { eof: true, .. }, bytes)) if bytes == b"RIFF recorded audio"),
        "node 2 could not fetch the recording"
    );
    // The witness, with its own (pinned) credentials, may not.
    let refused = nodes[&3].client(1, &addr).call(&fetch, &[], ttl).await;
    assert!(
        matches!(&refused, Ok((Reply::Refused(e), bytes)) if e.contains("witness") && bytes.is_empty()),
        "the witness fetched a recording"
    );
    // Nor may it write through the leader.
    let write = Request::Propose(Command::InsertCall(Box::new(super::call(2))));
    let refused = nodes[&3].client(1, &addr).call(&write, &[], ttl).await;
    assert!(
        matches!(&refused, Ok((Reply::Refused(e), _)) if e.contains("witness")),
        "the witness wrote"
    );

    // The witness's certificate saying it is node 2 (it knows the secret): refused.
    let failures = *nodes[&1].auth_failures().borrow();
    let witness_id =
        Identity::load_or_generate(&c.cfgs[&3].data_dir.join(TLS_DIR)).expect("witness id");
    let mut posing = outsider(&witness_id, 2, &pins).client(1, &addr);
    let res = posing.call(&fetch, &[], ttl).await;
    assert!(res.is_err(), "the witness passed for node 2");
    // A certificate pinned nowhere, with the secret: cannot join, reads nothing.
    let stranger_dir = tempfile::tempdir().expect("tmp");
    let stranger = Identity::load_or_generate(stranger_dir.path()).expect("stranger id");
    let mut joining = outsider(&stranger, 2, &pins).client(1, &addr);
    for req in [Request::Hello, fetch] {
        let res = joining.call(&req, &[], ttl).await;
        assert!(res.is_err(), "a stranger's certificate was answered");
    }
    let mut counted = nodes[&1].auth_failures();
    let seen = tokio::time::timeout(ttl, counted.wait_for(|n| *n >= failures + 3))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        seen,
        "node 1 did not count the three refusals (counted {})",
        *counted.borrow()
    );
    for n in nodes.into_values() {
        n.shutdown().await;
    }
}
