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
}

/// HA commands the control socket offers (`svi ha status|promote`).
pub trait HaControl: Send + Sync + 'static {
    fn status(&self) -> BoxFuture<'_, Result<serde_json::Value, String>>;
    fn promote(&self, force: bool) -> BoxFuture<'_, Result<(), String>>;
}

/// How the engine writes and whether it serves.
#[derive(Clone)]
pub struct Replication {
    pub writer: Arc<dyn RecordWriter>,
    /// `true` while this node is the active one (takes calls, registers its trunks).
    pub active: watch::Receiver<bool>,
    pub control: Option<Arc<dyn HaControl>>,
}

/// Writes straight to the local database (no replication).
pub struct LocalWriter(pub Storage);

impl RecordWriter for LocalWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.insert_call(&record).await.map_err(|e| e.to_string()) })
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
            control: None,
        }
    }
}
