//! A standby campaigns as soon as the voters may elect it.
//!
//! openraft's follower waits its leader lease (`election_timeout_max`) and then a random
//! election timeout (`election_timeout_min..max`) after it last heard the leader before it
//! campaigns, while the voters refuse any candidate until their own lease
//! (`election_timeout_max` after they last heard the leader) has run out. After the active
//! node dies the pair thus stays without an active node for one random election timeout
//! more than it needs to.
//!
//! This task takes that wait away on a full node that is standby: once the leader has been
//! silent for `election_timeout_max` plus two heartbeats (the voters heard it last within
//! about a heartbeat of this node), it asks raft for an election, and again every two
//! heartbeats while the leader stays silent and the node stays standby. Safety does not
//! change: a voter grants its vote only once its own lease has run out, and an active node
//! never grants one (`role.rs`), so the old active node has fenced itself
//! (`lease + heartbeat <= election_timeout_min`) before another can be elected.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::shared::Shared;
use crate::types::{Raft, Role};

pub(crate) async fn run(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    if shared.cfg.is_witness() || shared.cfg.members.len() < 2 {
        return;
    }
    let t = shared.cfg.timings;
    let silent = t.election_timeout_max + t.heartbeat * 2;
    let mut tick = tokio::time::interval(t.heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tried: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if shared.role() != Role::Standby {
            continue;
        }
        let Some(heard) = shared.net.last_leader_contact() else {
            continue;
        };
        if heard.elapsed() < silent || tried.is_some_and(|at| at.elapsed() < t.heartbeat * 2) {
            continue;
        }
        if tried.is_none_or(|at| at < heard) {
            tracing::warn!(
                silent_ms = heard.elapsed().as_millis() as u64,
                "the leader is silent: campaigning"
            );
        }
        tried = Some(Instant::now());
        let _ = raft.trigger().elect().await;
    }
}
