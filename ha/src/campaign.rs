//! A standby campaigns as soon as the voters may elect it, and only then.
//!
//! In a cluster openraft's own election timer is off (`HaConfig::raft_config`): this task
//! decides when a full node that is standby campaigns, from what the cluster link tells
//! (`network::leader_link`):
//!
//! - the leader's process is gone (it closed every connection to this node and its port
//!   then refused one: the kernel closed its sockets): campaign once it has been silent for
//!   `lease` plus two heartbeats, the voters' own wait (`lease + heartbeat`) plus a
//!   heartbeat of margin;
//! - the leader is silent, its connections open (it may be merely slow: a loaded host stalls
//!   a process for a few hundred milliseconds): campaign only after `election_timeout_max`
//!   plus two heartbeats, so that a stall shorter than that moves nothing.
//!
//! Then every heartbeat while the leader stays silent and the node stays standby. Each
//! attempt starts with a **pre-vote**: the other voters are asked whether they would vote
//! for this node now (they would not while they hear a leader, or while their log is
//! longer), and only with a majority does the node raise its term and call the election.
//! So a node cut off from the others does not raise its term in a loop, and when the link
//! heals it does not depose a healthy leader with a higher term. Safety does not rest on
//! this task: a voter grants its vote only once the old leader's lease has run out
//! (`leader_link`), and an active node never grants one (`role.rs`).
//!
//! It stops as soon as a voter answers with a longer log than this node's (the standby
//! missed writes that only the witness has): only that voter can be elected, and each
//! campaign of this node would raise the term above the voter's own campaign and knock it
//! back. From then until a leader is heard again the witness's election and its handover
//! (`upkeep.rs`) bring this node up to date and make it active.
//!
//! A node left the only voter (`promote --force`) needs no one's vote: openraft's own
//! election timer is turned back on for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::network::client::PeerClient;
use crate::network::{Reply, Request};
use crate::shared::Shared;
use crate::types::{LogId, NodeId, Raft, Role};

/// What a standby does at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing before this instant.
    Wait(Instant),
    Campaign,
    /// A voter reported a longer log since the leader was last heard: leave it to that one.
    Behind,
}

/// How soon a standby campaigns.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Silence of a leader whose connections are still open (it may be merely slow).
    silent: Duration,
    /// Silence of a leader whose process is gone (`leader_link`).
    gone: Duration,
}

impl Pace {
    fn new(t: &crate::config::Timings) -> Pace {
        Pace {
            silent: t.election_timeout_max + t.heartbeat * 2,
            gone: t.lease + t.heartbeat * 2,
        }
    }

    /// `heard`: the leader's last message; `gone`: its process found gone since;
    /// `next_try`: the earliest next attempt after the last one; `longer_log`: the last
    /// answer showing a longer log than this node's.
    fn step(
        &self,
        now: Instant,
        heard: Instant,
        gone: bool,
        next_try: Option<Instant>,
        longer_log: Option<Instant>,
    ) -> Step {
        let quiet = if gone { self.gone } else { self.silent };
        let due = next_try.map_or(heard + quiet, |at| at.max(heard + quiet));
        if now < due {
            Step::Wait(due)
        } else if longer_log.is_some_and(|at| at > heard) {
            Step::Behind
        } else {
            Step::Campaign
        }
    }
}

/// This node's last log id (`None` when the log cannot be read).
pub(crate) async fn last_log_id(shared: &Shared) -> Option<Option<LogId>> {
    let mut log = shared.log.clone();
    log.get_log_state().await.ok().map(|s| s.last_log_id)
}

