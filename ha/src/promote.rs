//! Moving the active role on purpose: `promote`, the leader's side of it (`yield_to`), the
//! witness handover (`take_over`) and the forced single-voter recovery of a two-node pair.
//!
//! ## promote (fail-back, planned switch)
//! openraft 0.9 has no leadership transfer, so the chosen node B asks the leader A to yield:
//! A stops sending heartbeats, publishes `Standby` and only then answers with its last log
//! index. B waits to hold that index (so its log is at least as long and A will vote for
//! it), then triggers elections until it is active. A refuses votes only while active, so it
//! can now vote for B and steps down as it does. No instant has two active nodes: A leaves
//! `Active` before B even campaigns. If B fails, A resumes heartbeats after a bounded window
//! and becomes active again.
//!
//! ## --force (two nodes, no witness, one gone)
//! Two voters cannot elect anyone alone. The survivor rewrites its own log: a membership
//! entry making it the single voter, at a term above any it has seen, with a committed vote
//! for itself; raft restarts as that single voter's leader and commits it. Allowed only when
//! the membership has at most two voters and no leader has reached this node for a whole
//! `election_timeout_max` (so the other node, if alive, lost its quorum and fenced itself
//! long ago). Never run it on both nodes: that makes two clusters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, EntryPayload, Membership, ServerState};

use crate::error::HaError;
use crate::network::{Reply, Request};
use crate::shared::Shared;
use crate::types::{Entry, LogId, MemberKind, NodeId, Raft, Role, Vote};

/// The leader's side: stop being active so that `to` can be elected.
pub(crate) async fn yield_to(
    shared: &Arc<Shared>,
    raft: &Raft,
    to: NodeId,
) -> Result<Option<u64>, String> {
    if shared.cfg.kind_of(to) == MemberKind::Witness {
        return Err("a witness is never promoted".into());
    }
    let (leader, last) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader, m.last_log_index)
    };
    if !leader {
        return Ok(last);
    }
    tracing::warn!(to, "yielding leadership for a promotion");
    raft.runtime_config().heartbeat(false);
    let generation = shared.yield_gen.fetch_add(1, Ordering::SeqCst) + 1;
    shared.yielding.send_replace(true);
    // Answer only once the role monitor has published that this node is not active.
    let mut role = shared.publisher.tx.subscribe();
    let published = tokio::time::timeout(
        shared.cfg.timings.lease,
        role.wait_for(|r| *r != Role::Active),
    )
    .await;
    tokio::spawn(restore_after_yield(
        shared.clone(),
        raft.clone(),
        generation,
    ));
    if published.is_err() {
        return Err("this node could not leave the active role in time".into());
    }
    Ok(raft.metrics().borrow().last_log_index)
}

/// Resumes heartbeats once another node leads, or after a window if the promotion failed.
async fn restore_after_yield(shared: Arc<Shared>, raft: Raft, generation: u64) {
    let window = shared.cfg.timings.election_timeout_max * 4;
    let mut m = raft.metrics();
    let _ = tokio::time::timeout(window, m.wait_for(|m| m.state != ServerState::Leader)).await;
    if shared.yield_gen.load(Ordering::SeqCst) == generation {
        raft.runtime_config().heartbeat(true);
        shared.yielding.send_replace(false);
    }
}

/// Asked by a witness that leads: start promoting this node in the background.
pub(crate) fn take_over(shared: &Arc<Shared>, raft: &Raft) -> bool {
    if shared.cfg.is_witness() || shared.promoting.swap(true, Ordering::SeqCst) {
        return false;
    }
    let (shared, raft) = (shared.clone(), raft.clone());
    tokio::spawn(async move {
        if let Err(e) = promote_inner(&shared, &raft).await {
            tracing::warn!(error = %e, "take-over requested by the witness failed");
        }
        shared.promoting.store(false, Ordering::SeqCst);
    });
    true
}

pub(crate) async fn promote(shared: &Arc<Shared>, raft: &Raft) -> Result<(), HaError> {
    if shared.promoting.swap(true, Ordering::SeqCst) {
        return Err(HaError::Promote("a promotion is already running".into()));
    }
    let res = promote_inner(shared, raft).await;
    shared.promoting.store(false, Ordering::SeqCst);
    res
}

