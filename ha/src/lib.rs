//! svi's replicated state: two full nodes mirror every durable write through openraft 0.9
//! (storage-v2), a small witness breaks ties, and the raft leader holding a valid lease is the
//! one **active** node (registers the SIP user, takes calls). Only this crate names openraft.
//!
//! Map, read top-down:
//! - `types`: node ids and infos, `Command`/`Response`, `Role`, openraft's type config;
//!   `log_format`: which entries every member reads (a batch only once all do);
//! - `config`: `HaConfig` (members, secret, timings) and why the timings must satisfy
//!   `lease + heartbeat <= election_timeout_min`;
//! - `log_store`: the raft log in SQLite (`raft-log.db`, fsync per commit), checked by
//!   openraft's storage suite;
//! - `state_machine`, `snapshot`: commands applied to the engine database (`svi.db`)
//!   atomically with `last_applied`; snapshots are database copies;
//! - `network`: authenticated TCP transport (shared-secret handshake, MAC per frame), inside
//!   TLS with each member's certificate pinned by fingerprint; what the witness may ask;
//! - `role`: from raft's metrics and a lease clock to `Active`/`Standby`/`Fenced`/...;
//! - `upkeep`: first-start bootstrap, witness duty, re-adding members; `campaign`: a
//!   standby campaigns (after a pre-vote) as soon as the voters may elect it: sooner when
//!   the leader's process is found gone than when it is merely silent (`network::leader_link`);
//! - `promote`: planned switch (`promote`) and forced single-voter recovery (`--force`);
//! - `recordings`: each full node copies the other's call recordings in the background
//!   (chunked over the cluster link, resumable, SHA-256 checked) and updates the index;
//! - `restore`: the raft log of a node whose database was restored from a backup (standby
//!   of its pair, or a new single-voter cluster);
//! - `health`: the pair's alarms seen from a full node (no quorum, peer down, lag);
//! - `shared`, `error`: the state that outlives a raft incarnation and `propose_with`; the
//!   node's error type;
//! - `writer`: the engine's record writer: acknowledged at commit, or spooled on disk
//!   (fsynced) until it can be committed, here or through the leader;
//! - `node`: `HaNode`, the API the binary uses;
//! - `settings`, `replication`: the `[ha]` section of the engine's configuration, and what
//!   the engine gets from the node (writer, role, lease, control): all the binary calls.
//!
//! Operators' view: `docs/ha.md`.

mod campaign;
pub mod config;
mod error;
pub mod health;
mod log_format;
pub mod log_store;
mod network;
pub mod node;
mod promote;
mod recordings;
pub mod replication;
pub mod restore;
mod role;
pub mod settings;
mod shared;
pub mod snapshot;
pub mod state_machine;
pub mod types;
mod upkeep;
pub mod writer;

pub use config::{ConfigError, HaConfig, LogRetention, RecordingStore, Secret, Timings};
pub use network::tls::{member_fingerprint, Fingerprint, TlsError};
pub use node::{HaError, HaNode, HaStatus, MemberStatus};
pub use role::Lease;
pub use types::{Command, MemberKind, NodeId, NodeInfo, Outcome, Response, Role, RoleEvent};

#[cfg(test)]
mod tests;
