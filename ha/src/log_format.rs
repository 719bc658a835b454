//! Which log entries every member can read, so that a rolling upgrade never hands a node of
//! the previous release an entry it cannot apply.
//!
//! A log format is a number: 0 is the single-write commands (`InsertCall`, `Put`,
//! `Delete`), `BATCH` adds `Command::Batch` (the writer's group commit). Each member
//! advertises the newest format it reads in its `Hello` answer (`PeerInfo::log_format`); a
//! release before group commit sends no such field, which reads as 0.
//!
//! The active node writes a batch entry only when every other member of the current
//! membership (voters and learners: whoever receives the log, the witness included) has
//! answered with a format that reads it. Until then a batch's writes are proposed one
//! entry each, in order (`shared::propose_with`), and a batch forwarded to the leader is sent
//! one write at a time (`HaNode::commit`). So during a rolling upgrade (standby, switch-over,
//! other node, witness) the new active node writes single entries, and starts writing batches
//! once the last member runs the new release.
//!
//! A member keeps the format it last answered with while it does not answer (a standby stopped
//! for maintenance does not slow the active node down); a member not heard since this node
//! started counts as 0 (so an active node restarted while its standby is down writes one entry
//! per write until the standby answers). `probe` asks every member once per
//! `election_timeout_max`.
//!
//! Sans-IO: `LogFormats` only records answers and decides; `probe` does the asking.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;

use crate::network::client::PeerClient;
use crate::network::{Reply, Request};
use crate::shared::Shared;
use crate::types::{NodeId, Raft};

/// The first format that reads `Command::Batch`.
pub(crate) const BATCH: u32 = 1;

/// The newest format this release reads (what its `Hello` advertises).
pub(crate) const CURRENT: u32 = BATCH;

/// The format each member last answered with.
#[derive(Debug, Default)]
pub(crate) struct LogFormats {
    heard: BTreeMap<NodeId, u32>,
}

impl LogFormats {
    /// Records `node`'s answer; returns its previous one if it changed (or `None` if it did
    /// not change).
    pub(crate) fn heard(&mut self, node: NodeId, format: u32) -> Option<Option<u32>> {
        let before = self.heard.insert(node, format);
        (before != Some(format)).then_some(before)
    }

    /// Whether every member but `me` answered with a format at least `format`.
    pub(crate) fn read_by_all(
        &self,
        format: u32,
        me: NodeId,
        members: impl IntoIterator<Item = NodeId>,
    ) -> bool {
        members
            .into_iter()
            .filter(|id| *id != me)
            .all(|id| self.heard.get(&id).is_some_and(|f| *f >= format))
    }
}

impl Shared {
    /// The members that receive the log (the current membership's voters and learners),
    /// with their cluster addresses. A configured member left out of it (after a forced
    /// promotion) reads nothing until it is added back, as a learner first.
    pub(crate) fn log_readers(&self, raft: &Raft) -> BTreeMap<NodeId, String> {
        let m = raft.metrics().borrow().membership_config.clone();
        m.membership()
            .nodes()
            .map(|(id, n)| (*id, n.cluster_addr.clone()))
            .collect()
    }

    /// Whether every member reads batch entries (see the module documentation).
    pub(crate) fn batches_readable(&self, raft: &Raft) -> bool {
        let members: BTreeSet<NodeId> = {
            let m = raft.metrics();
            let m = m.borrow();
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect()
        };
        self.formats
            .lock()
            .map(|f| f.read_by_all(BATCH, self.me(), members))
            .unwrap_or(false)
    }

    /// Asks every other member for its log format once (through `clients`, kept between
    /// rounds so that a connection is reused) and records the answers.
    pub(crate) async fn probe_log_formats(
        &self,
        raft: &Raft,
        clients: &mut BTreeMap<NodeId, (String, PeerClient)>,
    ) {
        let ttl = self.cfg.timings.election_timeout_min;
        for (id, addr) in self.log_readers(raft) {
            if id == self.me() {
                continue;
            }
            let stale = clients.get(&id).is_some_and(|(a, _)| *a != addr);
            if stale || !clients.contains_key(&id) {
                clients.insert(id, (addr.clone(), self.network.client(id, &addr)));
            }
            let Some((_, client)) = clients.get_mut(&id) else {
                continue;
            };
            let Ok((Reply::Hello(info), _)) = client.call(&Request::Hello, &[], ttl).await else {
                continue;
            };
            if info.node != id {
                continue;
            }
            let changed = self
                .formats
                .lock()
                .ok()
                .and_then(|mut f| f.heard(id, info.log_format));
            if let Some(before) = changed {
                tracing::info!(
                    peer = id,
                    format = info.log_format,
                    ?before,
                    batches = self.batches_readable(raft),
                    "member's raft log format"
                );
            }
        }
    }
}

/// Asks the members for their log format until `stop`.
pub(crate) async fn probe(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    let mut clients = BTreeMap::new();
    let mut tick = tokio::time::interval(shared.cfg.timings.election_timeout_max);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        shared.probe_log_formats(&raft, &mut clients).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_member_heard_means_no_batches_but_a_lone_voter_may() {
        let f = LogFormats::default();
        assert!(!f.read_by_all(BATCH, 1, [1, 2, 3]));
        assert!(f.read_by_all(BATCH, 1, [1]), "nobody else to read the log");
    }

    #[test]
    fn batches_once_every_other_member_reads_them() {
        let mut f = LogFormats::default();
        f.heard(2, CURRENT);
        assert!(
            !f.read_by_all(BATCH, 1, [1, 2, 3]),
            "the witness (3) is not heard yet"
        );
        f.heard(3, 0);
        assert!(
            !f.read_by_all(BATCH, 1, [1, 2, 3]),
            "the witness runs the previous release"
        );
        f.heard(3, CURRENT);
        assert!(f.read_by_all(BATCH, 1, [1, 2, 3]));
        assert!(
            !f.read_by_all(BATCH, 1, [1, 2, 3, 4]),
            "a member added later counts once heard"
        );
    }

    #[test]
    fn a_member_that_answers_an_older_format_stops_batches_at_once() {
        let mut f = LogFormats::default();
        assert_eq!(f.heard(2, CURRENT), Some(None), "first answer");
        assert_eq!(f.heard(2, CURRENT), None, "same answer: no change");
        assert!(f.read_by_all(BATCH, 1, [1, 2]));
        assert_eq!(f.heard(2, 0), Some(Some(CURRENT)));
        assert!(!f.read_by_all(BATCH, 1, [1, 2]));
    }
}
