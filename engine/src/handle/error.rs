//! The one error of the control surface. Every operation of the `EngineHandle` fails with a
//! [`HandleError`]; the control socket sends it as JSON and the CLI reads it back, so the
//! variants are data (serde) as well as messages (`Display`).

use ivr_scripts::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::acd::AcdError;
use crate::call::live::{CommandError, CommandFailure};
use crate::replication::{HaCommandError, Role};

/// What an operation could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    Call,
    Agent,
    Queue,
    /// A call in progress given by the agent on it: the agent is on no call.
    AgentCall,
    /// No version of a flow of that name is installed.
    Flow,
    /// The flow has no installed version of that name (`id`: "NAME VERSION").
    FlowVersion,
}

impl Missing {
    fn describe(&self) -> &'static str {
        match self {
            Missing::Call => "no call in progress is",
            Missing::Agent => "no agent is",
            Missing::Queue => "no queue is",
            Missing::AgentCall => "neither a call in progress nor an agent on a call is",
            Missing::Flow => "no installed flow is",
            Missing::FlowVersion => "no installed flow version is",
        }
    }
}

/// A part of the engine an operation needs and this node lacks (or that stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The node is a witness: no telephony, no ACD, no calls.
    Telephony,
    /// The ACD task is not running (stopping, or failed).
    Acd,
    /// The node is not part of an HA pair.
    Ha,
    /// The database could not be read.
    Storage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum HandleError {
    #[error("{} `{id}`", what.describe())]
    NotFound { what: Missing, id: String },
    /// The engine understood the command and said no (an agent already ready, a call not
    /// bridged...): `reason` says why, in the operator's words.
    #[error("refused: {reason}")]
    Refused { reason: String },
    /// A call refused a command (typed, so the admin API can map it).
    #[error("refused: {refusal}")]
    CallRefused { call: String, refusal: CommandError },
    #[error("call {call} has ended")]
    CallEnded { call: String },
    /// An HA command that only the active node (or a leader) can serve.
    #[error("this node is {role}, not active (leader: {leader:?})")]
    NotActive { role: Role, leader: Option<u64> },
    #[error("{part:?} is not available on this node: {reason}")]
    Unavailable { part: Part, reason: String },
    /// A flow that does not pass the checks against this engine (prompts, queues,
    /// connectors): each diagnostic has its line and column; `rendered` shows them with
    /// their source lines, as `svi check` prints them.
    #[error("the flow is invalid:\n{rendered}")]
    InvalidFlow {
        diagnostics: Vec<Diagnostic>,
        rendered: String,
    },
    /// A request the engine cannot read (bad JSON on the socket, an empty range...).
    #[error("bad request: {reason}")]
    BadRequest { reason: String },
}

impl HandleError {
    pub fn unavailable(part: Part, reason: impl std::fmt::Display) -> Self {
        HandleError::Unavailable {
            part,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn from_command(call: &str, e: CommandFailure) -> Self {
        match e {
            CommandFailure::NotFound(id) => HandleError::NotFound {
                what: Missing::Call,
                id,
            },
            CommandFailure::Ended(call) => HandleError::CallEnded { call },
            CommandFailure::Refused(refusal) => HandleError::CallRefused {
                call: call.to_string(),
                refusal,
            },
        }
    }
}

impl From<HaCommandError> for HandleError {
    fn from(e: HaCommandError) -> Self {
        match e {
            HaCommandError::NotActive { role, leader } => HandleError::NotActive { role, leader },
            HaCommandError::Refused(reason) => HandleError::Refused { reason },
            HaCommandError::Unavailable(reason) => HandleError::unavailable(Part::Ha, reason),
        }
    }
}

impl From<AcdError> for HandleError {
    fn from(e: AcdError) -> Self {
        match e {
            AcdError::UnknownAgent(a) => HandleError::NotFound {
                what: Missing::Agent,
                id: a.as_str().to_string(),
            },
            AcdError::UnknownQueue(q) => HandleError::NotFound {
                what: Missing::Queue,
                id: q.as_str().to_string(),
            },
            AcdError::UnknownCall(c) => HandleError::NotFound {
                what: Missing::Call,
                id: c.as_str().to_string(),
            },
            other => HandleError::Refused {
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_travel_as_json_and_read_as_sentences() {
        let e = HandleError::from(AcdError::UnknownAgent("1009".into()));
        assert_eq!(e.to_string(), "no agent is `1009`");
        let json = serde_json::to_string(&e).expect("json");
        assert_eq!(json, r#"{"error":"not_found","what":"agent","id":"1009"}"#);
        let back: HandleError = serde_json::from_str(&json).expect("back");
        assert_eq!(back, e);
        let e = HandleError::CallRefused {
            call: "c1".into(),
            refusal: CommandError::NotBridged,
        };
        assert_eq!(
            e.to_string(),
            "refused: the call is not bridged to an agent"
        );
        let back: HandleError =
            serde_json::from_str(&serde_json::to_string(&e).expect("json")).expect("back");
        assert_eq!(back, e);
    }

    #[test]
    fn an_invalid_flow_travels_with_its_diagnostics() {
        let ctx = ivr_scripts::CheckContext::permissive();
        let source = "flow: f\nstart: a\nsteps:\n  a: { play: hello, next: nowhere }\n";
        let diagnostics = match ivr_scripts::compile(source, std::path::Path::new("f.yaml"), &ctx) {
            Err(d) => d,
            Ok(_) => panic!("the flow names a missing step"),
        };
        let e = HandleError::InvalidFlow {
            rendered: crate::flows::render(&diagnostics, source),
            diagnostics,
        };
        assert!(e.to_string().contains("f.yaml:4:"), "{e}");
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["error"], "invalid_flow");
        assert_eq!(json["diagnostics"][0]["line"], 4, "{json:#}");
        let back: HandleError = serde_json::from_value(json).expect("back");
        assert_eq!(back, e);
    }
}
