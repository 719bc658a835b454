//! Handled alarms, stored as the engine's other data: documents of the replicated
//! `alarm_callouts` collection, keyed by the alarm's id, written through the engine's
//! [`RecordWriter`] (the HA pair's raft log, or the local database on a node alone). An
//! alarm acknowledged or given up is therefore never called out again, after a restart or
//! by the other node after a failover.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::machine::Handled;
use crate::replication::{RecordWriter, WriteError};
use crate::storage::{Storage, StorageError};

/// The replicated collection of handled alarms.
pub const COLLECTION: &str = "alarm_callouts";

/// What is stored of a handled alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandledAlarm {
    pub alarm: String,
    pub how: Handled,
    pub at: DateTime<Utc>,
    /// The node that handled it.
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("handled alarms cannot be read: {0}")]
    Read(#[from] StorageError),
    #[error("handled alarm `{key}` is not readable: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("handled alarm cannot be stored: {0}")]
    Write(#[from] WriteError),
}

/// The handled alarms of this node's database. Cheap to clone.
#[derive(Clone)]
pub struct HandledAlarms {
    storage: Storage,
    writer: Arc<dyn RecordWriter>,
    node: String,
}

impl HandledAlarms {
    pub fn new(storage: Storage, writer: Arc<dyn RecordWriter>, node: &str) -> HandledAlarms {
        HandledAlarms {
            storage,
            writer,
            node: node.to_string(),
        }
    }

    /// How `alarm` was handled, if it was.
    pub async fn get(&self, alarm: &str) -> Result<Option<HandledAlarm>, StoreError> {
        let Some(text) = self.storage.get_doc(COLLECTION, alarm).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StoreError::Decode {
                key: alarm.to_string(),
                source,
            })
    }

    /// Stores that `alarm` was handled, once the writer has it durably.
    pub async fn remember(&self, alarm: &str, how: Handled) -> Result<(), StoreError> {
        let doc = HandledAlarm {
            alarm: alarm.to_string(),
            how,
            at: Utc::now(),
            node: self.node.clone(),
        };
        let value = serde_json::to_value(&doc).map_err(|source| StoreError::Decode {
            key: alarm.to_string(),
            source,
        })?;
        self.writer
            .put_doc(COLLECTION.to_string(), alarm.to_string(), value)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::LocalWriter;

    #[tokio::test]
    async fn a_handled_alarm_reads_back_from_a_reopened_database() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Storage::open(dir.path()).await.expect("storage");
        storage.prepare_raft().await.expect("docs table");
        let store = HandledAlarms::new(
            storage.clone(),
            Arc::new(LocalWriter(storage.clone())),
            "node-a",
        );
        assert_eq!(store.get("a-7").await.expect("get"), None);
        store
            .remember("a-7", Handled::GivenUp)
            .await
            .expect("remember");
        store
            .remember("a-8", Handled::Acknowledged)
            .await
            .expect("remember");
        storage.close().await;

        let storage = Storage::open(dir.path()).await.expect("reopened");
        let store = HandledAlarms::new(
            storage.clone(),
            Arc::new(LocalWriter(storage.clone())),
            "node-b",
        );
        let a7 = store.get("a-7").await.expect("get").expect("stored");
        assert_eq!((a7.how, a7.node.as_str()), (Handled::GivenUp, "node-a"));
        let a8 = store.get("a-8").await.expect("get").expect("stored");
        assert_eq!(a8.how, Handled::Acknowledged);
        assert_eq!(store.get("a-9").await.expect("get"), None);
    }
}
