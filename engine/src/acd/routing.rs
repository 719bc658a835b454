//! Routing decisions: which agent takes which call.
//!
//! The core keeps one rule true after every input: **no queue holds both a waiting call and a
//! ready agent that serves it.** So a decision only ever has one side to choose:
//!
//! - a call becomes waiting (arrival, a failed offer, a queue move, a callback retry): its
//!   queue has no other waiting call that a ready agent could take, so the queue's strategy
//!   picks among the queue's ready agents (`dispatch_call`, first key of the ready set);
//! - an agent becomes ready: none of its queues has a ready agent, so the agent takes the
//!   best head call among the queues it serves (`dispatch_agent`). **Rule for queues competing
//!   for one agent:** the highest priority wins, then the lowest arrival sequence (the call
//!   that entered the ACD first), whatever the queue; the sequence is unique, so there is
//!   never a tie and the decision is deterministic.
//!
//! Both are O(k log n). Only configuration changes and restores re-route everything
//! (`redispatch_all`: waiting calls in that same order, O(W log W)).

use std::time::Duration;

use super::config::Strategy;
use super::event::EventKind;
use super::index::{wait_key, WaitKey};
use super::io::{Action, OverflowReason};
use super::machine::Acd;
use super::model::{AgentState, CallState};
use super::timers::TimerKey;
use super::types::{AgentId, CallId, QueueId, Timestamp};

impl Acd {
    /// A call just became waiting (and is in the waiting order): offer it if an agent of its
    /// queue is ready.
    pub(crate) fn dispatch_call(&mut self, now: Timestamp, id: &CallId) {
        let Some(call) = self.st.calls.get(id) else {
            return;
        };
        if call.state != CallState::Waiting {
            return;
        }
        let (Some(q), Some(qi)) = (
            self.st.queues.get(&call.queue),
            self.ix.queues.get(&call.queue),
        ) else {
            return;
        };
        let agents: Vec<AgentId> = match q.config.strategy {
            // A callback rings one agent: the agent is called first, then the caller.
            Strategy::RingAll if !call.is_callback() => {
                qi.ready.iter().map(|k| k.agent.clone()).collect()
            }
            Strategy::RoundRobin => qi
                .next_round_robin(q.rr_last.as_ref())
                .map(|k| vec![k.agent.clone()])
                .unwrap_or_default(),
            _ => qi
                .ready
                .first()
                .map(|k| vec![k.agent.clone()])
                .unwrap_or_default(),
        };
        if !agents.is_empty() {
            self.offer(now, id, agents);
        }
    }

