//! The position of one call in its flow, as plain serialisable data.
//!
//! Everything the interpreter needs to continue a call lives in [`CallState`]: where it is
//! waiting, its variables, retry counters, language, subflow frames and the path of steps
//! taken. Steps are named by id, not by index, so a state written by one node resumes on its
//! standby (`Interpreter::from_state`) and is readable in a replication log. Values are
//! `serde_json::Value`, never rhai's `Dynamic`.

use std::collections::BTreeMap;
use std::fmt;

use pii::Pii;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::io::EndReason;

/// Facts about the call, given by the engine when it starts the flow.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallInfo {
    /// Calling party number (From user part).
    pub caller: Pii<String>,
    /// Called number (To / request URI user part): often selects the flow.
    pub called: Pii<String>,
    pub call_id: String,
    /// Language to start in; the flow's default when `None` or not one of its languages.
    pub language: Option<String>,
}

/// Where the call is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Position {
    /// Waiting for `Input::Start`.
    NotStarted,
    /// `Answer` was emitted; waiting for `Input::Answered`.
    Answering,
    /// Waiting for the answer to the effect of this step (in the innermost scope).
    Step {
        step: String,
    },
    Ended {
        reason: EndReason,
    },
}

/// Variables and retry counters of one scope (the main flow or a subflow frame). Variables
/// hold keyed digits and lookup results: personal data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScopeState {
    pub(crate) vars: Pii<BTreeMap<String, Value>>,
    /// Failed attempts per menu/collect step id.
    pub(crate) attempts: BTreeMap<String, u32>,
}

/// A subflow being run: which one, which step called it, its own variables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Frame {
    pub(crate) subflow: String,
    pub(crate) caller_step: String,
    pub(crate) state: ScopeState,
}

/// Longest path kept for the call record; a call that loops longer is flagged truncated.
pub const MAX_PATH: usize = 1000;

/// The complete, serialisable state of one call in its flow.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    pub(crate) flow: String,
    pub(crate) call: CallInfo,
    pub(crate) language: String,
    pub(crate) position: Position,
    pub(crate) globals: ScopeState,
    pub(crate) frames: Vec<Frame>,
    pub(crate) last_error: Option<String>,
    pub(crate) path: Vec<String>,
    pub(crate) path_truncated: bool,
}

impl fmt::Debug for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallState")
            .field("flow", &self.flow)
            .field("call", &self.call)
            .field("language", &self.language)
            .field("position", &self.position)
            .field("variables", &self.globals.vars)
            .field("frames", &self.frames.len())
            .field("path", &self.path)
            .finish()
    }
}

impl CallState {
    pub fn flow(&self) -> &str {
        &self.flow
    }

    pub fn call(&self) -> &CallInfo {
        &self.call
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Steps entered so far, qualified (`step` or `subflow/step`), at most [`MAX_PATH`].
    pub fn path(&self) -> &[String] {
        &self.path
    }

    pub fn path_truncated(&self) -> bool {
        self.path_truncated
    }

    /// A variable of the main flow (collected digits, lookup results...).
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.globals.vars.reveal().get(name)
    }

    pub(crate) fn scope_state(&mut self) -> &mut ScopeState {
        match self.frames.last_mut() {
            Some(frame) => &mut frame.state,
            None => &mut self.globals,
        }
    }

    pub(crate) fn scope_state_ref(&self) -> &ScopeState {
        match self.frames.last() {
            Some(frame) => &frame.state,
            None => &self.globals,
        }
    }

    pub(crate) fn push_path(&mut self, step: String) {
        if self.path.len() < MAX_PATH {
            self.path.push(step);
        } else {
            self.path_truncated = true;
        }
    }
}
