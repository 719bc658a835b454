//! Agent phone registrations, replicated: every change of an agent's bindings (a REGISTER
//! that adds, refreshes or removes one, an expiry) is written through the record writer as
//! a document (collection `agent_phones`, keyed by agent: each contact with its expiry as
//! Unix milliseconds). A node that becomes active loads these documents and rings agents at
//! their replicated contacts at once, without waiting for the phones to register again; a
//! phone's next REGISTER (to the new active node) takes over as usual.
//!
//! Writes go through one task per node, in the order the changes happened, so a refresh
//! never lands before the registration it refreshes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sip::message::Uri;
use tokio::sync::mpsc;

use crate::replication::RecordWriter;
use crate::storage::Storage;

pub const COLLECTION: &str = "agent_phones";

/// One agent's bindings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBindings {
    pub contacts: Vec<StoredContact>,
    /// The node that took the registration (`[node] name`).
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContact {
    pub uri: String,
    /// Unix milliseconds.
    pub expires_at: u64,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Converts monotonic expiries to wall-clock ones (the other node has another monotonic
/// clock).
pub fn stored(bindings: &[(Uri, Instant)], now: Instant, node: &str) -> StoredBindings {
    let wall = SystemTime::now();
    StoredBindings {
        contacts: bindings
            .iter()
            .map(|(uri, at)| StoredContact {
                uri: uri.to_string(),
                expires_at: unix_ms(wall + at.saturating_duration_since(now)),
            })
            .collect(),
        node: node.to_string(),
    }
}

/// The bindings of every agent that are still live, as monotonic expiries from `now`.
pub async fn load(storage: &Storage, now: Instant) -> Vec<(String, Vec<(Uri, Instant)>)> {
    let docs = match storage.docs_in_range(COLLECTION, "", "\u{10ffff}").await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "replicated agent registrations unreadable");
            return Vec::new();
        }
    };
    let wall = unix_ms(SystemTime::now());
    let mut out = Vec::new();
    for (agent, text) in docs {
        let Ok(doc) = serde_json::from_str::<StoredBindings>(&text) else {
            tracing::warn!(agent = %agent, "replicated agent registration unreadable; skipped");
            continue;
        };
        let live: Vec<(Uri, Instant)> = doc
            .contacts
            .iter()
            .filter(|c| c.expires_at > wall)
            .filter_map(|c| {
                let uri = Uri::parse(&c.uri).ok()?;
                Some((uri, now + Duration::from_millis(c.expires_at - wall)))
            })
            .collect();
        if !live.is_empty() {
            out.push((agent, live));
        }
    }
    out
}

/// Sends binding changes to the writer, in order.
#[derive(Clone)]
pub struct BindingWriter {
    tx: mpsc::UnboundedSender<(String, StoredBindings)>,
}

impl BindingWriter {
    pub fn start(writer: std::sync::Arc<dyn RecordWriter>) -> BindingWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, StoredBindings)>();
        tokio::spawn(async move {
            while let Some((agent, doc)) = rx.recv().await {
                let value = match serde_json::to_value(&doc) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::error!(agent = %agent, error = %e, "agent registration not serialisable");
                        continue;
                    }
                };
                if let Err(e) = writer
                    .put_doc(COLLECTION.into(), agent.clone(), value)
                    .await
                {
                    tracing::warn!(agent = %agent, error = %e, "agent registration not replicated");
                }
            }
        });
        BindingWriter { tx }
    }

    pub fn send(&self, agent: &str, doc: StoredBindings) {
        let _ = self.tx.send((agent.to_string(), doc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stored_bindings_come_back_with_their_remaining_lifetime() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Storage::open(dir.path()).await.expect("storage");
        let now = Instant::now();
        let live = Uri::parse("sip:1001@192.0.2.5:5062").expect("uri");
        let doc = stored(
            &[(live.clone(), now + Duration::from_secs(300))],
            now,
            "node-a",
        );
        storage
            .put_doc(
                COLLECTION,
                "1001",
                &serde_json::to_string(&doc).expect("json"),
            )
            .await
            .expect("put");
        let gone = StoredBindings {
            contacts: vec![StoredContact {
                uri: "sip:1002@192.0.2.6".into(),
                expires_at: 1,
            }],
            node: "node-a".into(),
        };
        storage
            .put_doc(
                COLLECTION,
                "1002",
                &serde_json::to_string(&gone).expect("json"),
            )
            .await
            .expect("put");
        storage
            .put_doc(COLLECTION, "1003", "not json")
            .await
            .expect("put");
        let later = Instant::now();
        let loaded = load(&storage, later).await;
        assert_eq!(loaded.len(), 1, "only the live binding: {loaded:?}");
        let (agent, list) = &loaded[0];
        assert_eq!(agent, "1001");
        assert_eq!(list[0].0, live);
        let left = list[0].1.saturating_duration_since(later);
        assert!(
            left > Duration::from_secs(298) && left <= Duration::from_secs(300),
            "{left:?}"
        );
    }
}
