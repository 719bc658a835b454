//! svi's call engine.
//!
//! - `config`: the configuration model and its validation;
//! - `runtime`: `Engine::start` / `shutdown` and the `EngineHandle` for the CLI and admin;
//! - `dispatch`: routes SIP events to calls and trunks; answers what no call owns;
//! - `uas`: the UAS core's request screening (RFC 3261 §8.2) as a pure function;
//! - `acd`: the ACD's sans-IO routing core (queues, agents, skills, overflow, statistics),
//!   and `acd::driver`, the task that drives it and routes its actions to calls;
//! - `call`: one actor per call driving the flow interpreter, SIP dialog and media;
//! - `control`: the local control socket used by `svi agent` and `svi queue`;
//! - `collect`: digit collection (barge-in, timeouts, terminator) as a sans-IO machine;
//! - `flows`: loading, checking and hot-reloading call flows;
//! - `trunk`: registration of the engine's SIP user with an IPBX;
//! - `media`: RTP endpoints, G.711, DTMF (RFC 4733, in-band), prompts, media workers;
//! - `replication`: durable writes and the active/standby role, as the engine sees them;
//! - `storage`: SQLite (the only module that names sqlx): call records;
//! - `agents`: agent phones registering with the engine (registrar -> ACD login/ready);
//! - `acl`: network allow-lists (personal data is kept out of logs by the `pii` crate);
//! - `alarm`: the alarm webhook (JSON POST, short timeout, retries, never blocking).
pub mod acd;
pub mod acl;
pub mod agents;
pub mod alarm;
pub mod call;
pub mod collect;
pub mod config;
pub mod connectors;
pub mod control;
pub mod dispatch;
pub mod flows;
pub mod handle;
pub mod media;
pub mod recording;
pub mod replication;
pub mod runtime;
pub mod storage;
pub mod trunk;
pub mod uas;

pub use handle::EngineHandle;
pub use runtime::{Engine, EngineError};
