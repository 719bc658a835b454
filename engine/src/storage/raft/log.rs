//! The raft log database: `DATA_DIR/raft-log.db`, separate from `svi.db`.
//!
//! Entries are opaque blobs keyed by their index (`ha` serializes them); vote, committed
//! pointer and last purged id live in a small meta table. The file is in WAL mode with
//! `synchronous=FULL`: every commit fsyncs the WAL before returning. Raft depends on it: a
//! node that acknowledged an entry or granted a vote and then forgets it after a power cut
//! can let a second leader be elected or a committed entry be overwritten. `NORMAL` (what
//! `svi.db` uses) only survives a process crash; the state machine can afford it because it
//! is rebuilt from this log and the snapshot, the log cannot.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use crate::storage::StorageError;

/// Step 1 of `migrate::RAFT_LOG` (IF NOT EXISTS: files of releases before versioning have
/// these tables already).
pub(crate) const LOG_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS raft_log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS raft_log_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);";

/// Handle on the raft log file (cheap to clone: a pool).
#[derive(Clone, Debug)]
pub struct RaftLogDb {
    pool: SqlitePool,
    path: PathBuf,
}

fn idx(i: u64) -> Result<i64, StorageError> {
    i64::try_from(i).map_err(|_| StorageError::Corrupt(format!("log index {i} out of range")))
}

fn row_entry(row: &sqlx::sqlite::SqliteRow) -> Result<(u64, Vec<u8>), StorageError> {
    let i: i64 = row.try_get(0)?;
    Ok((i as u64, row.try_get(1)?))
}

impl RaftLogDb {
    /// Opens (creating if needed) the log database at `path`.
    pub async fn open(path: &Path) -> Result<RaftLogDb, StorageError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StorageError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        // Writes come one at a time from the raft core; extra connections serve the
        // replication streams that read entries concurrently (WAL readers do not block).
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let mut conn = pool.acquire().await?;
        let backups = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(crate::storage::BACKUP_DIR);
        crate::storage::migrate::migrate_open(
            &mut conn,
            &crate::storage::migrate::RAFT_LOG,
            &backups,
        )
        .await?;
        drop(conn);
        Ok(RaftLogDb {
            pool,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes entries (replacing any at the same index) in one durable transaction.
    pub async fn append(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (i, blob) in entries {
            sqlx::query("INSERT OR REPLACE INTO raft_log (idx, entry) VALUES (?, ?)")
                .bind(idx(*i)?)
                .bind(blob)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Entries with `start <= index < end`, in index order.
    pub async fn range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let end = end.min(i64::MAX as u64);
        if start >= end {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT idx, entry FROM raft_log WHERE idx >= ? AND idx < ? ORDER BY idx")
                .bind(idx(start)?)
                .bind(idx(end)?)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(row_entry).collect()
    }

    /// The entry with the highest index, if any.
    pub async fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let row = sqlx::query("SELECT idx, entry FROM raft_log ORDER BY idx DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_entry).transpose()
    }

    /// Deletes entries with `index >= from`.
    pub async fn truncate_from(&self, from: u64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM raft_log WHERE idx >= ?")
            .bind(idx(from)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records `purged` under `key` and deletes entries with `index <= upto`, atomically.
    pub async fn purge_upto(
        &self,
        upto: u64,
        key: &str,
        purged: &[u8],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR REPLACE INTO raft_log_meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(purged)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM raft_log WHERE idx <= ?")
            .bind(idx(upto)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row = sqlx::query("SELECT value FROM raft_log_meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        sqlx::query("INSERT OR REPLACE INTO raft_log_meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