async fn promote_inner(shared: &Arc<Shared>, raft: &Raft) -> Result<(), HaError> {
    if shared.cfg.is_witness() {
        return Err(HaError::NotAllowed("a witness never becomes active".into()));
    }
    if shared.role() == Role::Active {
        return Ok(());
    }
    let t = shared.cfg.timings;
    let deadline = Instant::now() + t.election_timeout_max * 4;
    let m = raft.metrics().borrow().clone();
    if !m
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == shared.me())
    {
        return Err(HaError::NotAllowed(
            "this node is not a voting member (yet)".into(),
        ));
    }
    if let Some(leader) = m.current_leader.filter(|l| *l != shared.me()) {
        let addr = m
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.cluster_addr.clone())
            .unwrap_or_default();
        let mut client = shared.network.client(leader, &addr);
        match client
            .call(&Request::Yield, &[], t.election_timeout_max)
            .await
        {
            Ok((Reply::Yield(Ok(last)), _)) => {
                let mut metrics = raft.metrics();
                let caught_up = metrics.wait_for(|m| m.last_log_index >= last);
                if tokio::time::timeout_at(deadline.into(), caught_up)
                    .await
                    .is_err()
                {
                    return Err(HaError::Promote(
                        "could not catch up with the active node".into(),
                    ));
                }
            }
            Ok((Reply::Yield(Err(e)), _)) => return Err(HaError::Promote(e)),
            Ok(_) => return Err(HaError::Promote("unexpected answer to yield".into())),
            Err(e) => {
                tracing::warn!(leader, error = %e, "leader unreachable; electing without its consent")
            }
        }
    }
    let mut role = shared.publisher.tx.subscribe();
    loop {
        raft.trigger()
            .elect()
            .await
            .map_err(|e| HaError::Raft(e.to_string()))?;
        let now = Instant::now();
        if now >= deadline {
            return Err(HaError::Promote(
                "not elected in time: no quorum (in a two-node pair whose other node is down, use --force)".into(),
            ));
        }
        let wait = (t.election_timeout_max).min(deadline - now);
        if tokio::time::timeout(wait, role.wait_for(|r| *r == Role::Active))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
}

/// Waits (bounded) for this node to be active.
pub(crate) async fn wait_active(shared: &Shared, within: Duration) -> Result<(), HaError> {
    let mut role = shared.publisher.tx.subscribe();
    let ok = matches!(
        tokio::time::timeout(within, role.wait_for(|r| *r == Role::Active)).await,
        Ok(Ok(_))
    );
    if ok {
        Ok(())
    } else {
        Err(HaError::Promote(format!("not active within {within:?}")))
    }
}

/// Preconditions of `promote --force`.
pub(crate) fn check_force(shared: &Shared, raft: &Raft) -> Result<(), HaError> {
    if shared.cfg.is_witness() {
        return Err(HaError::NotAllowed("a witness never becomes active".into()));
    }
    let m = raft.metrics().borrow().clone();
    let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
    if voters.len() > 2 {
        return Err(HaError::NotAllowed(
            "--force is for a two-node pair without witness; with a witness the cluster fails over by itself".into(),
        ));
    }
    let max = shared.cfg.timings.election_timeout_max;
    let heard = shared
        .net
        .last_leader_contact()
        .is_some_and(|t| t.elapsed() < max);
    if heard && m.current_leader.is_some_and(|l| l != shared.me()) {
        return Err(HaError::NotAllowed(
            "the other node is alive and leading: use promote without --force".into(),
        ));
    }
    Ok(())
}

/// Makes this node the single voter, in its own log (raft must be stopped).
pub(crate) async fn rewrite_single_voter(shared: &Shared) -> Result<(), HaError> {
    let me = shared.me();
    let info = shared.cfg.members.get(&me).cloned().unwrap_or_default();
    let mut log = shared.log.clone();
    let err = |e: crate::types::StorageError| HaError::Log(e.to_string());
    let vote: Vote = log.read_vote().await.map_err(err)?.unwrap_or_default();
    let last: Option<LogId> = log.get_log_state().await.map_err(err)?.last_log_id;
    let term = vote
        .leader_id()
        .term
        .max(last.map_or(0, |l| l.leader_id.term))
        + 1;
    let index = last.map_or(0, |l| l.index + 1);
    let membership = Membership::new(vec![BTreeSet::from([me])], BTreeMap::from([(me, info)]));
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, me), index),
        payload: EntryPayload::Membership(membership),
    };
    tracing::warn!(
        term,
        index,
        "forced promotion: this node becomes the single voter"
    );
    log.save_vote(&Vote::new_committed(term, me))
        .await
        .map_err(err)?;
    log.append_now(&[entry]).await.map_err(err)?;
    Ok(())
}
