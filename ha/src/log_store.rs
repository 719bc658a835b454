//! The raft log store: openraft's `RaftLogStorage` over `engine::storage::raft::log`
//! (`DATA_DIR/raft-log.db`, WAL, `synchronous=FULL`; the SQL and the durability argument
//! live there).
//!
//! Entries, the vote, the committed pointer and the last purged id are JSON blobs. `append`
//! commits (and so fsyncs) before it reports the entries flushed, which is what lets the
//! leader count this node's acknowledgement toward a quorum. Writes arrive one at a time
//! from the raft core, which gives the serialisation openraft requires; readers (replication
//! streams) share the pool.
//!
//! Checked by openraft's storage suite (`Suite::test_all`) in the tests below.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); the helpers return it
// too rather than converting at every call.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::storage::raft::log::RaftLogDb;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Cheap to clone (a pool); the clone kept by `HaNode` is used for forced recovery.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: RaftLogDb,
    /// The file, named in the error an operator sees when the disk fails.
    path: Arc<PathBuf>,
    /// Test hook: every append fails as if the disk were full.
    #[cfg(test)]
    full: Arc<std::sync::atomic::AtomicBool>,
}

fn io_read(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn io_write(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(io_write)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(b).map_err(io_read)
}

impl LogStore {
    pub async fn open(path: &Path) -> Result<LogStore, engine::storage::StorageError> {
        Ok(LogStore {
            db: RaftLogDb::open(path).await?,
            path: Arc::new(path.to_path_buf()),
            #[cfg(test)]
            full: Default::default(),
        })
    }

    /// Test hook: make every append fail (a full disk) while set.
    #[cfg(test)]
    pub(crate) fn set_full(&self, on: bool) {
        self.full.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    async fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.db.get_meta(key).await.map_err(io_read)? {
            Some(b) => Ok(Some(decode(&b)?)),
            None => Ok(None),
        }
    }

    async fn put<T: Serialize>(&self, key: &str, v: &T) -> Result<(), StorageError> {
        self.db.put_meta(key, &encode(v)?).await.map_err(io_write)
    }

    /// Appends entries durably without a raft core (forced recovery, see `promote.rs`).
    pub(crate) async fn append_now(&self, entries: &[Entry]) -> Result<(), StorageError> {
        let rows = entries
            .iter()
            .map(|e| Ok((e.log_id.index, encode(e)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        #[cfg(test)]
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            let e = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full (test hook)");
            return Err(self.write_failed(e));
        }
        self.db
            .append(&rows)
            .await
            .map_err(|e| self.write_failed(e))
    }

    /// A failed write stops the raft core (openraft treats storage errors as fatal): say
    /// which file, so that the operator looks at the right disk.
    fn write_failed(&self, e: impl std::error::Error + 'static) -> StorageError {
        tracing::error!(
            file = %self.path.display(),
            error = %e,
            "cannot write the raft log (disk full or failing?); this node stops replicating"
        );
        io_write(e)
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.saturating_add(1),
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        let rows = self.db.range(start, end).await.map_err(io_read)?;
        rows.iter().map(|(_, b)| decode(b)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.meta(LAST_PURGED).await?;
        let last = match self.db.last().await.map_err(io_read)? {
            Some((_, b)) => Some(decode::<Entry>(&b)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.meta(VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put(COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(COMMITTED).await?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        match self.append_now(&entries).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db.truncate_from(log_id.index).await.map_err(io_write)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .purge_upto(log_id.index, LAST_PURGED, &encode(&log_id)?)
            .await
            .map_err(io_write)
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    use super::*;
    use crate::state_machine::StateMachine;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().map_err(io_write)?;
            let log = LogStore::open(&dir.path().join("raft-log.db"))
                .await
                .map_err(io_write)?;
            // `Storage::open`'s future is not `Send` (a rustc higher-ranked lifetime
            // limitation inside engine/src/storage/mod.rs), and this builder must be: open
            // it on this runtime thread instead of across an await.
            let path = dir.path().to_path_buf();
            let storage = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(engine::storage::Storage::open(&path))
            })
            .map_err(io_write)?;
            let sm = StateMachine::open(storage, dir.path())
                .await
                .map_err(io_write)?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite, on the SQLite log and the engine database.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).expect("storage suite");
    }
}
