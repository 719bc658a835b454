//! The export feed: every call record and document written to the state machine gets the
//! next number of one counter (`export_seq`), in the same transaction as the write. Every
//! node applies the same committed entries in the same order, and snapshots carry the
//! counter (`raft_sm_meta`) and the numbers, so a row has the same number on every node of
//! the pair: a cursor "exported up to N" means the same thing after a failover. The central
//! export (`crate::central`) reads the feed after its cursor; it never writes here.
//!
//! A rewritten row (a call record written again, a recording index entry updated by the
//! copier) gets a new number, so it is exported again: the central side upserts.

use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use super::{records, CallRecord, Storage, StorageError};

/// Step 6 of `migrate::ENGINE_DB`. Rows written before it are numbered in table order
/// (calls first), so history is exported too.
pub(super) const EXPORT_SCHEMA: &str = "
    ALTER TABLE calls ADD COLUMN export_seq INTEGER;
    ALTER TABLE replicated_docs ADD COLUMN export_seq INTEGER;
    UPDATE calls SET export_seq = rowid;
    UPDATE replicated_docs SET export_seq = rowid + (SELECT COALESCE(MAX(rowid), 0) FROM calls);
    INSERT OR REPLACE INTO raft_sm_meta (key, value)
        SELECT 'export_seq', COALESCE(MAX(s), 0) FROM
        (SELECT export_seq AS s FROM calls UNION ALL SELECT export_seq FROM replicated_docs);
    CREATE INDEX calls_export ON calls(export_seq);
    CREATE INDEX docs_export ON replicated_docs(export_seq);";

/// The next number of the feed, on the connection (or transaction) of the write.
pub(super) async fn next_seq(db: &mut SqliteConnection) -> Result<i64, StorageError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO raft_sm_meta (key, value) VALUES ('export_seq', 1)
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
         RETURNING CAST(value AS INTEGER)",
    )
    .fetch_one(&mut *db)
    .await?;
    Ok(seq)
}

/// One row of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub seq: u64,
    pub item: ExportItem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExportItem {
    Call(Box<CallRecord>),
    /// A document of one of the collections asked for (JSON text).
    Doc {
        collection: String,
        key: String,
        value: String,
    },
}

