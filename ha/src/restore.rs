//! The replicated state of a node after `svi restore`: its database comes from a backup, and
//! its raft log must agree with it before the node starts.
//!
//! A backup holds `svi.db` with its raft pointers (`last_applied`, the membership) and no
//! log: every entry up to `last_applied` is already in the copy. The restore writes a fresh
//! `raft-log.db` that says "everything up to `last_applied` was purged" (openraft then takes
//! the database as a snapshot at that point, builds a snapshot file from it at start, and
//! catches the node up from there), and chooses what the node becomes:
//!
//! - `Standby`: the node keeps its place in its pair. The backup's membership must list it.
//!   Its previous vote (from the log set aside) is kept, so it never votes twice in a term it
//!   already voted in. At start it follows the active node, which sends it what was written
//!   since the backup (log entries, or a snapshot if they are purged).
//! - `NewCluster`: the node becomes the only voter of a new cluster on the backup's data
//!   (disaster recovery, or a single node). Its vote's term is above every term of the
//!   backup's log ids, so its first election yields log ids that sort after the restored
//!   ones. Configured members are then added back by the active node as they start with
//!   empty data directories (see `control::reconcile`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use engine::storage::raft::RaftApplied;
use engine::storage::Storage;
use openraft::storage::RaftLogStorage;
use openraft::Membership;

use crate::config::HaConfig;
use crate::log_store::LogStore;
use crate::node::HaError;
use crate::state_machine::{decode_applied, StateMachineError};
use crate::types::{LogId, StoredMembership, Vote};

/// What a restored node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreAs {
    Standby,
    NewCluster,
}

/// What `reset` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub mode: RestoreAs,
    /// The log index the backup's database had applied (None: it never applied any).
    pub applied_index: Option<u64>,
    /// The voters of the membership the node starts with.
    pub voters: BTreeSet<u64>,
}

fn log_err(e: impl std::fmt::Display) -> HaError {
    HaError::Log(e.to_string())
}

/// Makes the node of `cfg` (whose `svi.db` was just replaced by a backup's, and whose
/// previous raft log, if any, was moved to `old_log`) consistent with its new database.
/// The raft log at `cfg.data_dir/raft-log.db` must not exist.
pub async fn reset(cfg: &HaConfig, mode: RestoreAs, old_log: &Path) -> Result<Reset, HaError> {
    if cfg.is_witness() {
        return Err(HaError::NotAllowed(
            "a witness holds no data of its own to restore: start it with an empty data directory"
                .into(),
        ));
    }
    let log_path = cfg.data_dir.join("raft-log.db");
    if log_path.exists() {
        return Err(HaError::NotAllowed(format!(
            "{} exists: move it aside before resetting the raft state",
            log_path.display()
        )));
    }
    let storage = Storage::open(&cfg.data_dir).await?;
    let (applied, membership) = pointers(&storage).await?;
    check_membership(cfg, mode, &membership)?;
    let me = cfg.node_id;
    let (vote, membership) = match mode {
        RestoreAs::Standby => (previous_vote(old_log).await?, membership),
        RestoreAs::NewCluster => {
            let info = cfg.members.get(&me).cloned().unwrap_or_default();
            let single = Membership::new(vec![BTreeSet::from([me])], BTreeMap::from([(me, info)]));
            let term = applied.map_or(0, |l| l.leader_id.term);
            let stored = StoredMembership::new(applied, single);
            // The same JSON blobs the state machine stores.
            let last_applied = applied
                .map(|l| serde_json::to_vec(&l))
                .transpose()
                .map_err(StateMachineError::from)?;
            let last_membership =
                Some(serde_json::to_vec(&stored).map_err(StateMachineError::from)?);
            storage
                .set_raft_applied(&RaftApplied {
                    last_applied,
                    last_membership,
                })
                .await?;
            (Some(Vote::new(term + 1, me)), stored)
        }
    };
    storage.close().await;
    let mut log = LogStore::open(&log_path).await?;
    if let Some(v) = vote {
        log.save_vote(&v).await.map_err(log_err)?;
    }
    if let Some(at) = applied {
        log.purge(at).await.map_err(log_err)?;
    }
    log.close().await;
    Ok(Reset {
        mode,
        applied_index: applied.map(|l| l.index),
        voters: membership.membership().voter_ids().collect(),
    })
}

/// Checks, before anything changes, that the database in `db_dir` (a backup's, prepared for
/// restore) can be restored onto the node of `cfg` as `mode`.
pub async fn check(cfg: &HaConfig, mode: RestoreAs, db_dir: &Path) -> Result<(), HaError> {
    if cfg.is_witness() {
        return Err(HaError::NotAllowed(
            "a witness holds no data of its own to restore: start it with an empty data directory"
                .into(),
        ));
    }
    let storage = Storage::open(db_dir).await?;
    let found = pointers(&storage).await;
    storage.close().await;
    check_membership(cfg, mode, &found?.1)
}

async fn pointers(storage: &Storage) -> Result<(Option<LogId>, StoredMembership), HaError> {
    storage.prepare_raft().await?;
    Ok(decode_applied(&storage.raft_applied().await?).map_err(StateMachineError::from)?)
}

fn check_membership(
    cfg: &HaConfig,
    mode: RestoreAs,
    membership: &StoredMembership,
) -> Result<(), HaError> {
    let m = membership.membership();
    if mode == RestoreAs::Standby && m.get_node(&cfg.node_id).is_none() {
        let ids: Vec<u64> = m.nodes().map(|(id, _)| *id).collect();
        return Err(HaError::NotAllowed(format!(
            "the backup's cluster has members {ids:?}, not this node ({}): restore it with --new-cluster, or on a member of that cluster",
            cfg.node_id
        )));
    }
    Ok(())
}

/// The vote the node had stored before the restore, if its old log is readable.
async fn previous_vote(old_log: &Path) -> Result<Option<Vote>, HaError> {
    if !old_log.exists() {
        return Ok(None);
    }
    let mut log = LogStore::open(old_log).await?;
    let vote = log.read_vote().await.map_err(log_err);
    log.close().await;
    vote
}
