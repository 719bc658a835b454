//! Background duties of a node: forming the cluster at first start, and keeping it whole.
//!
//! ## First start (deterministic bootstrap)
//! The full node with the lowest id initializes the cluster with every configured member as
//! voter, and only when (1) its own log is empty, (2) every other member answers `Hello`
//! over the authenticated port, (3) none of them is initialized and (4) all report the same
//! configuration digest (members and timings). Everyone else waits to be contacted by the
//! leader. So an existing cluster is never initialized twice: a node whose data was lost
//! finds initialized peers and waits to be caught up. After initializing, the node calls an
//! election at once so that the pair comes up with the lowest full node active.
//!
//! ## Maintenance (every few heartbeats)
//! - Witness: it does not campaign (`enable_elect = false`), so the two full nodes decide
//!   between themselves. If no leader has reached it for three election timeouts (the full
//!   node left cannot win, e.g. its log is shorter than the witness's), it allows itself to
//!   campaign; once leader it waits until a full voter has its whole log and asks that node
//!   to take over (`TakeOver` -> the node runs `promote`). Limit: while the witness leads,
//!   nobody is active (a few seconds, only in that double-fault case).
//! - Active full node: re-adds configured members missing from the membership (after a
//!   forced promotion, the other node coming back), first as learner (it catches up by log
//!   or snapshot), then as voter.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{ChangeMembers, ServerState};
use tokio::sync::watch;

use crate::network::{PeerInfo, Reply, Request};
use crate::shared::Shared;
use crate::types::{MemberKind, NodeId, Raft, Role};

async fn hello(shared: &Shared, id: NodeId, addr: &str, ttl: Duration) -> Option<PeerInfo> {
    let mut c = shared.network.client(id, addr);
    match c.call(&Request::Hello, &[], ttl).await {
        Ok((Reply::Hello(info), _)) if info.node == id => Some(info),
        _ => None,
    }
}

pub(crate) async fn bootstrap(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.cfg;
    let lowest_full = cfg
        .members
        .iter()
        .find(|(_, m)| m.kind == MemberKind::Full)
        .map(|(id, _)| *id);
    if lowest_full != Some(cfg.node_id) {
        return;
    }
    let digest = cfg.digest();
    let mut warned = false;
    let mut tick = tokio::time::interval(cfg.timings.heartbeat * 5);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let mut missing = Vec::new();
        let mut formed = false;
        for (id, m) in cfg.members.iter().filter(|(id, _)| **id != cfg.node_id) {
            match hello(
                &shared,
                *id,
                &m.cluster_addr,
                cfg.timings.election_timeout_min,
            )
            .await
            {
                Some(p) if p.digest != digest => {
                    tracing::error!(peer = id, "member {id} has a different ha configuration (members or timings); not forming the cluster");
                    missing.push(*id);
                }
                Some(p) => formed |= p.initialized,
                None => missing.push(*id),
            }
        }
        if formed {
            tracing::warn!("peers already form a cluster; waiting to be caught up");
            return;
        }
        if !missing.is_empty() {
            if !warned {
                tracing::warn!(?missing, "waiting for every member to form the cluster");
                warned = true;
            }
            continue;
        }
        match raft.initialize(cfg.members.clone()).await {
            Ok(()) => {
                tracing::warn!(members = ?cfg.members.keys().collect::<Vec<_>>(), "cluster formed");
                let _ = raft.trigger().elect().await;
            }
            Err(e) => tracing::warn!(error = %e, "cluster initialization refused"),
        }
        return;
    }
}

pub(crate) async fn maintain(shared: Arc<Shared>, raft: Raft, mut stop: watch::Receiver<bool>) {
    let t = shared.cfg.timings;
    let mut tick = tokio::time::interval(t.heartbeat * 5);
    let mut elect_allowed = false;
    let mut last_handover: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if shared.cfg.is_witness() {
            witness_duty(&shared, &raft, &mut elect_allowed, &mut last_handover).await;
        } else if shared.role() == Role::Active {
            reconcile(&shared, &raft).await;
        }
    }
}

async fn witness_duty(
    shared: &Shared,
    raft: &Raft,
    elect_allowed: &mut bool,
    last_handover: &mut Option<Instant>,
) {
    let t = shared.cfg.timings;
    let m = raft.metrics().borrow().clone();
    if m.state == ServerState::Leader {
        if last_handover.is_some_and(|h| h.elapsed() < t.election_timeout_max) {
            return;
        }
        let membership = m.membership_config.membership();
        let caught_up = m.replication.as_ref().and_then(|r| {
            r.iter()
                .filter(|(id, _)| {
                    membership
                        .get_node(id)
                        .is_some_and(|n| n.kind == MemberKind::Full)
                })
                .find(|(_, matched)| matched.map(|l| l.index) == m.last_log_index)
                .map(|(id, _)| *id)
        });
        if let Some(id) = caught_up {
            let addr = membership
                .get_node(&id)
                .map(|n| n.cluster_addr.clone())
                .unwrap_or_default();
            tracing::warn!(to = id, "witness leads; handing over to a full node");
            *last_handover = Some(Instant::now());
            let mut c = shared.network.client(id, &addr);
            let _ = c
                .call(&Request::TakeOver, &[], t.election_timeout_max)
                .await;
        }
        return;
    }
    let patience = t.election_timeout_max * 3;
    let quiet = match shared.net.last_leader_contact() {
        Some(at) => at.elapsed() > patience,
        None => shared.started.elapsed() > patience,
    };
    if quiet != *elect_allowed {
        *elect_allowed = quiet;
        raft.runtime_config().elect(quiet);
        if quiet {
            tracing::warn!("no leader for {patience:?}: the witness may now campaign");
        }
    }
}

/// On the active node: bring configured members back into the membership.
async fn reconcile(shared: &Shared, raft: &Raft) {
    let t = shared.cfg.timings;
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return;
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    for (id, info) in shared.cfg.members.iter() {
        if voters.contains(id) {
            continue;
        }
        if hello(shared, *id, &info.cluster_addr, t.election_timeout_min)
            .await
            .is_none()
        {
            continue;
        }
        tracing::warn!(
            member = id,
            "configured member missing from the cluster; adding it back"
        );
        let slow = t.election_timeout_max * 10;
        if membership.get_node(id).is_none() {
            match tokio::time::timeout(slow, raft.add_learner(*id, info.clone(), true)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(member = id, error = %e, "adding learner failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(member = id, "adding learner timed out");
                    return;
                }
            }
        }
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([*id]));
        if let Ok(Err(e)) = tokio::time::timeout(slow, raft.change_membership(change, false)).await
        {
            tracing::warn!(member = id, error = %e, "promoting learner to voter failed");
        }
        return;
    }
}