impl Storage {
    /// The first `limit` rows of the feed numbered above `after`, in feed order: call
    /// records, and the documents of `collections`.
    pub fn export_after<'a>(
        &'a self,
        after: u64,
        collections: &'a [&'a str],
        limit: u32,
    ) -> crate::replication::BoxFuture<'a, Result<Vec<ExportRow>, StorageError>> {
        // Boxed as `Send` here (see `central::CentralDb::upsert`).
        Box::pin(self.export_inner(after, collections, limit))
    }

    async fn export_inner(
        &self,
        after: u64,
        collections: &[&str],
        limit: u32,
    ) -> Result<Vec<ExportRow>, StorageError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let calls =
            sqlx::query("SELECT * FROM calls WHERE export_seq > ? ORDER BY export_seq LIMIT ?")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        let names =
            serde_json::to_string(collections).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let docs = sqlx::query(
            "SELECT export_seq, collection, key, value FROM replicated_docs
             WHERE export_seq > ? AND collection IN (SELECT value FROM json_each(?))
             ORDER BY export_seq LIMIT ?",
        )
        .bind(after)
        .bind(names)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut rows = Vec::with_capacity(calls.len() + docs.len());
        for row in &calls {
            rows.push(ExportRow {
                seq: row.try_get::<i64, _>("export_seq")?.max(0) as u64,
                item: ExportItem::Call(Box::new(records::from_row(row)?)),
            });
        }
        for row in &docs {
            rows.push(ExportRow {
                seq: row.try_get::<i64, _>("export_seq")?.max(0) as u64,
                item: ExportItem::Doc {
                    collection: row.try_get("collection")?,
                    key: row.try_get("key")?,
                    value: row.try_get("value")?,
                },
            });
        }
        rows.sort_by_key(|r| r.seq);
        rows.truncate(limit as usize);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::raft::{ApplyItem, RaftOp};

    fn call(id: &str) -> CallRecord {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .expect("t")
            .with_timezone(&chrono::Utc);
        CallRecord {
            id: id.into(),
            sip_call_id: format!("sip-{id}"),
            started_at: t,
            answered_at: Some(t),
            ended_at: t,
            caller: "1000".into(),
            called: "2000".into(),
            flow: None,
            flow_version: None,
            path: vec![],
            end_reason: crate::storage::EndReason::CallerHangup,
            codec: None,
            node: "a".into(),
            rtp_sent: 0,
            rtp_received: 0,
            queue: None,
            agent: None,
            queued_at: None,
            agent_answered_at: None,
            queue_outcome: None,
            recording: None,
            recording_sha256: None,
            recording_ms: None,
            dial_refused: None,
            failover: None,
        }
    }

    fn names(rows: &[ExportRow]) -> Vec<(u64, String)> {
        rows.iter()
            .map(|r| {
                let name = match &r.item {
                    ExportItem::Call(c) => c.id.clone(),
                    ExportItem::Doc {
                        collection, key, ..
                    } => format!("{collection}/{key}"),
                };
                (r.seq, name)
            })
            .collect()
    }

    #[tokio::test]
    async fn the_feed_numbers_writes_in_apply_order_and_pages_after_a_cursor() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Storage::open(dir.path()).await.expect("open");
        let (c1, c2) = (call("c1"), call("c2"));
        let ops = [
            RaftOp::InsertCall(&c1),
            RaftOp::PutDoc {
                collection: "acd_events",
                key: "k1",
                value: "[]",
            },
            RaftOp::PutDoc {
                collection: "audit",
                key: "a1",
                value: "{}",
            },
            RaftOp::InsertCall(&c2),
        ];
        let items: Vec<ApplyItem<'_>> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| ApplyItem {
                log_id: vec![i as u8],
                membership: None,
                op: Some(*op),
            })
            .collect();
        db.apply_batch(&items).await.expect("apply");
        let all = db.export_after(0, &["acd_events"], 10).await.expect("feed");
        // The audit document takes number 3 but is not asked for.
        assert_eq!(
            names(&all),
            [
                (1, "c1".to_string()),
                (2, "acd_events/k1".to_string()),
                (4, "c2".to_string())
            ]
        );
        let page = db.export_after(0, &["acd_events"], 2).await.expect("page");
        assert_eq!(names(&page).len(), 2);
        let rest = db.export_after(2, &["acd_events"], 2).await.expect("rest");
        assert_eq!(names(&rest), [(4, "c2".to_string())]);
        // A rewrite is numbered again, so it is exported again (the central side upserts).
        db.insert_call(&c1).await.expect("rewrite");
        let again = db
            .export_after(4, &["acd_events"], 10)
            .await
            .expect("again");
        assert_eq!(names(&again), [(5, "c1".to_string())]);
    }

    #[tokio::test]
    async fn a_snapshot_carries_the_numbers_and_the_counter() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Storage::open(&dir.path().join("a")).await.expect("a");
        a.insert_call(&call("c1")).await.expect("c1");
        a.put_doc("recordings", "c1", "{}").await.expect("doc");
        let snap = dir.path().join("snap.db");
        a.snapshot_into(&snap).await.expect("snapshot");
        let b = Storage::open(&dir.path().join("b")).await.expect("b");
        b.install_snapshot_from(&snap).await.expect("install");
        let feed = |s: Storage| async move {
            s.insert_call(&call("c2")).await.expect("c2");
            names(&s.export_after(0, &["recordings"], 10).await.expect("feed"))
        };
        assert_eq!(feed(a).await, feed(b).await);
    }
}
