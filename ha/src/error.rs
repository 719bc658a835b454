//! `HaError`: what the node's operations can fail with.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::ConfigError;
use crate::state_machine::StateMachineError;
use crate::types::{NodeId, Role};

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] engine::storage::StorageError),
    #[error(transparent)]
    StateMachine(#[from] StateMachineError),
    #[error("raft log: {0}")]
    Log(String),
    #[error("cluster port {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("this node is {role}, not active (leader: {leader:?})")]
    NotActive { role: Role, leader: Option<NodeId> },
    #[error(
        "not committed within {0:?}; the write may still be applied (commands are idempotent)"
    )]
    Timeout(Duration),
    #[error("{0}")]
    NotAllowed(String),
    #[error("promotion failed: {0}")]
    Promote(String),
    #[error("forwarded to the leader: {0}")]
    Forwarded(String),
    #[error(transparent)]
    Tls(#[from] crate::network::tls::TlsError),
}
