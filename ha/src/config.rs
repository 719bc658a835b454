//! `HaConfig`: who the members are, where to listen, the shared secret, the members'
//! pinned certificates and the timings, checked once before anything starts.
//!
//! ## Why the timing rule `lease + heartbeat <= election_timeout_min`
//! Fencing must happen before any other node can be elected. A follower that heard the
//! leader at time `t` refuses to vote for anyone else until `t + election_timeout_max`, or
//! `t + lease + heartbeat` once that leader's process is found gone (its connections
//! closed, its port refusing: `network::leader_link`), and the active node refuses votes
//! while it is active. So a new leader needs `t + lease + heartbeat` at the earliest, while
//! the old one drops `Active` at `t + lease` (plus a few ms of scheduling): a heartbeat of
//! margin. A leader that is merely silent (stalled, its connections open) is replaced only
//! after `election_timeout_max`, which the rule keeps above `lease + heartbeat`. See
//! `docs/ha.md` for the full argument.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::network::tls::Fingerprint;
use crate::types::{MemberKind, NodeId, NodeInfo};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("ha.{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// The cluster's shared secret (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Raft and lease timings. Must be identical on every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Leader heartbeat period (openraft ticks every 1.5 heartbeats).
    pub heartbeat: Duration,
    /// Randomised election timeout range of a follower.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How long the active node stays active without a quorum acknowledgement.
    pub lease: Duration,
}

impl Default for Timings {
    /// LAN defaults: a lost active node is replaced in about 2-3 s, and a partitioned one is
    /// fenced within 0.5 s, 1.5 s before anyone else can be elected.
    fn default() -> Timings {
        Timings {
            heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            lease: Duration::from_millis(500),
        }
    }
}

/// When to compact the raft log into a snapshot of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRetention {
    /// Build a snapshot after this many applied entries.
    pub snapshot_every: u64,
    /// Entries kept after a snapshot (a briefly lagging node catches up from the log
    /// instead of receiving the whole database).
    pub keep_after_snapshot: u64,
}

impl Default for LogRetention {
    fn default() -> LogRetention {
        LogRetention {
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
        }
    }
}

/// Where a full node keeps its call recordings, and its name in the recording index
/// (`[node] name`, which the index's `origin` and `present_on` hold). With it, the node
/// serves its recordings to the other members and copies theirs (`recordings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStore {
    pub dir: PathBuf,
    pub node_name: String,
    /// The recordings' disk guard (`recording.min_free_mb`): no copy below it.
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct HaConfig {
    pub node_id: NodeId,
    /// Holds `svi.db` (the state machine), `raft-log.db` and `raft-snapshots/`.
    pub data_dir: PathBuf,
    /// Cluster port; `None` only for a single-member cluster.
    pub listen: Option<SocketAddr>,
    /// Every member, this node included (id -> addresses and kind).
    pub members: BTreeMap<NodeId, NodeInfo>,
    pub secret: Secret,
    /// Each member's pinned cluster certificate(s) (several while one is rotated). Empty:
    /// the cluster link is the shared-secret channel alone, not encrypted; otherwise every
    /// member has at least one and the link runs inside TLS (`network::tls`).
    pub pins: BTreeMap<NodeId, Vec<Fingerprint>>,
    pub timings: Timings,
    pub retention: LogRetention,
    /// `None`: the node neither serves nor copies recordings (witness, single node).
    pub recordings: Option<RecordingStore>,
}

impl HaConfig {
    /// A one-voter cluster: same code path, no network.
    pub fn single(node_id: NodeId, data_dir: PathBuf) -> HaConfig {
        HaConfig {
            node_id,
            data_dir,
            listen: None,
            members: BTreeMap::from([(node_id, NodeInfo::default())]),
            secret: Secret::new(""),
            pins: BTreeMap::new(),
            timings: Timings::default(),
            retention: LogRetention::default(),
            recordings: None,
        }
    }

    /// This node is the witness (derived from its member entry).
    pub fn is_witness(&self) -> bool {
        self.kind_of(self.node_id) == MemberKind::Witness
    }

    pub(crate) fn kind_of(&self, id: NodeId) -> MemberKind {
        self.members.get(&id).map(|m| m.kind).unwrap_or_default()
    }

