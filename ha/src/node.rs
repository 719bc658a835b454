//! `HaNode`: the handle the binary uses. Start it, watch its role, propose writes on the
//! active node, read its status, promote it, shut it down.
//!
//! A node is an *incarnation* (the raft instance and its tasks: cluster server, role
//! monitor, bootstrap, maintenance) around state that outlives it (configuration, the engine
//! database, the log file, the role channel the engine watches). Only a forced promotion
//! replaces the incarnation: it stops raft, rewrites the membership in the log and starts
//! again, while the engine keeps the same role receiver.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::storage::Storage;
use openraft::raft::VoteResponse;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, RwLock};
use tokio::task::JoinHandle;

use crate::config::HaConfig;
pub use crate::error::HaError;
use crate::log_format::{self, LogFormats};
use crate::log_store::LogStore;
use crate::network::client::{Network, PeerClient};
use crate::network::server::{NodeHooks, Server};
use crate::network::tls::{ClusterTls, Identity, TLS_DIR};
use crate::network::{NetState, PeerInfo, Reply, Request};
use crate::recordings::Chunk;
use crate::role::{self, Lease, Publisher};
use crate::shared::{propose_with, Shared};
use crate::state_machine::StateMachine;
use crate::types::{Command, LogId, MemberKind, NodeId, NodeInfo, Raft, Response, Role, RoleEvent};
use crate::{campaign, promote, upkeep};

pub use engine::replication::{HaStatus, MemberStatus};

pub(crate) struct Incarnation {
    pub raft: Raft,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Incarnation {
    /// Stops the tasks (server, role monitor, upkeep), then raft. `between` runs after the
    /// monitor is gone and before raft stops: the place to publish the final role.
    pub(crate) async fn stop(self, between: impl FnOnce()) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        between();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
    }
}

/// A running member of the cluster.
pub struct HaNode {
    shared: Arc<Shared>,
    inc: RwLock<Option<Incarnation>>,
    // The recording copier's task, aborted at shutdown. A std mutex around an Option:
    // set once at start, taken once at shutdown, never held across an await.
    copier: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl HaNode {
    /// Opens `DATA_DIR/svi.db` and starts. (The returned future is not `Send` because
    /// `Storage::open`'s is not; use `start_with_storage` from a spawned task.)
    pub async fn start(cfg: HaConfig) -> Result<HaNode, HaError> {
        cfg.validate()?;
        let storage = Storage::open(&cfg.data_dir).await?;
        HaNode::start_with_storage(cfg, storage).await
    }

    /// Starts on an engine database the caller opened (the engine and this node then share
    /// one pool).
    pub async fn start_with_storage(cfg: HaConfig, storage: Storage) -> Result<HaNode, HaError> {
        cfg.validate()?;
        let log = LogStore::open(&cfg.data_dir.join("raft-log.db")).await?;
        let tls = cluster_tls(&cfg)?;
        let net = Arc::new(NetState::new());
        let network = Network {
            me: cfg.node_id,
            secret: cfg.secret.clone(),
            state: net.clone(),
            // A peer that cannot be reached is retried after a heartbeat, then doubling up to
            // a second: a dead peer stays quiet, a returning one is contacted within a second.
            retry: cfg.timings.heartbeat,
            bind: cfg.listen.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()),
            tls,
        };
        let initial = if cfg.is_witness() {
            Role::Witness
        } else {
            Role::Joining
        };
        let shared = Arc::new(Shared {
            publisher: Arc::new(Publisher::new(cfg.node_id, initial)),
            cfg,
            storage,
            log,
            net,
            network,
            yielding: watch::channel(false).0,
            yield_gen: AtomicU64::new(0),
            promoting: AtomicBool::new(false),
            started: Instant::now(),
            formats: std::sync::Mutex::new(LogFormats::default()),
            advertised: AtomicU32::new(log_format::CURRENT),
        });
        let inc = incarnate(&shared).await?;
        Ok(HaNode {
            shared,
            inc: RwLock::new(Some(inc)),
            copier: std::sync::Mutex::new(None),
        })
    }

