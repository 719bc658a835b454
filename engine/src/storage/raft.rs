//! SQL for the replicated state (the `ha` crate drives openraft; SQL stays here, STYLE.md §9).
//!
//! - This file: the raft **state machine** side of the engine database (`svi.db`). A batch of
//!   committed entries is applied in ONE transaction together with `last_applied` and the
//!   last membership, so that after any crash the database and its applied pointer agree:
//!   an entry is applied exactly once, even if openraft re-applies the log at restart.
//! - `log`: the raft **log** database (`raft-log.db`), a separate file with its own
//!   durability settings.
//!
//! openraft's types never cross into this module: `ha` hands over opaque blobs (serialized
//! log ids and memberships) and typed operations, and gets the blobs back.
//!
//! Snapshots are whole-database copies: `VACUUM INTO` a new file (a consistent, compacted
//! copy taken in one read transaction, so it carries its own `last_applied`), and install by
//! `ATTACH` + delete/copy of every table in one write transaction, so readers sharing the
//! pool never see a half-installed state and the pool never has to be reopened. Rough cost on
//! this machine (`cargo test -p svi-ha measure_snapshot -- --ignored --nocapture`): see
//! `docs/ha.md`.

pub mod log;

use std::path::Path;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

use super::{open_file, CallRecord, Storage, StorageError};

/// Step 4 of `migrate::ENGINE_DB`, and created again on first use by databases opened only
/// as a state machine (IF NOT EXISTS).
pub(super) const RAFT_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS raft_sm_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS replicated_docs (
        collection TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (collection, key)
    );";

const LAST_APPLIED: &str = "last_applied";
const LAST_MEMBERSHIP: &str = "last_membership";

/// One state-machine operation, applied inside the batch transaction.
#[derive(Debug, Clone, Copy)]
pub enum RaftOp<'a> {
    InsertCall(&'a CallRecord),
    /// Upsert a JSON document (`value` is JSON text) in a named collection.
    PutDoc {
        collection: &'a str,
        key: &'a str,
        value: &'a str,
    },
    DeleteDoc {
        collection: &'a str,
        key: &'a str,
    },
}

/// One committed log entry as the state machine sees it.
#[derive(Debug, Clone)]
pub struct ApplyItem<'a> {
    /// The entry's serialized log id; the batch's last one becomes `last_applied`.
    pub log_id: Vec<u8>,
    /// Serialized membership, for membership entries.
    pub membership: Option<Vec<u8>>,
    pub op: Option<RaftOp<'a>>,
}

/// `last_applied` and `last_membership` as stored (opaque blobs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftApplied {
    pub last_applied: Option<Vec<u8>>,
    pub last_membership: Option<Vec<u8>>,
}

