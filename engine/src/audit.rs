//! The audit log: who did what, when, from where. Append only, replicated.
//!
//! Each [`AuditEntry`] is a document of the replicated `audit` collection, written through
//! the engine's [`RecordWriter`] (the HA pair's raft log, or the local database on a node
//! alone), so both nodes hold the same log and it survives a failover. Keys are the entry's
//! time in milliseconds, the node and a per-process sequence number plus a random suffix
//! (`0001765100000123-svi-a-000042-9f3c01ab`): they sort by time, and two entries never
//! share a key, so an entry is never overwritten. [`read`] lists them by time.
//!
//! Entries are records, not log lines: the origin may hold a caller's number (who asked a
//! door to open matters to security), so `Debug` redacts it like [`pii::Pii`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::replication::RecordWriter;
use crate::storage::Storage;
use pii::Pii;

/// The replicated collection of the audit log.
pub const COLLECTION: &str = "audit";

/// How the audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written before acting: the attempt is on record whatever happens next.
    Requested,
    Done,
    /// Refused by policy (authentication, rights, rate limit).
    Denied,
    /// The system acted on could not do it.
    Failed,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Who: `holder:42`, `user:admin`, `system`; `unknown` before authentication.
    pub actor: String,
    /// What: `door.open`, `badge.block`, ...
    pub action: String,
    /// On what: `door:3`, `badge:00123`.
    pub target: String,
    /// From where: `call <id> from <number>`, an admin's address.
    pub origin: String,
    pub outcome: Outcome,
    /// Why, for a denial or a failure (no secret, no PIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The node that wrote it.
    #[serde(default)]
    pub node: String,
}

impl AuditEntry {
    /// An entry made now (its `node` is set when it is appended).
    pub fn now(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        origin: impl Into<String>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            origin: origin.into(),
            outcome,
            detail,
            node: String::new(),
        }
    }
}

impl fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEntry")
            .field("at", &self.at)
            .field("actor", &self.actor)
            .field("action", &self.action)
            .field("target", &self.target)
            .field("origin", &Pii::new(self.origin.as_str()))
            .field("outcome", &self.outcome)
            .field("detail", &self.detail)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log cannot be written: {0}")]
    Write(String),
    #[error("the audit log cannot be read: {0}")]
    Read(String),
}

/// Appends entries to the replicated audit log. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    writer: Arc<dyn RecordWriter>,
    node: String,
    seq: Arc<AtomicU64>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditLog({})", self.node)
    }
}

impl AuditLog {
    pub fn new(writer: Arc<dyn RecordWriter>, node: &str) -> AuditLog {
        AuditLog {
            writer,
            node: node.to_string(),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Appends `entry` for what has already happened: a failure to write it is logged, not
    /// returned.
    pub async fn record(&self, entry: AuditEntry) {
        let action = entry.action.clone();
        if let Err(e) = self.append(entry).await {
            tracing::error!(error = %e, action = %action, "audit entry not written");
        }
    }

    /// Writes `entry` (its `node` set to this node's) and returns its key once the writer
    /// has it durably (committed, or kept on disk until it can be; readers may see it a
    /// moment later).
    pub async fn append(&self, mut entry: AuditEntry) -> Result<String, AuditError> {
        entry.node = self.node.clone();
        let key = format!(
            "{:016}-{}-{:06}-{:08x}",
            entry.at.timestamp_millis().max(0),
            self.node,
            self.seq.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let value = serde_json::to_value(&entry).map_err(|e| AuditError::Write(e.to_string()))?;
        self.writer
            .put_doc(COLLECTION.to_string(), key.clone(), value)
            .await
            .map_err(|e| AuditError::Write(e.to_string()))?;
        Ok(key)
    }
}

/// Entries at or after `since`, oldest first, at most `limit`.
pub async fn read(
    storage: &Storage,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<AuditEntry>, AuditError> {
    read_between(storage, since, None, limit).await
}

/// Entries in `[from, to)` (`to` None: up to now), oldest first, at most `limit`.
pub async fn read_between(
    storage: &Storage,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<Vec<AuditEntry>, AuditError> {
    let key = |t: DateTime<Utc>| format!("{:016}", t.timestamp_millis().max(0));
    let to = to.map(key).unwrap_or_else(|| "~".to_string());
    let docs = storage
        .docs_in_range(COLLECTION, &key(from), &to)
        .await
        .map_err(|e| AuditError::Read(e.to_string()))?;
    docs.into_iter()
        .take(limit)
        .map(|(key, text)| {
            serde_json::from_str(&text).map_err(|e| AuditError::Read(format!("entry {key}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::LocalWriter;

    fn entry(at: DateTime<Utc>, action: &str) -> AuditEntry {
        AuditEntry {
            at,
            actor: "holder:42".into(),
            action: action.into(),
            target: "door:3".into(),
            origin: "call c1 from +33100000009".into(),
            outcome: Outcome::Done,
            detail: None,
            node: String::new(),
        }
    }

    #[tokio::test]
    async fn entries_never_overwrite_each_other_and_read_back_in_time_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Storage::open(dir.path()).await.expect("storage");
        storage.prepare_raft().await.expect("docs table");
        let log = AuditLog::new(Arc::new(LocalWriter(storage.clone())), "node-a");
        let t0 = Utc::now();
        let later = t0 + chrono::Duration::seconds(5);
        let k2 = log
            .append(entry(later, "badge.block"))
            .await
            .expect("append");
        let k1 = log.append(entry(t0, "door.open")).await.expect("append");
        // The same instant twice: two entries, two keys.
        let k1b = log.append(entry(t0, "door.open")).await.expect("append");
        assert_ne!(k1, k1b);
        assert!(k1 < k2 && k1b < k2, "{k1} {k1b} {k2}");
        let all = read(&storage, t0, 10).await.expect("read");
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].action, "badge.block");
        assert!(all.iter().all(|e| e.node == "node-a"));
        let recent = read(&storage, later, 10).await.expect("read");
        assert_eq!(recent.len(), 1);
        assert!(!format!("{:?}", all[0]).contains("100000009"));
    }
}
