//! Which role this node publishes: a pure decision (`decide`) from what raft reports, and the
//! task that watches raft's metrics and the lease clock to re-decide and publish.
//!
//! ## The lease
//! openraft's metrics give the leader `millis_since_quorum_ack`: the age of the newest
//! heartbeat *send time* that a quorum has acknowledged, computed when the metrics were
//! published. The monitor adds the time since it received them, so its estimate never runs
//! ahead of the truth by more than its own wake-up latency (a few ms), and it sets a timer
//! for the exact instant the lease would run out, so a leader that stops hearing from its
//! quorum is fenced on time even if raft publishes nothing more.
//!
//! ## Why an old active node is fenced before another can be active
//! Let `t` be the send time of the last heartbeat a quorum `Q` acknowledged. The active
//! node drops `Active` at `t + lease` (+ wake-up latency). A new leader needs votes from a
//! quorum, which shares a member with `Q`:
//! - the old active node itself refuses every vote while it is active (`server.rs`), so if
//!   it votes, it already is not active;
//! - a follower in `Q` received that heartbeat after `t` and refuses votes (and campaigns
//!   no sooner) until at least `t + lease + heartbeat` when the leader's process is found gone
//!   (its connections closed, its port refusing), else `t + election_timeout_max`
//!   (`network::leader_link`, `campaign`).
//!
//! So nobody can be elected before `t + lease + heartbeat`, while the old active node is
//! fenced at `t + lease`; a merely silent one is given `election_timeout_max`, which
//! `HaConfig::validate` keeps above `lease + heartbeat`. (Monotonic clocks of two hosts drift
//! by well under 0.1% over these seconds.) A newly elected leader becomes active only once it
//! has applied an entry of its own term, i.e. after a quorum accepted it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use openraft::ServerState;
use tokio::sync::{broadcast, watch};

use crate::types::{NodeId, Raft, Role, RoleEvent};

/// What the decision needs to know, extracted from raft's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    pub running: bool,
    pub witness: bool,
    /// This node is a voter in the effective membership.
    pub voter: bool,
    /// This node is the only voter: no other node can be elected without its vote, so
    /// there is no lease to lose (a single node, or a pair after `promote --force`).
    pub sole_voter: bool,
    /// This node is raft leader.
    pub leader: bool,
    pub known_leader: Option<NodeId>,
    /// Age of the last quorum acknowledgement (leader only).
    pub lease_age: Option<Duration>,
    /// The leader has applied an entry of its own term (its election is committed).
    pub own_term_applied: bool,
    /// This node is handing leadership over (`promote` on another node).
    pub yielding: bool,
}

/// The role for an observation; `prev` is the role published so far.
pub(crate) fn decide(o: &Observation, lease: Duration, prev: Role) -> Role {
    if o.witness {
        return Role::Witness;
    }
    let was_active = matches!(prev, Role::Active | Role::Fenced);
    if !o.running {
        return if was_active {
            Role::Fenced
        } else {
            Role::Standby
        };
    }
    if !o.voter {
        return Role::Joining;
    }
    if o.leader {
        let lease_ok = o.sole_voter || o.lease_age.is_some_and(|a| a < lease);
        return match (o.yielding, lease_ok, o.own_term_applied) {
            (true, _, _) => Role::Standby,
            (false, true, true) => Role::Active,
            // Elected, not yet confirmed by a quorum: not active yet.
            (false, true, false) => Role::Standby,
            (false, false, _) if was_active => Role::Fenced,
            (false, false, _) => Role::Standby,
        };
    }
    // Not leader: an ex-active node stays fenced until it sees another leader.
    match o.known_leader {
        Some(_) => Role::Standby,
        None if was_active => Role::Fenced,
        None => Role::Standby,
    }
}

