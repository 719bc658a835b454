//! Read-only views for supervision (wallboards, `svi queue list`, the admin API): plain
//! serde data, computed on demand in O(Q + C) and O(A), never kept up to date on the
//! routing path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::Strategy;
use super::index::wait_key;
use super::machine::Acd;
use super::model::{AgentState, CallState, Pending};
use super::types::{opt_ms, AgentId, CallId, QueueId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub id: QueueId,
    pub name: String,
    pub strategy: Strategy,
    /// Entries in the waiting order, callbacks included.
    pub waiting: u32,
    /// Callback entries (waiting, being called back, or waiting for a retry).
    pub callbacks: u32,
    /// Calls whose agent is ringing.
    pub offered: u32,
    pub talking: u32,
    /// The longest current wait among waiting and offered calls.
    #[serde(with = "opt_ms")]
    pub longest_wait: Option<Duration>,
    pub agents_logged_in: u32,
    /// Ready agents.
    pub agents_available: u32,
    /// Staffed agents not ready for a new call: reserved, ringing, talking, wrap-up.
    pub agents_busy: u32,
    /// The estimate a caller joining now would hear.
    #[serde(with = "opt_ms")]
    pub expected_wait: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub id: AgentId,
    pub name: String,
    pub contact: String,
    pub state: AgentState,
    pub since: Timestamp,
    pub call: Option<CallId>,
    /// A pause or logout to apply when the current work ends.
    pub pending: Option<Pending>,
    pub queues: Vec<QueueId>,
}

#[derive(Default)]
struct Tally {
    callbacks: u32,
    offered: u32,
    talking: u32,
    oldest: Option<Timestamp>,
}

impl Acd {
    pub fn queues(&self, now: Instant) -> Vec<QueueSnapshot> {
        let now = self.clock.stamp(now);
        let mut tally: BTreeMap<&QueueId, Tally> = BTreeMap::new();
        for c in self.st.calls.values() {
            let t = tally.entry(&c.queue).or_default();
            if c.is_callback() {
                t.callbacks = t.callbacks.saturating_add(1);
            }
            match c.state {
                CallState::Waiting | CallState::Offered { .. } => {
                    if matches!(c.state, CallState::Offered { .. }) {
                        t.offered = t.offered.saturating_add(1);
                    }
                    if !c.is_callback() {
                        t.oldest = Some(t.oldest.map_or(c.queued_at, |o| o.min(c.queued_at)));
                    }
                }
                CallState::Talking { .. } | CallState::Dialing { .. } => {
                    t.talking = t.talking.saturating_add(1)
                }
                CallState::RetryWait => {}
            }
        }
        let mut out = Vec::with_capacity(self.st.queues.len());
        for (id, q) in &self.st.queues {
            let Some(qi) = self.ix.queues.get(id) else {
                continue;
            };
            let t = tally.remove(id).unwrap_or_default();
            let waiting = u32::try_from(qi.waiting.len()).unwrap_or(u32::MAX);
            let ready = u32::try_from(qi.ready.len()).unwrap_or(u32::MAX);
            out.push(QueueSnapshot {
                id: id.clone(),
                name: q.config.name.clone(),
                strategy: q.config.strategy,
                waiting,
                callbacks: t.callbacks,
                offered: t.offered,
                talking: t.talking,
                longest_wait: t.oldest.map(|o| now.since(o)),
                agents_logged_in: qi.logged_in,
                agents_available: ready,
                agents_busy: qi.staffed.saturating_sub(ready),
                expected_wait: self.expected_wait(id, waiting.saturating_add(1)),
            });
        }
        out
    }

    pub fn agents(&self) -> Vec<AgentSnapshot> {
        self.st
            .agents
            .iter()
            .map(|(id, a)| AgentSnapshot {
                id: id.clone(),
                name: a.config.name.clone(),
                contact: a.config.contact.clone(),
                state: a.state.clone(),
                since: a.since,
                call: a.state.call().cloned(),
                pending: a.pending.clone(),
                queues: self.ix.serves(id).cloned().collect(),
            })
            .collect()
    }

    /// A waiting call's 1-based position in its queue (callbacks hold places too).
    pub fn position(&self, call: &CallId) -> Option<u32> {
        let c = self.st.calls.get(call)?;
        if c.state != CallState::Waiting {
            return None;
        }
        Some(self.ix.queues.get(&c.queue)?.position(&wait_key(c)))
    }
}
