//! The caller's side: arrival, waiting, announcements, overflow, abandon and callbacks.
//!
//! Overflow: a call overflows when it arrives at a queue with no agent logged in (if the
//! queue says so) or with `max_length` entries waiting, or when it has waited `max_wait` in
//! the queue. A queue target moves the call (it keeps its arrival sequence, so it keeps its
//! age against later callers, and starts a new max wait); any other target takes the call out
//! of the ACD. A call offered to an agent when its max wait passes is not pulled from the
//! ringing phone: it overflows only if the offer fails.
//!
//! Callbacks: the caller keys the callback digit and hangs up; the entry keeps its place in
//! the waiting order without media (no music, no announcements, no max wait). When its turn
//! comes the agent is called first (`CallbackCall`), then the caller; a caller who does not
//! answer is retried after `retry_after`, at the same place, up to `max_attempts`.

use std::time::Duration;

use ivr_scripts::Priority;

use super::config::{ExitTarget, OverflowTarget};
use super::error::AcdError;
use super::event::EventKind;
use super::index::wait_key;
use super::io::{Action, CallbackResult, OverflowReason};
use super::machine::Acd;
use super::model::{AgentState, Call, CallState};
use super::timers::TimerKey;
use super::types::{CallId, QueueId, Timestamp};

impl Acd {
    pub(crate) fn call_arrived(
        &mut self,
        now: Timestamp,
        id: CallId,
        queue: QueueId,
        priority: Priority,
        max_wait: Option<Duration>,
    ) -> Result<(), AcdError> {
        if self.st.calls.contains_key(&id) {
            return Err(AcdError::DuplicateCall(id));
        }
        if !self.st.queues.contains_key(&queue) {
            return Err(AcdError::UnknownQueue(queue));
        }
        let seq = self.st.next_seq;
        // Only a corrupt restored state gets here: never reuse a place.
        self.st.next_seq = seq
            .checked_add(1)
            .ok_or_else(|| AcdError::Inconsistent("call sequence exhausted".into()))?;
        let call = Call {
            queue: queue.clone(),
            priority,
            seq,
            arrived: now,
            queued_at: now,
            max_wait,
            overflow_due: false,
            visited: vec![queue.clone()],
            callback_attempts: None,
            state: CallState::Waiting,
        };
        self.st.calls.insert(id.clone(), call);
        self.event(
            now,
            EventKind::CallQueued {
                call: id.clone(),
                queue,
                priority,
            },
        );
        self.enter_queue(now, &id);
        Ok(())
    }

