//! The alarm model: what can be wrong (`AlarmKind`), how bad (`Severity`), and the board
//! that turns each source's current conditions into raised and cleared alarms.
//!
//! Sources report **conditions**, not events: "these are the problems I see now". A source
//! reports its whole current set each time (an empty set clears everything it raised), so a
//! lost or repeated report never leaves a stale alarm and a source never has to remember
//! what it raised. The board keys alarms by kind and subject (`peer_down` / `node 2`), and
//! only the source that raised an alarm can clear it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything svi raises an alarm for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// No active node: no leader elected, or this node lost the majority (fenced).
    NoQuorum,
    /// A configured member of the cluster does not answer.
    PeerDown,
    /// A member is far behind the active node's log.
    ReplicationLag,
    /// Free space below the recording disk guard.
    DiskLow,
    /// A trunk's registration with the IPBX fails.
    TrunkRegistration,
    /// A backend's circuit breaker is open (the connector fails fast).
    CircuitOpen,
    /// Recordings were refused or cut (disk guard, write failure).
    RecordingFailure,
    /// A watched certificate expires within the warning period (or has expired).
    CertificateExpiry,
    /// A scheduled backup failed.
    BackupFailed,
    /// The export to the central reporting database keeps failing (it retries).
    CentralExport,
}

impl AlarmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::NoQuorum => "no_quorum",
            AlarmKind::PeerDown => "peer_down",
            AlarmKind::ReplicationLag => "replication_lag",
            AlarmKind::DiskLow => "disk_low",
            AlarmKind::TrunkRegistration => "trunk_registration",
            AlarmKind::CircuitOpen => "circuit_open",
            AlarmKind::RecordingFailure => "recording_failure",
            AlarmKind::CertificateExpiry => "certificate_expiry",
            AlarmKind::BackupFailed => "backup_failed",
            AlarmKind::CentralExport => "central_export",
        }
    }

    /// Words for a mail subject ("peer down").
    pub fn title(self) -> &'static str {
        match self {
            AlarmKind::NoQuorum => "no active node",
            AlarmKind::PeerDown => "peer down",
            AlarmKind::ReplicationLag => "replication lag",
            AlarmKind::DiskLow => "disk space low",
            AlarmKind::TrunkRegistration => "trunk registration failing",
            AlarmKind::CircuitOpen => "backend circuit open",
            AlarmKind::RecordingFailure => "recording failures",
            AlarmKind::CertificateExpiry => "certificate expiry",
            AlarmKind::BackupFailed => "backup failed",
            AlarmKind::CentralExport => "central reporting export failing",
        }
    }

    pub const ALL: [AlarmKind; 10] = [
        AlarmKind::NoQuorum,
        AlarmKind::PeerDown,
        AlarmKind::ReplicationLag,
        AlarmKind::DiskLow,
        AlarmKind::TrunkRegistration,
        AlarmKind::CircuitOpen,
        AlarmKind::RecordingFailure,
        AlarmKind::CertificateExpiry,
        AlarmKind::BackupFailed,
        AlarmKind::CentralExport,
    ];
}

/// How urgent, highest first (X.733's perceived severities, without `indeterminate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Service is lost or about to be (no active node, disk full).
    Critical,
    /// Service is degraded or has no redundancy left (peer down, trunk down).
    Major,
    /// Something needs attention soon (lag, recordings lost).
    Minor,
    /// A problem ahead (a certificate expiring).
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
        }
    }
}

/// A problem a source sees now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: AlarmKind,
    /// What it is about (`node 2`, a trunk's name, a file); with `kind`, the alarm's key.
    pub subject: String,
    pub severity: Severity,
    /// One line for an operator: what is wrong and where.
    pub message: String,
}

/// A raised alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub subject: String,
    pub severity: Severity,
    pub message: String,
    pub raised_at: DateTime<Utc>,
    /// The source that raised it (the only one that clears it).
    pub source: String,
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Raised,
    Cleared,
}

/// A raised or cleared alarm, as notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub state: State,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub alarm: Alarm,
}

/// The alarms of a node now, for metrics and the alarm screen (`svi alarms`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSnapshot {
    /// Active alarms, most severe first, then oldest first.
    pub active: Vec<Alarm>,
    /// Alarms raised since the process started, per kind (`as_str`).
    pub raised_total: BTreeMap<String, u64>,
    pub cleared_total: BTreeMap<String, u64>,
    /// Notifications (mails, webhook posts) delivered and failed since start.
    pub notifications_sent: u64,
    pub notifications_failed: u64,
}

/// The raised alarms and the counters (sans-IO: the caller gives the time).
#[derive(Debug, Default)]
pub struct Board {
    active: BTreeMap<(AlarmKind, String), Alarm>,
    raised: BTreeMap<AlarmKind, u64>,
    cleared: BTreeMap<AlarmKind, u64>,
    /// Moves on each change of what a snapshot shows, a message update included.
    revision: u64,
}

