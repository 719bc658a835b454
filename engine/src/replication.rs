//! What the engine needs from replication, without naming it: a writer for durable
//! records and whether this node may take calls. The binary wires the HA pair (openraft, in
//! the `ha` crate) behind these; `Engine::start` alone uses the local database and is
//! always active (tests of the engine on its own).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::storage::{CallRecord, Storage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A durable write that was not acknowledged: nothing was stored (or nothing can be
/// promised), and the caller still holds the data.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write failed: {0}")]
    Failed(String),
}

/// Durable writes of the engine (call records, ACD events, recording index...). `Ok` means
/// stored durably: committed, or kept on disk until it can be (a crash loses nothing).
pub trait RecordWriter: Send + Sync + 'static {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), WriteError>>;
    /// Upserts a JSON document in a named collection (ACD events, and the kinds that have
    /// no typed command yet).
    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), WriteError>>;
    /// Live state that a newer write replaces (a call's replica, `call::survival`):
    /// upserts the document (`Some`) or removes it (`None`), **committed now or not at
    /// all**. Never spooled: a write kept and committed later could land after a newer
    /// one of another node (an adopted call's claim) and undo it.
    fn write_live(
        &self,
        collection: String,
        key: String,
        value: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>>;
}

/// The HA commands of the control surface (`svi ha status|promote`, the admin API),
/// served by the `ha` crate's node.
pub trait HaControl: Send + Sync + 'static {
    fn status(&self) -> BoxFuture<'_, Result<HaStatus, HaCommandError>>;
    fn promote(&self, force: bool) -> BoxFuture<'_, Result<(), HaCommandError>>;
}

/// Why an HA command failed, as the control surface tells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HaCommandError {
    /// Only the active node (or the leader) can do this.
    #[error("this node is {role}, not active (leader: {leader:?})")]
    NotActive { role: Role, leader: Option<u64> },
    /// The command was understood and refused (a promotion that would lose data...).
    #[error("{0}")]
    Refused(String),
    /// The node could not answer (raft stopped, storage failed...).
    #[error("{0}")]
    Unavailable(String),
}

/// What a member of the HA pair is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    /// A full node: telephony, database, may become active.
    #[default]
    Full,
    /// A tie-breaking voter without telephony; never active.
    Witness,
}

/// The role a node publishes to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Raft leader with a valid lease: registers the SIP user, takes calls, accepts writes.
    Active,
    /// A full member following the active node: answers INVITE with 503, stays unregistered.
    Standby,
    /// Was active and lost its lease or quorum: stop calls, unregister, until it sees a leader.
    Fenced,
    /// The tie-breaking voter (never takes calls).
    Witness,
    /// Not (yet) a voting member: first start, or catching up before becoming one.
    Joining,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Fenced => "fenced",
            Role::Witness => "witness",
            Role::Joining => "joining",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `svi ha status`: a node's view of the pair. Node ids are the configured `ha.node_id`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaStatus {
    pub node: u64,
    pub role: Role,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Role changes since this process started (alarm counter).
    pub role_changes: u64,
    /// When the current role was taken (or the process started, if it never changed).
    pub role_since: chrono::DateTime<chrono::Utc>,
    pub members: Vec<MemberStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: u64,
    pub kind: MemberKind,
    /// Votes in the current membership (false: learner, or configured but not a member).
    pub voter: bool,
    pub cluster_addr: String,
    pub sip_addr: Option<String>,
    /// Last log index known replicated to it (reported by the leader only).
    pub matched_index: Option<u64>,
}

/// The active node's lease, checked against the monotonic clock when a call is taken.
pub trait ServingLease: Send + Sync + 'static {
    fn valid_now(&self) -> bool;
}

/// How the engine writes and whether it serves.
#[derive(Clone)]
pub struct Replication {
    pub writer: Arc<dyn RecordWriter>,
    /// `true` while this node is the active one (takes calls, registers its trunks).
    pub active: watch::Receiver<bool>,
    /// With HA: the lease behind `active`. A node that was frozen (SIGSTOP, VM pause) past
    /// its lease resumes with `active` still `true` until the HA monitor runs again; the
    /// lease read at the instant of the decision says no at once.
    pub lease: Option<Arc<dyn ServingLease>>,
    /// With HA: `svi ha status|promote` (the witness serves these alone).
    pub ha: Option<Arc<dyn HaControl>>,
    /// `[ha] call_survival`: calls in progress are replicated, and a node that becomes
    /// active adopts them (`call::survival`).
    pub call_survival: bool,
}

impl Replication {
    /// Whether to take a call now: active, and (with HA) within the lease.
    pub fn serving(&self) -> Serving {
        Serving {
            active: self.active.clone(),
            lease: self.lease.clone(),
        }
    }
}

/// The decision-time view of `Replication::active` and its lease.
#[derive(Clone)]
pub struct Serving {
    pub active: watch::Receiver<bool>,
    lease: Option<Arc<dyn ServingLease>>,
}

impl Serving {
    /// Serving as `active` says, without a lease (a node on its own, tests).
    pub fn new(active: watch::Receiver<bool>) -> Serving {
        Serving {
            active,
            lease: None,
        }
    }

    pub fn now(&self) -> bool {
        *self.active.borrow() && self.lease.as_ref().is_none_or(|l| l.valid_now())
    }
}

/// Writes straight to the local database (no replication).
pub struct LocalWriter(pub Storage);

impl RecordWriter for LocalWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async move {
            self.0
                .insert_call(&record)
                .await
                .map_err(|e| WriteError::Failed(e.to_string()))
        })
    }

    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async move {
            self.0
                .put_doc(&collection, &key, &value.to_string())
                .await
                .map_err(|e| WriteError::Failed(e.to_string()))
        })
    }

    fn write_live(
        &self,
        collection: String,
        key: String,
        value: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async move {
            let done = match value {
                Some(v) => self.0.put_doc(&collection, &key, &v.to_string()).await,
                None => self.0.delete_doc(&collection, &key).await,
            };
            done.map_err(|e| WriteError::Failed(e.to_string()))
        })
    }
}

impl Replication {
    /// A node on its own: local writes, always active.
    pub fn local(storage: Storage) -> Replication {
        let (tx, active) = watch::channel(true);
        // The sender lives as long as the process: the value never changes.
        std::mem::forget(tx);
        Replication {
            writer: Arc::new(LocalWriter(storage)),
            active,
            lease: None,
            ha: None,
            call_survival: false,
        }
    }
}
