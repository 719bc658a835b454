//! The replicated vocabulary: node ids and infos, the commands every durable write becomes,
//! their responses, the roles a node publishes, and openraft's type configuration.
//!
//! Commands are stored in the raft log as JSON. JSON is self-describing, so a record type
//! that gains an optional field (`#[serde(default)]`) still reads entries written by an older
//! version, which a positional binary format would not. An older node that meets a command
//! kind it does not know fails loudly instead of skipping it (skipping would make its
//! database silently diverge), so a new kind is written only once every member reads it:
//! `log_format` (each member advertises the newest log format it reads).

use std::fmt;

use engine::storage::CallRecord;
use serde::{Deserialize, Serialize};

use crate::snapshot::SnapshotFile;

/// A node's identity in the cluster (configured, stable across restarts).
pub type NodeId = u64;

pub use engine::replication::{MemberKind, Role};

/// What the cluster knows about a member (stored in membership log entries).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` of the cluster (raft) port.
    pub cluster_addr: String,
    /// SIP address, for status pages only.
    #[serde(default)]
    pub sip_addr: Option<String>,
    #[serde(default)]
    pub kind: MemberKind,
}

/// A durable change of the engine's state. Every write goes through the raft log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A finished call's record (idempotent: keyed by the call id). Boxed: a record is
    /// several times larger than the other variants.
    InsertCall(Box<CallRecord>),
    /// Generic, forward-compatible form for the kinds that have no typed command yet
    /// (configuration, agents, queues, recording index, audit log, live ACD state): upsert
    /// a JSON document in a named collection.
    Put {
        collection: String,
        key: String,
        value: serde_json::Value,
    },
    /// Removes a document written with `Put`.
    Delete { collection: String, key: String },
    /// Several writes in one log entry, applied in order in one transaction: the writer's
    /// group commit (`writer::group`). Proposed only when more than one write waits, so a
    /// lone write keeps its own kind, and only once every member reads it
    /// (`log_format::BATCH`); before that, its writes are proposed one entry each.
    Batch(Vec<Command>),
}

impl Command {
    /// The single writes of this command, in order: itself, or a batch's (flattened).
    pub(crate) fn into_writes(self) -> Vec<Command> {
        match self {
            Command::Batch(commands) => commands
                .into_iter()
                .flat_map(Command::into_writes)
                .collect(),
            single => vec![single],
        }
    }
}

impl fmt::Debug for Command {
    /// Only the kind and the key: call records hold personal data (STYLE.md §12).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::InsertCall(r) => write!(f, "InsertCall({})", r.id),
            Command::Put {
                collection, key, ..
            } => write!(f, "Put({collection}/{key})"),
            Command::Delete { collection, key } => write!(f, "Delete({collection}/{key})"),
            Command::Batch(commands) => write!(f, "Batch({} writes)", commands.len()),
        }
    }
}

/// What applying a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Deleted {
        existed: bool,
    },
    /// Blank and membership entries.
    Internal,
}

/// The state machine's answer to one log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The entry's log index.
    pub index: u64,
    pub outcome: Outcome,
}

/// A role change, for alarms (logged at warn as well).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEvent {
    pub node: NodeId,
    pub from: Role,
    pub to: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// When the change was published (wall clock).
    pub at: chrono::DateTime<chrono::Utc>,
}

openraft::declare_raft_types!(
    /// openraft's type configuration for svi.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type Raft = openraft::Raft<TypeConfig>;
