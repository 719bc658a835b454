//! The [`Acd`] core: its state, its entry points and its outputs.
//!
//! `handle_input(now, input)` and `handle_timeout(now)` are the only ways in; `poll_action`,
//! `poll_event` and `poll_timeout` the ways out. The driver calls a handler, then drains the
//! actions and events, then sleeps until `poll_timeout` or the next input. Each handler first
//! checks its input against the state and refuses it whole (`Err`, counted) or applies it
//! whole, then re-establishes the routing rule: after every input, no queue holds both a
//! waiting call and a ready agent that serves it.
//!
//! The state the HA layer replicates is [`AcdState`]: records, timers, counters and the not
//! yet drained outputs. [`Acd::restore`] rebuilds the indexes from it on the standby.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::config::AcdConfig;
use super::error::AcdError;
use super::event::{AcdEvent, EventKind};
use super::index::Index;
use super::io::{Action, Input};
use super::model::{Agent, AgentState, Call, Queue};
use super::timers::{TimerKey, Timers};
use super::types::{AgentId, CallId, QueueId, Timeline, Timestamp};

/// Inputs handled and refused, routing decisions made, timers fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub inputs: u64,
    pub refused: u64,
    /// Calls offered to agents (one per offer, whatever the number of agents rung).
    pub decisions: u64,
    pub timers: u64,
}

/// Everything the ACD knows, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcdState {
    pub(crate) queues: BTreeMap<QueueId, Queue>,
    pub(crate) agents: BTreeMap<AgentId, Agent>,
    pub(crate) calls: BTreeMap<CallId, Call>,
    pub(crate) timers: Timers,
    pub(crate) next_seq: u64,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) events: VecDeque<AcdEvent>,
    pub(crate) counters: Counters,
}

/// The ACD's sans-IO routing core.
#[derive(Clone, Debug)]
pub struct Acd {
    pub(crate) st: AcdState,
    pub(crate) ix: Index,
    pub(crate) clock: Timeline,
}

impl Acd {
    /// A core with these queues and agents, every agent logged out. `now` and `wall` are
    /// the same moment on the monotonic and the wall clock (see `Timeline`).
    pub fn new(now: Instant, wall: SystemTime, config: AcdConfig) -> Result<Acd, AcdError> {
        let clock = Timeline::new(now, wall);
        let at = clock.stamp(now);
        let mut st = AcdState::default();
        for q in config.queues {
            q.validate()?;
            st.queues.insert(q.id.clone(), Queue::new(q));
        }
        for a in config.agents {
            a.validate()?;
            st.agents.insert(a.id.clone(), Agent::new(a, at));
        }
        let ix = Index::build(&st.queues, &st.agents, &st.calls);
        Ok(Acd { st, ix, clock })
    }

    /// Takes over a replicated state (on the standby, or after a restart). The records are
    /// checked for consistency first; the indexes are rebuilt, and any call that could be
    /// routed is (none, if the state came from a healthy core).
    pub fn restore(now: Instant, wall: SystemTime, state: AcdState) -> Result<Acd, AcdError> {
        for q in state.queues.values() {
            q.config.validate()?;
        }
        let ix = Index::build(&state.queues, &state.agents, &state.calls);
        let mut acd = Acd {
            st: state,
            ix,
            clock: Timeline::new(now, wall),
        };
        acd.check_records().map_err(AcdError::Inconsistent)?;
        let at = acd.clock.stamp(now);
        acd.redispatch_all(at);
        Ok(acd)
    }

    /// The replicable state.
    pub fn state(&self) -> &AcdState {
        &self.st
    }

    pub fn timeline(&self) -> Timeline {
        self.clock
    }

    pub fn counters(&self) -> Counters {
        self.st.counters
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), AcdError> {
        let at = self.clock.stamp(now);
        self.st.counters.inputs = self.st.counters.inputs.saturating_add(1);
        let result = self.apply(at, input);
        if result.is_err() {
            self.st.counters.refused = self.st.counters.refused.saturating_add(1);
        }
        result
    }