/// Reads the observation out of raft's metrics, received at `seen`.
pub(crate) fn observe(
    m: &openraft::RaftMetrics<NodeId, crate::types::NodeInfo>,
    me: NodeId,
    witness: bool,
    yielding: bool,
    seen: Instant,
) -> Observation {
    let leader = m.state == ServerState::Leader;
    let membership = m.membership_config.membership();
    let voter = membership.voter_ids().any(|v| v == me);
    let sole_voter = voter && membership.voter_ids().count() == 1;
    let lease_age = m
        .millis_since_quorum_ack
        .filter(|_| leader)
        .map(|ms| Duration::from_millis(ms) + seen.elapsed());
    Observation {
        running: m.running_state.is_ok(),
        witness,
        voter,
        sole_voter,
        leader,
        known_leader: m.current_leader.filter(|l| *l != me || leader),
        lease_age,
        own_term_applied: m
            .last_applied
            .is_some_and(|l| l.leader_id.term == m.current_term && l.leader_id.node_id == me),
        yielding,
    }
}

/// The lease as the engine checks it at the instant it decides to take a call: the
/// deadline the monitor last computed, read against the monotonic clock. The role watch
/// alone is not enough: a node frozen (SIGSTOP, a VM pause, a long GC-like stall) past its
/// lease resumes with `Active` still published, and whatever it handles before the monitor
/// runs again (an INVITE queued in the socket) would be served. The deadline is set before
/// `Active` is published and cleared when the node leaves it. The only voter of its
/// cluster holds an unbounded lease: nobody else can be elected without its vote.
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// Nanoseconds after `base` at which the lease runs out; 0: not active; `UNBOUNDED`: no
    /// deadline.
    until: AtomicU64,
}

const UNBOUNDED: u64 = u64::MAX;

impl Lease {
    pub(crate) fn new() -> Lease {
        Lease {
            base: Instant::now(),
            until: AtomicU64::new(0),
        }
    }

    /// Whether this node may serve at `now` (monotonic): active and within its lease.
    pub fn valid_at(&self, now: Instant) -> bool {
        match self.until.load(Ordering::SeqCst) {
            0 => false,
            UNBOUNDED => true,
            _ => self.deadline().is_some_and(|d| now < d),
        }
    }

    /// `valid_at(Instant::now())`.
    pub fn valid_now(&self) -> bool {
        self.valid_at(Instant::now())
    }

    /// The instant the lease runs out; None when not active or unbounded.
    fn deadline(&self) -> Option<Instant> {
        match self.until.load(Ordering::SeqCst) {
            0 | UNBOUNDED => None,
            ns => Some(self.base + Duration::from_nanos(ns)),
        }
    }

    fn renew(&self, until: Instant) {
        let ns = until.saturating_duration_since(self.base).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(UNBOUNDED - 1);
        self.until
            .store(ns.clamp(1, UNBOUNDED - 1), Ordering::SeqCst);
    }

    /// No deadline: this node is the only voter.
    fn renew_unbounded(&self) {
        self.until.store(UNBOUNDED, Ordering::SeqCst);
    }

    fn clear(&self) {
        self.until.store(0, Ordering::SeqCst);
    }
}

/// Role-change bookkeeping for alarms and status: how many changes, since when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoleClock {
    pub changes: u64,
    pub since: DateTime<Utc>,
}

/// Publishes role changes: lease deadline, watch value, warn log, event for alarms.
pub(crate) struct Publisher {
    pub me: NodeId,
    pub tx: watch::Sender<Role>,
    pub events: broadcast::Sender<RoleEvent>,
    pub lease: Arc<Lease>,
    pub clock: watch::Sender<RoleClock>,
}

impl Publisher {
    pub(crate) fn new(me: NodeId, initial: Role) -> Publisher {
        Publisher {
            me,
            tx: watch::channel(initial).0,
            events: broadcast::channel(64).0,
            lease: Arc::new(Lease::new()),
            clock: watch::channel(RoleClock {
                changes: 0,
                since: Utc::now(),
            })
            .0,
        }
    }

