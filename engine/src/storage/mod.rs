//! The one place that talks SQL (STYLE.md §9: only the storage module names sqlx).
//!
//! SQLite in WAL mode, so `svi calls` can read while the engine writes. The schema is
//! versioned with `PRAGMA user_version`; each migration is one step in `MIGRATIONS`.
//! When the replicated-state work lands, these writes become commands applied by the raft
//! state machine to this same database; the record types stay.

pub mod raft;
mod records;
mod watch;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

pub use records::{CallRecord, EndReason, QueueOutcome};
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
}

/// Schema steps; index + 1 is the `user_version` after applying it.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        sip_call_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        answered_at TEXT,
        ended_at TEXT NOT NULL,
        caller TEXT NOT NULL,
        called TEXT NOT NULL,
        flow TEXT,
        flow_version TEXT,
        path TEXT NOT NULL,
        end_reason TEXT NOT NULL,
        codec TEXT,
        node TEXT NOT NULL,
        rtp_sent INTEGER NOT NULL DEFAULT 0,
        rtp_received INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_ended ON calls(ended_at);",
    "ALTER TABLE calls ADD COLUMN queue TEXT;
    ALTER TABLE calls ADD COLUMN agent TEXT;
    ALTER TABLE calls ADD COLUMN queued_at TEXT;
    ALTER TABLE calls ADD COLUMN agent_answered_at TEXT;",
    "ALTER TABLE calls ADD COLUMN queue_outcome TEXT;
    ALTER TABLE calls ADD COLUMN recording TEXT;
    ALTER TABLE calls ADD COLUMN recording_sha256 TEXT;
    ALTER TABLE calls ADD COLUMN recording_ms INTEGER;
    CREATE INDEX calls_queue ON calls(queue, ended_at);",
    raft::RAFT_SCHEMA,
];

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
        let storage = Storage {
            pool,
            docs: Default::default(),
        };
        storage.migrate().await?;
        Ok(storage)
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

    async fn migrate(&self) -> Result<(), StorageError> {
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(step).execute(&mut *tx).await?;
            sqlx::raw_sql(&format!("PRAGMA user_version = {}", i + 1))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
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

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
