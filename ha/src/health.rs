//! The pair's alarms as one full node sees them, reported to the engine's alarm board:
//!
//! - `no_quorum` (critical): this node is fenced (it lost the majority), or no leader has
//!   been known for three election timeouts (nobody is active);
//! - `peer_down` (major): a configured member has not answered `Hello` on the cluster port
//!   for `peer_down_after` (the node probes every member itself, so the alarm does not
//!   depend on who leads; the connection is kept between probes);
//! - `replication_lag` (minor, on the active node): a member's acknowledged log is more
//!   than `lag_entries` behind for three probes in a row.
//!
//! Each probe round computes the whole set of conditions (`conditions`, a pure function)
//! and reports it: a condition that no longer holds is cleared by the board.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::alarm::{AlarmHandle, AlarmKind, Condition, Severity};

use crate::network::{Reply, Request};
use crate::node::HaNode;
use crate::types::{MemberKind, NodeId, Role};

/// Thresholds (from `[alarms]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub peer_down_after: Duration,
    pub lag_entries: u64,
}

/// What one probe round saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub role: Option<Role>,
    /// How long no leader has been known (None: one is known).
    pub leaderless_for: Option<Duration>,
    /// Members (id, address, kind) and how long each has not answered.
    pub silent: Vec<(NodeId, String, MemberKind, Duration)>,
    /// Members whose log lags (id, entries behind, rounds in a row).
    pub lagging: Vec<(NodeId, u64, u32)>,
}

/// The conditions a round's observations amount to.
pub(crate) fn conditions(seen: &Seen, s: Settings, no_leader_after: Duration) -> Vec<Condition> {
    let mut out = Vec::new();
    if seen.role == Some(Role::Fenced) {
        out.push(Condition {
            kind: AlarmKind::NoQuorum,
            subject: "cluster".into(),
            severity: Severity::Critical,
            message:
                "this node lost contact with the majority of the cluster (fenced): it refuses calls"
                    .into(),
        });
    } else if let Some(d) = seen.leaderless_for.filter(|d| *d >= no_leader_after) {
        out.push(Condition {
            kind: AlarmKind::NoQuorum,
            subject: "cluster".into(),
            severity: Severity::Critical,
            message: format!("no active node: no leader elected for {} s", d.as_secs()),
        });
    }
    for (id, addr, kind, quiet) in &seen.silent {
        if *quiet >= s.peer_down_after {
            let what = match kind {
                MemberKind::Full => "full node",
                MemberKind::Witness => "witness",
            };
            out.push(Condition {
                kind: AlarmKind::PeerDown,
                subject: format!("node {id}"),
                severity: Severity::Major,
                message: format!(
                    "member {id} ({what}, {addr}) has not answered for {} s",
                    quiet.as_secs()
                ),
            });
        }
    }
    for (id, behind, rounds) in &seen.lagging {
        if *behind > s.lag_entries && *rounds >= 3 {
            out.push(Condition {
                kind: AlarmKind::ReplicationLag,
                subject: format!("node {id}"),
                severity: Severity::Minor,
                message: format!("member {id} is {behind} log entries behind the active node"),
            });
        }
    }
    out
}

/// Probes the members and reports the pair's conditions until the task is aborted.
pub fn spawn(
    node: Arc<HaNode>,
    alarms: AlarmHandle,
    settings: Settings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(node, alarms, settings))
}

