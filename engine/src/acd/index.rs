//! Routing indexes, derived from the records and never serialised.
//!
//! Per queue:
//! - `waiting`: the waiting order, keyed by (priority descending, arrival sequence), so the
//!   head is the oldest call of the highest priority: O(log W) insert, remove and head;
//! - `ready`: the ready agents that serve the queue, keyed so that the queue's strategy picks
//!   the first one: (best score, idle since, id) for `best_skill`, (idle since, id) for
//!   `longest_idle`, id alone for `round_robin` (the next after the last one offered is a
//!   range lookup) and `ring_all`. An agent sits in the `ready` set of each queue it serves,
//!   so making it ready or busy costs O(k log A) for k queues, and no decision scans agents;
//! - counters of logged-in and staffed agents (expected wait, no-agent overflow) and of
//!   waiting calls per priority (an arriving caller's position in O(log W)).
//!
//! Rebuilding from the records (`Index::build`) is the only way an index is made, after a
//! configuration change or a restore; tests compare the incremental index with a rebuilt one.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use ivr_scripts::Priority;

use super::config::Strategy;
use super::model::{Agent, AgentState, Call, CallState, Queue};
use super::types::{AgentId, CallId, QueueId, Timestamp};

/// A call's place in its queue.
pub(crate) type WaitKey = (Reverse<Priority>, u64);

pub(crate) fn wait_key(call: &Call) -> WaitKey {
    (Reverse(call.priority), call.seq)
}

/// A ready agent's place in a queue's ready set: smallest first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadyKey {
    rank: u32,
    idle: Timestamp,
    pub(crate) agent: AgentId,
}

/// `score` is the agent's score for the queue (`AgentConfig::score`), cached in the index.
fn ready_key(strategy: Strategy, score: u32, id: &AgentId, agent: &Agent) -> ReadyKey {
    let (rank, idle) = match strategy {
        Strategy::BestSkill => (u32::MAX - score, agent.idle_since),
        Strategy::LongestIdle => (0, agent.idle_since),
        Strategy::RoundRobin | Strategy::RingAll => (0, Timestamp::default()),
    };
    ReadyKey {
        rank,
        idle,
        agent: id.clone(),
    }
}

fn level(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueIndex {
    strategy: Strategy,
    pub(crate) waiting: BTreeMap<WaitKey, CallId>,
    pub(crate) ready: BTreeSet<ReadyKey>,
    per_level: [u32; 4],
    pub(crate) logged_in: u32,
    pub(crate) staffed: u32,
}

impl QueueIndex {
    pub(crate) fn head(&self) -> Option<(&WaitKey, &CallId)> {
        self.waiting.first_key_value()
    }

    /// 1-based position of a waiting call. O(log W) when the call is the last of its
    /// priority (every new arrival), else O(position).
    pub(crate) fn position(&self, key: &WaitKey) -> u32 {
        let next = self
            .waiting
            .range((Bound::Excluded(key), Bound::Unbounded))
            .next();
        let last_of_level = next.is_none_or(|(k, _)| k.0 != key.0);
        if last_of_level {
            self.per_level[level(key.0 .0)..].iter().sum()
        } else {
            u32::try_from(self.waiting.range(..=key).count()).unwrap_or(u32::MAX)
        }
    }

    /// The ready agent that `round_robin` picks after `last` (wrapping round): O(log A),
    /// as round-robin keys order agents by id alone.
    pub(crate) fn next_round_robin(&self, last: Option<&AgentId>) -> Option<&ReadyKey> {
        let after = last.and_then(|last| {
            let from = ReadyKey {
                rank: 0,
                idle: Timestamp::default(),
                agent: last.clone(),
            };
            self.ready
                .range((Bound::Excluded(from), Bound::Unbounded))
                .next()
        });
        after.or_else(|| self.ready.first())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) queues: BTreeMap<QueueId, QueueIndex>,
    /// The queues each agent serves, in queue-id order, with its score for each.
    serves: BTreeMap<AgentId, Vec<(QueueId, u32)>>,
}

impl Index {
    /// O(Q·A·s) for s required skills per queue, plus O(W log W): configuration changes and
    /// restores only.
    pub(crate) fn build(
        queues: &BTreeMap<QueueId, Queue>,
        agents: &BTreeMap<AgentId, Agent>,
        calls: &BTreeMap<CallId, Call>,
    ) -> Index {
        let mut ix = Index::default();
        for (qid, q) in queues {
            let qi = QueueIndex {
                strategy: q.config.strategy,
                ..QueueIndex::default()
            };
            ix.queues.insert(qid.clone(), qi);
            for (aid, a) in agents {
                if let Some(score) = a.config.score(&q.config) {
                    let serves = ix.serves.entry(aid.clone()).or_default();
                    serves.push((qid.clone(), score));
                }
            }
        }
        for (aid, a) in agents {
            ix.attach_agent(aid, a);
        }
        for (cid, c) in calls {
            if c.state == CallState::Waiting {
                ix.insert_waiting(&c.queue, wait_key(c), cid.clone());
            }
        }
        ix
    }

    /// The queues an agent serves, in id order.
    pub(crate) fn serves<'a>(&'a self, agent: &AgentId) -> impl Iterator<Item = &'a QueueId> {
        self.serves.get(agent).into_iter().flatten().map(|(q, _)| q)
    }

    /// Adds the agent's current state to the indexes of the queues it serves.
    pub(crate) fn attach_agent(&mut self, id: &AgentId, agent: &Agent) {
        self.update_agent(id, agent, true);
    }

    /// Removes the agent's current state; call before changing its state or idle time.
    pub(crate) fn detach_agent(&mut self, id: &AgentId, agent: &Agent) {
        self.update_agent(id, agent, false);
    }

    fn update_agent(&mut self, id: &AgentId, agent: &Agent, add: bool) {
        let Some(serves) = self.serves.get(id) else {
            return;
        };
        let bump = |n: &mut u32| {
            *n = if add {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        };
        for (qid, score) in serves {
            let Some(qi) = self.queues.get_mut(qid) else {
                continue;
            };
            if agent.state.logged_in() {
                bump(&mut qi.logged_in);
            }
            if agent.state.staffed() {
                bump(&mut qi.staffed);
            }
            if agent.state == AgentState::Ready {
                let key = ready_key(qi.strategy, *score, id, agent);
                if add {
                    qi.ready.insert(key);
                } else {
                    qi.ready.remove(&key);
                }
            }
        }
    }

    pub(crate) fn insert_waiting(&mut self, queue: &QueueId, key: WaitKey, call: CallId) {
        if let Some(qi) = self.queues.get_mut(queue) {
            if qi.waiting.insert(key, call).is_none() {
                let n = &mut qi.per_level[level(key.0 .0)];
                *n = n.saturating_add(1);
            }
        }
    }

    pub(crate) fn remove_waiting(&mut self, queue: &QueueId, key: &WaitKey) {
        if let Some(qi) = self.queues.get_mut(queue) {
            if qi.waiting.remove(key).is_some() {
                let n = &mut qi.per_level[level(key.0 .0)];
                *n = n.saturating_sub(1);
            }
        }
    }
}
