//! The fault schedules of `tests/tests/ha_faults.rs`, in one process: a member killed (the
//! standby, the witness), the active node frozen past its lease, every member restarted,
//! the active node's disk full. (The partition is `cluster.rs`'s isolated-node test.)
//!
//! Same invariants: never two active nodes (the `Sampler` reads every role at each
//! change; for the frozen node, the role *and* the lease deadline the engine checks), and
//! every acknowledged write on the node that is active afterwards.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::cluster::{calls_in, write, SPEC};
use super::{call, failover_bound, wait_applied, Cluster};
use crate::config::{HaConfig, LogRetention};
use crate::node::HaNode;
use crate::types::{Command, Role};

const FORM: Duration = Duration::from_secs(10);

async fn formed() -> Cluster {
    let c = Cluster::start(SPEC, LogRetention::default()).await;
    c.wait_role(1, Role::Active, FORM).await;
    c.wait_role(2, Role::Standby, FORM).await;
    c
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| call(i).id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_killed_active_keeps_writing_with_the_witness() {
    let mut c = formed().await;
    write(&c, 1, 0..3).await;
    let sampler = c.sampler();
    c.kill(2).await;
    let last = write(&c, 1, 3..8).await;
    wait_applied(c.node(3), last, Duration::from_secs(5)).await;
    assert_eq!(*c.node(1).role().borrow(), Role::Active);
    assert_eq!(calls_in(&c, 1).await, ids(0..8));
    let (max_active, _) = sampler.finish();
    assert_eq!(max_active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_killed_active_keeps_writing_with_the_standby() {
    let mut c = formed().await;
    write(&c, 1, 0..3).await;
    let sampler = c.sampler();
    c.kill(3).await;
    let last = write(&c, 1, 3..8).await;
    wait_applied(c.node(2), last, Duration::from_secs(5)).await;
    assert_eq!(*c.node(1).role().borrow(), Role::Active);
    assert_eq!(calls_in(&c, 2).await, ids(0..8));
    let (max_active, _) = sampler.finish();
    assert_eq!(max_active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restarted_reforms_with_every_record() {
    let mut c = formed().await;
    write(&c, 1, 0..5).await;
    for id in [1, 2, 3] {
        c.kill(id).await;
    }
    for id in [3, 1, 2] {
        c.restart(id).await;
    }
    let sampler = c.sampler();
    let (mut r1, mut r2) = (c.node(1).role(), c.node(2).role());
    let active = tokio::time::timeout(failover_bound() * 2, async {
        tokio::select! {
            _ = r1.wait_for(|r| *r == Role::Active) => 1,
            _ = r2.wait_for(|r| *r == Role::Active) => 2,
        }
    })
    .await
    .expect("one node active after the restart");
    let other = 3 - active;
    c.wait_role(other, Role::Standby, failover_bound()).await;
    assert_eq!(calls_in(&c, active).await, ids(0..5));
    write(&c, active, 5..6).await;
    let (max_active, _) = sampler.finish();
    assert_eq!(max_active, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_node_with_a_full_disk_steps_down() {
    let c = formed().await;
    let last = write(&c, 1, 0..5).await;
    wait_applied(c.node(2), last, Duration::from_secs(5)).await;
    let sampler = c.sampler();
    c.node(1).set_disk_full(true);
    assert!(c
        .node(1)
        .propose(Command::InsertCall(Box::new(call(5))))
        .await
        .is_err());
    c.wait_role(1, Role::Fenced, Duration::from_secs(2)).await;
    c.wait_role(2, Role::Active, failover_bound()).await;
    // The stopped node still reports its role.
    let status = c.node(1).status().await.expect("status of a stopped raft");
    assert_eq!(status.role, Role::Fenced);
    assert!(status.role_changes >= 2);
    let on_2 = calls_in(&c, 2).await;
    for id in ids(0..5) {
        assert!(on_2.contains(&id), "{id} on node 2: {on_2:?}");
    }
    write(&c, 2, 6..7).await;
    let (max_active, _) = sampler.finish();
    assert_eq!(max_active, 1);
}

/// What the frozen node's own thread does on the test's request.
enum Cmd {
    Write(std::ops::Range<usize>, oneshot::Sender<bool>),
    /// Block the runtime's only thread until `resume`; then, before any other task of the
    /// node runs, report the published role and whether the lease is still valid.
    Freeze {
        frozen: std::sync::mpsc::Sender<()>,
        resume: std::sync::mpsc::Receiver<()>,
        report: std::sync::mpsc::Sender<(Role, bool)>,
    },
}

/// A node on a single-threaded runtime of its own: blocking that thread freezes every
/// task of the node (raft, role monitor, cluster server) while its sockets keep queueing,
/// which is what SIGSTOP does to a process.
struct Freezable {
    cmds: mpsc::UnboundedSender<Cmd>,
    role: watch::Receiver<Role>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Freezable {
    fn start(cfg: HaConfig) -> Freezable {
        let (cmds, mut rx) = mpsc::unbounded_channel::<Cmd>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<watch::Receiver<Role>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let node = HaNode::start(cfg).await.expect("start node 1");
                let (role, lease) = (node.role(), node.lease());
                let _ = ready_tx.send(node.role());
                while let Some(cmd) = rx.recv().await {
                    match cmd {
                        Cmd::Write(range, done) => {
                            let mut ok = true;
                            for i in range {
                                ok &= node
                                    .propose(Command::InsertCall(Box::new(call(i))))
                                    .await
                                    .is_ok();
                            }
                            let _ = done.send(ok);
                        }
                        Cmd::Freeze {
                            frozen,
                            resume,
                            report,
                        } => {
                            let _ = frozen.send(());
                            let _ = resume.recv();
                            let _ = report.send((*role.borrow(), lease.valid_now()));
                        }
                    }
                }
                node.shutdown().await;
            });
        });
        let role = ready.recv().expect("node 1 started");
        Freezable {
            cmds,
            role,
            thread: Some(thread),
        }
    }

    async fn write(&self, range: std::ops::Range<usize>) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Cmd::Write(range, tx));
        rx.await.unwrap_or(false)
    }

    /// Freezes the node's thread, runs `meanwhile` (on the test's thread), resumes it and
    /// returns what the node reported first thing on resuming: its published role and
    /// whether its lease was valid.
    async fn freeze(&self, meanwhile: impl std::future::Future<Output = ()>) -> (Role, bool) {
        let (frozen_tx, frozen) = std::sync::mpsc::channel();
        let (resume, resume_rx) = std::sync::mpsc::channel();
        let (report_tx, report) = std::sync::mpsc::channel();
        let _ = self.cmds.send(Cmd::Freeze {
            frozen: frozen_tx,
            resume: resume_rx,
            report: report_tx,
        });
        tokio::task::block_in_place(|| frozen.recv()).expect("node 1 frozen");
        meanwhile.await;
        let _ = resume.send(());
        tokio::task::block_in_place(|| report.recv()).expect("report after resuming")
    }
}

impl Drop for Freezable {
    fn drop(&mut self) {
        let (tx, _) = mpsc::unbounded_channel();
        self.cmds = tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The cluster with node 1 on a thread that can be frozen: node 1 active, node 2 standby.
async fn frozen_pair() -> (Cluster, Freezable, watch::Receiver<Role>) {
    let mut c = Cluster::configure(SPEC, LogRetention::default());
    c.restart(2).await;
    c.restart(3).await;
    let n1 = Freezable::start(c.cfgs[&1].clone());
    let mut r1 = n1.role.clone();
    let became = tokio::time::timeout(FORM, r1.wait_for(|r| *r == Role::Active)).await;
    assert!(matches!(became, Ok(Ok(_))), "node 1 active");
    drop(became);
    c.wait_role(2, Role::Standby, FORM).await;
    (c, n1, r1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_active_node_resumes_with_its_lease_expired() {
    let (mut c, n1, mut r1) = frozen_pair().await;
    assert!(n1.write(0..5).await, "writes on node 1");

    let (published, lease_valid) = n1
        .freeze(c.wait_role(2, Role::Active, failover_bound()))
        .await;
    assert!(
        !lease_valid,
        "node 1 resumed with a valid lease while node 2 is active (published role: {published})"
    );
    // Nothing of node 1 ran between the freeze and this report, so its published role
    // still says active: only the lease, read at decision time, tells the engine no.
    assert_eq!(
        published,
        Role::Active,
        "the role watch is stale on resuming"
    );
    c.wait_role(2, Role::Active, Duration::from_millis(1)).await;
    let stepped =
        tokio::time::timeout(failover_bound(), r1.wait_for(|r| *r == Role::Standby)).await;
    assert!(matches!(stepped, Ok(Ok(_))), "node 1 becomes standby");
    assert_eq!(calls_in(&c, 2).await, ids(0..5));
    drop(n1);
    c.kill(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_voter_stays_active_through_a_freeze_past_the_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HaConfig::single(1, dir.path().to_path_buf());
    let lease = cfg.timings.lease;
    let n1 = Freezable::start(cfg);
    let mut r1 = n1.role.clone();
    let became = tokio::time::timeout(FORM, r1.wait_for(|r| *r == Role::Active)).await;
    assert!(matches!(became, Ok(Ok(_))), "node 1 active");
    drop(became);
    r1.borrow_and_update();
    assert!(n1.write(0..3).await, "writes before the freeze");

    // The fault itself: the node's only thread stays blocked for four leases.
    let (published, lease_valid) = n1
        .freeze(async move { std::thread::sleep(lease * 4) })
        .await;
    assert_eq!(published, Role::Active);
    assert!(lease_valid, "the only voter has no lease to lose");
    assert!(n1.write(3..5).await, "writes after the freeze");
    assert!(
        !r1.has_changed().unwrap_or(true),
        "the role never left active: now {}",
        *r1.borrow()
    );
}

async fn term_of(c: &Cluster, id: u64) -> u64 {
    let raft = c.node(id).raft().await.expect("raft");
    let term = raft.metrics().borrow().current_term;
    term
}

/// A loaded host stalls a process for a few hundred milliseconds: the active node frozen
/// for 500 ms (its sockets open, as under SIGSTOP) is not replaced. The standby neither
/// campaigns nor raises its term, and node 1 is active again after the freeze.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_node_stalled_for_half_a_second_keeps_the_role() {
    let (mut c, n1, mut r1) = frozen_pair().await;
    assert!(n1.write(0..3).await, "writes on node 1");
    let (term2, term3) = (term_of(&c, 2).await, term_of(&c, 3).await);
    let (mut r2, mut r3) = (c.node(2).role(), c.node(3).role());
    r2.borrow_and_update();
    r3.borrow_and_update();

    n1.freeze(async { std::thread::sleep(Duration::from_millis(500)) })
        .await;
    // Node 1 still leads: it commits writes after the stall. (It may first fence itself for
    // a moment, its lease having run out while it was frozen.)
    let mut written = false;
    for _ in 0..3 {
        if n1.write(3..5).await {
            written = true;
            break;
        }
        let _ = tokio::time::timeout(FORM, r1.changed()).await;
    }
    assert!(written, "writes on node 1 after the stall");
    assert!(
        !r2.has_changed().unwrap_or(true),
        "node 2 stayed standby: now {}",
        *r2.borrow()
    );
    assert!(
        !r3.has_changed().unwrap_or(true),
        "the witness stayed witness"
    );
    assert_eq!(
        (term_of(&c, 2).await, term_of(&c, 3).await),
        (term2, term3),
        "no election: the terms did not move"
    );
    drop(n1);
    c.kill(2).await;
}

/// A standby cut off from the others for three election timeouts does not raise its term
/// (its pre-votes find no majority), and when the link heals the active node keeps its role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_standby_does_not_depose_the_active_node_when_it_returns() {
    let c = formed().await;
    write(&c, 1, 0..3).await;
    let t = super::timings();
    let (term1, term2) = (term_of(&c, 1).await, term_of(&c, 2).await);
    let mut r1 = c.node(1).role();
    r1.borrow_and_update();

    c.node(2).set_isolated(true);
    // The fault lasts three election timeouts: long past the standby's patience.
    tokio::time::sleep(t.election_timeout_max * 3).await;
    assert_eq!(
        term_of(&c, 2).await,
        term2,
        "the cut-off standby did not raise its term"
    );
    c.node(2).set_isolated(false);

    let last = write(&c, 1, 3..6).await;
    wait_applied(c.node(2), last, Duration::from_secs(5)).await;
    assert_eq!(calls_in(&c, 2).await, ids(0..6));
    assert_eq!(term_of(&c, 1).await, term1, "no election");
    assert!(
        !r1.has_changed().unwrap_or(true),
        "node 1 stayed active: now {}",
        *r1.borrow()
    );
}
