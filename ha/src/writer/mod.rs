//! The replicated writer: how call records, ACD events, recording index entries and every
//! other durable write of the engine reach the raft log, and what "acknowledged" means.
//!
//! A write is acknowledged (its future resolves `Ok`) only once it is either **committed**
//! (a quorum stored it) or **spooled** (appended to `DATA_DIR/write-spool.log` and fsynced,
//! see `spool`). Nothing acknowledged lives only in memory, so a `kill -9` or a power cut
//! at any moment loses no acknowledged write.
//!
//! - On the active node with an empty spool, a write is proposed at once and acknowledged at
//!   commit (raft batches concurrent proposals into one append).
//! - Otherwise (standby or fenced node finishing its calls, no quorum, a leader change, a
//!   proposal that timed out, or older writes still spooled, which keeps their order) the
//!   write is spooled and acknowledged.
//! - A drain task commits the spooled writes in order: here when this node is active, else
//!   forwarded to the leader over the cluster link (`HaNode::commit`). It retries with a
//!   growing delay (0.1 s doubling to 5 s, at once on a role change) for as long as it takes;
//!   a write leaves the spool only once committed. At start, the spool left by the previous
//!   run is replayed the same way.
//!
//! Commands are idempotent (a call record is keyed by its id, a document by its key), so a
//! write that timed out but was committed anyway, then spooled and committed again, changes
//! nothing.

mod spool;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::replication::{BoxFuture, RecordWriter, WriteError};
use engine::storage::CallRecord;
use tokio::sync::Notify;

use crate::node::HaNode;
use crate::types::{Command, Role};

use spool::Spool;
pub use spool::SpoolError;

/// The spool's file name in the data directory.
pub const SPOOL_FILE: &str = "write-spool.log";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The engine's `RecordWriter` on an HA node (a one-voter cluster included).
pub struct ReplicatedWriter {
    node: Arc<HaNode>,
    // A std mutex: the spool does blocking file I/O (fsync) inside `spawn_blocking`, one
    // append at a time; never held across an await.
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
}

impl ReplicatedWriter {
    /// Opens the spool in `data_dir` and starts draining what it holds (a previous run's
    /// writes first).
    pub fn start(node: Arc<HaNode>, data_dir: &Path) -> Result<Arc<ReplicatedWriter>, SpoolError> {
        let spool = Spool::open(&data_dir.join(SPOOL_FILE))?;
        let replayed = spool.pending().len();
        if replayed > 0 {
            tracing::warn!(
                writes = replayed,
                "writes acknowledged but not committed before the last stop: committing them now"
            );
        }
        let writer = Arc::new(ReplicatedWriter {
            node,
            spool: Arc::new(Mutex::new(spool)),
            wake: Arc::new(Notify::new()),
        });
        tokio::spawn(drain(
            writer.node.clone(),
            writer.spool.clone(),
            writer.wake.clone(),
        ));
        Ok(writer)
    }

    /// Writes spooled and not committed yet.
    pub fn spooled(&self) -> usize {
        self.spool.lock().map(|s| s.pending().len()).unwrap_or(0)
    }

    /// Committed or spooled when `Ok` (see the module documentation).
    pub async fn write(&self, command: Command) -> Result<(), WriteError> {
        let direct = *self.node.role().borrow() == Role::Active
            && self.spool.lock().map(|s| s.is_empty()).unwrap_or(false);
        if direct {
            match self.node.propose(command.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::info!(what = ?command, error = %e, "write not committed at once: spooled")
                }
            }
        }
        let spool = self.spool.clone();
        let what = format!("{command:?}");
        let pushed = tokio::task::spawn_blocking(move || match spool.lock() {
            Ok(mut s) => s.push(command).map(|_| ()),
            Err(_) => Err(SpoolError::Io {
                path: SPOOL_FILE.into(),
                source: std::io::Error::other("spool lock poisoned"),
            }),
        })
        .await
        .map_err(|e| WriteError::Failed(format!("spooling {what}: {e}")))?;
        pushed.map_err(|e| WriteError::Failed(format!("spooling {what}: {e}")))?;
        self.wake.notify_one();
        Ok(())
    }
}

impl RecordWriter for ReplicatedWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(self.write(Command::InsertCall(Box::new(record))))
    }

    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(self.write(Command::Put {
            collection,
            key,
            value,
        }))
    }
}

/// Commits the spooled writes in order, for as long as it takes.
async fn drain(node: Arc<HaNode>, spool: Arc<Mutex<Spool>>, wake: Arc<Notify>) {
    let mut roles = node.role();
    let mut delay = FIRST_RETRY;
    loop {
        let pending = spool.lock().map(|s| s.pending()).unwrap_or_default();
        if pending.is_empty() {
            delay = FIRST_RETRY;
            wake.notified().await;
            continue;
        }
        let mut stuck = None;
        for (seq, command) in pending {
            let what = format!("{command:?}");
            match node.commit(command).await {
                Ok(_) => {
                    let spool = spool.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        spool.lock().map(|mut s| s.done(seq)).ok()
                    })
                    .await;
                    if let Ok(Some(Err(e))) = done {
                        tracing::warn!(error = %e, "write committed, spool not updated (it will be committed again, harmlessly)");
                    }
                    tracing::debug!(%what, "spooled write committed");
                }
                Err(e) => {
                    stuck = Some((what, e));
                    break;
                }
            }
        }
        let Some((what, e)) = stuck else {
            delay = FIRST_RETRY;
            continue;
        };
        tracing::debug!(%what, error = %e, retry_in = ?delay, "spooled write not committed yet");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            r = roles.changed() => if r.is_err() { return },
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}
