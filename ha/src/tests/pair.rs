//! A single node, a two-node pair without witness ("backup" mode), and a wrong secret.

use std::time::Duration;

use super::{call, failover_bound, wait_applied, Cluster};
use crate::config::{HaConfig, LogRetention, Secret};
use crate::node::{HaError, HaNode};
use crate::types::{Command, MemberKind, Outcome, Role};

#[tokio::test]
async fn single_node_is_a_one_voter_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HaConfig::single(1, dir.path().to_path_buf());
    let node = HaNode::start(cfg.clone()).await.expect("start");
    super::wait_role(&node, Role::Active, Duration::from_secs(5)).await;
    let r = node
        .propose(Command::InsertCall(Box::new(call(1))))
        .await
        .expect("propose");
    assert_eq!(r.outcome, Outcome::Applied);
    let put = Command::Put {
        collection: "queues".into(),
        key: "support".into(),
        value: serde_json::json!({"name": "Support"}),
    };
    node.propose(put).await.expect("put");
    let del = Command::Delete {
        collection: "queues".into(),
        key: "nope".into(),
    };
    let r = node.propose(del).await.expect("delete");
    assert_eq!(r.outcome, Outcome::Deleted { existed: false });
    node.shutdown().await;
    drop(node);

    // Restart: same data, active again, nothing applied twice.
    let node = HaNode::start(cfg).await.expect("restart");
    super::wait_role(&node, Role::Active, Duration::from_secs(5)).await;
    let calls = node.storage().latest_calls(10).await.expect("calls");
    assert_eq!(calls.len(), 1);
    let doc = node
        .storage()
        .get_doc("queues", "support")
        .await
        .expect("doc");
    assert_eq!(doc.as_deref(), Some(r#"{"name":"Support"}"#));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_pair_does_not_fail_over_by_itself_but_force_does() {
    let spec = [(1, MemberKind::Full), (2, MemberKind::Full)];
    let mut c = Cluster::start(&spec, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    let last = c
        .node(1)
        .propose(Command::InsertCall(Box::new(call(1))))
        .await
        .expect("write")
        .index;
    wait_applied(c.node(2), last, Duration::from_secs(5)).await;

    c.kill(1).await;
    // Two voters cannot elect anyone alone: node 2 stays out of the active role.
    let mut role = c.node(2).role();
    let took_over =
        tokio::time::timeout(failover_bound(), role.wait_for(|r| *r == Role::Active)).await;
    assert!(
        took_over.is_err(),
        "a backup pair must not fail over by itself"
    );
    // A plain promote cannot win either (no quorum).
    assert!(matches!(
        c.node(2).promote(false).await,
        Err(HaError::Promote(_))
    ));

    // The operator's decision: node 2 alone.
    c.node(2).promote(true).await.expect("forced promotion");
    assert_eq!(*c.node(2).role().borrow(), Role::Active);
    let last = c
        .node(2)
        .propose(Command::InsertCall(Box::new(call(2))))
        .await
        .expect("write after force")
        .index;

    // The old node returns: the active node adds it back; it catches up as standby.
    c.restart(1).await;
    let raft1 = c.node(1).raft().await.expect("raft");
    raft1
        .wait(Some(Duration::from_secs(15)))
        .metrics(
            |m| {
                m.current_leader == Some(2)
                    && m.membership_config.membership().voter_ids().count() == 2
            },
            "node 1 is a voter again under node 2",
        )
        .await
        .expect("node 1 rejoined");
    c.wait_role(1, Role::Standby, Duration::from_secs(2)).await;
    wait_applied(c.node(1), last, Duration::from_secs(10)).await;
    let ids: Vec<String> = c
        .node(1)
        .storage()
        .latest_calls(10)
        .await
        .expect("calls")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(ids.contains(&call(2).id));
    let status = c.node(2).status().await.expect("status");
    assert!(
        status.members.iter().all(|m| m.voter),
        "both voters again: {status:?}"
    );
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut members = std::collections::BTreeMap::new();
    for (id, port) in [1, 2].into_iter().zip(super::free_ports(2)) {
        let info = crate::types::NodeInfo {
            cluster_addr: format!("127.0.0.1:{port}"),
            sip_addr: None,
            kind: MemberKind::Full,
        };
        members.insert(id, info);
    }
    let cfg = |id: u64, secret: &str| HaConfig {
        node_id: id,
        data_dir: dir.path().join(format!("n{id}")),
        listen: Some(members[&id].cluster_addr.parse().expect("addr")),
        members: members.clone(),
        secret: Secret::new(secret),
        pins: Default::default(),
        timings: super::timings(),
        retention: LogRetention::default(),
        recordings: None,
    };
    // Node 2 has another secret: an outsider pretending to be a member.
    let a = HaNode::start(cfg(1, super::SECRET)).await.expect("a");
    let b = HaNode::start(cfg(2, "an-outsider-secret-xyz"))
        .await
        .expect("b");
    // Node 1 probes node 2 to form the cluster; each side refuses the other's proof.
    for n in [&a, &b] {
        let mut failures = n.auth_failures();
        let seen =
            tokio::time::timeout(Duration::from_secs(5), failures.wait_for(|f| *f > 0)).await;
        assert!(
            matches!(seen, Ok(Ok(_))),
            "node {} counted no refusal",
            n.id()
        );
    }
    assert_eq!(
        *a.role().borrow(),
        Role::Joining,
        "no cluster with an outsider"
    );
    assert_eq!(*b.role().borrow(), Role::Joining);
    assert!(a
        .propose(Command::InsertCall(Box::new(call(1))))
        .await
        .is_err());
    a.shutdown().await;
    b.shutdown().await;
}