impl Storage {
    /// Creates the raft tables if needed; called once when the state machine opens.
    pub async fn prepare_raft(&self) -> Result<(), StorageError> {
        sqlx::raw_sql(RAFT_SCHEMA).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn raft_applied(&self) -> Result<RaftApplied, StorageError> {
        let mut conn = self.pool.acquire().await?;
        read_applied(&mut conn).await
    }

    /// Rewrites the raft pointers (a restored database made a new cluster's: `svi restore`).
    pub async fn set_raft_applied(&self, applied: &RaftApplied) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        for (key, value) in [
            (LAST_APPLIED, &applied.last_applied),
            (LAST_MEMBERSHIP, &applied.last_membership),
        ] {
            match value {
                Some(v) => put_meta(&mut tx, key, v).await?,
                None => {
                    sqlx::query("DELETE FROM raft_sm_meta WHERE key = ?")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies a batch of committed entries and moves `last_applied` in one transaction.
    /// Returns, per item, the number of rows the operation changed (0 without operation).
    pub async fn apply_batch(&self, items: &[ApplyItem<'_>]) -> Result<Vec<u64>, StorageError> {
        let Some(last) = items.last() else {
            return Ok(Vec::new());
        };
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::with_capacity(items.len());
        let mut membership = None;
        for item in items {
            let n = match item.op {
                None => 0,
                Some(RaftOp::InsertCall(r)) => insert_call_on(&mut tx, r).await?,
                Some(RaftOp::PutDoc {
                    collection,
                    key,
                    value,
                }) => put_doc_on(&mut tx, collection, key, value).await?,
                Some(RaftOp::DeleteDoc { collection, key }) => {
                    sqlx::query("DELETE FROM replicated_docs WHERE collection = ? AND key = ?")
                        .bind(collection)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
            };
            changed.push(n);
            if item.membership.is_some() {
                membership = item.membership.as_deref();
            }
        }
        put_meta(&mut tx, LAST_APPLIED, &last.log_id).await?;
        if let Some(m) = membership {
            put_meta(&mut tx, LAST_MEMBERSHIP, m).await?;
        }
        tx.commit().await?;
        for item in items {
            if let Some(RaftOp::PutDoc { collection, .. } | RaftOp::DeleteDoc { collection, .. }) =
                item.op
            {
                self.docs.touched(collection);
            }
        }
        Ok(changed)
    }

    /// Writes one document directly (an engine without replication).
    pub async fn put_doc(
        &self,
        collection: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        let mut conn = self.pool.acquire().await?;
        put_doc_on(&mut conn, collection, key, value).await?;
        self.docs.touched(collection);
        Ok(())
    }

    /// Removes one document directly (an engine without replication).
    pub async fn delete_doc(&self, collection: &str, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM replicated_docs WHERE collection = ? AND key = ?")
            .bind(collection)
            .bind(key)
            .execute(&self.pool)
            .await?;
        self.docs.touched(collection);
        Ok(())
    }

    /// The documents of `collection` whose keys are in `[from, to)`, in key order. An
    /// empty list when nothing was ever written there.
    pub async fn docs_in_range(
        &self,
        collection: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'replicated_docs'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT key, value FROM replicated_docs WHERE collection = ? AND key >= ? AND key < ?
             ORDER BY key",
        )
        .bind(collection)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// A replicated document (JSON text), if present.
    pub async fn get_doc(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT value FROM replicated_docs WHERE collection = ? AND key = ?")
            .bind(collection)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The keys of the documents of `collection` whose array at `array_path` (a JSON path
    /// such as `$.present_on`) does not contain the string `value`, in key order. Used by
    /// the recording copier to find the files this node lacks, without reading every
    /// document into memory.
    pub async fn doc_keys_lacking(
        &self,
        collection: &str,
        array_path: &str,
        value: &str,
    ) -> Result<Vec<String>, StorageError> {
        if !self.has_docs_table().await? {
            return Ok(Vec::new());
        }
        let keys = sqlx::query_scalar(
            "SELECT d.key FROM replicated_docs d WHERE d.collection = ? AND NOT EXISTS
             (SELECT 1 FROM json_each(d.value, ?) e WHERE e.value = ?) ORDER BY d.key",
        )
        .bind(collection)
        .bind(array_path)
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys)
    }

    /// The last `limit` documents of `collection` by the text at `order_path` (a JSON path
    /// such as `$.recorded_at`), newest first, as (key, JSON text).
    pub async fn latest_docs(
        &self,
        collection: &str,
        order_path: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StorageError> {
        if !self.has_docs_table().await? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT key, value FROM replicated_docs WHERE collection = ?
             ORDER BY json_extract(value, ?) DESC, key DESC LIMIT ?",
        )
        .bind(collection)
        .bind(order_path)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// Whether `replicated_docs` exists (a database never opened as a state machine, e.g.
    /// read by `svi calls` before the first start with HA, has none).
    async fn has_docs_table(&self) -> Result<bool, StorageError> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'replicated_docs'",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(exists.is_some())
    }

    /// Writes a consistent copy of the whole database to `dest` (which must not exist) and
    /// returns the raft pointers it contains.
    pub async fn snapshot_into(&self, dest: &Path) -> Result<RaftApplied, StorageError> {
        let dest_str = dest.to_string_lossy().to_string();
        sqlx::query("VACUUM INTO ?")
            .bind(&dest_str)
            .execute(&self.pool)
            .await?;
        let mut conn = open_file(dest, true).await?;
        let applied = read_applied(&mut conn).await;
        conn.close().await?;
        applied
    }

    /// Replaces the content of every table with the snapshot file's, in one transaction.
    /// A snapshot from an older release (a rolling upgrade) is migrated first, in place; one
    /// from a newer release is refused (`NewerSchema`): upgrade this node.
    pub async fn install_snapshot_from(&self, src: &Path) -> Result<(), StorageError> {
        let theirs = super::migrate::file_version(src).await?;
        if theirs < super::migrate::ENGINE_DB.latest() {
            super::migrate::migrate_file(src, &super::migrate::ENGINE_DB).await?;
            tracing::warn!(snapshot = %src.display(), from = theirs, "snapshot from an older release migrated before install");
        } else if theirs > super::migrate::ENGINE_DB.latest() {
            return Err(StorageError::NewerSchema {
                file: src.display().to_string(),
                found: theirs,
                known: super::migrate::ENGINE_DB.latest(),
            });
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("ATTACH DATABASE ? AS snap")
            .bind(src.to_string_lossy().to_string())
            .execute(&mut *conn)
            .await?;
        let res = copy_from_attached(&mut conn).await;
        if sqlx::query("DETACH DATABASE snap")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            // A connection left with the snapshot attached must not go back to the pool.
            conn.close_on_drop();
        }
        if res.is_ok() {
            self.docs.touched_all();
        }
        res
    }
}

async fn copy_from_attached(conn: &mut SqliteConnection) -> Result<(), StorageError> {
    let mine: i64 = sqlx::query("PRAGMA main.user_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let theirs: i64 = sqlx::query("PRAGMA snap.user_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if mine != theirs {
        return Err(StorageError::Corrupt(format!(
            "snapshot schema version {theirs} differs from this node's {mine}"
        )));
    }
    let tables = |schema: &str| {
        format!(
            "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    };
    let local: Vec<String> = sqlx::query_scalar(&tables("main"))
        .fetch_all(&mut *conn)
        .await?;
    let remote: Vec<String> = sqlx::query_scalar(&tables("snap"))
        .fetch_all(&mut *conn)
        .await?;
    let mut tx = conn.begin().await?;
    for t in &local {
        // Table names come from our own schema, never from the network; quote them anyway.
        let q = t.replace('"', "\"\"");
        sqlx::query(&format!("DELETE FROM main.\"{q}\""))
            .execute(&mut *tx)
            .await?;
        if remote.contains(t) {
            sqlx::query(&format!(
                "INSERT INTO main.\"{q}\" SELECT * FROM snap.\"{q}\""
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn read_applied(db: &mut SqliteConnection) -> Result<RaftApplied, StorageError> {
    let rows = sqlx::query("SELECT key, value FROM raft_sm_meta WHERE key IN (?, ?)")
        .bind(LAST_APPLIED)
        .bind(LAST_MEMBERSHIP)
        .fetch_all(&mut *db)
        .await?;
    let mut out = RaftApplied::default();
    for row in rows {
        let key: String = row.try_get(0)?;
        let value: Vec<u8> = row.try_get(1)?;
        match key.as_str() {
            LAST_APPLIED => out.last_applied = Some(value),
            _ => out.last_membership = Some(value),
        }
    }
    Ok(out)
}

async fn put_meta(db: &mut SqliteConnection, key: &str, value: &[u8]) -> Result<(), StorageError> {
    sqlx::query("INSERT OR REPLACE INTO raft_sm_meta (key, value) VALUES (?, ?)")
        .bind(key)
        .bind(value)
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// Upserts a document (JSON text) on a connection or transaction (`Storage::put_doc` and
/// the state machine's batch both use it).
pub(super) async fn put_doc_on(
    db: &mut SqliteConnection,
    collection: &str,
    key: &str,
    value: &str,
) -> Result<u64, StorageError> {
    let seq = super::export::next_seq(db).await?;
    let done = sqlx::query(
        "INSERT OR REPLACE INTO replicated_docs (collection, key, value, export_seq)
         VALUES (?,?,?,?)",
    )
    .bind(collection)
    .bind(key)
    .bind(value)
    .bind(seq)
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts a call record on a connection or transaction (`Storage::insert_call` and the
/// state machine's batch both use it).
pub(super) async fn insert_call_on(
    db: &mut SqliteConnection,
    r: &CallRecord,
) -> Result<u64, StorageError> {
    let path = serde_json::to_string(&r.path).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let failover = r
        .failover
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let seq = super::export::next_seq(db).await?;
    let done = sqlx::query(
        "INSERT OR REPLACE INTO calls (id, sip_call_id, started_at, answered_at, ended_at, caller, called,
         flow, flow_version, path, end_reason, codec, node, rtp_sent, rtp_received,
         queue, agent, queued_at, agent_answered_at, queue_outcome, recording, recording_sha256,
         recording_ms, dial_refused, failover, export_seq)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    )
    .bind(&r.id)
    .bind(&r.sip_call_id)
    .bind(r.started_at.to_rfc3339())
    .bind(r.answered_at.map(|t| t.to_rfc3339()))
    .bind(r.ended_at.to_rfc3339())
    .bind(&r.caller)
    .bind(&r.called)
    .bind(&r.flow)
    .bind(&r.flow_version)
    .bind(path)
    .bind(r.end_reason.as_str())
    .bind(&r.codec)
    .bind(&r.node)
    .bind(r.rtp_sent as i64)
    .bind(r.rtp_received as i64)
    .bind(&r.queue)
    .bind(&r.agent)
    .bind(r.queued_at.map(|t| t.to_rfc3339()))
    .bind(r.agent_answered_at.map(|t| t.to_rfc3339()))
    .bind(r.queue_outcome.map(|o| o.as_str()))
    .bind(&r.recording)
    .bind(&r.recording_sha256)
    .bind(r.recording_ms.map(|ms| ms as i64))
    .bind(&r.dial_refused)
    .bind(failover)
    .bind(seq)
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set, built from JSON so that fields added later (with serde defaults)
    /// do not break this test, while a column missing from one statement does.
    fn full_record() -> CallRecord {
        let mut v = serde_json::json!({
            "id": "c1", "sip_call_id": "s1",
            "started_at": "2026-11-21T10:00:00Z", "answered_at": "2026-11-21T10:00:01Z",
            "ended_at": "2026-11-21T10:01:00Z", "caller": "1000", "called": "2000",
            "flow": "demo", "flow_version": "1", "path": ["a", "b"], "end_reason": "caller_hangup",
            "codec": "PCMA", "node": "n1", "rtp_sent": 5, "rtp_received": 4,
        });
        // Give every optional field the record knows a value, whatever it is called.
        let defaults =
            serde_json::to_value(serde_json::from_value::<CallRecord>(v.clone()).expect("record"))
                .expect("json");
        if let (Some(obj), Some(all)) = (v.as_object_mut(), defaults.as_object()) {
            for (k, val) in all {
                if val.is_null() {
                    let filler = if k.ends_with("_at") {
                        serde_json::json!("2026-11-21T10:00:30Z")
                    } else if k.ends_with("_ms") {
                        serde_json::json!(1234)
                    } else if k == "queue_outcome" {
                        serde_json::json!("answered")
                    } else if k == "failover" {
                        serde_json::json!({"from": "a", "to": "b",
                            "at": "2026-11-21T10:00:30Z", "media_gap_ms": 800})
                    } else {
                        serde_json::json!("x")
                    };
                    obj.insert(k.clone(), filler);
                }
            }
        }
        serde_json::from_value(v).expect("full record")
    }

    #[tokio::test]
    async fn lists_docs_lacking_a_value_and_the_latest() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Storage::open(dir.path()).await.expect("open");
        for (key, at, on) in [
            ("c1", "2026-11-21T10:00:00Z", r#"["a"]"#),
            ("c2", "2026-11-21T10:02:00Z", r#"["a","b"]"#),
            ("c3", "2026-11-21T10:01:00Z", r#"["b"]"#),
        ] {
            let doc = format!(r#"{{"recorded_at":"{at}","present_on":{on}}}"#);
            db.put_doc("recordings", key, &doc).await.expect("put");
        }
        db.put_doc("other", "x", r#"{"present_on":[]}"#)
            .await
            .expect("put");
        let lacking = |v: &'static str| {
            let db = db.clone();
            async move {
                db.doc_keys_lacking("recordings", "$.present_on", v)
                    .await
                    .expect("scan")
            }
        };
        assert_eq!(lacking("b").await, vec!["c1"]);
        assert_eq!(lacking("a").await, vec!["c3"]);
        assert_eq!(lacking("c").await, vec!["c1", "c2", "c3"]);
        let latest = db
            .latest_docs("recordings", "$.recorded_at", 2)
            .await
            .expect("latest");
        let keys: Vec<&str> = latest.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["c2", "c3"]);
    }

    #[tokio::test]
    async fn raft_apply_writes_the_same_row_as_insert_call() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let direct = Storage::open(a.path()).await.expect("open a");
        let raft = Storage::open(b.path()).await.expect("open b");
        raft.prepare_raft().await.expect("prepare");
        let r = full_record();
        direct.insert_call(&r).await.expect("insert");
        let item = ApplyItem {
            log_id: b"1".to_vec(),
            membership: None,
            op: Some(RaftOp::InsertCall(&r)),
        };
        assert_eq!(raft.apply_batch(&[item]).await.expect("apply"), vec![1]);
        let got_direct = direct.latest_calls(1).await.expect("read a");
        let got_raft = raft.latest_calls(1).await.expect("read b");
        assert_eq!(got_direct, vec![r.clone()]);
        assert_eq!(got_raft, got_direct);
        assert_eq!(
            raft.raft_applied()
                .await
                .expect("applied")
                .last_applied
                .as_deref(),
            Some(&b"1"[..])
        );
    }
}
