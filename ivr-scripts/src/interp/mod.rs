//! The sans-IO interpreter: `resume(now, input) -> effect`.
//!
//! One [`Interpreter`] per call. The engine's call actor feeds it the call's events with the
//! current time and performs the one [`Effect`] it returns (play, collect, look up, queue...),
//! then resumes it with the outcome. The interpreter reads no clock, does no I/O and spawns
//! nothing, so a whole call runs in a test as a list of inputs, and `svi simulate` is the
//! same code the engine runs.
//!
//! Steps that need nothing from the outside (`set`, `branch`, `hours`, `goto`, `language`,
//! `subflow`, `return`) run inside one `resume`, bounded by [`MAX_STEPS_WITHOUT_INPUT`]. Menu
//! and collect retries, invalid and no-input branches are enforced here. A failure (expression
//! error, connector error) never drops the call: it takes the step's `error` branch, else the
//! scope's `on_error`, else the caller's (from a subflow), and only then hangs up; each failure
//! is reported through [`Interpreter::take_errors`] with flow, step and file position.
//!
//! All of a call's position is the [`CallState`], plain data: serialise it, ship it to the
//! standby, and [`Interpreter::from_state`] continues there.

mod eval;
mod io;
mod respond;
mod run;
mod state;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

pub use io::{
    ConnectorResult, DeskField, Effect, EffectKind, EndReason, HangupReason, Input, PromptRef,
    QueueOutcome, TransferOutcome,
};
pub use state::{CallInfo, CallState, Position, MAX_PATH};

use crate::diagnostic::Pos;
use crate::flow::{Flow, StepIdx};
use state::ScopeState;

/// Most steps run in one `resume` (no effect in between) before the flow is declared stuck.
pub const MAX_STEPS_WITHOUT_INPUT: u32 = 1000;
/// Deepest subflow nesting at run time (recursion is refused at load; this is a backstop).
pub const MAX_SUBFLOW_DEPTH: usize = 16;

/// A failure while running a flow, reported to the engine's log and the call record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("flow `{flow}`, step `{step}` (line {line}, column {column}): {message}")]
pub struct FlowError {
    pub flow: String,
    pub step: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Why a saved state cannot be resumed with a flow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("the state belongs to flow `{state}`, not `{flow}`")]
    WrongFlow { state: String, flow: String },
    #[error("the state names subflow `{0}`, which the flow does not define")]
    MissingSubflow(String),
    #[error("the state names step `{0}`, which the flow does not define")]
    MissingStep(String),
}

/// Runs one call through a flow.
#[derive(Debug)]
pub struct Interpreter {
    flow: Arc<Flow>,
    state: CallState,
    errors: Vec<FlowError>,
}

impl Interpreter {
    pub fn new(flow: Arc<Flow>, call: CallInfo) -> Self {
        let language = call
            .language
            .clone()
            .filter(|l| flow.languages.contains(l))
            .unwrap_or_else(|| flow.default_language.clone());
        let state = CallState {
            flow: flow.name.clone(),
            call,
            language,
            position: Position::NotStarted,
            globals: ScopeState::default(),
            frames: Vec::new(),
            last_error: None,
            path: Vec::new(),
            path_truncated: false,
        };
        Self {
            flow,
            state,
            errors: Vec::new(),
        }
    }

    /// Continues a call from a saved state (e.g. on the standby node after a takeover).
    pub fn from_state(flow: Arc<Flow>, state: CallState) -> Result<Self, InterpError> {
        if state.flow != flow.name {
            return Err(InterpError::WrongFlow {
                state: state.flow,
                flow: flow.name.clone(),
            });
        }
        let mut parent = flow.main();
        for frame in &state.frames {
            if parent.find(&frame.caller_step).is_none() {
                return Err(InterpError::MissingStep(frame.caller_step.clone()));
            }
            parent = flow
                .scope_named(Some(&frame.subflow))
                .map(|(_, s)| s)
                .ok_or_else(|| InterpError::MissingSubflow(frame.subflow.clone()))?;
        }
        if let Position::Step { step } = &state.position {
            if parent.find(step).is_none() {
                return Err(InterpError::MissingStep(step.clone()));
            }
        }
        Ok(Self {
            flow,
            state,
            errors: Vec::new(),
        })
    }

    /// Feeds one input at time `now` and returns what the engine must do next.
    pub fn resume<Z: TimeZone>(&mut self, now: DateTime<Z>, input: Input) -> Effect {
        let now = now.with_timezone(&Utc);
        run::resume(self, now, input)
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    pub fn state(&self) -> &CallState {
        &self.state
    }

    pub fn into_state(self) -> CallState {
        self.state
    }

    /// Steps taken so far, for the call record.
    pub fn path(&self) -> &[String] {
        &self.state.path
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state.position, Position::Ended { .. })
    }

    /// Failures since the last call (expression errors, connector errors, stuck flows).
    pub fn take_errors(&mut self) -> Vec<FlowError> {
        std::mem::take(&mut self.errors)
    }

    fn report(&mut self, step: StepIdx, pos: Pos, message: String) {
        let scope = run::scope(&self.flow, &self.state);
        self.errors.push(FlowError {
            flow: self.flow.name.clone(),
            step: scope.qualified(step),
            line: pos.line,
            column: pos.col,
            message: message.clone(),
        });
        self.state.last_error = Some(message);
    }
}
