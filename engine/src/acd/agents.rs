//! The agent's side: login, ready, pause, logout, the ring's outcome, the call's end and
//! wrap-up.
//!
//! State machine (every change is an `AgentStateChanged` event with its time):
//!
//! ```text
//! logged_out --login--> ready --offer--> reserved --ringing--> ringing --answered--> talking
//!                        ^  \--pause--> not_ready                                      |
//!                        |                                                      call ended
//!                        +------------ wrap-up timer / ready ---------- wrap_up <------+
//! reserved/ringing --no answer, rejected, failed--> not_ready (the call keeps its place)
//! reserved/ringing --caller hung up, another agent answered--> ready (idle time kept)
//! ```
//!
//! A pause or logout asked while talking waits for the end of the call and its wrap-up; asked
//! while reserved or ringing, it withdraws the offer at once (the call keeps its place);
//! asked in wrap-up, it ends the wrap-up.

use super::error::AcdError;
use super::event::EventKind;
use super::io::{Action, RingFailure};
use super::machine::Acd;
use super::model::{AgentState, CallState, Pending};
use super::timers::TimerKey;
use super::types::{AgentId, CallId, Timestamp};

impl Acd {
    pub(crate) fn agent_login(&mut self, now: Timestamp, id: &AgentId) -> Result<(), AcdError> {
        let state = self.agent_state(id)?;
        if state.logged_in() {
            return Err(AcdError::AgentState {
                agent: id.clone(),
                state: state.name(),
                action: "log in",
            });
        }
        self.set_agent(now, id, AgentState::Ready, true);
        self.dispatch_agent(now, id);
        Ok(())
    }

    pub(crate) fn agent_ready(&mut self, now: Timestamp, id: &AgentId) -> Result<(), AcdError> {
        match self.agent_state(id)? {
            AgentState::LoggedOut => Err(AcdError::AgentState {
                agent: id.clone(),
                state: "logged_out",
                action: "become ready",
            }),
            AgentState::Ready => Ok(()),
            AgentState::NotReady { .. } => {
                self.set_agent(now, id, AgentState::Ready, true);
                self.dispatch_agent(now, id);
                Ok(())
            }
            AgentState::WrapUp { .. } => {
                self.set_pending(id, None);
                self.finish_wrap_up(now, id);
                Ok(())
            }
            AgentState::Reserved { .. }
            | AgentState::Ringing { .. }
            | AgentState::Talking { .. } => {
                self.set_pending(id, None);
                Ok(())
            }
        }
    }

    pub(crate) fn agent_pause(
        &mut self,
        now: Timestamp,
        id: &AgentId,
        reason: String,
    ) -> Result<(), AcdError> {
        self.leave(now, id, Pending::Pause { reason }, "pause")
    }

    pub(crate) fn agent_logout(&mut self, now: Timestamp, id: &AgentId) -> Result<(), AcdError> {
        self.leave(now, id, Pending::Logout, "log out")
    }

    /// Pause or logout: now if the agent is free, after the work if busy.
    fn leave(
        &mut self,
        now: Timestamp,
        id: &AgentId,
        to: Pending,
        action: &'static str,
    ) -> Result<(), AcdError> {
        let state = self.agent_state(id)?.clone();
        let target = match &to {
            Pending::Pause { reason } => AgentState::NotReady {
                reason: reason.clone(),
            },
            Pending::Logout => AgentState::LoggedOut,
        };
        match state {
            AgentState::LoggedOut => {
                return Err(AcdError::AgentState {
                    agent: id.clone(),
                    state: "logged_out",
                    action,
                })
            }
            AgentState::Ready | AgentState::NotReady { .. } => {
                self.set_agent(now, id, target, false)
            }
            AgentState::Reserved { call } | AgentState::Ringing { call } => {
                self.act(Action::CancelRing {
                    call: call.clone(),
                    agent: id.clone(),
                });
                self.set_agent(now, id, target, false);
                self.drop_from_offer(now, &call, id, action.to_owned());
            }
            AgentState::Talking { .. } => self.set_pending(id, Some(to)),
            AgentState::WrapUp { .. } => {
                self.set_pending(id, Some(to));
                self.finish_wrap_up(now, id);
            }
        }
        Ok(())
    }

    fn set_pending(&mut self, id: &AgentId, pending: Option<Pending>) {
        if let Some(a) = self.st.agents.get_mut(id) {
            a.pending = pending;
        }
    }

    /// Checks that `call` is offered to `agent`, both ways.
    fn check_offer(&self, call: &CallId, agent: &AgentId) -> Result<Vec<AgentId>, AcdError> {
        let c = self.call(call)?;
        let state = self.agent_state(agent)?;
        match &c.state {
            CallState::Offered { agents }
                if agents.contains(agent) && state.offered() == Some(call) =>
            {
                Ok(agents.clone())
            }
            _ => Err(AcdError::NotOffered {
                call: call.clone(),
                agent: agent.clone(),
            }),
        }
    }

    pub(crate) fn agent_ringing(
        &mut self,
        now: Timestamp,
        call: &CallId,
        agent: &AgentId,
    ) -> Result<(), AcdError> {
        self.check_offer(call, agent)?;
        if matches!(self.agent_state(agent)?, AgentState::Reserved { .. }) {
            let state = AgentState::Ringing { call: call.clone() };
            self.set_agent(now, agent, state, false);
        }
        Ok(())
    }