async fn run(node: Arc<HaNode>, alarms: AlarmHandle, settings: Settings) {
    let me = node.id();
    let timings = node.timings();
    let period =
        (settings.peer_down_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
    let no_leader_after = timings.election_timeout_max * 3;
    let started = Instant::now();
    let others: Vec<(NodeId, crate::types::NodeInfo)> = node
        .members()
        .into_iter()
        .filter(|(id, _)| *id != me)
        .collect();
    let mut clients: BTreeMap<NodeId, _> = others
        .iter()
        .map(|(id, info)| (*id, node.client(*id, &info.cluster_addr)))
        .collect();
    let mut last_ok: BTreeMap<NodeId, Instant> = BTreeMap::new();
    let mut leader_seen = started;
    let mut lag_rounds: BTreeMap<NodeId, u32> = BTreeMap::new();
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let ttl = period.min(timings.election_timeout_min);
        for (id, client) in clients.iter_mut() {
            if let Ok((Reply::Hello(info), _)) = client.call(&Request::Hello, &[], ttl).await {
                if info.node == *id {
                    last_ok.insert(*id, Instant::now());
                }
            }
        }
        let now = Instant::now();
        let Ok(raft) = node.raft().await else { return };
        let m = raft.metrics().borrow().clone();
        if m.current_leader.is_some() {
            leader_seen = now;
        }
        let role = *node.role().borrow();
        let mut seen = Seen {
            role: Some(role),
            leaderless_for: m.current_leader.is_none().then(|| now - leader_seen),
            ..Seen::default()
        };
        for (id, info) in &others {
            let quiet = now - last_ok.get(id).copied().unwrap_or(started);
            seen.silent
                .push((*id, info.cluster_addr.clone(), info.kind, quiet));
        }
        match (role, &m.replication, m.last_log_index) {
            (Role::Active, Some(repl), Some(last)) => {
                for (id, matched) in repl.iter().filter(|(id, _)| **id != me) {
                    let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
                    let rounds = lag_rounds.entry(*id).or_default();
                    *rounds = if behind > settings.lag_entries {
                        *rounds + 1
                    } else {
                        0
                    };
                    seen.lagging.push((*id, behind, *rounds));
                }
            }
            _ => lag_rounds.clear(),
        }
        alarms.report("ha", conditions(&seen, settings, no_leader_after));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings {
        peer_down_after: Duration::from_secs(5),
        lag_entries: 1000,
    };
    const NO_LEADER: Duration = Duration::from_secs(6);

    fn kinds(c: &[Condition]) -> Vec<(AlarmKind, String)> {
        c.iter().map(|c| (c.kind, c.subject.clone())).collect()
    }

    #[test]
    fn a_silent_member_is_down_after_the_threshold_only() {
        let mut seen = Seen {
            role: Some(Role::Active),
            silent: vec![
                (
                    2,
                    "10.0.0.12:7101".into(),
                    MemberKind::Full,
                    Duration::from_secs(4),
                ),
                (
                    3,
                    "10.0.0.13:7101".into(),
                    MemberKind::Witness,
                    Duration::ZERO,
                ),
            ],
            ..Seen::default()
        };
        assert!(conditions(&seen, S, NO_LEADER).is_empty());
        seen.silent[0].3 = Duration::from_secs(5);
        let c = conditions(&seen, S, NO_LEADER);
        assert_eq!(kinds(&c), vec![(AlarmKind::PeerDown, "node 2".into())]);
        assert_eq!(
            c[0].message,
            "member 2 (full node, 10.0.0.12:7101) has not answered for 5 s"
        );
    }

    #[test]
    fn fenced_or_leaderless_is_no_quorum() {
        let fenced = Seen {
            role: Some(Role::Fenced),
            ..Seen::default()
        };
        assert_eq!(
            kinds(&conditions(&fenced, S, NO_LEADER)),
            vec![(AlarmKind::NoQuorum, "cluster".into())]
        );
        let mut quiet = Seen {
            role: Some(Role::Standby),
            leaderless_for: Some(Duration::from_secs(2)),
            ..Seen::default()
        };
        assert!(
            conditions(&quiet, S, NO_LEADER).is_empty(),
            "an election takes a moment"
        );
        quiet.leaderless_for = Some(Duration::from_secs(7));
        let c = conditions(&quiet, S, NO_LEADER);
        assert_eq!(c[0].message, "no active node: no leader elected for 7 s");
    }

    #[test]
    fn lag_needs_three_rounds_over_the_threshold() {
        let mut seen = Seen {
            role: Some(Role::Active),
            lagging: vec![(2, 1500, 2)],
            ..Seen::default()
        };
        assert!(conditions(&seen, S, NO_LEADER).is_empty());
        seen.lagging[0].2 = 3;
        let c = conditions(&seen, S, NO_LEADER);
        assert_eq!(
            kinds(&c),
            vec![(AlarmKind::ReplicationLag, "node 2".into())]
        );
        assert_eq!(
            c[0].message,
            "member 2 is 1500 log entries behind the active node"
        );
    }
}
