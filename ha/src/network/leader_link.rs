//! What a member knows of the leader it follows, and when it may vote for another one.
//!
//! Raft's follower-side lease: a member that heard a leader refuses to elect another until
//! that leader may have fenced itself (`role.rs`: the active node leaves `Active` at most
//! `lease` after the last heartbeat a quorum acknowledged). svi holds that lease itself
//! (openraft's own is set to `lease + heartbeat`, see `HaConfig::raft_config`), because it
//! tells two kinds of silence apart:
//!
//! - **Silence alone** (no heartbeat, the connections still open): the leader may be merely
//!   slow (a loaded host stalls a process for a few hundred milliseconds). The member waits
//!   the whole `election_timeout_max` before it votes for anyone else, and a standby waits
//!   that long before it campaigns: a stall shorter than that moves nothing.
//! - **The leader's process is gone**: every connection of the leader to this member closed
//!   (TCP FIN or reset from its host) *and* a connection to its cluster port was then refused
//!   (nothing listens there: the process died, `kill -9`, a crash that left the kernel
//!   running). A much stronger signal than a missed heartbeat. The member then waits only
//!   `lease + heartbeat` after the leader's last message: the time by which that leader, if
//!   still alive and cut off, has fenced itself. A leader that is alive and merely dropped a
//!   connection (an RPC that timed out on a loaded host) still listens, so the check finds
//!   it there, and it reconnects at its next heartbeat, which cancels the signal.
//!
//! Safety does not depend on which case applies: in both, a member grants its vote only once
//! the old leader's lease has run out (measured from the member's own last contact, which is
//! no earlier than the heartbeat the leader counted), and an active node never grants one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::Timings;
use crate::types::NodeId;

/// A member's view of the leader's messages and connections to it.
#[derive(Debug, Default)]
pub(crate) struct LeaderLink {
    /// The last leader message: from whom, when.
    contact: Option<(NodeId, Instant)>,
    /// Connections open now that carried a leader's heartbeats, per leader.
    open: BTreeMap<NodeId, usize>,
    /// When the last of a leader's connections closed.
    lost: Option<(NodeId, Instant)>,
    /// When a connection to a leader's cluster port was refused.
    refused: Option<(NodeId, Instant)>,
}

impl LeaderLink {
    /// A heartbeat, entries or a snapshot chunk from `leader`.
    pub(crate) fn contact(&mut self, leader: NodeId, now: Instant) {
        self.contact = Some((leader, now));
    }

    /// A connection carried `leader`'s heartbeats for the first time.
    pub(crate) fn opened(&mut self, leader: NodeId) {
        *self.open.entry(leader).or_default() += 1;
    }

    /// A connection that carried `leader`'s heartbeats closed; true when it was the last one
    /// (then check whether `leader` still listens: `refused`).
    pub(crate) fn closed(&mut self, leader: NodeId, now: Instant) -> bool {
        let n = self.open.entry(leader).or_default();
        *n = n.saturating_sub(1);
        if *n > 0 {
            return false;
        }
        self.open.remove(&leader);
        self.lost = Some((leader, now));
        true
    }

    /// A connection to `leader`'s cluster port was refused.
    pub(crate) fn refused(&mut self, leader: NodeId, now: Instant) {
        self.refused = Some((leader, now));
    }

    /// When a leader last reached this member.
    pub(crate) fn heard(&self) -> Option<Instant> {
        self.contact.map(|(_, at)| at)
    }

    /// The leader heard last has closed every connection to this member since, and then
    /// refused a connection: its process is gone.
    pub(crate) fn lost(&self) -> bool {
        match (self.contact, self.lost, self.refused) {
            (Some((leader, heard)), Some((closed_by, closed)), Some((refused_by, refused))) => {
                leader == closed_by && leader == refused_by && closed >= heard && refused >= closed
            }
            _ => false,
        }
    }

    /// How long after the last contact this member may vote for another leader.
    pub(crate) fn quiet_needed(&self, t: &Timings) -> Duration {
        if self.lost() {
            t.lease + t.heartbeat
        } else {
            t.election_timeout_max
        }
    }

    /// Whether this member may vote for a new leader at `now`.
    pub(crate) fn may_vote(&self, now: Instant, t: &Timings) -> bool {
        self.heard()
            .is_none_or(|heard| now.saturating_duration_since(heard) >= self.quiet_needed(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timings() -> Timings {
        Timings {
            heartbeat: MS * 50,
            election_timeout_min: MS * 500,
            election_timeout_max: MS * 1000,
            lease: MS * 250,
        }
    }

    #[test]
    fn a_silent_leader_keeps_the_vote_for_the_whole_election_timeout() {
        let t = timings();
        let mut l = LeaderLink::default();
        let t0 = Instant::now();
        assert!(l.may_vote(t0, &t), "no leader heard yet");
        l.opened(1);
        l.contact(1, t0);
        // A stall of the leader: silence, its connection still open.
        assert!(
            !l.may_vote(t0 + MS * 300, &t),
            "a 300 ms stall moves nothing"
        );
        assert!(!l.may_vote(t0 + MS * 999, &t));
        assert!(l.may_vote(t0 + MS * 1000, &t));
    }

    #[test]
    fn a_leader_whose_connections_all_closed_frees_the_vote_after_its_lease() {
        let t = timings();
        let mut l = LeaderLink::default();
        let t0 = Instant::now();
        l.opened(1);
        l.opened(1);
        l.contact(1, t0);
        assert!(!l.closed(1, t0 + MS * 5), "one connection still open");
        assert!(l.closed(1, t0 + MS * 6));
        assert!(!l.lost(), "closed, but is it still listening?");
        assert!(!l.may_vote(t0 + MS * 300, &t));
        l.refused(1, t0 + MS * 7);
        assert!(l.lost());
        assert!(!l.may_vote(t0 + MS * 299, &t), "its lease may still run");
        assert!(
            l.may_vote(t0 + MS * 300, &t),
            "lease + heartbeat after the contact"
        );
    }

    #[test]
    fn a_leader_that_still_listens_or_reconnects_is_slow_not_gone() {
        let t = timings();
        let mut l = LeaderLink::default();
        let t0 = Instant::now();
        l.opened(1);
        l.contact(1, t0);
        // An RPC timed out on the leader's side: it dropped the connection, but its port
        // still answers (no refusal).
        assert!(l.closed(1, t0 + MS * 10));
        assert!(
            !l.may_vote(t0 + MS * 400, &t),
            "a stall after a dropped connection"
        );
        // A refusal from before the close says nothing about this close.
        l.refused(1, t0 + MS * 5);
        assert!(!l.lost());
        // The next heartbeat on a new connection cancels a refusal seen meanwhile.
        l.refused(1, t0 + MS * 20);
        assert!(l.lost());
        l.opened(1);
        l.contact(1, t0 + MS * 50);
        assert!(!l.lost());
        assert!(!l.may_vote(t0 + MS * 400, &t));
    }

    #[test]
    fn another_nodes_connection_closing_says_nothing_of_the_leader() {
        let t = timings();
        let mut l = LeaderLink::default();
        let t0 = Instant::now();
        // Node 1 led once, then node 2 leads; node 1's old connection closes.
        l.opened(1);
        l.contact(1, t0);
        l.opened(2);
        l.contact(2, t0 + MS * 100);
        l.closed(1, t0 + MS * 200);
        l.refused(1, t0 + MS * 201);
        assert!(!l.lost());
        assert!(!l.may_vote(t0 + MS * 500, &t));
    }
}
