//! svi's call engine: SIP calls through call flows, queues and agents, recorded and
//! supervised, on one node or as the active node of an HA pair.
//!
//! # Modules, in reading order
//!
//! Starting and reaching the engine:
//! - `config`: the configuration model, one file per section, validated at load;
//! - `runtime`: `Engine::start` (storage, prompts, flows, media, SIP, tasks) and the ordered
//!   `shutdown`;
//! - `handle`: the `EngineHandle`, the one control surface (commands, snapshots, event
//!   streams, HA, flows) with its typed `HandleError`; `control`: the local control socket,
//!   a JSON adapter over the handle for the `svi` commands.
//!
//! A call, in the order it meets them:
//! - `dispatch`: one task receiving every SIP event; starts a call per new INVITE, routes
//!   the rest by Call-ID, answers what no call owns; `uas`: request screening (RFC 3261
//!   §8.2) as a pure function; `acl`: network allow-lists;
//! - `admission`: new calls admitted and refused by reason (metrics);
//! - `call`: one sans-IO core per call (typed phases: the flow interpreter, the SIP dialog,
//!   the queue, the second legs, the bridge) and the thin driver task that feeds it;
//!   `call::survival`, calls replicated so that the node taking over adopts them;
//!   `call::live`, the registry of calls in progress (each call's view, operators'
//!   commands); `collect`: digit collection as a sans-IO machine;
//! - `flows`: call flows as replicated, versioned data compiled into the live set;
//! - `media`: RTP streams paced by a few workers, G.711, DTMF (RFC 4733, in-band), prompts;
//! - `acd`: queues, agents, skills, routing and overflow as a sans-IO core; `acd::driver`,
//!   the task that owns it; `acd::report`, queue statistics from its persisted events;
//! - `agents`: agent phones registering with the engine (registrar -> ACD login/ready);
//! - `dialplan`: which numbers callbacks and transfers may dial (toll-fraud protection);
//! - `security`: the fail2ban-readable lines of authentication failures and bans;
//! - `connectors`: `lookup` and `action` backends (SQL, HTTP, access control, helpdesk) as
//!   a registry of kinds, with timeouts, retries of reads, a cache and a circuit breaker;
//!   `secrets`: their settings encrypted at rest;
//! - `recording`: call recordings (stereo WAV that survives a crash) and their replicated
//!   index;
//! - `agent_bindings`: those registrations replicated, taken over by a newly active node
//!   (`takeover`: what a node does each time it becomes active);
//! - `trunk`: registration of the engine's SIP user with an IPBX;
//! - `callout`: access-control alarms call the on-duty numbers (calls the engine places,
//!   `EngineHandle::originate`).
//!
//! What a call leaves and what the node is:
//! - `storage`: SQLite (the only module that names sqlx): call records, documents, the raft
//!   state machine's tables;
//! - `replication`: durable writes and the active/standby role, as the engine sees them
//!   (the `ha` crate implements them for a pair);
//! - `files`: private files and directories (umask, 0700 directories);
//! - `alarm`: one alarm model (raised, cleared, severity) delivered to the log, a metrics
//!   snapshot, the webhook and by mail, rate limited;
//! - `backup`: backups (hot copy, checksums, tar or directory), restore, the schedule;
//! - `central`: the active node's export of what the pair committed to a shared PostgreSQL
//!   (central reporting across pairs);
//! - `audit`: the replicated, append-only audit log (admin API requests, plug-ins: a door
//!   opened, a badge blocked, an alarm called out).
//!
//! Personal data (numbers, keyed digits, variables) travels as `pii::Pii`, redacted in any
//! log line.
//!
//! # The running engine: tasks and channels
//!
//! ```text
//!  PBX, phones ◄─UDP/TCP/TLS─► SIP transport task (sip::transport)
//!                               │ SipEvent (mpsc)          ▲ SipHandle (send requests,
//!                               ▼                          │ responses, CANCEL)
//!  trunk tasks ◄──SipEvent── dispatcher task               │
//!  (1 per trunk)                │ CallInput (mpsc)          │
//!       │                       ▼                          │
//!       │               call drivers (1 task per call,  ────┘
//!       │                 │  each owning a sans-IO CallCore)
//!       │                 │  MediaCommand ──► media worker tasks (a few: RTP sockets,
//!       │                 │  ◄── MediaEvent   20 ms tick, DTMF, prompts, audio taps)
//!       │                 │  AcdCommand ───► ACD driver task (owns acd::Acd)
//!       │                 │  ◄── Action        │ AcdEvent ──► persist task ──► RecordWriter
//!       │                 │  CallView (watch), │ AcdEvent (broadcast),
//!       │                 │  CallEvent (bcast) │ AcdSnapshot (watch, while watched)
//!       │                 ▼                    ▼
//!       │           live-call registry ──► EngineHandle ◄── control socket task ◄── `svi`
//!       │  (call::live)   ▲ CallInput::Command  │             (+1 task per connection)
//!       │                 └─────────────────────┘ HaControl ──► ha crate (pair, witness)
//!       └─► DispatcherInput (mpsc) to the dispatcher: trunks register their Call-IDs;
//!           Drain at shutdown. Call legs' Call-IDs arrive as `Route`s (guards: dropped,
//!           unregistered) on the dispatcher's own channel.
//!  flow sync task ── FlowSet (watch) ──► call drivers; call drivers ── CallRecord ──► RecordWriter
//! ```
pub mod acd;
pub mod acl;
pub mod admission;
pub mod agent_bindings;
pub mod agents;
pub mod alarm;
pub mod audit;
pub mod backup;
pub mod call;
pub mod callout;
pub mod central;
pub mod collect;
pub mod config;
pub mod connectors;
pub mod control;
pub mod dialplan;
pub mod dispatch;
pub mod files;
pub mod flows;
pub mod handle;
pub mod media;
pub mod recording;
pub mod replication;
pub mod runtime;
pub mod secrets;
pub mod security;
pub mod storage;
mod takeover;
#[cfg(any(test, feature = "test-servers"))]
pub mod test_http;
#[cfg(any(test, feature = "test-servers"))]
pub mod test_log;
pub mod trunk;
pub mod uas;

pub use handle::EngineHandle;
pub use runtime::{Engine, EngineError, EngineIo, SipIo};

/// A UTC instant from RFC 3339 text, for tests of time-based rules.
#[cfg(test)]
pub(crate) fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .with_timezone(&chrono::Utc)
}
