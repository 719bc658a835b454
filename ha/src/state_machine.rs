//! The raft state machine: the engine database (`svi.db`) through `engine::storage`.
//!
//! - Apply: a batch of committed entries becomes one SQLite transaction that also moves
//!   `last_applied` (and the last membership). A crash leaves either the whole batch with its
//!   pointer or neither, so re-applying the log after a restart never applies twice.
//! - Snapshot: `VACUUM INTO` a new file, which carries its own `last_applied`, so the
//!   snapshot's metadata is read back from the copy rather than guessed while applies go on.
//! - Install: the received file is published as the current snapshot first, then copied
//!   into the database in one transaction (`Storage::install_snapshot_from`).
//! - Recovery at open: `svi.db` is written with `synchronous=NORMAL`, so an OS crash can take
//!   it back a few transactions. If it is now behind the current snapshot (whose entries may
//!   already be purged from the log), the snapshot is installed again before raft starts.

use std::path::Path;
use std::sync::Arc;

use engine::storage::raft::{ApplyItem, RaftApplied, RaftOp};
use engine::storage::Storage;
use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, Snapshot, StorageIOError};

use crate::snapshot::{SnapshotDir, SnapshotFile};
use crate::types::{
    Command, Entry, LogId, Outcome, Response, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error(transparent)]
    Storage(#[from] engine::storage::StorageError),
    #[error("snapshot directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("raft pointers in svi.db are unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

fn sm_read(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn sm_write(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

pub(crate) fn decode_applied(
    a: &RaftApplied,
) -> Result<(Option<LogId>, StoredMembership), serde_json::Error> {
    let applied = a
        .last_applied
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()?;
    let membership = a
        .last_membership
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()?;
    Ok((applied, membership.unwrap_or_default()))
}

/// The single writes of a command, in order: itself, or a batch's (flattened).
fn single_writes(command: &Command) -> Vec<&Command> {
    match command {
        Command::Batch(commands) => commands.iter().flat_map(single_writes).collect(),
        single => vec![single],
    }
}

/// The database operation of a single write (`text`: a `Put`'s value as JSON text).
fn op<'a>(command: &'a Command, text: Option<&'a str>) -> Option<RaftOp<'a>> {
    match command {
        Command::InsertCall(r) => Some(RaftOp::InsertCall(r.as_ref())),
        Command::Put {
            collection, key, ..
        } => Some(RaftOp::PutDoc {
            collection,
            key,
            value: text.unwrap_or("null"),
        }),
        Command::Delete { collection, key } => Some(RaftOp::DeleteDoc { collection, key }),
        // Flattened by `single_writes`.
        Command::Batch(_) => None,
    }
}

pub struct StateMachine {
    storage: Storage,
    snapshots: Arc<SnapshotDir>,
}

impl StateMachine {
    /// Opens the state machine on `storage` (the engine database in `data_dir`), restoring
    /// the current snapshot if the database is behind it.
    pub async fn open(
        storage: Storage,
        data_dir: &Path,
    ) -> Result<StateMachine, StateMachineError> {
        storage.prepare_raft().await?;
        let snapshots = Arc::new(SnapshotDir::open(data_dir)?);
        let (applied, _) = decode_applied(&storage.raft_applied().await?)?;
        if let Some((meta, file)) = snapshots.current().await? {
            if meta.last_log_id > applied {
                tracing::warn!(
                    snapshot = ?meta.last_log_id,
                    applied = ?applied,
                    "svi.db is behind the current snapshot; restoring it"
                );
                storage.install_snapshot_from(&file).await?;
            }
        }
        Ok(StateMachine { storage, snapshots })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.storage.raft_applied().await.map_err(sm_read)?;
        decode_applied(&a).map_err(sm_read)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Per entry, its single writes in order (a batch's flattened); none for blank and
        // membership entries. Put values as JSON text, kept alive while the items borrow them.
        let writes: Vec<Vec<&Command>> = entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(c) => single_writes(c),
                _ => Vec::new(),
            })
            .collect();
        let texts: Vec<Vec<Option<String>>> = writes
            .iter()
            .map(|ws| {
                ws.iter()
                    .map(|c| match c {
                        Command::Put { value, .. } => Some(value.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let mut items = Vec::with_capacity(entries.len());
        // The items of each entry (a batch entry has one per write, all with its log id).
        let mut spans = Vec::with_capacity(entries.len());
        for ((e, ws), ts) in entries.iter().zip(&writes).zip(&texts) {
            let log_id = serde_json::to_vec(&e.log_id).map_err(sm_write)?;
            let membership = match &e.payload {
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(e.log_id), m.clone());
                    Some(serde_json::to_vec(&stored).map_err(sm_write)?)
                }
                _ => None,
            };
            let start = items.len();
            if ws.is_empty() {
                items.push(ApplyItem {
                    log_id,
                    membership,
                    op: None,
                });
            } else {
                for (c, text) in ws.iter().zip(ts) {
                    items.push(ApplyItem {
                        log_id: log_id.clone(),
                        membership: None,
                        op: op(c, text.as_deref()),
                    });
                }
            }
            spans.push(start..items.len());
        }
        let changed = self.storage.apply_batch(&items).await.map_err(|err| {
            let at = entries.last().map(|e| e.log_id).unwrap_or_default();
            StorageError::from(StorageIOError::apply(at, AnyError::new(&err)))
        })?;
        Ok(entries
            .iter()
            .zip(spans)
            .map(|(e, span)| Response {
                index: e.log_id.index,
                outcome: match &e.payload {
                    EntryPayload::Normal(Command::Delete { .. }) => Outcome::Deleted {
                        existed: changed.get(span).is_some_and(|n| n.iter().any(|n| *n > 0)),
                    },
                    EntryPayload::Normal(_) => Outcome::Applied,
                    _ => Outcome::Internal,
                },
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            storage: self.storage.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let f = SnapshotFile::create(&self.snapshots.temp_path())
            .await
            .map_err(snap_err)?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        snapshot.sync().await.map_err(snap_err)?;
        let mut path = snapshot.path().to_path_buf();
        drop(snapshot);
        if !self.snapshots.contains(&path) {
            // Handed a file from elsewhere (openraft's suite does): keep our own copy.
            let copy = self.snapshots.temp_path();
            tokio::fs::copy(&path, &copy).await.map_err(snap_err)?;
            tokio::fs::File::open(&copy)
                .await
                .map_err(snap_err)?
                .sync_all()
                .await
                .map_err(snap_err)?;
            path = copy;
        }
        let (_, current) = self
            .snapshots
            .publish(meta.clone(), &path)
            .await
            .map_err(snap_err)?;
        self.storage
            .install_snapshot_from(&current)
            .await
            .map_err(sm_write)?;
        tracing::info!(snapshot = ?meta.last_log_id, "installed snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some((meta, path)) = self.snapshots.current().await.map_err(sm_read)? else {
            return Ok(None);
        };
        let file = SnapshotFile::open(&path).await.map_err(sm_read)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Builds a snapshot beside running applies (`VACUUM INTO` is a read transaction).
pub struct SnapshotBuilder {
    storage: Storage,
    snapshots: Arc<SnapshotDir>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let tmp = self.snapshots.temp_path();
        let applied = self.storage.snapshot_into(&tmp).await.map_err(snap_err)?;
        tokio::fs::File::open(&tmp)
            .await
            .map_err(snap_err)?
            .sync_all()
            .await
            .map_err(snap_err)?;
        let (last_log_id, last_membership) = decode_applied(&applied).map_err(snap_err)?;
        let snapshot_id = match last_log_id {
            Some(l) => format!(
                "{}-{}-{}-{:08x}",
                l.leader_id.term,
                l.leader_id.node_id,
                l.index,
                rand::random::<u32>()
            ),
            None => format!("empty-{:08x}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let (meta, path) = self.snapshots.publish(meta, &tmp).await.map_err(snap_err)?;
        tracing::info!(snapshot = ?meta.last_log_id, "built snapshot");
        let file = SnapshotFile::open(&path).await.map_err(snap_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