impl Board {
    /// Changes whenever a report changed the board (an alarm raised, cleared, or its message
    /// updated): the caller publishes only then.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Replaces the conditions of `source` by `now_seen`: raises the new ones, clears the
    /// ones it no longer sees, updates the message of the others (without a notification,
    /// unless their severity changed: then they are raised again at the new severity).
    pub fn report(
        &mut self,
        at: DateTime<Utc>,
        source: &str,
        now_seen: Vec<Condition>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let seen: BTreeMap<(AlarmKind, String), Condition> = now_seen
            .into_iter()
            .map(|c| ((c.kind, c.subject.clone()), c))
            .collect();
        let gone: Vec<(AlarmKind, String)> = self
            .active
            .iter()
            .filter(|(k, a)| a.source == source && !seen.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(alarm) = self.active.remove(&key) {
                *self.cleared.entry(alarm.kind).or_default() += 1;
                changes.push(Change {
                    state: State::Cleared,
                    at,
                    alarm,
                });
            }
        }
        for (key, c) in seen {
            match self.active.get_mut(&key) {
                // Another source's alarm of the same key: leave it to that source.
                Some(a) if a.source != source => {}
                Some(a) if a.severity == c.severity => {
                    if a.message != c.message {
                        a.message = c.message;
                        self.revision += 1;
                    }
                }
                existing => {
                    let alarm = Alarm {
                        kind: c.kind,
                        subject: c.subject,
                        severity: c.severity,
                        message: c.message,
                        raised_at: at,
                        source: source.to_string(),
                    };
                    match existing {
                        Some(a) => *a = alarm.clone(),
                        None => {
                            self.active.insert(key, alarm.clone());
                        }
                    }
                    *self.raised.entry(alarm.kind).or_default() += 1;
                    changes.push(Change {
                        state: State::Raised,
                        at,
                        alarm,
                    });
                }
            }
        }
        if !changes.is_empty() {
            self.revision += 1;
        }
        changes
    }

    /// The active alarms and counters (notification counters are the caller's).
    pub fn snapshot(&self) -> AlarmSnapshot {
        let mut active: Vec<Alarm> = self.active.values().cloned().collect();
        active.sort_by_key(|a| (a.severity, a.raised_at));
        let names = |m: &BTreeMap<AlarmKind, u64>| {
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect()
        };
        AlarmSnapshot {
            active,
            raised_total: names(&self.raised),
            cleared_total: names(&self.cleared),
            notifications_sent: 0,
            notifications_failed: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(s), 0).expect("time")
    }

    fn peer(n: u32, severity: Severity) -> Condition {
        Condition {
            kind: AlarmKind::PeerDown,
            subject: format!("node {n}"),
            severity,
            message: format!("member {n} does not answer"),
        }
    }

    #[test]
    fn conditions_raise_once_and_clear_when_no_longer_seen() {
        let mut b = Board::default();
        let c = b.report(at(0), "ha", vec![peer(2, Severity::Major)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].state, State::Raised);
        assert_eq!(c[0].alarm.subject, "node 2");
        // Seen again, even with another message: no new notification.
        let mut again = peer(2, Severity::Major);
        again.message = "member 2 has not answered for 10 s".into();
        assert!(b.report(at(5), "ha", vec![again]).is_empty());
        assert_eq!(
            b.snapshot().active[0].message,
            "member 2 has not answered for 10 s"
        );
        assert_eq!(b.snapshot().active[0].raised_at, at(0));
        // Worse: raised again at the new severity.
        let c = b.report(at(6), "ha", vec![peer(2, Severity::Critical)]);
        assert_eq!(
            (c.len(), c[0].state, c[0].alarm.severity),
            (1, State::Raised, Severity::Critical)
        );
        // Gone: cleared, once.
        let c = b.report(at(9), "ha", vec![]);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].state, c[0].at), (State::Cleared, at(9)));
        assert!(b.report(at(10), "ha", vec![]).is_empty());
        let s = b.snapshot();
        assert!(s.active.is_empty());
        assert_eq!(s.raised_total["peer_down"], 2);
        assert_eq!(s.cleared_total["peer_down"], 1);
    }

    #[test]
    fn a_source_clears_only_its_own_alarms() {
        let mut b = Board::default();
        b.report(at(0), "a", vec![peer(2, Severity::Major)]);
        let disk = Condition {
            kind: AlarmKind::DiskLow,
            subject: "/var/lib/svi".into(),
            severity: Severity::Critical,
            message: "10 MB free".into(),
        };
        b.report(at(1), "b", vec![disk.clone()]);
        // `b` also sees the peer down: `a`'s alarm stands, no second one.
        assert!(b
            .report(at(2), "b", vec![disk, peer(2, Severity::Minor)])
            .is_empty());
        let c = b.report(at(3), "b", vec![]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].alarm.kind, AlarmKind::DiskLow);
        let active = b.snapshot().active;
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].source, "a");
    }

    #[test]
    fn the_snapshot_lists_the_most_severe_first() {
        let mut b = Board::default();
        b.report(at(0), "a", vec![peer(3, Severity::Minor)]);
        b.report(at(1), "b", vec![peer(2, Severity::Critical)]);
        let order: Vec<Severity> = b.snapshot().active.iter().map(|a| a.severity).collect();
        assert_eq!(order, vec![Severity::Critical, Severity::Minor]);
    }
}