    fn apply(&mut self, now: Timestamp, input: Input) -> Result<(), AcdError> {
        match input {
            Input::CallArrived {
                call,
                queue,
                priority,
                max_wait,
            } => self.call_arrived(now, call, queue, priority, max_wait),
            Input::CallAbandoned { call } => self.call_abandoned(now, &call),
            Input::AgentLogin { agent } => self.agent_login(now, &agent),
            Input::AgentReady { agent } => self.agent_ready(now, &agent),
            Input::AgentPause { agent, reason } => self.agent_pause(now, &agent, reason),
            Input::AgentLogout { agent } => self.agent_logout(now, &agent),
            Input::AgentRinging { call, agent } => self.agent_ringing(now, &call, &agent),
            Input::AgentAnswered { call, agent } => self.agent_answered(now, &call, &agent),
            Input::RingFailed {
                call,
                agent,
                failure,
            } => self.ring_failed(now, &call, &agent, failure),
            Input::CallEnded { call } => self.call_ended(now, &call),
            Input::CallbackRequested { call } => self.callback_requested(now, &call),
            Input::CallbackResult { call, result } => self.callback_result(now, &call, result),
            Input::UpsertQueue(q) => self.upsert_queue(now, q),
            Input::RemoveQueue { queue } => self.remove_queue(now, &queue),
            Input::UpsertAgent(a) => self.upsert_agent(now, a),
            Input::RemoveAgent { agent } => self.remove_agent(now, &agent),
        }
    }

    /// Fires every deadline due at `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        let at = self.clock.stamp(now);
        while let Some(key) = self.st.timers.pop_due(at) {
            self.st.counters.timers = self.st.counters.timers.saturating_add(1);
            match key {
                TimerKey::MaxWait(call) => self.max_wait_reached(at, &call),
                TimerKey::Ring(call) => self.ring_timed_out(at, &call),
                TimerKey::WrapUp(agent) => self.wrap_up_over(at, &agent),
                TimerKey::Announce(queue) => self.announce_round(at, &queue),
                TimerKey::CallbackRetry(call) => self.callback_retry(at, &call),
            }
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.st.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<AcdEvent> {
        self.st.events.pop_front()
    }

    /// The next deadline, as an `Instant` on the driver's clock.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.st.timers.next().map(|t| self.clock.instant(t))
    }

    pub(crate) fn act(&mut self, action: Action) {
        self.st.actions.push_back(action);
    }

    pub(crate) fn event(&mut self, at: Timestamp, kind: EventKind) {
        self.st.events.push_back(AcdEvent { at, kind });
    }

    /// The one place an agent changes state: keeps the indexes in step and logs the change.
    /// `new_idle` starts a new idle period (`longest_idle` order) when entering `Ready`.
    pub(crate) fn set_agent(
        &mut self,
        now: Timestamp,
        id: &AgentId,
        state: AgentState,
        new_idle: bool,
    ) {
        let Some(agent) = self.st.agents.get_mut(id) else {
            return;
        };
        self.ix.detach_agent(id, agent);
        agent.state = state.clone();
        agent.since = now;
        if new_idle {
            agent.idle_since = now;
        }
        self.ix.attach_agent(id, agent);
        self.event(
            now,
            EventKind::AgentStateChanged {
                agent: id.clone(),
                state,
            },
        );
    }

    pub(crate) fn agent_state(&self, id: &AgentId) -> Result<&AgentState, AcdError> {
        self.st
            .agents
            .get(id)
            .map(|a| &a.state)
            .ok_or_else(|| AcdError::UnknownAgent(id.clone()))
    }

    pub(crate) fn call(&self, id: &CallId) -> Result<&Call, AcdError> {
        self.st
            .calls
            .get(id)
            .ok_or_else(|| AcdError::UnknownCall(id.clone()))
    }
}
