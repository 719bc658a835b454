//! Read-only views for supervision (wallboards, `svi queue list`, `svi calls --live`, the
//! admin API): plain serde data, computed on demand in O(Q + C + A·k) (k queues served per
//! agent), never kept up to date on the routing path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::Strategy;
use super::index::wait_key;
use super::machine::Acd;
use super::model::{AgentState, CallState, Pending};
use super::types::{ms, opt_ms, AgentId, CallId, QueueId, Timestamp};
use ivr_scripts::Priority;

/// Everything the ACD shows at one instant: queues, agents and the calls it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcdSnapshot {
    pub queues: Vec<QueueSnapshot>,
    pub agents: Vec<AgentSnapshot>,
    pub calls: Vec<QueuedCallSnapshot>,
}

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
    /// The agents serving the queue, per state (an agent serving several queues counts in
    /// each).
    pub agents: AgentCounts,
    /// The estimate a caller joining now would hear.
    #[serde(with = "opt_ms")]
    pub expected_wait: Option<Duration>,
}

/// Agents per state, for a queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub logged_out: u32,
    pub ready: u32,
    pub not_ready: u32,
    /// Reserved or ringing: offered a call.
    pub offered: u32,
    pub talking: u32,
    pub wrap_up: u32,
}

impl AgentCounts {
    fn count(&mut self, state: &AgentState) {
        let n = match state {
            AgentState::LoggedOut => &mut self.logged_out,
            AgentState::Ready => &mut self.ready,
            AgentState::NotReady { .. } => &mut self.not_ready,
            AgentState::Reserved { .. } | AgentState::Ringing { .. } => &mut self.offered,
            AgentState::Talking { .. } => &mut self.talking,
            AgentState::WrapUp { .. } => &mut self.wrap_up,
        };
        *n = n.saturating_add(1);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub id: AgentId,
    pub name: String,
    pub contact: String,
    pub state: AgentState,
    pub since: Timestamp,
    /// How long the agent has been in `state`.
    #[serde(with = "ms")]
    pub time_in_state: Duration,
    /// Why the agent is not ready (the `reason` of a `not_ready` state).
    pub pause_reason: Option<String>,
    pub call: Option<CallId>,
    /// A pause or logout to apply when the current work ends.
    pub pending: Option<Pending>,
    pub queues: Vec<QueueId>,
}

/// A call the ACD holds: where it waits, and its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCallSnapshot {
    pub call: CallId,
    pub queue: QueueId,
    pub priority: Priority,
    pub state: CallState,
    /// 1-based place in the queue's waiting order, while waiting (callbacks hold places).
    pub position: Option<u32>,
    /// Time since the call entered its current queue.
    #[serde(with = "ms")]
    pub waited: Duration,
    pub callback: bool,
}

impl QueuedCallSnapshot {
    /// The agent ringing for the call or on it.
    pub fn agent(&self) -> Option<&AgentId> {
        match &self.state {
            CallState::Offered { agents } => agents.first(),
            CallState::Dialing { agent } | CallState::Talking { agent, .. } => Some(agent),
            CallState::Waiting | CallState::RetryWait => None,
        }
    }
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
        let mut counts: BTreeMap<&QueueId, AgentCounts> = BTreeMap::new();
        for (agent_id, a) in &self.st.agents {
            for q in self.ix.serves(agent_id) {
                counts.entry(q).or_default().count(&a.state);
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
                agents: counts.remove(id).unwrap_or_default(),
                expected_wait: self.expected_wait(id, waiting.saturating_add(1)),
            });
        }
        out
    }

    pub fn agents(&self, now: Instant) -> Vec<AgentSnapshot> {
        let now = self.clock.stamp(now);
        self.st
            .agents
            .iter()
            .map(|(id, a)| AgentSnapshot {
                id: id.clone(),
                name: a.config.name.clone(),
                contact: a.config.contact.clone(),
                state: a.state.clone(),
                since: a.since,
                time_in_state: now.since(a.since),
                pause_reason: match &a.state {
                    AgentState::NotReady { reason } => Some(reason.clone()),
                    _ => None,
                },
                call: a.state.call().cloned(),
                pending: a.pending.clone(),
                queues: self.ix.serves(id).cloned().collect(),
            })
            .collect()
    }

    /// The calls the ACD holds, queue by queue in waiting order (positions counted in one
    /// pass per queue), then those not waiting (offered, talking...).
    pub fn queued_calls(&self, now: Instant) -> Vec<QueuedCallSnapshot> {
        let at = self.clock.stamp(now);
        let mut positions: BTreeMap<&CallId, u32> = BTreeMap::new();
        for qi in self.ix.queues.values() {
            for (n, call) in qi.waiting.values().enumerate() {
                positions.insert(call, u32::try_from(n + 1).unwrap_or(u32::MAX));
            }
        }
        let mut out: Vec<QueuedCallSnapshot> = self
            .st
            .calls
            .iter()
            .map(|(id, c)| QueuedCallSnapshot {
                call: id.clone(),
                queue: c.queue.clone(),
                priority: c.priority,
                state: c.state.clone(),
                position: positions.get(id).copied(),
                waited: at.since(c.queued_at),
                callback: c.is_callback(),
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.queue, a.position.is_none(), a.position, &a.call).cmp(&(
                &b.queue,
                b.position.is_none(),
                b.position,
                &b.call,
            ))
        });
        out
    }

    /// Queues, agents and calls at one instant.
    pub fn snapshot(&self, now: Instant) -> AcdSnapshot {
        AcdSnapshot {
            queues: self.queues(now),
            agents: self.agents(now),
            calls: self.queued_calls(now),
        }
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
