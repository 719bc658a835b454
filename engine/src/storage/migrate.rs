//! Versioned, forward-only schema migrations for every SQLite file svi owns.
//!
//! A [`Schema`] is a file name and its list of [`Step`]s; step N takes the file's
//! `PRAGMA user_version` from N-1 to N. At open, every pending step is applied in ONE
//! transaction together with the new version, so a crash or a failing step leaves the file
//! exactly as it was (SQLite's DDL is transactional). A file that already holds data is first
//! copied to `DATA_DIR/backups/pre-migrate-<file>-v<from>-<time>.db` (`VACUUM INTO`, a
//! consistent copy), so even a step that succeeds but is wrong can be undone by hand.
//!
//! Rules for a new step (read before adding one):
//! - append, never edit or reorder a released step (a node at version N has run steps 1..N);
//! - transactional statements only (no `VACUUM`, no `PRAGMA journal_mode`);
//! - a node of the previous release may still send this node log entries and snapshots during
//!   a rolling upgrade: keep old commands applicable (add columns with defaults, do not drop
//!   what the previous release writes), and snapshots from the previous release are migrated
//!   on install (`raft::install_snapshot_from`);
//! - a file whose version is above the last step known here was written by a newer release
//!   and is refused ([`StorageError::NewerSchema`]): downgrading a node means restoring a
//!   backup, never opening newer data with older code.
//!
//! `svi migrate --check` runs the same steps on a copy (see [`check_copy`]).

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

use super::StorageError;

/// One forward step of a schema.
#[derive(Debug)]
pub struct Step {
    /// What the step does, for `svi migrate` and the log.
    pub name: &'static str,
    pub sql: &'static str,
}

/// A SQLite file svi owns, and how its schema got to the current version.
#[derive(Debug)]
pub struct Schema {
    /// The file name in the data directory.
    pub file: &'static str,
    pub steps: &'static [Step],
}

impl Schema {
    /// The version this build writes.
    pub fn latest(&self) -> u32 {
        self.steps.len() as u32
    }

    /// The steps that take a file from `from` to the latest version; an error when the file
    /// is newer than this build.
    pub fn pending(&self, from: u32) -> Result<&'static [Step], StorageError> {
        if from > self.latest() {
            return Err(StorageError::NewerSchema {
                file: self.file.to_string(),
                found: from,
                known: self.latest(),
            });
        }
        Ok(&self.steps[from as usize..])
    }
}

/// The engine database (`svi.db`): the replicated state machine (call records, documents,
/// raft pointers). Raft snapshots are copies of it and share its versions.
pub static ENGINE_DB: Schema = Schema {
    file: "svi.db",
    steps: &[
        Step {
            name: "call records",
            sql: "CREATE TABLE calls (
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
        },
        Step {
            name: "queue and agent of a call",
            sql: "ALTER TABLE calls ADD COLUMN queue TEXT;
            ALTER TABLE calls ADD COLUMN agent TEXT;
            ALTER TABLE calls ADD COLUMN queued_at TEXT;
            ALTER TABLE calls ADD COLUMN agent_answered_at TEXT;",
        },
        Step {
            name: "queue outcome and recording of a call",
            sql: "ALTER TABLE calls ADD COLUMN queue_outcome TEXT;
            ALTER TABLE calls ADD COLUMN recording TEXT;
            ALTER TABLE calls ADD COLUMN recording_sha256 TEXT;
            ALTER TABLE calls ADD COLUMN recording_ms INTEGER;
            CREATE INDEX calls_queue ON calls(queue, ended_at);",
        },
        Step {
            name: "raft state machine pointers and replicated documents",
            sql: super::raft::RAFT_SCHEMA,
        },
        Step {
            name: "number the dial plan refused for a call",
            sql: "ALTER TABLE calls ADD COLUMN dial_refused TEXT;",
        },
        Step {
            name: "export sequence of call records and documents",
            sql: super::export::EXPORT_SCHEMA,
        },
        Step {
            name: "failover of a call (JSON)",
            sql: "ALTER TABLE calls ADD COLUMN failover TEXT;",
        },
    ],
};

/// The raft log (`raft-log.db`). Releases before versioning created the same tables without
/// a version: step 1 uses `IF NOT EXISTS`, so it stamps such a file as version 1.
pub static RAFT_LOG: Schema = Schema {
    file: "raft-log.db",
    steps: &[Step {
        name: "raft log entries and pointers",
        sql: super::raft::log::LOG_SCHEMA,
    }],
};

