//! The ACD (automatic call distribution): queued callers, agents with skills and states,
//! routing, overflow, callbacks and statistics, as a sans-IO core (STYLE rule 1).
//!
//! The core makes every decision and does nothing else: the driver feeds it [`Input`]s and
//! the time, and performs the [`Action`]s it asks for (ring an agent, bridge, announce,
//! overflow...) on the SIP and media side. All of its state is plain serde data
//! ([`AcdState`]), so the HA layer can replicate it and a standby can take over the queued
//! calls; the routing indexes are derived from it and rebuilt on [`Acd::restore`].
//!
//! Map of the module, read top-down:
//! - `types`: ids, `Timestamp` (Unix ms) and the `Timeline` that maps the driver's `Instant`s;
//! - `config`: queues (skills, strategy, limits, overflow, announcements, callbacks), agents;
//! - `io`: the inputs and actions; `event`: the event log statistics come from;
//! - `model`: agent, call and queue records; `timers`: the table of deadlines;
//! - `index`: per-queue waiting orders and ready-agent sets (what keeps decisions O(log n));
//! - `machine`: the [`Acd`] and its entry points; `routing`: who takes which call;
//! - `calls`, `agents`: the caller's and the agent's side; `reconfig`: live config changes;
//! - `check`: the invariants; `snapshot`: supervision views; `stats`: queue statistics;
//!   `running`: one period's statistics kept event by event (today's, for wallboards);
//! - `driver`: the one tokio task that owns the core in the running engine; `report`: queue
//!   reports from the persisted events (these two are the module's only I/O).
//!
//! `docs/acd.md` describes the model, the rules and the complexity of every operation.

mod agents;
mod calls;
mod check;
mod config;
pub mod driver;
mod error;
mod event;
mod index;
mod io;
mod machine;
mod model;
mod reconfig;
pub mod report;
mod routing;
mod running;
mod snapshot;
mod stats;
mod timers;
mod types;

pub use config::{
    AcdConfig, AgentConfig, AnnounceConfig, CallbackConfig, ExitTarget, OverflowTarget,
    QueueConfig, Strategy, MAX_LEVEL,
};
pub use driver::AcdHandle;
pub use error::AcdError;
pub use event::{AcdEvent, EventKind};
pub use io::{Action, CallbackResult, Input, OverflowReason, RingFailure};
pub use ivr_scripts::Priority;
pub use machine::{Acd, AcdState, Counters};
pub use model::{AgentState, CallState, Pending};
pub use running::RunningStats;
pub use snapshot::{AcdSnapshot, AgentCounts, AgentSnapshot, QueueSnapshot, QueuedCallSnapshot};
pub use stats::{queue_stats, queue_stats_by_interval, QueueStats, MAX_INTERVALS};
pub(crate) use types::ms;
pub use types::{AgentId, CallId, QueueId, Skill, Timeline, Timestamp};

#[cfg(test)]
mod tests;
