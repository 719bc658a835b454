//! The replicated recording index: one document per call recording in the `recordings`
//! collection, keyed by call id, saying which file holds it, its size and SHA-256, and on
//! which nodes it is (`present_on`: the node that recorded it, then each node that copied
//! it). The engine writes an entry when a recorded call ends (or is recovered after a
//! crash); the HA pair's copier adds nodes to `present_on`; `svi recordings` and the
//! `EngineHandle` list the entries. One type, [`IndexEntry`], serves all of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::storage::CallRecord;

/// The replicated collection of the index.
pub const COLLECTION: &str = "recordings";

/// One recording in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The engine's call id (the key of the entry and of the call record).
    pub call: String,
    /// The file's name in the recordings directory (`<call id>.wav`), never a path.
    pub file: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// When the call (and so the recording) ended.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// The node that recorded the call.
    #[serde(default)]
    pub origin: Option<String>,
    /// The nodes that hold the file, as a set (see [`IndexEntry::add_presence`]).
    #[serde(default)]
    pub present_on: Vec<String>,
    /// Fields this version does not know (written by a newer node): kept as they are when
    /// the entry is rewritten.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl IndexEntry {
    /// The entry of a recorded call, on the node that recorded it; `None` if the call was
    /// not recorded. The size is read from the file (0 if it is gone).
    pub fn for_record(record: &CallRecord) -> Option<IndexEntry> {
        let path = std::path::Path::new(record.recording.as_ref()?);
        let file = path.file_name()?.to_string_lossy().to_string();
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Some(IndexEntry {
            call: record.id.clone(),
            file,
            bytes,
            sha256: record.recording_sha256.clone(),
            duration_ms: record.recording_ms,
            recorded_at: Some(record.ended_at),
            origin: Some(record.node.clone()),
            present_on: vec![record.node.clone()],
            other: serde_json::Map::new(),
        })
    }

    /// Adds `node` to `present_on` (as a set). Returns false if it was there already.
    pub fn add_presence(&mut self, node: &str) -> bool {
        if self.present_on.iter().any(|n| n == node) {
            return false;
        }
        self.present_on.push(node.to_string());
        true
    }

    /// The entry as the JSON document stored in the collection.
    pub fn to_doc(&self) -> serde_json::Value {
        // A struct of strings, numbers and a JSON map always serialises.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_a_set_and_unknown_fields_stay() {
        let text = r#"{"call":"c1","file":"c1.wav","present_on":["a"],"extra":1}"#;
        let mut e: IndexEntry = serde_json::from_str(text).expect("entry");
        assert!(e.add_presence("b"));
        assert!(!e.add_presence("b"));
        assert!(!e.add_presence("a"));
        let doc = e.to_doc();
        assert_eq!(doc["present_on"], serde_json::json!(["a", "b"]));
        assert_eq!(doc["extra"], serde_json::json!(1));
        assert_eq!(doc["file"], "c1.wav");
    }

    #[test]
    fn an_entry_is_written_for_a_recorded_call_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let wav = dir.path().join("c7.wav");
        std::fs::write(&wav, [0u8; 44]).expect("file");
        let mut record: CallRecord = serde_json::from_value(serde_json::json!({
            "id": "c7", "sip_call_id": "x@y", "started_at": "2026-11-21T10:00:00Z",
            "answered_at": null, "ended_at": "2026-11-21T10:01:00Z", "caller": "1001",
            "called": "service", "flow": "demo", "flow_version": null, "path": [],
            "end_reason": "caller_hangup", "codec": "PCMA", "node": "node-a",
            "rtp_sent": 0, "rtp_received": 0
        }))
        .expect("record");
        assert_eq!(IndexEntry::for_record(&record), None);
        record.recording = Some(wav.display().to_string());
        record.recording_sha256 = Some("ab".into());
        record.recording_ms = Some(1500);
        let e = IndexEntry::for_record(&record).expect("entry");
        assert_eq!(e.file, "c7.wav");
        assert_eq!(e.bytes, 44);
        assert_eq!(e.origin.as_deref(), Some(record.node.as_str()));
        assert_eq!(e.present_on, vec![record.node.clone()]);
        assert_eq!(e.recorded_at, Some(record.ended_at));
        let back: IndexEntry = serde_json::from_value(e.to_doc()).expect("round trip");
        assert_eq!(back, e);
    }
}
