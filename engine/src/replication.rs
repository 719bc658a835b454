//! What the engine needs from replication, without naming it: a writer for durable
//! records and whether this node may take calls. The binary wires the HA pair (openraft, in
//! the `ha` crate) behind these; `Engine::start` alone uses the local database and is
//! always active (tests of the engine on its own).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use crate::storage::{CallRecord, Storage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Durable writes of the engine (call records now; configuration, agents, recordings...).
pub trait RecordWriter: Send + Sync + 'static {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), String>>;
    /// Upserts a JSON document in a named collection (ACD events, and the kinds that have
    /// no typed command yet).
    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// HA commands the control socket offers (`svi ha status|promote`).
pub trait HaControl: Send + Sync + 'static {
    fn status(&self) -> BoxFuture<'_, Result<serde_json::Value, String>>;
    fn promote(&self, force: bool) -> BoxFuture<'_, Result<(), String>>;
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
    pub fn now(&self) -> bool {
        *self.active.borrow() && self.lease.as_ref().is_none_or(|l| l.valid_now())
    }
}

/// Writes straight to the local database (no replication).
pub struct LocalWriter(pub Storage);

impl RecordWriter for LocalWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.insert_call(&record).await.map_err(|e| e.to_string()) })
    }

    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .put_doc(&collection, &key, &value.to_string())
                .await
                .map_err(|e| e.to_string())
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
        }
    }
}
