//! svi's call-flow language: YAML flows, a static checker, a compiler to a validated form and
//! a sans-IO interpreter.
//!
//! A flow file is a named graph of steps (`play`, `menu`, `collect`, `lookup`, `queue`, ...)
//! with a start step, written in YAML with small `rhai` expressions for conditions and
//! computed values. The engine compiles each file once against its configuration and runs one
//! [`Interpreter`] per call:
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc};
//! # use ivr_scripts::{compile, CheckContext, Interpreter, CallInfo, Input};
//! # let source = "";
//! let flow = Arc::new(compile(source, Path::new("demo.yaml"), &CheckContext::permissive()).unwrap());
//! let mut call = Interpreter::new(flow, CallInfo { caller: "+33123".into(), ..Default::default() });
//! let effect = call.resume(chrono::Utc::now(), Input::Start); // Answer, then Play, ...
//! ```
//!
//! Module map, in reading order:
//!
//! - [`diagnostic`]: positions and load-time diagnostics (`file:line:col: error: ...` + hint).
//! - `yaml`: a spanned YAML tree over `saphyr-parser` events (every key and value positioned).
//! - `decode`: typed field readers with unknown-field and "did you mean" reporting.
//! - [`context`]: what the checker knows about the engine (prompts, queues, connectors).
//! - `expr`: the sandboxed rhai engine, compile-time variable checks, value conversions.
//! - [`hours`]: opening-hours calendars with time zones, holidays and closures.
//! - [`say`]: speaking digits, numbers, dates and times from recorded fragments (en, fr).
//! - `flow`: the validated flow model ([`Flow`]).
//! - `compile`: the passes from YAML to [`Flow`], including the graph checks.
//! - [`interp`]: the interpreter, its inputs, effects and serialisable [`CallState`].
//! - [`cli`]: `check`, `simulate`, `test-flow` and `graph` for the `svi` flow commands.
//! - [`graph`]: a compiled flow's graph as data, for `svi graph` and the admin web's drawing.

pub mod cli;
mod compile;
pub mod context;
mod decode;
pub mod diagnostic;
mod expr;
mod flow;
pub mod graph;
pub mod hours;
pub mod interp;
pub mod say;
mod yaml;

pub use compile::compile;
pub use context::{Catalog, CheckContext, CheckContextBuilder};
pub use decode::parse_duration;
pub use diagnostic::{Code, Diagnostic, Pos, Severity};
pub use expr::{
    BUILTINS, MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_EXPR_DEPTH, MAX_MAP_SIZE, MAX_OPERATIONS,
    MAX_SOURCE_LEN, MAX_STRING_SIZE,
};
pub use flow::{Flow, Priority, TransferMode};
pub use interp::{
    CallInfo, CallState, ConnectorResult, DeskField, Effect, EffectKind, EndReason, FlowError,
    HangupReason, Input, InterpError, Interpreter, Position, PromptRef, QueueOutcome,
    TransferOutcome,
};
pub use say::SayAs;