/// A pause of `base` plus up to `spread`, so that two nodes campaigning at once (both full
/// nodes restarted together) do not keep splitting the vote.
fn jittered(base: Duration, spread: Duration) -> Duration {
    let ms = spread.as_millis() as u64;
    base + Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

pub(crate) async fn run(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    if shared.cfg.is_witness() || shared.cfg.members.len() < 2 {
        return;
    }
    let t = shared.cfg.timings;
    let pace = Pace::new(&t);
    let mut peers: BTreeMap<NodeId, PeerClient> = BTreeMap::new();
    let mut next_try: Option<Instant> = None;
    let mut logged: Option<Instant> = None;
    let mut behind_logged: Option<Instant> = None;
    let mut own_timer = false;
    // Since when this node is standby: a node that just became one (formed the cluster and
    // awaits its own election, restarted, stepped down) gives a leader the same patience.
    let mut standby_since: Option<Instant> = None;
    loop {
        let mut wake = Instant::now() + t.heartbeat;
        let only_voter = only_voter(&raft, shared.me());
        if only_voter != own_timer {
            own_timer = only_voter;
            raft.runtime_config().elect(only_voter);
        }
        let standby = shared.role() == Role::Standby;
        if !standby {
            standby_since = None;
        }
        if standby && !only_voter {
            let since = *standby_since.get_or_insert_with(Instant::now);
            let heard = shared
                .net
                .last_leader_contact()
                .map_or(since, |c| c.max(since));
            let gone = shared.net.leader_gone();
            let longer_log = shared.net.last_longer_log_report();
            match pace.step(Instant::now(), heard, gone, next_try, longer_log) {
                Step::Wait(until) => wake = wake.min(until),
                Step::Behind => {
                    if behind_logged != Some(heard) {
                        behind_logged = Some(heard);
                        tracing::warn!("a voter has a longer log: leaving the election to it");
                    }
                }
                Step::Campaign => {
                    if logged != Some(heard) {
                        logged = Some(heard);
                        tracing::warn!(
                            silent_ms = heard.elapsed().as_millis() as u64,
                            leader_gone = gone,
                            "the leader is silent: campaigning"
                        );
                    }
                    if pre_vote(&shared, &raft, &mut peers).await {
                        let _ = raft.trigger().elect().await;
                        next_try = Some(Instant::now() + jittered(t.heartbeat, t.heartbeat * 2));
                    } else {
                        next_try = Some(Instant::now() + t.heartbeat);
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = shared.net.leader_link_lost() => {}
            _ = stop.changed() => return,
        }
    }
}

/// The refusal of a member that cannot read a `PreVote` (serde's unknown-variant error).
fn predates_pre_vote(why: &str) -> bool {
    why.contains("unknown variant") && why.contains("PreVote")
}

fn only_voter(raft: &Raft, me: NodeId) -> bool {
    let m = raft.metrics();
    let m = m.borrow();
    let mut voters = m.membership_config.membership().voter_ids();
    voters.next() == Some(me) && voters.next().is_none()
}

/// Asks the other voters whether they would elect this node now; true with a majority
/// (this node counts for itself). Records an answer showing a longer log.
async fn pre_vote(shared: &Shared, raft: &Raft, peers: &mut BTreeMap<NodeId, PeerClient>) -> bool {
    let me = shared.me();
    let voters: Vec<NodeId> = {
        let m = raft.metrics();
        let m = m.borrow();
        m.membership_config.membership().voter_ids().collect()
    };
    let addrs = shared.log_readers(raft);
    if !voters.contains(&me) {
        return false;
    }
    let Some(mine) = last_log_id(shared).await else {
        return false;
    };
    let ttl = shared.cfg.timings.heartbeat * 2;
    let mut asks = JoinSet::new();
    for id in voters.iter().copied().filter(|v| *v != me) {
        let Some(addr) = addrs.get(&id) else { continue };
        let mut client = peers
            .remove(&id)
            .unwrap_or_else(|| shared.network.client(id, addr));
        asks.spawn(async move {
            let answer = client
                .call(&Request::PreVote { last_log_id: mine }, &[], ttl)
                .await;
            (id, client, answer)
        });
    }
    let mut granted = 1;
    while let Some(done) = asks.join_next().await {
        let Ok((id, client, answer)) = done else {
            continue;
        };
        peers.insert(id, client);
        match answer {
            Ok((
                Reply::PreVote {
                    granted: yes,
                    last_log_id,
                },
                _,
            )) => {
                if last_log_id > mine {
                    shared.net.longer_log_reported();
                }
                if yes {
                    granted += 1;
                }
            }
            // A member of an older version (a rolling upgrade) does not know the pre-vote:
            // count it willing, its real vote decides as before.
            Ok((Reply::Refused(why), _)) if predates_pre_vote(&why) => granted += 1,
            _ => {}
        }
    }
    let won = granted * 2 > voters.len();
    if !won {
        tracing::debug!(
            granted,
            voters = voters.len(),
            "pre-vote lost: not campaigning"
        );
    }
    won
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The samples' timings (samples/ha/*.toml).
    fn pace() -> Pace {
        Pace::new(&crate::config::Timings {
            heartbeat: MS * 50,
            election_timeout_min: MS * 500,
            election_timeout_max: MS * 1000,
            lease: MS * 250,
        })
    }

    #[test]
    fn a_silent_leader_is_given_the_whole_election_timeout() {
        let p = pace();
        let heard = Instant::now();
        // A stall of the active node (a loaded host): 300 ms, 500 ms, 1 s of silence with
        // its connections open do not make the standby campaign.
        for stall in [300, 500, 1000, 1099] {
            assert_eq!(
                p.step(heard + MS * stall, heard, false, None, None),
                Step::Wait(heard + MS * 1100),
                "{stall} ms"
            );
        }
        assert_eq!(
            p.step(heard + MS * 1100, heard, false, None, None),
            Step::Campaign
        );
    }

    #[test]
    fn a_leader_whose_connections_closed_is_replaced_after_its_lease() {
        let p = pace();
        let heard = Instant::now();
        assert_eq!(
            p.step(heard + MS * 10, heard, true, None, None),
            Step::Wait(heard + MS * 350)
        );
        assert_eq!(
            p.step(heard + MS * 350, heard, true, None, None),
            Step::Campaign
        );
    }

    #[test]
    fn tries_again_no_sooner_than_asked() {
        let p = pace();
        let heard = Instant::now();
        let first = heard + MS * 350;
        let next = first + MS * 50;
        assert_eq!(
            p.step(first + MS * 49, heard, true, Some(next), None),
            Step::Wait(next)
        );
        assert_eq!(p.step(next, heard, true, Some(next), None), Step::Campaign);
    }

    #[test]
    fn stops_once_a_voter_shows_a_longer_log_until_a_leader_is_heard_again() {
        let p = pace();
        let heard = Instant::now();
        let first = heard + MS * 1100;
        let rejected = first + MS * 5;
        for later in [100, 1_000, 60_000] {
            assert_eq!(
                p.step(
                    first + MS * later,
                    heard,
                    false,
                    Some(first + MS * 50),
                    Some(rejected)
                ),
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
                false,
                Some(first + MS * 50),
                Some(rejected)
            ),
            Step::Campaign
        );
    }

    #[test]
    fn a_member_of_an_older_version_is_told_by_its_refusal() {
        // What an older member's server answers to a `PreVote` it cannot read.
        #[derive(serde::Deserialize, Debug)]
        enum Older {
            Hello,
        }
        let json = serde_json::to_vec(&Request::PreVote { last_log_id: None }).expect("json");
        let err = serde_json::from_slice::<Older>(&json).expect_err("unknown to it");
        assert!(predates_pre_vote(&format!("bad request: {err}")), "{err}");
        assert!(!predates_pre_vote("not allowed for the witness"));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        for _ in 0..100 {
            let d = jittered(MS * 50, MS * 100);
            assert!(d >= MS * 50 && d <= MS * 150, "{d:?}");
        }
    }
}
