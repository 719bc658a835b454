//! The writes of call replicas waiting for the publisher (sans-IO). Only the newest write
//! of a call matters (a snapshot replaces the previous one, a removal ends them), so
//! writes that wait are merged by call: under load, the publisher writes each call at most
//! once per round, whatever the rate at which its calls change.

use std::collections::BTreeMap;

/// A write of one call's replica.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The call's document (`ReplicaDoc`, as JSON).
    Put(serde_json::Value),
    /// The call ended (or cannot be adopted any more).
    Remove,
}

#[derive(Debug, Default)]
pub struct Backlog {
    waiting: BTreeMap<String, Update>,
}

impl Backlog {
    pub fn push(&mut self, call: String, update: Update) {
        self.waiting.insert(call, update);
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Every waiting write, one per call.
    pub fn take(&mut self) -> Vec<(String, Update)> {
        std::mem::take(&mut self.waiting).into_iter().collect()
    }
}
