//! Calls that outlive their node (`[ha] call_survival`): the active node replicates each
//! call's [`CallSnapshot`] through the record writer (the raft log on a pair), and a node
//! that becomes active rebuilds the calls it finds there from their snapshots.
//!
//! - What is written: one document per call in collection [`COLLECTION`], keyed by the
//!   call's id: a [`ReplicaDoc`] (the node serving the call, its snapshot, and the failover
//!   that brought it there, if any). A call is written once answered, at each change of
//!   phase at once, otherwise at most every `refresh` (`pacer`); it is removed when it ends
//!   (from its `Ending` phase on it cannot be adopted).
//! - How: each call's driver hands its writes to one publisher task per node, which merges
//!   the writes waiting for the same call (`backlog`) and sends each round's writes
//!   together, so the writer's group commit puts them in one log entry.
//! - Who writes: only the active node (the lease checked at each round). A node that is
//!   not active any more writes nothing: once another node has adopted a call, the old
//!   one's writes would otherwise overwrite the new owner's document.
//! - Adoption ([`adoptable`]): a node that becomes active takes every replicated call that
//!   it does not run itself, claims it (the document now names this node, with the
//!   failover: node before, node after, when), and rebuilds its core with
//!   `CallCore::restore`.
//! - No double service ([`moved_away`]): a node that is no longer active reads the
//!   document of each call it still runs; a call that names another node was adopted
//!   there, and this node must not act on it again.

mod backlog;
mod guard;
mod pacer;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use backlog::{Backlog, Update};
pub use pacer::{Pace, Pacer};

use super::core::{CallCore, CallSnapshot};
use super::live::LiveCalls;
use crate::replication::{RecordWriter, Serving};
use crate::storage::{Failover, Storage};

/// The replicated documents' collection.
pub const COLLECTION: &str = "live_calls";

/// How often a call that changed without changing phase is written again, at most.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3);

/// One call as replicated: the node serving it and its snapshot (which names the
/// failover that brought it there, if any: `CallSnapshot::failover`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaDoc {
    /// The node serving the call (`[node] name`).
    pub node: String,
    pub snapshot: CallSnapshot,
}

/// The node's publisher of call replicas and its guard; cheap to clone (one per call
/// driver).
#[derive(Clone)]
pub struct Survival {
    node: String,
    refresh: Duration,
    tx: mpsc::UnboundedSender<(String, Update)>,
    /// The calls this node runs that another node adopted (`guard`).
    moved: watch::Receiver<BTreeSet<String>>,
}

impl Survival {
    /// Starts the publisher, which writes through `writer` while `serving` says this node is
    /// the active one, and the guard, which reads `storage` while it is not.
    pub fn start(
        writer: Arc<dyn RecordWriter>,
        storage: Storage,
        serving: Serving,
        live: LiveCalls,
        node: String,
        refresh: Duration,
    ) -> Survival {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish(writer, serving.clone(), rx));
        let (moved_tx, moved) = watch::channel(BTreeSet::new());
        tokio::spawn(guard::run(storage, serving, live, node.clone(), moved_tx));
        Survival {
            node,
            refresh,
            tx,
            moved,
        }
    }

    /// The replica of call `call`, for its driver.
    pub fn replica(&self, call: &str) -> Replica {
        Replica {
            survival: self.clone(),
            call: call.to_string(),
            pacer: Pacer::new(self.refresh),
            written: false,
        }
    }
}

/// One call's replica: its driver tells it after each input, and when its deadline passed.
pub struct Replica {
    survival: Survival,
    call: String,
    pacer: Pacer,
    /// A snapshot was handed to the publisher.
    written: bool,
}

impl Replica {
    /// After an input was fed to `core` and its outputs drained.
    pub fn handle_input(&mut self, now: Instant, core: &CallCore) {
        let pace = self.pacer.handle_input(now, core.phase_mark());
        self.apply(now, pace, core);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pacer.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant, core: &CallCore) {
        let pace = self.pacer.handle_timeout(now);
        self.apply(now, pace, core);
    }