    pub fn id(&self) -> NodeId {
        self.shared.me()
    }

    /// The role, as it changes. The engine registers and takes calls only while `Active`.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.shared.publisher.tx.subscribe()
    }

    /// Every role change (also logged at warn), for alarms.
    pub fn events(&self) -> broadcast::Receiver<RoleEvent> {
        self.shared.publisher.events.subscribe()
    }

    /// The lease deadline, for the engine's decision-time check (see `role::Lease`).
    pub fn lease(&self) -> Arc<Lease> {
        self.shared.publisher.lease.clone()
    }

    /// The engine database this node applies to (share it with the engine).
    pub fn storage(&self) -> Storage {
        self.shared.storage.clone()
    }

    /// Cluster connections refused for a bad secret or an unknown node id, counted since
    /// start (an alarm source: someone without the secret is knocking).
    pub fn auth_failures(&self) -> watch::Receiver<u64> {
        self.shared.net.auth_failures()
    }

    pub(crate) async fn raft(&self) -> Result<Raft, HaError> {
        match self.inc.read().await.as_ref() {
            Some(i) => Ok(i.raft.clone()),
            None => Err(HaError::Raft("node is shut down".into())),
        }
    }

    /// Replicates a command and applies it everywhere; returns once a quorum has it and
    /// this node applied it. Only on the active node, within `election_timeout_max`.
    pub async fn propose(&self, cmd: Command) -> Result<Response, HaError> {
        let raft = self.raft().await?;
        propose_with(&self.shared, &raft, cmd).await
    }

    /// Starts copying the other full members' recordings here and serving ours to them
    /// (see `recordings`), if `HaConfig::recordings` is set and this node is a full one.
    /// Returns whether the copier started.
    pub fn copy_recordings(self: &Arc<Self>) -> bool {
        let Some(store) = self.shared.cfg.recordings.clone() else {
            return false;
        };
        if self.shared.cfg.is_witness() {
            return false;
        }
        let task = tokio::spawn(crate::recordings::run_copier(self.clone(), store));
        match self.copier.lock() {
            Ok(mut slot) => {
                if let Some(old) = slot.replace(task) {
                    old.abort();
                }
                true
            }
            Err(_) => {
                task.abort();
                false
            }
        }
    }

    pub(crate) fn timings(&self) -> crate::config::Timings {
        self.shared.cfg.timings
    }

    /// The configured members.
    pub(crate) fn members(&self) -> std::collections::BTreeMap<NodeId, NodeInfo> {
        self.shared.cfg.members.clone()
    }

    pub(crate) fn client(&self, id: NodeId, addr: &str) -> PeerClient {
        self.shared.network.client(id, addr)
    }

    /// A member's `[node] name`, from its `Hello` (None: unreachable, or a witness).
    pub(crate) async fn peer_name(&self, id: NodeId, addr: &str) -> Option<String> {
        let ttl = self.shared.cfg.timings.election_timeout_min;
        match self.client(id, addr).call(&Request::Hello, &[], ttl).await {
            Ok((Reply::Hello(info), _)) if info.node == id => info.name,
            _ => None,
        }
    }

    /// Adds `node` to the `present_on` of the recording index entry of `call`: here if
    /// this node is active, else on the active node (a standby cannot write to the log).
    pub(crate) async fn recording_present(&self, call: &str, node: &str) -> Result<(), String> {
        let raft = self.raft().await.map_err(|e| e.to_string())?;
        if self.shared.role() == Role::Active {
            return crate::recordings::mark_present(&self.shared, &raft, call, node).await;
        }
        let req = Request::RecordingPresent {
            call: call.into(),
            node: node.into(),
        };
        match self.call_leader(&raft, &req).await {
            Ok(Reply::Present(r)) => r,
            Ok(Reply::Refused(e)) => Err(e),
            Ok(_) => Err("the leader sent an unexpected reply".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Commits `cmd` through the active node: proposed here when this node is active, else
    /// forwarded to the leader (a node finishing its calls after losing the active role
    /// still has their records to write). Returns once a quorum has it.
    pub async fn commit(&self, cmd: Command) -> Result<(), HaError> {
        let raft = self.raft().await?;
        if self.shared.role() == Role::Active {
            return propose_with(&self.shared, &raft, cmd).await.map(|_| ());
        }
        self.forward(&raft, cmd).await
    }

    /// Forwards `cmd` to the leader: a batch as one request if every member reads batches
    /// (`log_format`), else one write at a time, in order.
    async fn forward(&self, raft: &Raft, cmd: Command) -> Result<(), HaError> {
        let writes = if matches!(cmd, Command::Batch(_)) && !self.shared.batches_readable(raft) {
            cmd.into_writes()
        } else {
            vec![cmd]
        };
        for w in writes {
            match self.call_leader(raft, &Request::Propose(w)).await? {
                Reply::Proposed(r) => r.map_err(HaError::Forwarded)?,
                Reply::Refused(e) => return Err(HaError::Forwarded(e)),
                _ => return Err(HaError::Forwarded("unexpected reply".into())),
            }
        }
        Ok(())
    }

    /// One request to the current leader (another node) over the cluster link.
    async fn call_leader(&self, raft: &Raft, req: &Request) -> Result<Reply, HaError> {
        let m = raft.metrics().borrow().clone();
        let role = self.shared.role();
        let leader = m
            .current_leader
            .filter(|l| *l != self.id())
            .ok_or(HaError::NotActive { role, leader: None })?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&leader)
            .or_else(|| self.shared.cfg.members.get(&leader))
            .map(|n| n.cluster_addr.clone())
            .ok_or(HaError::NotActive {
                role,
                leader: Some(leader),
            })?;
        let ttl = self.shared.cfg.propose_timeout() + Duration::from_secs(1);
        self.client(leader, &addr)
            .call(req, &[], ttl)
            .await
            .map(|(reply, _)| reply)
            .map_err(|e| HaError::Forwarded(e.to_string()))
    }

    pub async fn status(&self) -> Result<HaStatus, HaError> {
        let raft = self.raft().await?;
        let m = raft.metrics().borrow().clone();
        // A raft core stopped by a storage failure still has a role to show (`fenced`):
        // report it without the commit index rather than fail the whole status.
        let commit_index = raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .unwrap_or(None);
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut ids: BTreeSet<NodeId> = self.shared.cfg.members.keys().copied().collect();
        ids.extend(membership.nodes().map(|(id, _)| *id));
        let members = ids
            .into_iter()
            .map(|id| {
                let info = membership
                    .get_node(&id)
                    .or_else(|| self.shared.cfg.members.get(&id))
                    .cloned()
                    .unwrap_or_default();
                MemberStatus {
                    id,
                    kind: info.kind,
                    voter: voters.contains(&id),
                    cluster_addr: info.cluster_addr,
                    sip_addr: info.sip_addr,
                    matched_index: m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .map(|l| l.index),
                }
            })
            .collect();
        let clock = *self.shared.publisher.clock.borrow();
        Ok(HaStatus {
            node: self.id(),
            role: self.shared.role(),
            role_changes: clock.changes,
            role_since: clock.since,
            leader: m.current_leader,
            term: m.current_term,
            commit_index,
            applied_index: m.last_applied.map(|l| l.index),
            members,
        })
    }

    /// Makes this node active. Without `force`: asks the active node to step aside (it
    /// stops being active before answering), then wins an election. With `force`, in a
    /// two-node pair without witness whose other node is gone: makes this node the single
    /// voter (the operator's decision; see `docs/ha.md`).
    pub async fn promote(&self, force: bool) -> Result<(), HaError> {
        if !force {
            let raft = self.raft().await?;
            return promote::promote(&self.shared, &raft).await;
        }
        let mut guard = self.inc.write().await;
        let Some(inc) = guard.as_ref() else {
            return Err(HaError::Raft("node is shut down".into()));
        };
        if self.shared.role() == Role::Active {
            return Ok(());
        }
        promote::check_force(&self.shared, &inc.raft)?;
        if let Some(inc) = guard.take() {
            inc.stop(|| {}).await;
        }
        promote::rewrite_single_voter(&self.shared).await?;
        *guard = Some(incarnate(&self.shared).await?);
        drop(guard);
        promote::wait_active(
            &self.shared,
            self.shared.cfg.timings.election_timeout_max * 2,
        )
        .await
    }

    /// Stops raft and the cluster port. Not a handover: the others fail over as if this
    /// node died (run `promote` on the standby first for a planned switch).
    pub async fn shutdown(&self) {
        if let Some(task) = self.copier.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
        if let Some(inc) = self.inc.write().await.take() {
            // Leave the active role before raft stops (the engine unregisters first).
            let last = if self.shared.cfg.is_witness() {
                Role::Witness
            } else {
                Role::Standby
            };
            inc.stop(|| self.shared.publisher.publish(last, 0, None))
                .await;
        }
    }

    /// Test hook: every raft log append fails from now on, as on a full disk.
    #[cfg(test)]
    pub(crate) fn set_disk_full(&self, on: bool) {
        self.shared.log.set_full(on);
    }

    /// Test hook: the log format this node advertises (0 plays the previous release).
    #[cfg(test)]
    pub(crate) fn advertise_log_format(&self, format: u32) {
        self.shared.advertised.store(format, Ordering::Relaxed);
    }

    /// Asks the other members for their log format once (the prober does it periodically).
    #[cfg(test)]
    pub(crate) async fn probe_log_formats(&self) {
        if let Ok(raft) = self.raft().await {
            self.shared
                .probe_log_formats(&raft, &mut Default::default())
                .await;
        }
    }

    /// Test hook: drop all cluster traffic to and from this node.
    #[cfg(test)]
    pub(crate) fn set_isolated(&self, on: bool) {
        self.shared.net.set_isolated(on);
    }
}

/// The cluster link's TLS when the members' certificates are pinned: this member's
/// certificate (generated on first use) must be the one pinned for it.
fn cluster_tls(cfg: &HaConfig) -> Result<Option<Arc<ClusterTls>>, HaError> {
    if cfg.pins.is_empty() {
        if cfg.members.len() > 1 {
            tracing::warn!("no member certificate is pinned (`fingerprint`): the cluster link is not encrypted");
        }
        return Ok(None);
    }
    let identity = Identity::load_or_generate(&cfg.data_dir.join(TLS_DIR))?;
    Ok(Some(Arc::new(ClusterTls::new(
        cfg.node_id,
        &identity,
        &cfg.pins,
    )?)))
}

/// Starts raft and the tasks around it.
async fn incarnate(shared: &Arc<Shared>) -> Result<Incarnation, HaError> {
    let cfg = &shared.cfg;
    let sm = StateMachine::open(shared.storage.clone(), &cfg.data_dir).await?;
    let raft = Raft::new(
        cfg.node_id,
        Arc::new(cfg.raft_config()?),
        shared.network.clone(),
        shared.log.clone(),
        sm,
    )
    .await
    .map_err(|e| HaError::Raft(e.to_string()))?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(addr) = cfg.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HaError::Listen { addr, source })?;
        let server = Arc::new(Server {
            me: cfg.node_id,
            secret: cfg.secret.clone(),
            members: cfg.members.iter().map(|(id, m)| (*id, m.kind)).collect(),
            addrs: cfg
                .members
                .iter()
                .map(|(id, m)| (*id, m.cluster_addr.clone()))
                .collect(),
            bind: shared.network.bind,
            probe_timeout: cfg.timings.lease,
            tls: shared.network.tls.clone(),
            raft: raft.clone(),
            state: shared.net.clone(),
            hooks: Arc::new(Hooks {
                shared: shared.clone(),
                raft: raft.clone(),
            }),
            handshake_timeout: cfg.timings.election_timeout_max,
        });
        tasks.push(tokio::spawn(server.run(listener)));
    }
    tasks.push(tokio::spawn(role::monitor(
        raft.clone(),
        shared.publisher.clone(),
        cfg.is_witness(),
        cfg.timings.lease,
        shared.yielding.subscribe(),
        stop_rx.clone(),
        cfg.data_dir.clone(),
    )));
    tasks.push(tokio::spawn(upkeep::bootstrap(
        shared.clone(),
        raft.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(upkeep::maintain(
        shared.clone(),
        raft.clone(),
        stop_rx.clone(),
    )));
    if !cfg.is_witness() {
        tasks.push(tokio::spawn(log_format::probe(
            shared.clone(),
            raft.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(campaign::run(
        shared.clone(),
        raft.clone(),
        stop_rx,
    )));
    Ok(Incarnation { raft, stop, tasks })
}

/// The node's answers to svi's own cluster messages.
struct Hooks {
    shared: Arc<Shared>,
    raft: Raft,
}

impl NodeHooks for Hooks {
    async fn hello(&self) -> PeerInfo {
        PeerInfo {
            node: self.shared.me(),
            initialized: self.raft.is_initialized().await.unwrap_or(false),
            digest: self.shared.cfg.digest(),
            name: self
                .shared
                .cfg
                .recordings
                .as_ref()
                .map(|r| r.node_name.clone()),
            log_format: self.shared.advertised.load(Ordering::Relaxed),
        }
    }

    fn refuse_vote(&self) -> Option<VoteResponse<NodeId>> {
        let follows = !self.shared.net.may_vote(&self.shared.cfg.timings);
        (self.shared.role() == Role::Active || follows)
            .then(|| VoteResponse::new(self.raft.metrics().borrow().vote, None, false))
    }

    async fn pre_vote(&self, last_log_id: Option<LogId>) -> (bool, Option<LogId>) {
        let mine = campaign::last_log_id(&self.shared).await;
        let granted = self.shared.role() != Role::Active
            && self.shared.net.may_vote(&self.shared.cfg.timings)
            && mine.is_some_and(|mine| last_log_id >= mine);
        (granted, mine.flatten())
    }

    async fn yield_leadership(&self, to: NodeId) -> Result<Option<u64>, String> {
        promote::yield_to(&self.shared, &self.raft, to).await
    }

    async fn take_over(&self) -> bool {
        promote::take_over(&self.shared, &self.raft)
    }

    async fn fetch_recording(&self, file: String, offset: u64, max: u32) -> Result<Chunk, String> {
        match &self.shared.cfg.recordings {
            Some(store) if !self.shared.cfg.is_witness() => {
                crate::recordings::read_chunk(&store.dir, &file, offset, max).await
            }
            _ => Err(format!("node {} keeps no recordings", self.shared.me())),
        }
    }

    async fn recording_present(&self, call: String, node: String) -> Result<(), String> {
        if self.shared.role() != Role::Active {
            return Err(format!("node {} is not active", self.shared.me()));
        }
        crate::recordings::mark_present(&self.shared, &self.raft, &call, &node).await
    }

    async fn propose(&self, from: NodeId, cmd: Command) -> Result<(), String> {
        // Only a full node has records to write; a witness never proposes.
        if self.shared.cfg.kind_of(from) != MemberKind::Full {
            return Err(format!("node {from} is not a full member: writes refused"));
        }
        propose_with(&self.shared, &self.raft, cmd)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
