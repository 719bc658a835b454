//! SQL on a backup's copy of `svi.db` (the `backup` module handles files; SQL stays here):
//! what the copy holds, which recording files its index names, and dropping the history
//! for `svi restore --without-history`.

use std::path::Path;

use sqlx::Connection as _;

use super::{open_file, StorageError};

/// What a copy of the engine database holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contents {
    pub calls: u64,
    pub documents: u64,
}

async fn table_exists(
    conn: &mut sqlx::sqlite::SqliteConnection,
    table: &str,
) -> Result<bool, StorageError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

async fn count(
    conn: &mut sqlx::sqlite::SqliteConnection,
    table: &'static str,
) -> Result<u64, StorageError> {
    if !table_exists(conn, table).await? {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.max(0) as u64)
}

/// Rows of the copy at `db`.
pub async fn contents(db: &Path) -> Result<Contents, StorageError> {
    let mut conn = open_file(db, true).await?;
    let out = Contents {
        calls: count(&mut conn, "calls").await?,
        documents: count(&mut conn, "replicated_docs").await?,
    };
    conn.close().await?;
    Ok(out)
}

/// The `file` of every document of `collection` (the recording index), in key order.
pub async fn doc_files(db: &Path, collection: &str) -> Result<Vec<String>, StorageError> {
    let mut conn = open_file(db, true).await?;
    if !table_exists(&mut conn, "replicated_docs").await? {
        return Ok(Vec::new());
    }
    let files: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT json_extract(value, '$.file') FROM replicated_docs WHERE collection = ?
         ORDER BY key",
    )
    .bind(collection)
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(files.into_iter().flatten().collect())
}

/// What `strip_history` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stripped {
    pub calls: u64,
    pub documents: u64,
}

/// Deletes the call records and the documents of the `history` collections from the copy at
/// `db`, in one transaction, then rewrites the file (`VACUUM`) so that the deleted rows'
/// personal data does not linger in free pages.
pub async fn strip_history(db: &Path, history: &[&str]) -> Result<Stripped, StorageError> {
    let mut conn = open_file(db, false).await?;
    let mut out = Stripped::default();
    let mut tx = conn.begin().await?;
    if table_exists(&mut tx, "calls").await? {
        out.calls = sqlx::query("DELETE FROM calls")
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    if table_exists(&mut tx, "replicated_docs").await? {
        for c in history {
            out.documents += sqlx::query("DELETE FROM replicated_docs WHERE collection = ?")
                .bind(c)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
    }
    tx.commit().await?;
    sqlx::query("VACUUM").execute(&mut conn).await?;
    conn.close().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[tokio::test]
    async fn strips_calls_and_history_documents_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Storage::open(dir.path()).await.expect("open");
        let rec: crate::storage::CallRecord = serde_json::from_value(serde_json::json!({
            "id": "c1", "sip_call_id": "s1", "started_at": "2026-11-21T10:00:00Z",
            "ended_at": "2026-11-21T10:01:00Z", "caller": "1000", "called": "2000",
            "path": [], "end_reason": "caller_hangup", "node": "n1",
            "rtp_sent": 0, "rtp_received": 0,
        }))
        .expect("record");
        db.insert_call(&rec).await.expect("call");
        db.put_doc("acd_events", "k1", "{}").await.expect("event");
        db.put_doc("recordings", "c1", r#"{"file":"c1.wav"}"#)
            .await
            .expect("index");
        db.close().await;
        let path = dir.path().join("svi.db");
        assert_eq!(
            contents(&path).await.expect("contents"),
            Contents {
                calls: 1,
                documents: 2
            }
        );
        assert_eq!(
            doc_files(&path, "recordings").await.expect("files"),
            vec!["c1.wav"]
        );
        let s = strip_history(&path, &["acd_events"]).await.expect("strip");
        assert_eq!(
            s,
            Stripped {
                calls: 1,
                documents: 1
            }
        );
        assert_eq!(
            contents(&path).await.expect("contents"),
            Contents {
                calls: 0,
                documents: 1
            }
        );
        // The caller's number is gone from the file itself, not only from the table.
        let bytes = std::fs::read(&path).expect("read");
        assert!(!bytes.windows(4).any(|w| w == b"1000"));
    }
}
