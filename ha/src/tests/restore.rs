//! `svi restore` on the replicated state: a backup taken hot from the active node becomes a
//! new single-voter cluster, or a wiped member rejoins its pair from it.

use std::path::Path;
use std::time::Duration;

use engine::backup::{self, restore as files};

use super::{call, wait_applied, wait_role, Cluster};
use crate::config::{HaConfig, LogRetention};
use crate::node::HaNode;
use crate::restore::{reset, RestoreAs};
use crate::types::{Command, MemberKind, Role};

const PAIR: [(u64, MemberKind); 3] = [
    (1, MemberKind::Full),
    (2, MemberKind::Full),
    (3, MemberKind::Witness),
];

async fn write_calls(node: &HaNode, range: std::ops::Range<usize>) -> u64 {
    let mut last = 0;
    for i in range {
        last = node
            .propose(Command::InsertCall(Box::new(call(i))))
            .await
            .expect("write")
            .index;
    }
    last
}

/// Takes a backup of `node`'s database into `dir/b.tar`.
async fn take_backup(node: &HaNode, dir: &Path) -> std::path::PathBuf {
    let target = dir.join("b.tar");
    let source = backup::Source {
        node: "a".into(),
        data_dir: dir.join("unused"),
        recordings_dir: dir.join("unused"),
        recordings: false,
    };
    backup::create(&node.storage(), &source, &target)
        .await
        .expect("backup");
    target
}

/// Restores `tar` onto `data_dir` (its old files set aside) and resets the raft state.
async fn restore_onto(cfg: &HaConfig, tar: &Path, mode: RestoreAs) -> crate::restore::Reset {
    let opened = files::open(tar, &cfg.data_dir).expect("open backup");
    let prepared = files::prepare_database(&opened, &cfg.data_dir.join(".prepared.db"), false)
        .await
        .expect("prepare");
    let aside = files::set_aside(&cfg.data_dir).expect("aside");
    files::place(&opened, &prepared, &cfg.data_dir, &cfg.data_dir, &aside).expect("place");
    reset(cfg, mode, &aside.join("raft-log.db"))
        .await
        .expect("reset")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_as_a_new_cluster_serves_its_data_and_takes_writes() {
    let c = Cluster::start(&PAIR, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    write_calls(c.node(1), 0..5).await;
    let dir = tempfile::tempdir().expect("tmp");
    let tar = take_backup(c.node(1), dir.path()).await;
    // Written after the backup: not in it.
    write_calls(c.node(1), 5..6).await;

    let cfg = HaConfig::single(1, dir.path().join("restored"));
    std::fs::create_dir_all(&cfg.data_dir).expect("dir");
    let done = restore_onto(&cfg, &tar, RestoreAs::NewCluster).await;
    assert_eq!(done.voters, [1].into());
    assert!(done.applied_index.is_some());

    let node = HaNode::start(cfg.clone()).await.expect("start restored");
    wait_role(&node, Role::Active, form).await;
    let ids: Vec<String> = node
        .storage()
        .latest_calls(100)
        .await
        .expect("calls")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(!ids.contains(&call(5).id));
    // The new cluster writes after the restored entries.
    let index = write_calls(&node, 100..101).await;
    assert!(index > done.applied_index.unwrap_or(0));
    node.shutdown().await;
    drop(node);
    let node = HaNode::start(cfg).await.expect("restart");
    wait_role(&node, Role::Active, form).await;
    assert_eq!(
        node.storage().latest_calls(100).await.expect("calls").len(),
        6
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_restored_from_a_backup_rejoins_as_standby_and_catches_up() {
    let mut c = Cluster::start(&PAIR, LogRetention::default()).await;
    let form = Duration::from_secs(10);
    c.wait_role(1, Role::Active, form).await;
    c.wait_role(2, Role::Standby, form).await;
    write_calls(c.node(1), 0..5).await;
    let dir = tempfile::tempdir().expect("tmp");
    let tar = take_backup(c.node(1), dir.path()).await;
    c.kill(2).await;
    let last = write_calls(c.node(1), 5..10).await;

    let cfg = c.cfgs[&2].clone();
    let done = restore_onto(&cfg, &tar, RestoreAs::Standby).await;
    assert_eq!(done.voters, [1, 2, 3].into());
    c.restart(2).await;
    c.wait_role(2, Role::Standby, form).await;
    wait_applied(c.node(2), last, form).await;
    assert_eq!(
        c.node(2)
            .storage()
            .latest_calls(100)
            .await
            .expect("calls")
            .len(),
        10
    );
    assert_eq!(*c.node(1).role().borrow(), Role::Active);

    // A backup of another cluster is refused for a member that is not in it.
    let other = HaConfig::single(7, dir.path().join("other"));
    std::fs::create_dir_all(&other.data_dir).expect("dir");
    let opened = files::open(&tar, &other.data_dir).expect("open");
    let prepared = files::prepare_database(&opened, &other.data_dir.join(".p.db"), false)
        .await
        .expect("prepare");
    let aside = files::set_aside(&other.data_dir).expect("aside");
    files::place(&opened, &prepared, &other.data_dir, &other.data_dir, &aside).expect("place");
    let err = reset(&other, RestoreAs::Standby, &aside.join("raft-log.db"))
        .await
        .expect_err("not a member");
    assert!(err.to_string().contains("not this node (7)"), "{err}");
}