    /// Puts a call (state `Waiting`, not yet in the waiting order) into its queue, or
    /// overflows it at the door.
    fn enter_queue(&mut self, now: Timestamp, id: &CallId) {
        let Some(call) = self.st.calls.get(id) else {
            return;
        };
        let qid = call.queue.clone();
        let (Some(q), Some(qi)) = (self.st.queues.get(&qid), self.ix.queues.get(&qid)) else {
            return;
        };
        let cfg = &q.config;
        if let (Some(target), 0) = (&cfg.on_no_agents, qi.logged_in) {
            let target = target.clone();
            return self.overflow(now, id, OverflowReason::NoAgents, target);
        }
        if let Some(max) = cfg.max_length {
            if qi.waiting.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
                let target = cfg.on_full.clone();
                return self.overflow(now, id, OverflowReason::QueueFull, target);
            }
        }
        let key = wait_key(call);
        if let Some(max_wait) = call.max_wait.or(cfg.max_wait) {
            self.st
                .timers
                .set(TimerKey::MaxWait(id.clone()), now + max_wait);
        }
        let announce = cfg.announce.clone();
        self.ix.insert_waiting(&qid, key, id.clone());
        self.act(Action::Hold {
            call: id.clone(),
            queue: qid.clone(),
        });
        self.dispatch_call(now, id);
        let Some(announce) = announce else {
            return;
        };
        let still_waiting = self.st.calls.get(id).map(|c| &c.state) == Some(&CallState::Waiting);
        if announce.on_arrival && still_waiting {
            if let Some(position) = self.ix.queues.get(&qid).map(|qi| qi.position(&key)) {
                let expected_wait = self.expected_wait(&qid, position);
                self.act(Action::Announce {
                    call: id.clone(),
                    queue: qid.clone(),
                    position,
                    expected_wait,
                });
            }
        }
        let round = TimerKey::Announce(qid);
        if still_waiting && self.st.timers.get(&round).is_none() {
            self.st.timers.set(round, now + announce.every);
        }
    }

    /// Moves the call (not in any waiting order) to the target queue, or out of the ACD.
    pub(crate) fn overflow(
        &mut self,
        now: Timestamp,
        id: &CallId,
        reason: OverflowReason,
        target: OverflowTarget,
    ) {
        self.st.timers.cancel(&TimerKey::MaxWait(id.clone()));
        let queues = &self.st.queues;
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        let from = call.queue.clone();
        let wait = now.since(call.queued_at);
        if let OverflowTarget::Queue(to) = &target {
            if queues.contains_key(to) && !call.visited.contains(to) {
                call.queue = to.clone();
                call.queued_at = now;
                call.max_wait = None;
                call.overflow_due = false;
                call.visited.push(to.clone());
                let to = to.clone();
                self.event(
                    now,
                    EventKind::CallMoved {
                        call: id.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        reason,
                        wait,
                    },
                );
                self.act(Action::Moved {
                    call: id.clone(),
                    from,
                    to,
                });
                // Recursion ends: each move adds a queue to `visited`.
                return self.enter_queue(now, id);
            }
        }
        let target = target.exit().unwrap_or(ExitTarget::Flow { step: None });
        self.st.calls.remove(id);
        self.event(
            now,
            EventKind::CallOverflowed {
                call: id.clone(),
                queue: from.clone(),
                reason,
                target: target.clone(),
                wait,
            },
        );
        self.act(Action::Overflow {
            call: id.clone(),
            queue: from,
            reason,
            target,
        });
    }

    pub(crate) fn max_wait_reached(&mut self, now: Timestamp, id: &CallId) {
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        match call.state {
            CallState::Waiting if !call.is_callback() => {
                let key = wait_key(call);
                let queue = call.queue.clone();
                self.ix.remove_waiting(&queue, &key);
                let target = self
                    .st
                    .queues
                    .get(&queue)
                    .map(|q| q.config.on_max_wait.clone())
                    .unwrap_or_default();
                self.overflow(now, id, OverflowReason::MaxWait, target);
            }
            CallState::Offered { .. } => call.overflow_due = true,
            _ => {}
        }
    }

    pub(crate) fn call_abandoned(&mut self, now: Timestamp, id: &CallId) -> Result<(), AcdError> {
        let call = self.call(id)?;
        let queue = call.queue.clone();
        let wait = now.since(call.queued_at);
        let key = wait_key(call);
        let offered = match call.state.clone() {
            CallState::Talking { .. } => return self.call_ended(now, id),
            CallState::Dialing { agent } => {
                // The callback was cancelled while the agent waited for the caller.
                self.st.calls.remove(id);
                self.agent_available(now, &agent);
                Vec::new()
            }
            CallState::Waiting => {
                self.ix.remove_waiting(&queue, &key);
                Vec::new()
            }
            CallState::RetryWait => Vec::new(),
            CallState::Offered { agents } => agents,
        };
        self.st.calls.remove(id);
        for key in [
            TimerKey::MaxWait(id.clone()),
            TimerKey::Ring(id.clone()),
            TimerKey::CallbackRetry(id.clone()),
        ] {
            self.st.timers.cancel(&key);
        }
        self.event(
            now,
            EventKind::CallAbandoned {
                call: id.clone(),
                queue,
                wait,
            },
        );
        // The ringing agents were not at fault: back to ready, keeping their idle time.
        for agent in &offered {
            self.act(Action::CancelRing {
                call: id.clone(),
                agent: agent.clone(),
            });
            self.set_agent(now, agent, AgentState::Ready, false);
        }
        for agent in &offered {
            self.dispatch_agent(now, agent);
        }
        Ok(())
    }

    /// One announcement round: every caller who has waited at least one period hears their
    /// position, in queue order. O(W) per round, so O(1) per announcement.
    pub(crate) fn announce_round(&mut self, now: Timestamp, qid: &QueueId) {
        let Some(every) = self
            .st
            .queues
            .get(qid)
            .and_then(|q| q.config.announce.as_ref())
            .map(|a| a.every)
        else {
            return;
        };
        let Some(qi) = self.ix.queues.get(qid) else {
            return;
        };
        let mut due = Vec::new();
        for (position, call_id) in (1u32..).zip(qi.waiting.values()) {
            let Some(call) = self.st.calls.get(call_id) else {
                continue;
            };
            if !call.is_callback() && now.since(call.queued_at) >= every {
                due.push((call_id.clone(), position));
            }
        }
        let empty = qi.waiting.is_empty();
        let estimate = self.wait_estimate(qid);
        for (call, position) in due {
            let expected_wait = estimate.and_then(|e| e.at(position));
            self.act(Action::Announce {
                call,
                queue: qid.clone(),
                position,
                expected_wait,
            });
        }
        if !empty {
            self.st
                .timers
                .set(TimerKey::Announce(qid.clone()), now + every);
        }
    }

    pub(crate) fn callback_requested(
        &mut self,
        now: Timestamp,
        id: &CallId,
    ) -> Result<(), AcdError> {
        let call = self.call(id)?;
        if call.state != CallState::Waiting || call.is_callback() {
            return Err(AcdError::CallState {
                call: id.clone(),
                state: if call.is_callback() {
                    "a callback already"
                } else {
                    call.state.name()
                },
                expected: "waiting with media",
            });
        }
        let queue = call.queue.clone();
        let offers = self
            .st
            .queues
            .get(&queue)
            .is_some_and(|q| q.config.callback.is_some());
        if !offers {
            return Err(AcdError::CallbackNotOffered(queue));
        }
        let wait = now.since(call.queued_at);
        if let Some(call) = self.st.calls.get_mut(id) {
            call.callback_attempts = Some(0);
            call.overflow_due = false;
        }
        self.st.timers.cancel(&TimerKey::MaxWait(id.clone()));
        self.event(
            now,
            EventKind::CallbackRequested {
                call: id.clone(),
                queue,
                wait,
            },
        );
        self.act(Action::CallbackAccepted { call: id.clone() });
        Ok(())
    }

    pub(crate) fn callback_result(
        &mut self,
        now: Timestamp,
        id: &CallId,
        result: CallbackResult,
    ) -> Result<(), AcdError> {
        let call = self.call(id)?;
        let CallState::Dialing { agent } = &call.state else {
            return Err(AcdError::CallState {
                call: id.clone(),
                state: call.state.name(),
                expected: "dialing",
            });
        };
        let agent = agent.clone();
        let queue = call.queue.clone();
        if result == CallbackResult::Connected {
            let wait = now.since(call.queued_at);
            if let Some(call) = self.st.calls.get_mut(id) {
                call.state = CallState::Talking {
                    agent: agent.clone(),
                    since: now,
                };
            }
            self.event(
                now,
                EventKind::CallAnswered {
                    call: id.clone(),
                    queue,
                    agent: agent.clone(),
                    wait,
                    callback: true,
                },
            );
            self.act(Action::Bridge {
                call: id.clone(),
                agent,
            });
            return Ok(());
        }
        let attempts = call.callback_attempts.unwrap_or(0).saturating_add(1);
        let retry = self
            .st
            .queues
            .get(&queue)
            .and_then(|q| q.config.callback.as_ref())
            .filter(|c| attempts < c.max_attempts)
            .map(|c| c.retry_after);
        if let Some(retry_after) = retry {
            if let Some(call) = self.st.calls.get_mut(id) {
                call.callback_attempts = Some(attempts);
                call.state = CallState::RetryWait;
            }
            self.st
                .timers
                .set(TimerKey::CallbackRetry(id.clone()), now + retry_after);
            self.event(
                now,
                EventKind::CallbackRetry {
                    call: id.clone(),
                    queue,
                    attempt: attempts,
                },
            );
        } else {
            self.st.calls.remove(id);
            self.event(
                now,
                EventKind::CallbackFailed {
                    call: id.clone(),
                    queue,
                    attempts,
                },
            );
        }
        self.agent_available(now, &agent);
        Ok(())
    }

    /// A callback entry competes again, at its original place.
    pub(crate) fn callback_retry(&mut self, now: Timestamp, id: &CallId) {
        let Some(call) = self.st.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::RetryWait {
            return;
        }
        call.state = CallState::Waiting;
        let key = wait_key(call);
        let queue = call.queue.clone();
        self.ix.insert_waiting(&queue, key, id.clone());
        self.dispatch_call(now, id);
    }
}
