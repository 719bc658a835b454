//! The ACD core's one error type. Every input is checked before anything changes, so an
//! `Err` means the input was refused whole: the state is as it was, the refusal is counted
//! (`Acd::counters`), and the driver logs it and goes on. Inputs racing with the core's own
//! decisions are normal in telephony (an agent answers as the ring timer fires; a caller hangs
//! up as their call is offered), so these are expected outcomes, not faults.

use thiserror::Error;

use super::types::{AgentId, CallId, QueueId};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcdError {
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("call {0} is already in the ACD")]
    DuplicateCall(CallId),
    #[error("call {call} is {state}, not {expected}")]
    CallState {
        call: CallId,
        state: &'static str,
        expected: &'static str,
    },
    #[error("agent {agent} is {state}: cannot {action}")]
    AgentState {
        agent: AgentId,
        state: &'static str,
        action: &'static str,
    },
    #[error("call {call} is not offered to agent {agent}")]
    NotOffered { call: CallId, agent: AgentId },
    #[error("queue {0} does not offer callbacks")]
    CallbackNotOffered(QueueId),
    #[error("queue {0} still holds calls")]
    QueueInUse(QueueId),
    #[error("invalid queue {queue}: {reason}")]
    InvalidQueue { queue: QueueId, reason: String },
    #[error("invalid agent {agent}: {reason}")]
    InvalidAgent { agent: AgentId, reason: String },
    #[error("inconsistent ACD state: {0}")]
    Inconsistent(String),
}
