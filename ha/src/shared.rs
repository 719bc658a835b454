//! `Shared`: the node's state that outlives a raft incarnation (configuration, the engine
//! database, the log file, the network, the role publisher), and the one way to propose a
//! write (`propose_with`). The node, the planned switch, bootstrap and the recording copier
//! all work on it; it depends on none of them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine::storage::Storage;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;

use crate::config::HaConfig;
use crate::error::HaError;
use crate::log_format::LogFormats;
use crate::log_store::LogStore;
use crate::network::client::Network;
use crate::network::NetState;
use crate::role::Publisher;
use crate::types::{Command, NodeId, NodeInfo, Raft, Response, Role};

/// What outlives an incarnation.
pub(crate) struct Shared {
    pub cfg: HaConfig,
    pub storage: Storage,
    pub log: LogStore,
    pub net: Arc<NetState>,
    pub network: Network,
    pub publisher: Arc<Publisher>,
    pub yielding: watch::Sender<bool>,
    pub yield_gen: AtomicU64,
    pub promoting: AtomicBool,
    pub started: Instant,
    /// The log format each member last advertised (`log_format`). A std mutex around a
    /// map: held for one read or update, never across an await.
    pub formats: Mutex<LogFormats>,
    /// The log format this node advertises: `log_format::CURRENT` (tests lower it to play
    /// a node of the previous release).
    pub advertised: AtomicU32,
}

impl Shared {
    pub(crate) fn role(&self) -> Role {
        *self.publisher.tx.borrow()
    }

    pub(crate) fn me(&self) -> NodeId {
        self.cfg.node_id
    }
}

/// Replicates a command through `raft` if this node is active (see `HaNode::propose`).
/// A batch is written as one entry only if every member reads batches (`log_format`);
/// otherwise its writes go one entry each, in order, and the answer is the last one's.
pub(crate) async fn propose_with(
    shared: &Shared,
    raft: &Raft,
    cmd: Command,
) -> Result<Response, HaError> {
    let role = shared.role();
    if role != Role::Active {
        let leader = raft.metrics().borrow().current_leader;
        return Err(HaError::NotActive { role, leader });
    }
    let ttl = shared.cfg.propose_timeout();
    if matches!(cmd, Command::Batch(_)) && !shared.batches_readable(raft) {
        return match tokio::time::timeout(ttl, propose_each(shared, raft, cmd.into_writes())).await
        {
            Err(_) => Err(HaError::Timeout(ttl)),
            Ok(r) => r,
        };
    }
    match tokio::time::timeout(ttl, raft.client_write(cmd)).await {
        Err(_) => Err(HaError::Timeout(ttl)),
        Ok(Ok(r)) => Ok(r.data),
        Ok(Err(RaftError::APIError(e))) => Err(write_error(shared, e)),
        Ok(Err(e)) => Err(HaError::Raft(e.to_string())),
    }
}

/// Proposes each write as its own entry, pipelined: all are handed to raft in order before
/// the first commit is awaited. `Ok` once every one is committed.
async fn propose_each(
    shared: &Shared,
    raft: &Raft,
    writes: Vec<Command>,
) -> Result<Response, HaError> {
    let mut pending = Vec::with_capacity(writes.len());
    for w in writes {
        let rx = raft
            .client_write_ff(w)
            .await
            .map_err(|e| HaError::Raft(e.to_string()))?;
        pending.push(rx);
    }
    let mut last = None;
    for rx in pending {
        match rx.await {
            Ok(Ok(r)) => last = Some(r.data),
            Ok(Err(e)) => return Err(write_error(shared, e)),
            Err(_) => return Err(HaError::Raft("raft dropped a proposal".into())),
        }
    }
    last.ok_or_else(|| HaError::Raft("an empty batch".into()))
}

fn write_error(shared: &Shared, e: ClientWriteError<NodeId, NodeInfo>) -> HaError {
    match e {
        ClientWriteError::ForwardToLeader(f) => HaError::NotActive {
            role: shared.role(),
            leader: f.leader_id,
        },
        e => HaError::Raft(e.to_string()),
    }
}