    /// The agent took the call. An answer that comes too late (the ring timed out, the caller
    /// hung up) is refused with `NotOffered`: the driver must hang up that agent leg.
    pub(crate) fn agent_answered(
        &mut self,
        now: Timestamp,
        id: &CallId,
        agent: &AgentId,
    ) -> Result<(), AcdError> {
        let offered = self.check_offer(id, agent)?;
        self.st.timers.cancel(&TimerKey::Ring(id.clone()));
        self.st.timers.cancel(&TimerKey::MaxWait(id.clone()));
        let Some(call) = self.st.calls.get_mut(id) else {
            return Err(AcdError::UnknownCall(id.clone()));
        };
        let callback = call.is_callback();
        let wait = now.since(call.queued_at);
        let queue = call.queue.clone();
        call.overflow_due = false;
        call.state = if callback {
            CallState::Dialing {
                agent: agent.clone(),
            }
        } else {
            CallState::Talking {
                agent: agent.clone(),
                since: now,
            }
        };
        let talking = AgentState::Talking { call: id.clone() };
        self.set_agent(now, agent, talking, false);
        if !callback {
            self.event(
                now,
                EventKind::CallAnswered {
                    call: id.clone(),
                    queue,
                    agent: agent.clone(),
                    wait,
                    callback: false,
                },
            );
            self.act(Action::Bridge {
                call: id.clone(),
                agent: agent.clone(),
            });
        }
        // `ring_all`: the others stop ringing and keep their place among idle agents.
        let others: Vec<AgentId> = offered.into_iter().filter(|a| a != agent).collect();
        for other in &others {
            self.act(Action::CancelRing {
                call: id.clone(),
                agent: other.clone(),
            });
            self.set_agent(now, other, AgentState::Ready, false);
        }
        for other in &others {
            self.dispatch_agent(now, other);
        }
        Ok(())
    }

    pub(crate) fn ring_failed(
        &mut self,
        now: Timestamp,
        call: &CallId,
        agent: &AgentId,
        failure: RingFailure,
    ) -> Result<(), AcdError> {
        self.check_offer(call, agent)?;
        let reason = failure.reason();
        let paused = AgentState::NotReady {
            reason: reason.clone(),
        };
        self.set_agent(now, agent, paused, false);
        self.drop_from_offer(now, call, agent, reason);
        Ok(())
    }

    /// The core's ring timer: every agent still offered the call missed it.
    pub(crate) fn ring_timed_out(&mut self, now: Timestamp, id: &CallId) {
        let Some(CallState::Offered { agents }) = self.st.calls.get(id).map(|c| c.state.clone())
        else {
            return;
        };
        for agent in agents {
            self.act(Action::CancelRing {
                call: id.clone(),
                agent: agent.clone(),
            });
            let reason = RingFailure::NoAnswer.reason();
            let paused = AgentState::NotReady {
                reason: reason.clone(),
            };
            self.set_agent(now, &agent, paused, false);
            self.drop_from_offer(now, id, &agent, reason);
        }
    }

    /// The conversation is over; a call hung up before it was answered is an abandon.
    pub(crate) fn call_ended(&mut self, now: Timestamp, id: &CallId) -> Result<(), AcdError> {
        let call = self.call(id)?;
        let CallState::Talking { agent, since } = &call.state else {
            return self.call_abandoned(now, id);
        };
        let (agent, talk, queue) = (agent.clone(), now.since(*since), call.queue.clone());
        self.st.calls.remove(id);
        self.event(
            now,
            EventKind::CallEnded {
                call: id.clone(),
                queue: queue.clone(),
                agent: agent.clone(),
                talk,
            },
        );
        let Some(a) = self.st.agents.get(&agent) else {
            return Ok(());
        };
        let wrap_up = a.config.wrap_up.unwrap_or_else(|| {
            self.st
                .queues
                .get(&queue)
                .map(|q| q.config.wrap_up)
                .unwrap_or_default()
        });
        let state = AgentState::WrapUp {
            call: id.clone(),
            queue,
            talk,
        };
        self.set_agent(now, &agent, state, false);
        if wrap_up.is_zero() {
            self.finish_wrap_up(now, &agent);
        } else {
            self.st.timers.set(TimerKey::WrapUp(agent), now + wrap_up);
        }
        Ok(())
    }

    pub(crate) fn wrap_up_over(&mut self, now: Timestamp, id: &AgentId) {
        self.finish_wrap_up(now, id);
    }

    fn finish_wrap_up(&mut self, now: Timestamp, id: &AgentId) {
        let Some(a) = self.st.agents.get(id) else {
            return;
        };
        let AgentState::WrapUp { call, queue, talk } = a.state.clone() else {
            return;
        };
        let wrap = now.since(a.since);
        self.st.timers.cancel(&TimerKey::WrapUp(id.clone()));
        if let Some(q) = self.st.queues.get_mut(&queue) {
            q.record_handle_time(talk.saturating_add(wrap));
        }
        self.event(
            now,
            EventKind::WrapUpEnded {
                call,
                queue,
                agent: id.clone(),
                wrap,
            },
        );
        self.agent_available(now, id);
    }

    /// The agent's work is done: apply a pending pause or logout, else ready for the next call.
    pub(crate) fn agent_available(&mut self, now: Timestamp, id: &AgentId) {
        let Some(pending) = self.st.agents.get_mut(id).map(|a| a.pending.take()) else {
            return;
        };
        match pending {
            Some(Pending::Pause { reason }) => {
                self.set_agent(now, id, AgentState::NotReady { reason }, false)
            }
            Some(Pending::Logout) => self.set_agent(now, id, AgentState::LoggedOut, false),
            None => {
                self.set_agent(now, id, AgentState::Ready, true);
                self.dispatch_agent(now, id);
            }
        }
    }
}