    /// An agent just became ready: offer it the best head call of the queues it serves.
    pub(crate) fn dispatch_agent(&mut self, now: Timestamp, id: &AgentId) {
        if self.st.agents.get(id).map(|a| &a.state) != Some(&AgentState::Ready) {
            return;
        }
        let mut best: Option<(WaitKey, CallId)> = None;
        for qid in self.ix.serves(id) {
            let Some((key, call)) = self.ix.queues.get(qid).and_then(|qi| qi.head()) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| key < b) {
                best = Some((*key, call.clone()));
            }
        }
        if let Some((_, call)) = best {
            self.offer(now, &call, vec![id.clone()]);
        }
    }

    /// Re-routes every waiting call, best first; after a configuration change or restore.
    pub(crate) fn redispatch_all(&mut self, now: Timestamp) {
        let mut waiting: Vec<(WaitKey, CallId)> = self
            .ix
            .queues
            .values()
            .flat_map(|qi| qi.waiting.iter().map(|(k, c)| (*k, c.clone())))
            .collect();
        waiting.sort();
        for (_, call) in waiting {
            self.dispatch_call(now, &call);
        }
    }

    /// Reserves `agents` for a waiting call and asks the driver to ring them.
    fn offer(&mut self, now: Timestamp, id: &CallId, agents: Vec<AgentId>) {
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        let key = wait_key(call);
        let qid = call.queue.clone();
        let callback = call.is_callback();
        call.state = CallState::Offered {
            agents: agents.clone(),
        };
        self.ix.remove_waiting(&qid, &key);
        let mut ring_timeout = Duration::from_secs(20);
        if let Some(q) = self.st.queues.get_mut(&qid) {
            ring_timeout = q.config.ring_timeout;
            if q.config.strategy == Strategy::RoundRobin {
                q.rr_last = agents.last().cloned();
            }
        }
        self.st
            .timers
            .set(TimerKey::Ring(id.clone()), now + ring_timeout);
        self.st.counters.decisions = self.st.counters.decisions.saturating_add(1);
        for agent in agents {
            let state = AgentState::Reserved { call: id.clone() };
            self.set_agent(now, &agent, state, false);
            let contact = self
                .st
                .agents
                .get(&agent)
                .map(|a| a.config.contact.clone())
                .unwrap_or_default();
            self.event(
                now,
                EventKind::CallOffered {
                    call: id.clone(),
                    queue: qid.clone(),
                    agent: agent.clone(),
                },
            );
            self.act(if callback {
                Action::CallbackCall {
                    call: id.clone(),
                    queue: qid.clone(),
                    agent,
                    contact,
                }
            } else {
                Action::RingAgent {
                    call: id.clone(),
                    queue: qid.clone(),
                    agent,
                    contact,
                    timeout: ring_timeout,
                }
            });
        }
    }

    /// Takes `agent` out of the call's offer (the caller has already set the agent's new
    /// state); the call goes back to its place when no offered agent is left.
    pub(crate) fn drop_from_offer(
        &mut self,
        now: Timestamp,
        id: &CallId,
        agent: &AgentId,
        reason: String,
    ) {
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        let CallState::Offered { agents } = &mut call.state else {
            return;
        };
        agents.retain(|a| a != agent);
        let empty = agents.is_empty();
        let queue = call.queue.clone();
        self.event(
            now,
            EventKind::OfferFailed {
                call: id.clone(),
                queue,
                agent: agent.clone(),
                reason,
            },
        );
        if empty {
            self.requeue(now, id);
        }
    }

    /// An offer that came to nothing: the call returns to its original place (its key is
    /// unchanged), or overflows if its max wait passed while it was being offered.
    fn requeue(&mut self, now: Timestamp, id: &CallId) {
        self.st.timers.cancel(&TimerKey::Ring(id.clone()));
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        call.state = CallState::Waiting;
        if call.overflow_due && !call.is_callback() {
            let target = self
                .st
                .queues
                .get(&call.queue)
                .map(|q| q.config.on_max_wait.clone())
                .unwrap_or_default();
            self.overflow(now, id, OverflowReason::MaxWait, target);
            return;
        }
        let key = wait_key(call);
        let queue = call.queue.clone();
        self.ix.insert_waiting(&queue, key, id.clone());
        self.dispatch_call(now, id);
    }

    /// Expected wait for the caller at `position`: position × average handle time / staffed
    /// agents (logged in, not paused), `None` while nobody is staffed.
    pub(crate) fn expected_wait(&self, queue: &QueueId, position: u32) -> Option<Duration> {
        self.wait_estimate(queue).and_then(|e| e.at(position))
    }

    pub(crate) fn wait_estimate(&self, queue: &QueueId) -> Option<WaitEstimate> {
        Some(WaitEstimate {
            handle_time: self.st.queues.get(queue)?.handle_time,
            staffed: self.ix.queues.get(queue)?.staffed,
        })
    }
}

/// A queue's expected-wait inputs, read once per announcement round.
#[derive(Clone, Copy)]
pub(crate) struct WaitEstimate {
    handle_time: Duration,
    staffed: u32,
}

impl WaitEstimate {
    pub(crate) fn at(self, position: u32) -> Option<Duration> {
        (self.staffed > 0).then(|| self.handle_time.saturating_mul(position) / self.staffed)
    }
}
