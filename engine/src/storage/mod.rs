//! The one place that talks SQL (STYLE.md §9: only the storage module names sqlx).
//!
//! SQLite in WAL mode, so `svi calls` can read while the engine writes. Every file's schema
//! is versioned with `PRAGMA user_version` and brought up to date at open (`migrate`).
//!
//! - `records`: call records; `raft`: the replicated state machine side of `svi.db` and the
//!   raft log file; `migrate`: the schemas and their forward-only steps; `export`: the
//!   numbered feed the central export reads; `central`: the shared PostgreSQL it writes.

pub mod backup;
pub mod central;
mod export;
mod lock;
pub mod migrate;
pub mod raft;
mod records;
mod watch;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use export::{ExportItem, ExportRow};
pub use lock::{DataDirLock, LockError, LOCK_FILE};
pub use records::{CallQuery, CallRecord, EndReason, Failover, QueueOutcome};
pub use watch::DocChanges;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "{file} is at schema version {found}, this build knows up to {known}: it was written by a newer release (upgrade this node, or restore a backup made by this release)"
    )]
    NewerSchema {
        file: String,
        found: u32,
        known: u32,
    },
    #[error("{file}: migration step {version} ({name}) failed: {source}")]
    Migration {
        file: String,
        version: u32,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("central database {0}")]
    Central(String),
    #[error("cannot copy the database to {path}: {source}")]
    Copy { path: PathBuf, source: sqlx::Error },
}

/// Where copies taken before a migration go (and scheduled backups, by default).
pub const BACKUP_DIR: &str = "backups";

#[derive(Clone, Debug)]
pub struct Storage {
    pool: SqlitePool,
    docs: std::sync::Arc<watch::DocWatch>,
}

impl Storage {
    /// Opens (creating if needed) `DATA_DIR/svi.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("svi.db");
        let backups = data_dir.join(BACKUP_DIR);
        if path.exists() {
            // Migrated, or refused, on a connection of its own whose close is awaited: a
            // pool's connections may still be closing when the process exits on the error,
            // which would leave -wal and -shm files beside data we refused to touch.
            migrate::migrate_path(&path, &migrate::ENGINE_DB, &backups).await?;
        }
        let open_err = |source| StorageError::Open {
            path: path.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed write survives a process crash; only an OS
            // crash may lose the last transactions. The raft log will carry durability.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        // A new file: its schema, from the first step.
        let mut conn = pool.acquire().await?;
        migrate::migrate_open(&mut conn, &migrate::ENGINE_DB, &backups).await?;
        drop(conn);
        Ok(Storage {
            pool,
            docs: Default::default(),
        })
    }

    /// Opens an existing database for reading only (for `svi calls` beside a running engine).
    pub async fn open_read_only(data_dir: &Path) -> Result<Storage, StorageError> {
        let path = data_dir.join("svi.db");
        let open_err = |source| StorageError::Open {
            path: path.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(&path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Storage {
            pool,
            docs: Default::default(),
        })
    }

    /// Writes one record directly (an engine without replication; the raft state machine
    /// applies the same statement inside its batch transaction).
    pub async fn insert_call(&self, r: &CallRecord) -> Result<(), StorageError> {
        let mut conn = self.pool.acquire().await?;
        raft::insert_call_on(&mut conn, r).await?;
        Ok(())
    }

    /// The latest `limit` calls, newest first.
    pub async fn latest_calls(&self, limit: u32) -> Result<Vec<CallRecord>, StorageError> {
        let rows = sqlx::query("SELECT * FROM calls ORDER BY ended_at DESC, rowid DESC LIMIT ?")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(records::from_row).collect()
    }

    /// Changes of these replicated-document collections on this node from now on.
    pub fn watch_docs(&self, collections: &[&str]) -> DocChanges {
        DocChanges::new(collections.iter().map(|c| self.docs.subscribe(c)).collect())
    }

    /// Call records matching `q`, newest first (by start), `q.limit` from `q.offset`.
    pub async fn search_calls(&self, q: &CallQuery) -> Result<Vec<CallRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT * FROM calls WHERE (?1 IS NULL OR started_at >= ?1)
               AND (?2 IS NULL OR started_at < ?2)
               AND (?3 IS NULL OR caller = ?3 OR called = ?3)
               AND (?4 IS NULL OR queue = ?4) AND (?5 IS NULL OR agent = ?5)
               AND (?6 IS NULL OR queue_outcome = ?6) AND (?7 IS NULL OR end_reason = ?7)
               AND (?10 = 0 OR recording_ms IS NOT NULL)
             ORDER BY started_at DESC, id DESC LIMIT ?8 OFFSET ?9",
        )
        // RFC 3339 text as stored: compares in time order (see `records::CallQuery`).
        .bind(q.from.map(|t| t.to_rfc3339()))
        .bind(q.to.map(|t| t.to_rfc3339()))
        .bind(&q.number)
        .bind(&q.queue)
        .bind(&q.agent)
        .bind(q.queue_outcome.map(|o| o.as_str()))
        .bind(q.end_reason.map(|r| r.as_str()))
        .bind(i64::from(q.limit))
        .bind(i64::from(q.offset))
        .bind(q.recorded)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(records::from_row).collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One connection on a database file outside any pool (copies, snapshots, checks).
pub(crate) async fn open_file(
    path: &Path,
    read_only: bool,
) -> Result<sqlx::sqlite::SqliteConnection, StorageError> {
    use sqlx::Connection as _;
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|source| StorageError::Open {
            path: path.to_path_buf(),
            source,
        })?
        .filename(path)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(5));
    sqlx::sqlite::SqliteConnection::connect_with(&options)
        .await
        .map_err(|source| StorageError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Like `open_file`, creating the file if needed (tests build old-release files with it).
#[cfg(test)]
pub(crate) async fn open_file_create(
    path: &Path,
) -> Result<sqlx::sqlite::SqliteConnection, StorageError> {
    use sqlx::Connection as _;
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true);
    Ok(sqlx::sqlite::SqliteConnection::connect_with(&options).await?)
}
