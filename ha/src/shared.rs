//! `Shared`: the node's state that outlives a raft incarnation (configuration, the engine
//! database, the log file, the network, the role publisher), and the one way to propose a
//! write (`propose_with`). The node, the planned switch, bootstrap and the recording copier
//! all work on it; it depends on none of them.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use engine::storage::Storage;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;

use crate::config::HaConfig;
use crate::error::HaError;
use crate::log_store::LogStore;
use crate::network::client::Network;
use crate::network::NetState;
use crate::role::Publisher;
use crate::types::{Command, NodeId, Raft, Response, Role};

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
    match tokio::time::timeout(ttl, raft.client_write(cmd)).await {
        Err(_) => Err(HaError::Timeout(ttl)),
        Ok(Ok(r)) => Ok(r.data),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(HaError::NotActive {
                role: shared.role(),
                leader: f.leader_id,
            })
        }
        Ok(Err(e)) => Err(HaError::Raft(e.to_string())),
    }
}