/// Every schema, in the order `svi migrate` reports them.
pub static ALL: [&Schema; 2] = [&ENGINE_DB, &RAFT_LOG];

/// What a migration did (or, for `--check`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub file: String,
    pub from: u32,
    pub to: u32,
    pub steps: Vec<&'static str>,
    /// The copy taken before the steps ran (`None`: the file held nothing yet).
    pub backup: Option<PathBuf>,
}

pub(crate) async fn user_version(conn: &mut SqliteConnection) -> Result<u32, StorageError> {
    let v: i64 = sqlx::query("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    u32::try_from(v).map_err(|_| StorageError::Corrupt(format!("schema version {v}")))
}

/// Whether the file holds any table yet (a file just created holds none).
async fn has_tables(conn: &mut SqliteConnection) -> Result<bool, StorageError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Applies `steps` (from version `from`) and the new version in one transaction.
pub(crate) async fn apply_steps(
    conn: &mut SqliteConnection,
    schema: &Schema,
    from: u32,
    steps: &[Step],
) -> Result<(), StorageError> {
    let mut tx = conn.begin().await?;
    for (i, step) in steps.iter().enumerate() {
        let version = from + i as u32 + 1;
        // `query`, not `raw_sql`: raw_sql's future is not `Send` on a borrowed connection
        // (snapshots are installed from openraft's tasks). SQLite runs every statement of
        // the text either way.
        sqlx::query(step.sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StorageError::Migration {
                file: schema.file.to_string(),
                version,
                name: step.name,
                source,
            })?;
    }
    let to = from + steps.len() as u32;
    let stamp = format!("PRAGMA user_version = {to}");
    sqlx::query(&stamp).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The name of the copy taken before migrating `file` from version `from`.
fn pre_migrate_name(file: &str, from: u32) -> String {
    let at = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    format!("pre-migrate-{file}-v{from}-{at}.db")
}

/// Brings an open database up to date: refuses a newer file; copies a file holding data to
/// `backup_dir` before changing it; applies the pending steps in one transaction.
pub(crate) async fn migrate_open(
    conn: &mut SqliteConnection,
    schema: &Schema,
    backup_dir: &Path,
) -> Result<Option<Migrated>, StorageError> {
    let from = user_version(conn).await?;
    let steps = schema.pending(from)?;
    if steps.is_empty() {
        return Ok(None);
    }
    let backup = if has_tables(conn).await? {
        std::fs::create_dir_all(backup_dir).map_err(|source| StorageError::DataDir {
            path: backup_dir.to_path_buf(),
            source,
        })?;
        let dest = backup_dir.join(pre_migrate_name(schema.file, from));
        vacuum_into(conn, &dest).await?;
        Some(dest)
    } else {
        None
    };
    apply_steps(conn, schema, from, steps).await?;
    let done = Migrated {
        file: schema.file.to_string(),
        from,
        to: schema.latest(),
        steps: steps.iter().map(|s| s.name).collect(),
        backup,
    };
    if let Some(b) = &done.backup {
        tracing::warn!(
            file = schema.file,
            from,
            to = done.to,
            backup = %b.display(),
            "schema migrated (the previous content is kept in the backup)"
        );
    }
    Ok(Some(done))
}

/// A consistent copy of the open database (`VACUUM INTO`: one read transaction, compacted).
pub(crate) async fn vacuum_into(
    conn: &mut SqliteConnection,
    dest: &Path,
) -> Result<(), StorageError> {
    sqlx::query("VACUUM INTO ?")
        .bind(dest.to_string_lossy().to_string())
        .execute(&mut *conn)
        .await
        .map_err(|source| StorageError::Copy {
            path: dest.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// The result of `svi migrate --check` for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub file: String,
    pub from: u32,
    pub to: u32,
    pub steps: Vec<&'static str>,
    /// `PRAGMA integrity_check` of the migrated copy: "ok", or what SQLite found.
    pub integrity: String,
}

/// Runs the pending steps of `schema` on a copy of `src` made in `scratch` (the source is
/// opened read-only and never changed), then checks the copy's integrity.
pub async fn check_copy(
    src: &Path,
    schema: &'static Schema,
    scratch: &Path,
) -> Result<CheckReport, StorageError> {
    let copy = scratch.join(schema.file);
    let mut wal = src.as_os_str().to_owned();
    wal.push("-wal");
    if std::path::Path::new(&wal).exists() {
        // Possibly in use: a consistent copy through SQLite (one read transaction).
        let mut conn = super::open_file(src, true).await?;
        vacuum_into(&mut conn, &copy).await?;
        conn.close().await?;
    } else {
        // Closed cleanly: the file alone is the database. Copying it leaves the directory
        // as it was (a read-only SQLite connection would leave empty -wal/-shm files).
        std::fs::copy(src, &copy).map_err(|source| StorageError::DataDir {
            path: copy.clone(),
            source,
        })?;
    }
    let mut conn = super::open_file(&copy, false).await?;
    let from = user_version(&mut conn).await?;
    let steps = schema.pending(from)?;
    apply_steps(&mut conn, schema, from, steps).await?;
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(CheckReport {
        file: schema.file.to_string(),
        from,
        to: schema.latest(),
        steps: steps.iter().map(|s| s.name).collect(),
        integrity: rows.join("; "),
    })
}

/// Brings the database file `path` up to date like `Storage::open` does (backup first), for
/// `svi migrate` on a stopped node.
pub async fn migrate_path(
    path: &Path,
    schema: &'static Schema,
    backup_dir: &Path,
) -> Result<Option<Migrated>, StorageError> {
    let mut conn = super::open_file(path, false).await?;
    let done = migrate_open(&mut conn, schema, backup_dir).await;
    conn.close().await?;
    done
}

/// Brings the database file `path` up to date (for files opened outside a pool: received
/// snapshots, restored copies). No backup: the caller holds the original.
pub async fn migrate_file(path: &Path, schema: &'static Schema) -> Result<u32, StorageError> {
    let mut conn = super::open_file(path, false).await?;
    let from = user_version(&mut conn).await?;
    let steps = schema.pending(from)?;
    if !steps.is_empty() {
        apply_steps(&mut conn, schema, from, steps).await?;
    }
    conn.close().await?;
    Ok(from)
}

/// The schema version of the database file `path` (opened read-only).
pub async fn file_version(path: &Path) -> Result<u32, StorageError> {
    let mut conn = super::open_file(path, true).await?;
    let v = user_version(&mut conn).await;
    conn.close().await?;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Step = Step {
        name: "one",
        sql: "CREATE TABLE a (x INTEGER);",
    };
    const TWO: Step = Step {
        name: "two",
        sql: "ALTER TABLE a ADD COLUMN y TEXT DEFAULT 'y';",
    };

    static THREE: Schema = Schema {
        file: "t.db",
        steps: &[
            ONE,
            TWO,
            Step {
                name: "three",
                sql: "CREATE TABLE b (z TEXT);",
            },
        ],
    };

    /// Step 3 fails half-way (its first statement succeeds).
    static BROKEN: Schema = Schema {
        file: "t.db",
        steps: &[
            ONE,
            TWO,
            Step {
                name: "bad",
                sql: "CREATE TABLE c (q TEXT); INSERT INTO nowhere VALUES (1);",
            },
        ],
    };

    /// A file at version 1 with a row, as a previous release would have left it.
    async fn at_v1(dir: &Path) -> PathBuf {
        let path = dir.join("t.db");
        let mut conn = crate::storage::open_file_create(&path)
            .await
            .expect("create");
        apply_steps(&mut conn, &THREE, 0, &THREE.steps[..1])
            .await
            .expect("v1");
        sqlx::query("INSERT INTO a (x) VALUES (7)")
            .execute(&mut conn)
            .await
            .expect("row");
        conn.close().await.expect("close");
        path
    }

    #[tokio::test]
    async fn pending_steps_run_in_one_transaction_after_a_backup() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = at_v1(dir.path()).await;
        let mut conn = super::super::open_file(&path, false).await.expect("open");
        let done = migrate_open(&mut conn, &THREE, &dir.path().join("backups"))
            .await
            .expect("migrate")
            .expect("something to do");
        assert_eq!((done.from, done.to), (1, 3));
        assert_eq!(done.steps, vec!["two", "three"]);
        assert_eq!(user_version(&mut conn).await.expect("v"), 3);
        let y: String = sqlx::query_scalar("SELECT y FROM a WHERE x = 7")
            .fetch_one(&mut conn)
            .await
            .expect("migrated row");
        assert_eq!(y, "y");
        // The backup is the file as it was: version 1, the row, no column y.
        let backup = done.backup.expect("a file with data is backed up");
        assert!(backup
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("pre-migrate-t.db-v1-")));
        assert_eq!(file_version(&backup).await.expect("backup version"), 1);
        // Nothing left to do the second time.
        assert!(migrate_open(&mut conn, &THREE, &dir.path().join("backups"))
            .await
            .expect("again")
            .is_none());
    }

    #[tokio::test]
    async fn a_failing_step_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = at_v1(dir.path()).await;
        let mut conn = super::super::open_file(&path, false).await.expect("open");
        let err = migrate_open(&mut conn, &BROKEN, &dir.path().join("backups"))
            .await
            .expect_err("step 3 fails");
        let text = err.to_string();
        assert!(
            text.contains("t.db") && text.contains("step 3 (bad)"),
            "{text}"
        );
        // Step 2 ran before step 3 failed, but in the same transaction: rolled back.
        assert_eq!(user_version(&mut conn).await.expect("v"), 1);
        let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('a')")
            .fetch_all(&mut conn)
            .await
            .expect("columns");
        assert_eq!(cols, vec!["x"]);
        let c: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'c'")
                .fetch_optional(&mut conn)
                .await
                .expect("tables");
        assert_eq!(c, None);
    }

    #[tokio::test]
    async fn a_newer_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = at_v1(dir.path()).await;
        let mut conn = super::super::open_file(&path, false).await.expect("open");
        sqlx::raw_sql("PRAGMA user_version = 9")
            .execute(&mut conn)
            .await
            .expect("pretend newer");
        let err = migrate_open(&mut conn, &THREE, &dir.path().join("backups"))
            .await
            .expect_err("newer refused");
        assert!(
            matches!(
                err,
                StorageError::NewerSchema {
                    found: 9,
                    known: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!dir.path().join("backups").exists(), "no backup taken");
    }

    #[tokio::test]
    async fn check_runs_on_a_copy_and_never_changes_the_source() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = at_v1(dir.path()).await;
        let before = std::fs::read(&path).expect("read");
        let scratch = tempfile::tempdir().expect("scratch");
        let report = check_copy(&path, &THREE, scratch.path())
            .await
            .expect("check");
        assert_eq!((report.from, report.to), (1, 3));
        assert_eq!(report.integrity, "ok");
        assert_eq!(std::fs::read(&path).expect("read"), before);
        assert_eq!(
            file_version(&scratch.path().join("t.db")).await.expect("v"),
            3
        );
        let scratch = tempfile::tempdir().expect("scratch");
        let err = check_copy(&path, &BROKEN, scratch.path())
            .await
            .expect_err("broken step reported");
        assert!(err.to_string().contains("bad"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[tokio::test]
    async fn a_snapshot_of_an_older_release_is_migrated_then_installed() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = crate::storage::Storage::open(&dir.path().join("node"))
            .await
            .expect("open");
        // A snapshot as a node one schema version behind sends it (steps 1..latest-1).
        let old = dir.path().join("snap.db");
        let mut conn = crate::storage::open_file_create(&old)
            .await
            .expect("create");
        let before = ENGINE_DB.latest() - 1;
        apply_steps(
            &mut conn,
            &ENGINE_DB,
            0,
            &ENGINE_DB.steps[..before as usize],
        )
        .await
        .expect("old schema");
        sqlx::query(
            "INSERT INTO calls (id, sip_call_id, started_at, ended_at, caller, called, path,
             end_reason, node) VALUES ('c1', 's1', '2026-01-01T00:00:00Z',
             '2026-01-01T00:01:00Z', '100', '200', '[]', 'caller_hangup', 'n')",
        )
        .execute(&mut conn)
        .await
        .expect("row");
        conn.close().await.expect("close");
        storage.install_snapshot_from(&old).await.expect("install");
        let calls = storage.latest_calls(10).await.expect("calls");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "c1");
        assert_eq!(file_version(&old).await.expect("v"), ENGINE_DB.latest());

        // A snapshot from a newer release is refused, the database left as it was.
        let newer = dir.path().join("newer.db");
        let mut conn = crate::storage::open_file_create(&newer)
            .await
            .expect("create");
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", ENGINE_DB.latest() + 1))
            .execute(&mut conn)
            .await
            .expect("newer");
        conn.close().await.expect("close");
        let err = storage
            .install_snapshot_from(&newer)
            .await
            .expect_err("newer refused");
        assert!(matches!(err, StorageError::NewerSchema { .. }), "{err}");
        assert_eq!(storage.latest_calls(10).await.expect("calls").len(), 1);
    }

    #[test]
    fn released_schemas_only_grow() {
        // The versions the previous releases wrote; a build that lists fewer steps would
        // refuse their files as newer.
        assert!(ENGINE_DB.latest() >= 4);
        assert!(RAFT_LOG.latest() >= 1);
        for s in ALL {
            assert!(
                s.steps.iter().all(|st| !st.sql.trim().is_empty()),
                "{}",
                s.file
            );
        }
    }
}
