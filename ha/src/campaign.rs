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
//!
//! It stops as soon as a voter answers with a longer log than this node's (the standby
//! missed writes that only the witness has): only that voter can be elected, and each
//! campaign of this node would raise the term above the voter's own campaign and knock it
//! back, so the witness's election and its handover (`upkeep.rs`) would wait on luck. From
//! then until a leader is heard again the node leaves elections to openraft, which itself
//! waits longer after seeing a longer log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::shared::Shared;
use crate::types::{Raft, Role};

/// What a standby does at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Wait,
    Campaign,
    /// A voter reported a longer log since the leader was last heard: leave it to openraft.
    Behind,
}

/// How soon a standby campaigns.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// The leader has been silent long enough for the voters' leases to have run out.
    silent: Duration,
    /// Between two campaigns.
    retry: Duration,
}

impl Pace {
    /// `heard`: the leader's last message; `tried`: this node's last campaign;
    /// `longer_log`: the last vote answer showing a longer log than this node's.
    fn step(
        &self,
        now: Instant,
        heard: Instant,
        tried: Option<Instant>,
        longer_log: Option<Instant>,
    ) -> Step {
        let since = |at: Instant| now.saturating_duration_since(at);
        if since(heard) < self.silent || tried.is_some_and(|at| since(at) < self.retry) {
            Step::Wait
        } else if longer_log.is_some_and(|at| at > heard) {
            Step::Behind
        } else {
            Step::Campaign
        }
    }
}

pub(crate) async fn run(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    if shared.cfg.is_witness() || shared.cfg.members.len() < 2 {
        return;
    }
    let t = shared.cfg.timings;
    let pace = Pace {
        silent: t.election_timeout_max + t.heartbeat * 2,
        retry: t.heartbeat * 2,
    };
    let mut tick = tokio::time::interval(t.heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tried: Option<Instant> = None;
    let mut behind_logged: Option<Instant> = None;
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
        let longer_log = shared.net.last_longer_log_report();
        match pace.step(Instant::now(), heard, tried, longer_log) {
            Step::Wait => {}
            Step::Behind => {
                if behind_logged != Some(heard) {
                    behind_logged = Some(heard);
                    tracing::warn!("a voter has a longer log: leaving the election to it");
                }
            }
            Step::Campaign => {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pace() -> Pace {
        Pace {
            silent: MS * 1100,
            retry: MS * 100,
        }
    }

    #[test]
    fn campaigns_once_the_leader_is_silent_and_again_every_retry() {
        let p = pace();
        let heard = Instant::now();
        assert_eq!(p.step(heard + MS * 1099, heard, None, None), Step::Wait);
        let first = heard + MS * 1100;
        assert_eq!(p.step(first, heard, None, None), Step::Campaign);
        assert_eq!(
            p.step(first + MS * 99, heard, Some(first), None),
            Step::Wait
        );
        assert_eq!(
            p.step(first + MS * 100, heard, Some(first), None),
            Step::Campaign
        );
    }

    #[test]
    fn stops_once_a_voter_shows_a_longer_log_until_a_leader_is_heard_again() {
        let p = pace();
        let heard = Instant::now();
        let first = heard + MS * 1100;
        let rejected = first + MS * 5;
        for later in [100, 1_000, 60_000] {
            assert_eq!(
                p.step(first + MS * later, heard, Some(first), Some(rejected)),
                Step::Behind,
                "{later} ms after the first campaign"
            );
        }
        // A report from before the leader was last heard is old news.
        let heard_again = rejected + MS * 10;
        assert_eq!(
            p.step(
                heard_again + MS * 1100,
                heard_again,
                Some(first),
                Some(rejected)
            ),
            Step::Campaign
        );
    }
}