    pub(crate) fn publish(&self, role: Role, term: u64, leader: Option<NodeId>) {
        let old = *self.tx.borrow();
        if old == role {
            return;
        }
        // Taken before the engine can see the new role: an active interval read from the
        // logs starts no later than the node really started serving.
        let at = Utc::now();
        // The end of serving is the lease deadline when it already passed (a frozen node
        // resuming, a node cut off): that instant, not the moment the monitor noticed, is
        // when the decision-time check started refusing calls.
        let served_until = (old == Role::Active).then(|| match self.lease.deadline() {
            Some(d) => {
                let late = Instant::now().saturating_duration_since(d);
                at - chrono::Duration::from_std(late).unwrap_or_default()
            }
            None => at,
        });
        if role != Role::Active {
            self.lease.clear();
        }
        self.tx.send_replace(role);
        let changes = self.clock.borrow().changes + 1;
        self.clock.send_replace(RoleClock { changes, since: at });
        let at_s = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        match served_until {
            Some(u) => tracing::warn!(
                node = self.me, from = %old, to = %role, term, leader = ?leader, at = %at_s,
                served_until = %u.to_rfc3339_opts(SecondsFormat::Micros, true),
                "ha role changed"
            ),
            None => tracing::warn!(
                node = self.me, from = %old, to = %role, term, leader = ?leader, at = %at_s,
                "ha role changed"
            ),
        }
        let _ = self.events.send(RoleEvent {
            node: self.me,
            from: old,
            to: role,
            term,
            leader,
            at,
        });
    }
}

