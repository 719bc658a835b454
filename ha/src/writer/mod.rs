//! The replicated writer: how call records, ACD events, recording index entries and every
//! other durable write of the engine reach the raft log, and what "acknowledged" means.
//!
//! A write is acknowledged (its future resolves `Ok`) only once it is either **committed**
//! (a quorum stored it) or **spooled** (appended to `DATA_DIR/write-spool.log` and fsynced,
//! see `spool`). Nothing acknowledged lives only in memory, so a `kill -9` or a power cut
//! at any moment loses no acknowledged write.
//!
//! - On the active node with an empty spool, a write is proposed and acknowledged at commit.
//!   One proposal is in flight at a time; the writes that arrive meanwhile go out together
//!   in the next one (group commit, `group`): openraft appends and fsyncs one proposal at a
//!   time, so a proposal per write would cap the write rate at the disk's fsync rate.
//! - Otherwise (standby or fenced node finishing its calls, no quorum, a leader change, a
//!   proposal that timed out, or older writes still spooled, which keeps their order) the
//!   write is spooled and acknowledged.
//! - A drain task commits the spooled writes in order, in batches: here when this node is active, else
//!   forwarded to the leader over the cluster link (`HaNode::commit`). It retries with a
//!   growing delay (0.1 s doubling to 5 s, at once on a role change) for as long as it takes;
//!   a write leaves the spool only once committed. At start, the spool left by the previous
//!   run is replayed the same way.
//!
//! Live state (`RecordWriter::write_live`: a call's replica) is the exception: proposed
//! only on the active node, acknowledged at commit, and on any failure dropped, never
//! spooled (a newer write replaces it; a late one could undo another node's newer write).
//!
//! Commands are idempotent (a call record is keyed by its id, a document by its key), so a
//! write that timed out but was committed anyway, then spooled and committed again, changes
//! nothing.

mod group;
mod spool;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::replication::{BoxFuture, RecordWriter, WriteError};
use engine::storage::CallRecord;
use tokio::sync::{oneshot, Notify};

use crate::error::HaError;
use crate::node::HaNode;
use crate::types::{Command, Role};

pub(crate) use group::MAX_PAYLOAD_ENTRIES;
use group::{Group, MAX_BATCH};
use spool::Spool;
pub use spool::SpoolError;

/// The spool's file name in the data directory.
pub const SPOOL_FILE: &str = "write-spool.log";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How a write proposed in a batch learns the batch's outcome.
type Ticket = oneshot::Sender<Result<(), Arc<HaError>>>;

/// The engine's `RecordWriter` on an HA node (a one-voter cluster included).
pub struct ReplicatedWriter {
    node: Arc<HaNode>,
    /// Writes waiting for the committer's next proposal (a std mutex: never held across an
    /// await).
    group: Arc<Mutex<Group<Ticket>>>,
    proposed: Arc<Notify>,
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
            group: Arc::new(Mutex::new(Group::new(MAX_BATCH))),
            proposed: Arc::new(Notify::new()),
            spool: Arc::new(Mutex::new(spool)),
            wake: Arc::new(Notify::new()),
        });
        let node = writer.node.clone();
        tokio::spawn(commit_groups(
            move |command| {
                let node = node.clone();
                async move { node.propose(command).await.map(|_| ()) }
            },
            writer.group.clone(),
            writer.proposed.clone(),
        ));
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
            match self.propose(command.clone()).await {
                Ok(()) => return Ok(()),
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

impl ReplicatedWriter {
    /// Proposes `command` with the writes waiting beside it; `Ok` once committed.
    async fn propose(&self, command: Command) -> Result<(), Arc<HaError>> {
        let (tx, rx) = oneshot::channel();
        self.group
            .lock()
            .map_err(|_| Arc::new(HaError::Raft("write queue lock poisoned".into())))?
            .push(command, tx);
        self.proposed.notify_one();
        rx.await
            .map_err(|_| Arc::new(HaError::Raft("the committer stopped".into())))?
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

    fn write_live(
        &self,
        collection: String,
        key: String,
        value: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        let command = match value {
            Some(value) => Command::Put {
                collection,
                key,
                value,
            },
            None => Command::Delete { collection, key },
        };
        Box::pin(async move {
            if *self.node.role().borrow() != Role::Active {
                return Err(WriteError::Failed(
                    "not active: live state not written".into(),
                ));
            }
            self.propose(command)
                .await
                .map_err(|e| WriteError::Failed(format!("live state not committed: {e}")))
        })
    }
}

/// Proposes the waiting writes with `propose` (`HaNode::propose`: `Ok` once committed), one
/// batch in flight at a time (see `group`), and tells each write its batch's outcome: a
/// write is acknowledged only once the batch that holds it is committed, and a batch that
/// fails fails every write in it (each is then spooled by `write`).
async fn commit_groups<P, F>(propose: P, group: Arc<Mutex<Group<Ticket>>>, wake: Arc<Notify>)
where
    P: Fn(Command) -> F,
    F: Future<Output = Result<(), HaError>>,
{
    loop {
        let next = match group.lock() {
            Ok(mut g) => g.next_batch(),
            Err(_) => return,
        };
        let Some((command, tickets)) = next else {
            wake.notified().await;
            continue;
        };
        let outcome = propose(command).await.map_err(Arc::new);
        for ticket in tickets {
            let _ = ticket.send(outcome.clone());
        }
    }
}

/// Commits the spooled writes in order, in batches, for as long as it takes.
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
        let mut pending = pending.into_iter();
        loop {
            let (seqs, commands): (Vec<u64>, Vec<Command>) =
                pending.by_ref().take(MAX_BATCH).unzip();
            if seqs.is_empty() {
                break;
            }
            let command = group::combine(commands);
            let what = format!("{command:?}");
            match node.commit(command).await {
                Ok(_) => {
                    let spool = spool.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        let mut s = spool.lock().ok()?;
                        Some(s.done_all(seqs))
                    })
                    .await;
                    if let Ok(Some(Err(e))) = done {
                        tracing::warn!(error = %e, "write committed, spool not updated (it will be committed again, harmlessly)");
                    }
                    tracing::debug!(%what, "spooled writes committed");
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
