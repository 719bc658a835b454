//! Cluster tests on loopback: real nodes, real TCP, real SQLite in temp directories.
//!
//! Nothing sleeps to wait: every wait is on a watch (role, raft metrics) under a deadline.
//! Timings are shorter than the defaults but keep the production ratios (lease + heartbeat
//! <= election_timeout_min) so that fencing is exercised as configured.

mod cluster;
mod faults;
mod pair;
mod recordings;
mod restore;
mod tls;
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use engine::storage::CallRecord;
use tokio::sync::watch;

use crate::config::{HaConfig, LogRetention, Secret, Timings};
use crate::node::HaNode;
use crate::types::{MemberKind, NodeId, NodeInfo, Role};

/// `SVI_TEST_LOG=ha=debug cargo test ...` shows the nodes' logs.
pub(crate) fn logs() {
    if let Ok(filter) = std::env::var("SVI_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

pub(crate) const SECRET: &str = "test-secret-0123456789";

pub(crate) fn timings() -> Timings {
    Timings {
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        lease: Duration::from_millis(300),
    }
}

/// The longest a failover may take: follower lease + longest election timeout + commit.
pub(crate) fn failover_bound() -> Duration {
    let t = timings();
    t.election_timeout_max * 2 + t.lease + Duration::from_millis(1500)
}

/// Distinct free loopback ports (listeners are held until all are chosen, so the OS cannot
/// hand out the same port twice).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// A call record (built from JSON so that fields the engine adds later, with serde
/// defaults, do not break these tests).
pub(crate) fn call(i: usize) -> CallRecord {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::seconds(i as i64);
    serde_json::from_value(serde_json::json!({
        "id": format!("call-{i:05}"),
        "sip_call_id": format!("sip-{i}@pbx"),
        "started_at": t,
        "answered_at": t,
        "ended_at": t + chrono::Duration::seconds(30),
        "caller": "+33123456789",
        "called": "100",
        "flow": "demo",
        "flow_version": "1",
        "path": ["welcome", "main_menu", "goodbye"],
        "end_reason": "caller_hangup",
        "codec": "PCMA",
        "node": "a",
        "rtp_sent": 1500,
        "rtp_received": 1499,
    }))
    .expect("call record")
}

/// Nodes on loopback, each with its own data directory.
pub(crate) struct Cluster {
    _dir: tempfile::TempDir,
    pub cfgs: BTreeMap<NodeId, HaConfig>,
    pub nodes: BTreeMap<NodeId, HaNode>,
}

impl Cluster {
    /// Configures and starts every member.
    pub(crate) async fn start(spec: &[(NodeId, MemberKind)], retention: LogRetention) -> Cluster {
        let mut c = Cluster::configure(spec, retention);
        for (id, _) in spec {
            c.restart(*id).await;
        }
        c
    }

    /// Configures every member without starting any (`restart` starts one).
    pub(crate) fn configure(spec: &[(NodeId, MemberKind)], retention: LogRetention) -> Cluster {
        logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(spec.len());
        let members: BTreeMap<NodeId, NodeInfo> = spec
            .iter()
            .zip(ports)
            .map(|((id, kind), port)| {
                let info = NodeInfo {
                    cluster_addr: format!("127.0.0.1:{port}"),
                    sip_addr: Some(format!("127.0.0.1:{}", 5060 + id)),
                    kind: *kind,
                };
                (*id, info)
            })
            .collect();
        let cfgs = members
            .iter()
            .map(|(id, info)| {
                let cfg = HaConfig {
                    node_id: *id,
                    data_dir: dir.path().join(format!("node{id}")),
                    listen: Some(info.cluster_addr.parse().expect("addr")),
                    members: members.clone(),
                    secret: Secret::new(SECRET),
                    pins: BTreeMap::new(),
                    timings: timings(),
                    retention,
                    recordings: None,
                };
                (*id, cfg)
            })
            .collect();
        Cluster {
            _dir: dir,
            cfgs,
            nodes: BTreeMap::new(),
        }
    }

    pub(crate) async fn restart(&mut self, id: NodeId) {
        let cfg = self.cfgs[&id].clone();
        let node = HaNode::start(cfg).await.expect("start node");
        self.nodes.insert(id, node);
    }

    /// Stops a node abruptly (no handover), as if it died.
    pub(crate) async fn kill(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.remove(&id) {
            n.shutdown().await;
        }
    }

    pub(crate) fn node(&self, id: NodeId) -> &HaNode {
        &self.nodes[&id]
    }

    pub(crate) async fn wait_role(&self, id: NodeId, want: Role, within: Duration) {
        wait_role(self.node(id), want, within).await;
    }

    /// Watches every running node's role; see `Sampler`.
    pub(crate) fn sampler(&self) -> Sampler {
        Sampler::start(self.nodes.values().map(|n| n.role()).collect())
    }
}

pub(crate) async fn wait_role(node: &HaNode, want: Role, within: Duration) {
    let mut rx = node.role();
    let ok = matches!(
        tokio::time::timeout(within, rx.wait_for(|r| *r == want)).await,
        Ok(Ok(_))
    );
    assert!(
        ok,
        "node {} did not become {want} within {within:?} (is {})",
        node.id(),
        *node.role().borrow()
    );
}

/// Waits until `node` has applied at least `index`.
pub(crate) async fn wait_applied(node: &HaNode, index: u64, within: Duration) {
    let raft = node.raft().await.expect("raft");
    let res = raft
        .wait(Some(within))
        .applied_index_at_least(Some(index), "applied")
        .await;
    assert!(
        res.is_ok(),
        "node {} did not apply {index}: {res:?}",
        node.id()
    );
}

/// On every role change of any node, reads all roles at that instant and records the
/// highest number of simultaneously active nodes.
pub(crate) struct Sampler {
    roles: Vec<watch::Receiver<Role>>,
    max_active: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(roles: Vec<watch::Receiver<Role>>) -> Sampler {
        let kept = roles.clone();
        let mut roles = roles;
        let max_active = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        for r in roles.iter() {
            let mut r = r.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                while r.changed().await.is_ok() {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        let (m, s) = (max_active.clone(), samples.clone());
        let task = tokio::spawn(async move {
            loop {
                let active = roles
                    .iter_mut()
                    .filter(|r| *r.borrow() == Role::Active)
                    .count();
                m.fetch_max(active, Ordering::SeqCst);
                s.fetch_add(1, Ordering::SeqCst);
                if rx.recv().await.is_none() {
                    return;
                }
            }
        });
        Sampler {
            roles: kept,
            max_active,
            samples,
            task,
        }
    }

    /// The highest number of nodes seen active at once, and how many samples were taken
    /// (the last one here, in case the sampler task has not run since the last change).
    pub(crate) fn finish(self) -> (usize, usize) {
        self.task.abort();
        let active = self
            .roles
            .iter()
            .filter(|r| *r.borrow() == Role::Active)
            .count();
        let max = self
            .max_active
            .fetch_max(active, Ordering::SeqCst)
            .max(active);
        (max, self.samples.load(Ordering::SeqCst) + 1)
    }
}
