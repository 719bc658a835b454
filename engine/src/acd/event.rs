//! The ACD's event log: one record per fact, time-stamped on the core's timeline. The driver
//! persists them (queue and agent events, call-record fields) and statistics are computed
//! from them alone (`stats.rs`), so a report can be recomputed for any interval and never
//! depends on counters that a restart would lose.
//!
//! Every call that enters the ACD ends with exactly one of `CallAnswered` (then `CallEnded`),
//! `CallAbandoned`, `CallOverflowed` or `CallbackFailed`. `CallMoved` is not an end: the call
//! overflowed from one queue into another and goes on there.

use std::time::Duration;

use ivr_scripts::Priority;
use serde::{Deserialize, Serialize};

use super::config::ExitTarget;
use super::io::OverflowReason;
use super::model::AgentState;
use super::types::{ms, AgentId, CallId, QueueId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcdEvent {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Waits are measured from the call's entry into the queue named in the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A call entered the ACD (offered to `queue`).
    CallQueued {
        call: CallId,
        queue: QueueId,
        priority: Priority,
    },
    /// Overflow into another queue: out of `from`, offered to `to`.
    CallMoved {
        call: CallId,
        from: QueueId,
        to: QueueId,
        reason: OverflowReason,
        #[serde(with = "ms")]
        wait: Duration,
    },
    /// An agent was chosen (one event per agent with `ring_all`).
    CallOffered {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
    },
    /// The offered agent did not take the call (it goes back to its place when no offered
    /// agent is left).
    OfferFailed {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        reason: String,
    },
    CallAnswered {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        #[serde(with = "ms")]
        wait: Duration,
        /// Answered through a callback (the wait runs until the caller was reached).
        callback: bool,
    },
    CallAbandoned {
        call: CallId,
        queue: QueueId,
        #[serde(with = "ms")]
        wait: Duration,
    },
    CallOverflowed {
        call: CallId,
        queue: QueueId,
        reason: OverflowReason,
        target: ExitTarget,
        #[serde(with = "ms")]
        wait: Duration,
    },
    /// The bridged conversation ended.
    CallEnded {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        #[serde(with = "ms")]
        talk: Duration,
    },
    /// The agent's after-call work for `call` ended (zero when the queue has no wrap-up).
    WrapUpEnded {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        #[serde(with = "ms")]
        wrap: Duration,
    },
    CallbackRequested {
        call: CallId,
        queue: QueueId,
        #[serde(with = "ms")]
        wait: Duration,
    },
    /// A callback attempt failed; the entry retries later.
    CallbackRetry {
        call: CallId,
        queue: QueueId,
        attempt: u32,
    },
    /// The caller could not be reached within the attempts allowed: the call ends.
    CallbackFailed {
        call: CallId,
        queue: QueueId,
        attempts: u32,
    },
    AgentStateChanged {
        agent: AgentId,
        state: AgentState,
    },
}

impl EventKind {
    /// The call whose outcome this event settles, if it is a terminal event.
    pub fn terminal_call(&self) -> Option<&CallId> {
        match self {
            EventKind::CallAnswered { call, .. }
            | EventKind::CallAbandoned { call, .. }
            | EventKind::CallOverflowed { call, .. }
            | EventKind::CallbackFailed { call, .. } => Some(call),
            _ => None,
        }
    }
}
