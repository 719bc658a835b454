//! The ACD's live records: agents, calls and queues. These, with the timer table and the
//! sequence counter, are the whole replicated state ([`super::AcdState`]); the routing
//! indexes are rebuilt from them (`index.rs`), so a snapshot cannot hold an index that
//! disagrees with the records.

use std::time::Duration;

use ivr_scripts::Priority;
use serde::{Deserialize, Serialize};

use super::config::{AgentConfig, QueueConfig};
use super::types::{ms, opt_ms, AgentId, CallId, QueueId, Timestamp};

/// An agent's state; the states that involve a call carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    /// Waiting for a call.
    Ready,
    /// Paused (break, training, "no answer" after a missed ring...).
    NotReady {
        reason: String,
    },
    /// Chosen for a call and asked to ring; no ringing report yet.
    Reserved {
        call: CallId,
    },
    /// The phone rings (the driver reported it).
    Ringing {
        call: CallId,
    },
    /// On the call (or, for a callback, on the line while the caller is dialled).
    Talking {
        call: CallId,
    },
    /// After-call work; ends on its timer or when the agent makes themself ready.
    WrapUp {
        call: CallId,
        queue: QueueId,
        #[serde(with = "ms")]
        talk: Duration,
    },
}

impl AgentState {
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Ready => "ready",
            AgentState::NotReady { .. } => "not_ready",
            AgentState::Reserved { .. } => "reserved",
            AgentState::Ringing { .. } => "ringing",
            AgentState::Talking { .. } => "talking",
            AgentState::WrapUp { .. } => "wrap_up",
        }
    }

    /// The call the agent is busy with, if any.
    pub fn call(&self) -> Option<&CallId> {
        match self {
            AgentState::Reserved { call }
            | AgentState::Ringing { call }
            | AgentState::Talking { call }
            | AgentState::WrapUp { call, .. } => Some(call),
            _ => None,
        }
    }

    pub(crate) fn logged_in(&self) -> bool {
        !matches!(self, AgentState::LoggedOut)
    }

    /// Logged in and not paused: counts towards a queue's staffing (expected wait).
    pub(crate) fn staffed(&self) -> bool {
        !matches!(self, AgentState::LoggedOut | AgentState::NotReady { .. })
    }

    pub(crate) fn offered(&self) -> Option<&CallId> {
        match self {
            AgentState::Reserved { call } | AgentState::Ringing { call } => Some(call),
            _ => None,
        }
    }
}

/// A state change the agent asked for while busy, applied when the call and wrap-up end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pending {
    Pause { reason: String },
    Logout,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Agent {
    pub(crate) config: AgentConfig,
    pub(crate) state: AgentState,
    /// When the current state began.
    pub(crate) since: Timestamp,
    /// Start of the current idle period: the `longest_idle` ordering key. Kept when a ring is
    /// cancelled through no fault of the agent, so they do not lose their turn.
    pub(crate) idle_since: Timestamp,
    pub(crate) pending: Option<Pending>,
}

impl Agent {
    pub(crate) fn new(config: AgentConfig, now: Timestamp) -> Self {
        Agent {
            config,
            state: AgentState::LoggedOut,
            since: now,
            idle_since: now,
            pending: None,
        }
    }
}

/// Where a call is in the ACD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CallState {
    /// In its queue's waiting order (a callback entry waits here too, without media).
    Waiting,
    /// Offered to these agents (one, or several with `ring_all`); they are reserved/ringing.
    Offered {
        agents: Vec<AgentId>,
    },
    /// A callback: the agent answered, the caller is being dialled.
    Dialing {
        agent: AgentId,
    },
    Talking {
        agent: AgentId,
        since: Timestamp,
    },
    /// A callback whose caller did not answer, out of the waiting order until its retry time.
    RetryWait,
}

impl CallState {
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Waiting => "waiting",
            CallState::Offered { .. } => "offered",
            CallState::Dialing { .. } => "dialing",
            CallState::Talking { .. } => "talking",
            CallState::RetryWait => "retry_wait",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Call {
    pub(crate) queue: QueueId,
    pub(crate) priority: Priority,
    /// The call's place: arrival order into the ACD, kept across ring failures and queue moves
    /// so that a call never loses its turn to a later one of the same priority.
    pub(crate) seq: u64,
    pub(crate) arrived: Timestamp,
    /// When it entered its current queue: the origin of its wait and of max-wait.
    pub(crate) queued_at: Timestamp,
    /// Max wait asked by the flow for the first queue, overriding the queue's.
    #[serde(with = "opt_ms", default)]
    pub(crate) max_wait: Option<Duration>,
    /// Max wait passed while the call was offered: overflow if it comes back to the queue.
    pub(crate) overflow_due: bool,
    /// Queues this call has been in (overflow loop guard).
    pub(crate) visited: Vec<QueueId>,
    /// `Some` once the caller asked to be called back: a virtual entry, no media.
    pub(crate) callback_attempts: Option<u32>,
    pub(crate) state: CallState,
}

impl Call {
    pub(crate) fn is_callback(&self) -> bool {
        self.callback_attempts.is_some()
    }
}

/// A queue's configuration and the little live data that is not derivable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Queue {
    pub(crate) config: QueueConfig,
    /// The agent last offered a call by round robin.
    pub(crate) rr_last: Option<AgentId>,
    /// Moving average of handle time (talk + wrap-up), for expected-wait estimates.
    #[serde(with = "ms")]
    pub(crate) handle_time: Duration,
}

impl Queue {
    pub(crate) fn new(config: QueueConfig) -> Self {
        let handle_time = config.expected_handle_time;
        Queue {
            config,
            rr_last: None,
            handle_time,
        }
    }

    /// Folds one handled call into the average, weight 1/8 (an exponential moving average:
    /// recent calls count most, and no history needs keeping).
    pub(crate) fn record_handle_time(&mut self, sample: Duration) {
        self.handle_time = self.handle_time.saturating_mul(7).saturating_add(sample) / 8;
    }
}