    /// Resolves once another node adopted this call (it was replicated, and this node,
    /// not active, finds its replica naming another node or gone): the driver lets the
    /// call go without signalling. Never resolves for a call that was never replicated.
    pub async fn moved(&mut self) {
        loop {
            if self.written && self.survival.moved.borrow_and_update().contains(&self.call) {
                return;
            }
            if self.survival.moved.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn apply(&mut self, now: Instant, pace: Pace, core: &CallCore) {
        let update = match pace {
            Pace::Wait => return,
            Pace::Remove => Update::Remove,
            Pace::Write => {
                self.written = true;
                let doc = ReplicaDoc {
                    node: self.survival.node.clone(),
                    snapshot: core.snapshot(now),
                };
                match serde_json::to_value(&doc) {
                    Ok(v) => Update::Put(v),
                    Err(e) => {
                        tracing::warn!(call = %core.id(), error = %e, "call snapshot not serialisable; not replicated");
                        return;
                    }
                }
            }
        };
        // The publisher lives as long as the engine; a call outliving it writes nothing.
        let _ = self.survival.tx.send((self.call.clone(), update));
    }
}

/// The publisher: merges the waiting writes by call and sends each round's together.
async fn publish(
    writer: Arc<dyn RecordWriter>,
    serving: Serving,
    mut rx: mpsc::UnboundedReceiver<(String, Update)>,
) {
    let mut backlog = Backlog::default();
    loop {
        if backlog.is_empty() {
            match rx.recv().await {
                Some((call, update)) => backlog.push(call, update),
                None => return,
            }
        }
        while let Ok((call, update)) = rx.try_recv() {
            backlog.push(call, update);
        }
        let round = backlog.take();
        if !serving.now() {
            tracing::debug!(calls = round.len(), "not active: call replicas not written");
            continue;
        }
        let mut writes = JoinSet::new();
        for (call, update) in round {
            let writer = writer.clone();
            writes.spawn(async move {
                let value = match update {
                    Update::Put(doc) => Some(doc),
                    Update::Remove => None,
                };
                let done = writer
                    .write_live(COLLECTION.into(), call.clone(), value)
                    .await;
                if let Err(e) = done {
                    tracing::warn!(call = %call, error = %e, "call replica not written");
                }
            });
        }
        while writes.join_next().await.is_some() {}
    }
}

/// A replicated call this node takes over, already claimed (its document names this node
/// and the failover).
#[derive(Debug, Clone)]
pub struct Adoption {
    pub doc: ReplicaDoc,
}

/// The replicated calls (`docs`: key and JSON text, as stored) that this node (`me`), now
/// active, adopts at `wall`: every call it does not run itself (`running`). An unreadable
/// document is logged and skipped.
pub fn adoptable(
    docs: Vec<(String, String)>,
    running: impl Fn(&str) -> bool,
    me: &str,
    wall: SystemTime,
) -> Vec<Adoption> {
    let at = chrono::DateTime::<chrono::Utc>::from(wall);
    docs.into_iter()
        .filter(|(call, _)| !running(call))
        .filter_map(|(call, text)| match serde_json::from_str::<ReplicaDoc>(&text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                tracing::warn!(call = %call, error = %e, "call replica unreadable; not adopted");
                None
            }
        })
        .map(|mut doc| {
            doc.snapshot.failover = Some(Failover {
                from: std::mem::replace(&mut doc.node, me.to_string()),
                to: me.to_string(),
                at,
                media_gap_ms: None,
            });
            Adoption { doc }
        })
        .collect()
}

/// Whether a call this node runs was adopted by another node (`doc`: its replicated
/// document, as stored here). A call with no document was never replicated, or has
/// ended: it stays with the node that runs it.
pub fn moved_away(doc: Option<&str>, me: &str) -> bool {
    let Some(text) = doc else { return false };
    match serde_json::from_str::<ReplicaDoc>(text) {
        Ok(doc) => doc.node != me,
        // Unreadable: fail closed, this node does not act on a call it cannot place.
        Err(_) => true,
    }
}
