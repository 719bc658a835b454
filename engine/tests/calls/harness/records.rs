//! The harness's record writer: call records and documents kept in memory, where a test
//! waits for them. The engine's SQLite storage answers from its own threads, and virtual
//! time jumps whenever the runtime waits on another thread; records written here keep a
//! whole call on the runtime, so a scenario is deterministic. (Storage is tested on its
//! own and by the end-to-end tests.)

use std::time::Duration;

use engine::replication::{BoxFuture, RecordWriter, WriteError};
use engine::storage::CallRecord;
use tokio::sync::watch;

#[derive(Default, Clone)]
pub struct Written {
    pub calls: Vec<CallRecord>,
    pub docs: Vec<(String, String, serde_json::Value)>,
    /// Documents removed (collection, key), in order.
    pub deleted: Vec<(String, String)>,
}

pub struct MemoryWriter {
    tx: watch::Sender<Written>,
}

impl MemoryWriter {
    pub fn new() -> (MemoryWriter, watch::Receiver<Written>) {
        let (tx, rx) = watch::channel(Written::default());
        (MemoryWriter { tx }, rx)
    }
}

impl RecordWriter for MemoryWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), WriteError>> {
        self.tx.send_modify(|w| w.calls.push(record));
        Box::pin(async { Ok(()) })
    }

    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        self.tx
            .send_modify(|w| w.docs.push((collection, key, value)));
        Box::pin(async { Ok(()) })
    }

    fn write_live(
        &self,
        collection: String,
        key: String,
        value: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        self.tx.send_modify(|w| match value {
            Some(v) => w.docs.push((collection, key, v)),
            None => w.deleted.push((collection, key)),
        });
        Box::pin(async { Ok(()) })
    }
}

/// Waits (virtual time) until `n` call records are written; returns them all.
pub async fn calls(
    rx: &mut watch::Receiver<Written>,
    n: usize,
    within: Duration,
) -> Vec<CallRecord> {
    let found = {
        let wait = rx.wait_for(|w| w.calls.len() >= n);
        match tokio::time::timeout(within, wait).await {
            Ok(Ok(w)) => Some(w.calls.clone()),
            _ => None,
        }
    };
    found.unwrap_or_else(|| {
        panic!(
            "{n} call records not written within {within:?}: {:#?}",
            rx.borrow().calls
        )
    })
}
