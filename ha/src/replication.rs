//! What the engine gets from the HA pair (`engine::replication::Replication`): the record
//! writer (`writer`), the active role as "serving", the lease for the decision-time check,
//! the control-socket commands (`svi ha status|promote`), and role changes posted as
//! alarms. The binary only calls `start` (a full node) or `witness`.

use std::sync::Arc;

use engine::alarm::Webhook;
use engine::replication::{
    BoxFuture, HaCommandError, HaControl, HaStatus, Replication, ServingLease,
};
use tokio::sync::{broadcast, watch};

use crate::config::HaConfig;
use crate::error::HaError;
use crate::node::HaNode;
use crate::role::Lease;
use crate::types::Role;
use crate::writer::{ReplicatedWriter, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the replicated state: {0}")]
    Node(#[from] HaError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("ha.node_id {0} is not a `witness` member in ha.members")]
    NotWitness(u64),
}

/// Raises every role change of `node` as an alarm: the node already logs it at warn; this
/// posts it to the webhook, if any. The webhook sends from its own task, so a slow receiver
/// never holds a role change (the role watch is updated before the event is sent).
fn forward_alarms(node: &HaNode, webhook: Option<Webhook>) {
    let Some(webhook) = webhook else { return };
    let mut events = node.events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => webhook.send(serde_json::json!({
                    "node": ev.node,
                    "from": ev.from,
                    "to": ev.to,
                    "term": ev.term,
                    "leader": ev.leader,
                    "at": ev.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alarm webhook: role events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// The lease as the engine's decision-time check sees it.
struct LeaseCheck(Arc<Lease>);

impl ServingLease for LeaseCheck {
    fn valid_now(&self) -> bool {
        self.0.valid_now()
    }
}

struct Control(Arc<HaNode>);

fn command_error(e: HaError) -> HaCommandError {
    match e {
        HaError::NotActive { role, leader } => HaCommandError::NotActive { role, leader },
        HaError::NotAllowed(reason) | HaError::Promote(reason) => HaCommandError::Refused(reason),
        other => HaCommandError::Unavailable(other.to_string()),
    }
}

impl HaControl for Control {
    fn status(&self) -> BoxFuture<'_, Result<HaStatus, HaCommandError>> {
        Box::pin(async move { self.0.status().await.map_err(command_error) })
    }

    fn promote(&self, force: bool) -> BoxFuture<'_, Result<(), HaCommandError>> {
        Box::pin(async move { self.0.promote(force).await.map_err(command_error) })
    }
}

/// The engine's view of the node's role: `true` only while Active.
fn serving(node: &HaNode) -> watch::Receiver<bool> {
    let mut roles = node.role();
    let (tx, rx) = watch::channel(*roles.borrow() == Role::Active);
    tokio::spawn(async move {
        while roles.changed().await.is_ok() {
            let active = *roles.borrow_and_update() == Role::Active;
            tx.send_replace(active);
        }
    });
    rx
}

/// Starts the node's raft member on the engine database, its recording copier and its
/// writer (which commits what the previous run left in the spool), and returns what the
/// engine needs.
pub async fn start(
    cfg: HaConfig,
    storage: engine::storage::Storage,
    alarms: Option<Webhook>,
) -> Result<(Arc<HaNode>, Replication), StartError> {
    let data_dir = cfg.data_dir.clone();
    let node = Arc::new(HaNode::start_with_storage(cfg, storage).await?);
    forward_alarms(&node, alarms);
    // Recordings are copied between the full nodes in the background (see docs/ha.md).
    node.copy_recordings();
    let writer = ReplicatedWriter::start(node.clone(), &data_dir)?;
    let replication = Replication {
        writer,
        active: serving(&node),
        lease: Some(Arc::new(LeaseCheck(node.lease()))),
        ha: Some(Arc::new(Control(node.clone()))),
        // The binary sets it from `[ha] call_survival` (`settings::call_survival`).
        call_survival: false,
    };
    Ok((node, replication))
}

/// The witness: a voter with no telephony, only the control socket for `svi ha status`.
pub async fn witness(cfg: HaConfig, alarms: Option<Webhook>) -> Result<Arc<HaNode>, StartError> {
    if !cfg.is_witness() {
        return Err(StartError::NotWitness(cfg.node_id));
    }
    let data_dir = cfg.data_dir.clone();
    let node = Arc::new(HaNode::start(cfg).await?);
    forward_alarms(&node, alarms);
    let handle = engine::EngineHandle::witness(Arc::new(Control(node.clone())));
    tokio::spawn(engine::control::serve(data_dir, handle));
    Ok(node)
}