    /// Two full members and no witness: no automatic failover (the "backup" level).
    pub fn is_backup_mode(&self) -> bool {
        self.members.len() == 2 && self.members.values().all(|m| m.kind == MemberKind::Full)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.members.contains_key(&self.node_id) {
            return Err(invalid(
                "members",
                format!("this node ({}) is not listed", self.node_id),
            ));
        }
        let witnesses = self
            .members
            .values()
            .filter(|m| m.kind == MemberKind::Witness)
            .count();
        if witnesses > 1 {
            return Err(invalid("members", "at most one witness"));
        }
        if witnesses == self.members.len() {
            return Err(invalid("members", "at least one full node"));
        }
        if self.members.len() > 1 {
            if self.listen.is_none() {
                return Err(invalid("listen", "required with more than one member"));
            }
            if self.secret.bytes().len() < 16 {
                return Err(invalid(
                    "secret",
                    "at least 16 characters, the same on every member",
                ));
            }
            if let Some((id, _)) = self.members.iter().find(|(_, m)| m.cluster_addr.is_empty()) {
                return Err(invalid(
                    "members",
                    format!("member {id} has no cluster address"),
                ));
            }
        }
        if let Some(id) = self.pins.keys().find(|id| !self.members.contains_key(id)) {
            return Err(invalid(
                "members",
                format!("a certificate is pinned for {id}, which is not a member"),
            ));
        }
        if !self.pins.is_empty() {
            let unpinned = self
                .members
                .keys()
                .find(|id| self.pins.get(id).is_none_or(|p| p.is_empty()));
            if let Some(id) = unpinned {
                return Err(invalid(
                    "members",
                    format!(
                        "member {id} has no `fingerprint`: pin every member's certificate, or none"
                    ),
                ));
            }
        }
        let t = &self.timings;
        if t.heartbeat < Duration::from_millis(10) {
            return Err(invalid("heartbeat", "at least 10 ms"));
        }
        if t.election_timeout_min >= t.election_timeout_max {
            return Err(invalid("election_timeout", "min must be below max"));
        }
        if t.lease < t.heartbeat * 3 {
            return Err(invalid(
                "lease",
                "at least 3 heartbeats (openraft ticks every 1.5)",
            ));
        }
        if t.lease + t.heartbeat > t.election_timeout_min {
            return Err(invalid(
                "lease",
                "lease + heartbeat must not exceed election_timeout_min (fencing before election)",
            ));
        }
        if self.retention.snapshot_every == 0 {
            return Err(invalid("snapshot_every", "at least 1"));
        }
        Ok(())
    }

    pub(crate) fn raft_config(&self) -> Result<openraft::Config, ConfigError> {
        let t = &self.timings;
        let ms = |d: Duration| d.as_millis() as u64;
        let cfg = openraft::Config {
            cluster_name: "svi".into(),
            heartbeat_interval: ms(t.heartbeat),
            // openraft's follower-side lease is its `election_timeout_max`: set to the floor,
            // `lease + heartbeat`. svi holds the longer one itself, `election_timeout_max`
            // unless the leader's process is found gone (`network::leader_link`).
            election_timeout_min: ms(t.lease),
            election_timeout_max: ms(t.lease + t.heartbeat),
            // One snapshot chunk (1 MiB) per RPC; the last one also installs the database.
            install_snapshot_timeout: ms(t.election_timeout_max).max(10_000),
            snapshot_max_chunk_size: 1024 * 1024,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.retention.snapshot_every),
            max_in_snapshot_log_to_keep: self.retention.keep_after_snapshot,
            // Purges happen once per snapshot anyway; no need to batch them.
            purge_batch_size: 1,
            // Entries may be batches of writes (group commit): fewer per request.
            max_payload_entries: crate::writer::MAX_PAYLOAD_ENTRIES,
            // openraft's own election timer runs only on a single voter. In a cluster the
            // standby campaigns from `campaign.rs` (after a pre-vote) and the witness only when
            // no leader was heard for long (`upkeep.rs`); a node left the only voter
            // (`promote --force`) turns it back on (`campaign.rs`).
            enable_elect: self.members.len() == 1,
            ..Default::default()
        };
        cfg.validate()
            .map_err(|e| invalid("timings", e.to_string()))
    }

    /// A short fingerprint of what must be identical on all members (members, timings).
    pub(crate) fn digest(&self) -> String {
        let canonical = serde_json::json!({ "members": &self.members, "timings": &self.timings });
        let hash = Sha256::digest(canonical.to_string().as_bytes());
        hex::encode(&hash[..8])
    }

    /// How long a write may take before `propose` gives up.
    pub(crate) fn propose_timeout(&self) -> Duration {
        self.timings.election_timeout_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> HaConfig {
        let mut c = HaConfig::single(1, PathBuf::from("/tmp/x"));
        c.listen = Some("127.0.0.1:7000".parse().expect("addr"));
        c.secret = Secret::new("0123456789abcdef");
        for id in [1, 2] {
            c.members.insert(
                id,
                NodeInfo {
                    cluster_addr: format!("127.0.0.1:700{id}"),
                    ..NodeInfo::default()
                },
            );
        }
        c
    }

    #[test]
    fn defaults_are_valid_and_fence_before_election() {
        let c = pair();
        c.validate().expect("valid");
        assert!(c.is_backup_mode());
        let t = Timings::default();
        assert!(t.lease + t.heartbeat <= t.election_timeout_min);
        c.raft_config().expect("raft config");
    }

    #[test]
    fn rejects_lease_too_long_and_short_secret() {
        let mut c = pair();
        c.timings.lease = Duration::from_millis(950);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid { key: "lease", .. })
        ));
        let mut c = pair();
        c.secret = Secret::new("short");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid { key: "secret", .. })
        ));
        assert_eq!(format!("{:?}", c.secret), "Secret(***)");
    }

    #[test]
    fn pins_are_all_or_none() {
        let print = Fingerprint::parse(&format!("sha256:{}", "ab".repeat(32))).expect("print");
        let mut c = pair();
        c.pins.insert(1, vec![print]);
        let err = c.validate().expect_err("member 2 unpinned").to_string();
        assert!(err.contains("member 2 has no `fingerprint`"), "{err}");
        c.pins.insert(2, vec![print]);
        c.validate().expect("every member pinned");
        c.pins.insert(9, vec![print]);
        assert!(c.validate().is_err(), "a pin for a stranger");
    }
}