/// Watches raft and the lease clock until `stop` changes or raft is gone.
pub(crate) async fn monitor(
    raft: Raft,
    publisher: std::sync::Arc<Publisher>,
    witness: bool,
    lease: Duration,
    mut yielding: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    data_dir: std::path::PathBuf,
) {
    let me = publisher.me;
    let mut stopped_logged = false;
    let mut metrics = raft.metrics();
    let mut seen = Instant::now();
    loop {
        // A raft that has not reported yet shows empty metrics: keep the published role
        // (a restarted incarnation must not flash `Joining`).
        let blank = {
            let m = metrics.borrow_and_update();
            m.last_log_index.is_none() && m.vote == Default::default()
        };
        if blank && *publisher.tx.borrow() != Role::Joining {
            tokio::select! {
                r = metrics.changed() => if r.is_err() { break },
                _ = stop.changed() => break,
            }
            seen = Instant::now();
            continue;
        }
        let (obs, term, leader, ack_ms) = {
            let m = metrics.borrow();
            let obs = observe(&m, me, witness, *yielding.borrow_and_update(), seen);
            (
                obs,
                m.current_term,
                m.current_leader,
                m.millis_since_quorum_ack,
            )
        };
        let prev = *publisher.tx.borrow();
        let role = decide(&obs, lease, prev);
        // While active, wake exactly when the lease would run out without news. The only
        // voter has no lease to lose: a stall (SIGSTOP, a loaded host) must not fence it.
        let expiry = match (role, ack_ms) {
            (Role::Active, _) if obs.sole_voter => {
                publisher.lease.renew_unbounded();
                None
            }
            (Role::Active, Some(ms)) => {
                Some(seen + lease.saturating_sub(Duration::from_millis(ms)))
            }
            _ => None,
        };
        if let Some(until) = expiry {
            publisher.lease.renew(until);
        }
        if !obs.running && !stopped_logged {
            stopped_logged = true;
            let error = metrics
                .borrow()
                .running_state
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::error!(
                data_dir = %data_dir.display(),
                error = %error,
                "the replicated state stopped (a storage failure: is the disk of the data directory full or failing?); this node cannot be active until restarted"
            );
        }
        publisher.publish(role, term, leader);
        tokio::select! {
            r = metrics.changed() => {
                if r.is_err() {
                    break;
                }
                seen = Instant::now();
            }
            r = yielding.changed() => if r.is_err() { break },
            _ = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now).into()), if expiry.is_some() => {}
            _ = stop.changed() => break,
        }
    }
    // Raft stopped or the node is shutting down: this incarnation is no longer active.
    if *publisher.tx.borrow() == Role::Active {
        publisher.publish(Role::Standby, 0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(500);

    fn leader(age_ms: u64) -> Observation {
        Observation {
            running: true,
            witness: false,
            voter: true,
            sole_voter: false,
            leader: true,
            known_leader: Some(1),
            lease_age: Some(Duration::from_millis(age_ms)),
            own_term_applied: true,
            yielding: false,
        }
    }

    #[test]
    fn leader_with_fresh_lease_is_active_then_fenced_when_it_expires() {
        assert_eq!(decide(&leader(100), LEASE, Role::Standby), Role::Active);
        assert_eq!(decide(&leader(500), LEASE, Role::Active), Role::Fenced);
        // Stays fenced while it keeps thinking it leads without a quorum.
        assert_eq!(decide(&leader(5000), LEASE, Role::Fenced), Role::Fenced);
        // Quorum back: active again.
        assert_eq!(decide(&leader(50), LEASE, Role::Fenced), Role::Active);
    }

    #[test]
    fn the_only_voter_has_no_lease_to_lose() {
        let mut o = leader(60_000);
        o.sole_voter = true;
        assert_eq!(decide(&o, LEASE, Role::Active), Role::Active);
        o.lease_age = None;
        assert_eq!(decide(&o, LEASE, Role::Standby), Role::Active);
        // Still not before its election is committed, and not when raft stopped.
        o.own_term_applied = false;
        assert_eq!(decide(&o, LEASE, Role::Standby), Role::Standby);
        o.own_term_applied = true;
        o.running = false;
        assert_eq!(decide(&o, LEASE, Role::Active), Role::Fenced);
    }

    #[test]
    fn an_unbounded_lease_stays_valid_until_cleared() {
        let p = Publisher::new(1, Role::Standby);
        p.lease.renew_unbounded();
        p.publish(Role::Active, 1, Some(1));
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(p.lease.valid_at(later), "no deadline for the only voter");
        // A second voter joins: the lease is bounded again.
        p.lease.renew(Instant::now() + LEASE);
        assert!(!p.lease.valid_at(later));
        p.lease.renew_unbounded();
        p.publish(Role::Standby, 2, None);
        assert!(
            !p.lease.valid_at(Instant::now()),
            "cleared when leaving active"
        );
    }

    #[test]
    fn new_leader_waits_for_its_own_entry_and_a_quorum() {
        let mut o = leader(10);
        o.own_term_applied = false;
        assert_eq!(decide(&o, LEASE, Role::Standby), Role::Standby);
        o.own_term_applied = true;
        o.lease_age = None;
        assert_eq!(decide(&o, LEASE, Role::Standby), Role::Standby);
    }

    #[test]
    fn ex_active_follower_is_fenced_until_it_sees_a_leader() {
        let mut o = leader(0);
        o.leader = false;
        o.lease_age = None;
        o.known_leader = None;
        assert_eq!(decide(&o, LEASE, Role::Active), Role::Fenced);
        assert_eq!(decide(&o, LEASE, Role::Fenced), Role::Fenced);
        o.known_leader = Some(2);
        assert_eq!(decide(&o, LEASE, Role::Fenced), Role::Standby);
        assert_eq!(decide(&o, LEASE, Role::Standby), Role::Standby);
    }

    #[test]
    fn lease_is_valid_until_its_deadline_and_cleared_on_leaving_active() {
        let p = Publisher::new(1, Role::Standby);
        let now = Instant::now();
        assert!(!p.lease.valid_at(now), "no lease before the first renewal");
        p.lease.renew(now + LEASE);
        p.publish(Role::Active, 2, Some(1));
        assert!(p.lease.valid_at(now + LEASE / 2));
        assert!(!p.lease.valid_at(now + LEASE), "expired at the deadline");
        let clock = *p.clock.borrow();
        assert_eq!(clock.changes, 1);
        p.publish(Role::Fenced, 2, Some(1));
        assert!(!p.lease.valid_at(now), "cleared when leaving active");
        assert_eq!(p.clock.borrow().changes, 2);
        assert!(p.clock.borrow().since >= clock.since);
    }

    #[test]
    fn witness_yielding_learner_and_stopped() {
        let mut o = leader(0);
        o.witness = true;
        assert_eq!(decide(&o, LEASE, Role::Joining), Role::Witness);
        let mut o = leader(0);
        o.yielding = true;
        assert_eq!(decide(&o, LEASE, Role::Active), Role::Standby);
        let mut o = leader(0);
        o.voter = false;
        o.leader = false;
        assert_eq!(decide(&o, LEASE, Role::Joining), Role::Joining);
        let mut o = leader(0);
        o.running = false;
        assert_eq!(decide(&o, LEASE, Role::Active), Role::Fenced);
    }
}
