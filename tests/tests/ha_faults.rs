//! Faults of the HA pair with real processes: kill -9 of the standby and of the witness,
//! the active node frozen (SIGSTOP) past its lease and for 1, 3 and 10 s, the active node
//! cut off by a packet filter (both ways, or one way in either direction), every node
//! restarted, and the active node's disk full.
//!
//! Every test checks the two promises of `docs/ha.md`:
//! - **at most one node serving at any instant**: the active intervals each node logged
//!   (`ha role changed ... at=.. served_until=..`) never overlap, and no call record was
//!   answered by one node while another was active;
//! - **no acknowledged write lost**: every record of a call that ended before the fault
//!   (present on the active node's database) is on the surviving active node afterwards.
//!
//! The tests run one at a time (three processes each, on a small machine); the partition
//! and disk tests need root (nft, mount) and fail with a clear message without it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use svi_tests::ha::{
    active_intervals, assert_never_two_active, calls, one_call, record_ids, records, role,
    role_changes, status, wait_records, wait_role, wait_role_in, AlarmSink, HaSpec, Interval,
    Witness,
};
use svi_tests::probe::{status_of, Probe};
use svi_tests::proc::{svi_bin, EngineProc};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn require_root(what: &str) {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root for {what}: run the HA fault tests as root (scripts/test.sh in CI)"
    );
}

/// A formed pair: node A active, node B standby, the witness.
struct Pair {
    spec: HaSpec,
    w: Witness,
    a: EngineProc,
    b: EngineProc,
}

const FORM: Duration = Duration::from_secs(20);
/// Follower lease (1 s) + election timeout (up to 1 s) + election and first commit, with
/// room for a loaded machine.
const FAILOVER: Duration = Duration::from_secs(15);

fn form(spec: HaSpec, a_data: Option<PathBuf>) -> Pair {
    let w = spec.witness();
    let a = spec.node(0, a_data);
    let b = spec.node(1, None);
    assert!(
        wait_role(&a.data_dir(), "active", FORM),
        "A active: {:?}\n{}",
        status(&a.data_dir()),
        a.log_text()
    );
    assert!(
        wait_role(&b.data_dir(), "standby", FORM),
        "B standby: {:?}\n{}",
        status(&b.data_dir()),
        b.log_text()
    );
    Pair { spec, w, a, b }
}

impl Pair {
    fn dir(&self) -> &Path {
        self.spec.dir.path()
    }

    /// `n` calls through A, acknowledged (their records on A's database); returns the ids
    /// of every record on A.
    fn calls_on_a(&self, n: usize) -> Vec<String> {
        let before = record_ids(&self.a.data_dir()).len();
        assert!(
            calls(self.a.sip, self.dir(), n),
            "calls through A:\n{}",
            self.a.log_text()
        );
        let ids = wait_records(&self.a.data_dir(), before + n, Duration::from_secs(10));
        assert!(ids.len() >= before + n, "{n} more records on A: {ids:?}");
        ids
    }
}

fn intervals(log: &str, end: DateTime<Utc>) -> Vec<Interval> {
    active_intervals(&role_changes(log), end)
}

/// The invariants after a fault: never two nodes active at once (from their logs), no
/// record answered by a node while another one was active, and every acknowledged record
/// on the survivor.
fn check(nodes: &[(&str, Vec<Interval>)], survivor: &Path, acknowledged: &[String]) {
    assert_never_two_active(nodes);
    let on_survivor = records(survivor);
    for r in &on_survivor {
        let (Some(node), Some(answered)) = (r["node"].as_str(), r["answered_at"].as_str()) else {
            continue;
        };
        let Ok(t) = DateTime::parse_from_rfc3339(answered) else {
            continue;
        };
        let t = t.with_timezone(&Utc);
        for (other, ivs) in nodes.iter().filter(|(n, _)| *n != node) {
            assert!(
                !ivs.iter().any(|(s, e)| *s <= t && t <= *e),
                "call {} answered by {node} at {t} while {other} was active: {ivs:?}",
                r["id"]
            );
        }
    }
    let ids: Vec<&str> = on_survivor
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for id in acknowledged {
        assert!(
            ids.contains(&id.as_str()),
            "acknowledged record {id} is on the survivor {}: {ids:?}",
            survivor.display()
        );
    }
}

fn applied(data_dir: &Path) -> Option<u64> {
    status(data_dir).and_then(|s| s["applied_index"].as_u64())
}

fn commit(data_dir: &Path) -> Option<u64> {
    status(data_dir).and_then(|s| s["commit_index"].as_u64())
}

#[test]
fn standby_killed_active_keeps_taking_calls_with_the_witness() {
    let _serial = serial();
    let mut p = form(HaSpec::new(""), None);
    p.calls_on_a(5);
    p.b.kill9();
    let killed = Utc::now();
    // Records keep being committed: A and the witness are a majority.
    let acked = p.calls_on_a(10);
    let committed = commit(&p.a.data_dir()).expect("A's commit index");
    let deadline = Instant::now() + Duration::from_secs(5);
    while applied(&p.w.data_dir) < Some(committed) && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(
        applied(&p.w.data_dir) >= Some(committed),
        "the witness holds every committed entry: {:?} vs {committed}",
        status(&p.w.data_dir)
    );
    assert_eq!(role(&p.a.data_dir()), "active");
    let now = Utc::now();
    check(
        &[
            ("node-a", intervals(&p.a.log_text(), now)),
            ("node-b", intervals(&p.b.log_text(), killed)),
        ],
        &p.a.data_dir(),
        &acked,
    );
    // The role stayed with A: B never became active. (Under a heavily loaded machine A may
    // let its lease lapse for an instant and take it back; that keeps every invariant.)
    assert!(
        intervals(&p.b.log_text(), killed).is_empty(),
        "B never became active:\n{}",
        p.b.log_text()
    );
}

#[test]
fn witness_killed_active_keeps_serving_with_the_standby() {
    let _serial = serial();
    let mut p = form(HaSpec::new(""), None);
    p.calls_on_a(5);
    p.w.kill9();
    let acked = p.calls_on_a(10);
    let on_b = wait_records(&p.b.data_dir(), acked.len(), Duration::from_secs(10));
    assert!(on_b.len() >= acked.len(), "B has the records: {on_b:?}");
    assert_eq!(role(&p.a.data_dir()), "active");
    assert_eq!(role(&p.b.data_dir()), "standby");
    let now = Utc::now();
    check(
        &[
            ("node-a", intervals(&p.a.log_text(), now)),
            ("node-b", intervals(&p.b.log_text(), now)),
        ],
        &p.a.data_dir(),
        &acked,
    );
    assert!(
        intervals(&p.b.log_text(), now).is_empty(),
        "B never became active:\n{}",
        p.b.log_text()
    );
}

/// A raw INVITE (with an SDP offer the engine would accept) from `probe` to `target`.
fn send_invite(probe: &Probe, target: SocketAddr, call_id: &str) {
    let local = probe.local_addr();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let msg = format!(
        "INVITE sip:svi@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=f1\r\nTo: <sip:svi@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    probe.send_raw(msg.as_bytes());
}

/// The final status the engine answered to `call_id` (None: nothing within `timeout`).
fn final_status(probe: &Probe, call_id: &str, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    while let Some(m) = probe.recv_until(deadline) {
        if !m.contains(call_id) {
            continue;
        }
        match status_of(&m) {
            Some(s) if s >= 200 => return Some(s),
            _ => {}
        }
    }
    None
}

#[test]
fn frozen_active_node_resumes_fenced_and_answers_nothing_with_200() {
    let _serial = serial();
    let sink = AlarmSink::start();
    let p = form(
        HaSpec::new(&format!("alarm_webhook = \"{}\"", sink.url)),
        None,
    );
    let acked = p.calls_on_a(5);
    p.a.send_signal("STOP");
    assert!(
        wait_role(&p.b.data_dir(), "active", FAILOVER),
        "B takes over from the frozen A: {:?}",
        status(&p.b.data_dir())
    );
    // An INVITE waits in the frozen node's socket; the first thing it handles on resuming.
    let probe = Probe::new(p.a.sip);
    let call_id = format!("frozen-{}", std::process::id());
    send_invite(&probe, p.a.sip, &call_id);
    p.a.send_signal("CONT");
    let answered = final_status(&probe, &call_id, Duration::from_secs(10));
    assert_eq!(
        answered,
        Some(503),
        "the resumed node refuses the queued INVITE (never 200):\n{}",
        p.a.log_text()
    );
    assert!(
        wait_role(&p.a.data_dir(), "standby", FAILOVER),
        "A becomes standby under B: {:?}",
        status(&p.a.data_dir())
    );
    assert!(one_call(p.b.sip, p.dir()), "B takes calls");
    let now = Utc::now();
    check(
        &[
            ("node-a", intervals(&p.a.log_text(), now)),
            ("node-b", intervals(&p.b.log_text(), now)),
        ],
        &p.b.data_dir(),
        &acked,
    );
    let a_changes = role_changes(&p.a.log_text());
    let left = a_changes
        .iter()
        .find(|c| c.from == "active")
        .expect("A left the active role");
    assert!(
        left.served_until.is_some_and(|u| u < left.at),
        "A's lease had run out before it noticed (served_until < at): {left:?}"
    );

    // Alarms: the webhook got B's change to active, and the status shows the counters.
    let ev = sink
        .wait(Duration::from_secs(10), |v| {
            v["node"] == 2 && v["to"] == "active"
        })
        .expect("alarm webhook: node 2 became active");
    for key in ["node", "from", "to", "term", "leader", "at"] {
        assert!(ev.get(key).is_some(), "alarm has {key}: {ev}");
    }
    assert_eq!(ev["leader"], 2);
    let s = status(&p.b.data_dir()).expect("status");
    assert!(s["role_changes"].as_u64() >= Some(2), "{s}");
    assert!(
        s["role_since"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some(),
        "{s}"
    );
    let human = Command::new(svi_bin())
        .args(["ha", "status", "--data-dir"])
        .arg(p.b.data_dir())
        .output()
        .expect("svi ha status");
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("role changes") && text.contains("role since"),
        "{text}"
    );
}

#[test]
fn active_node_frozen_for_1_s_one_node_active_nothing_lost() {
    let takeover = freeze_active_for(Duration::from_secs(1));
    eprintln!("1 s freeze: B active after {takeover:?}");
}

#[test]
fn active_node_frozen_for_3_s_one_node_active_nothing_lost() {
    let takeover = freeze_active_for(Duration::from_secs(3));
    eprintln!("3 s freeze: B active after {takeover:?}");
}

#[test]
fn active_node_frozen_for_10_s_is_replaced_one_node_active_nothing_lost() {
    let takeover = freeze_active_for(Duration::from_secs(10));
    eprintln!("10 s freeze: B active after {takeover:?}");
    assert!(takeover.is_some(), "B took over during a 10 s freeze");
}

/// A (active) frozen with SIGSTOP for `freeze`, then resumed. While A is frozen, B's role
/// is sampled without pause (A itself cannot answer); the time B became active, if it did,
/// is returned. Afterwards one node is active and the other standby, the active one takes
/// a call whose record reaches the other, no two nodes were ever active at once (their
/// logged active intervals), and every record acknowledged before the freeze is on both.
fn freeze_active_for(freeze: Duration) -> Option<Duration> {
    let _serial = serial();
    let p = form(HaSpec::new(""), None);
    let acked = p.calls_on_a(3);
    p.a.send_signal("STOP");
    let stopped = Instant::now();
    let mut takeover = None;
    let mut samples = 0u32;
    while stopped.elapsed() < freeze {
        if takeover.is_none() && role(&p.b.data_dir()) == "active" {
            takeover = Some(stopped.elapsed());
        }
        samples += 1;
    }
    p.a.send_signal("CONT");
    assert!(samples > 1, "B's role sampled during the freeze");
    let deadline = Instant::now() + FAILOVER;
    let (active, standby) = loop {
        let roles = (role(&p.a.data_dir()), role(&p.b.data_dir()));
        match (roles.0.as_str(), roles.1.as_str()) {
            ("active", "standby") => break (&p.a, &p.b),
            ("standby", "active") => break (&p.b, &p.a),
            _ if Instant::now() > deadline => {
                panic!(
                    "not settled after the freeze: {roles:?}\n{}",
                    p.a.log_text()
                )
            }
            _ => std::thread::yield_now(),
        }
    };
    assert!(
        one_call(active.sip, p.dir()),
        "the active node takes a call"
    );
    let n = acked.len() + 1;
    let on_standby = wait_records(&standby.data_dir(), n, Duration::from_secs(10));
    assert!(
        on_standby.len() >= n,
        "the new call reached the standby: {on_standby:?}"
    );
    let now = Utc::now();
    let nodes = [
        ("node-a", intervals(&p.a.log_text(), now)),
        ("node-b", intervals(&p.b.log_text(), now)),
    ];
    check(&nodes, &active.data_dir(), &acked);
    check(&nodes, &standby.data_dir(), &acked);
    takeover
}

#[test]
fn invalid_alarm_webhook_is_a_config_error_naming_the_key() {
    let spec = HaSpec::new("alarm_webhook = \"not a url\"");
    let out = Command::new(svi_bin())
        .args(["run", "--config"])
        .arg(&spec.configs[0])
        .arg("--data-dir")
        .arg(spec.dir.path().join("data"))
        .output()
        .expect("svi run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    assert!(err.contains("ha.alarm_webhook"), "names the key: {err}");
}

/// Packet-filter rules (nft) that cut one member off the cluster; removed on drop.
struct Partition {
    table: String,
}

impl Partition {
    /// Drops every packet to or from `me`'s cluster port and from `me`'s address to the
    /// other members' cluster ports (and their answers), on loopback.
    fn isolate(me: SocketAddr, others: &[SocketAddr]) -> Partition {
        let ip = me.ip();
        let port = me.port();
        let ports: Vec<String> = others.iter().map(|o| o.port().to_string()).collect();
        let ports = ports.join(", ");
        Partition::apply(&format!(
            "  ip daddr {ip} tcp dport {port} drop\n  ip saddr {ip} tcp sport {port} drop\n  ip saddr {ip} tcp dport {{ {ports} }} drop\n  ip daddr {ip} tcp sport {{ {ports} }} drop\n"
        ))
    }

    /// Drops the packets one way only: from the `from` members' addresses to the `to`
    /// members' (each member has its own loopback address; SIP stays on 127.0.0.1).
    fn one_way(from: &[SocketAddr], to: &[SocketAddr]) -> Partition {
        let ips = |m: &[SocketAddr]| {
            let v: Vec<String> = m.iter().map(|o| o.ip().to_string()).collect();
            v.join(", ")
        };
        Partition::apply(&format!(
            "  ip saddr {{ {} }} ip daddr {{ {} }} drop\n",
            ips(from),
            ips(to)
        ))
    }

    /// Installs `rules` in an input chain of a table of its own.
    fn apply(rules: &str) -> Partition {
        require_root("nft (the partition)");
        let table = format!("svi_fault_{}", std::process::id());
        let script = format!(
            "table inet {table} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n{rules} }}\n}}\n"
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nft not found ({e}): install nftables (scripts/test.sh does)")
            });
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(script.as_bytes()).expect("nft script");
        }
        let ok = child.wait().expect("nft").success();
        assert!(ok, "nft refused the partition rules:\n{script}");
        Partition { table }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

#[test]
fn partitioned_active_node_fences_itself_and_rejoins_as_standby() {
    partitioned_active_node(|c| Partition::isolate(c[0], &c[1..]));
}

#[test]
fn active_node_unheard_one_way_fences_itself_and_rejoins_as_standby() {
    // A hears the others; nothing A sends reaches them.
    partitioned_active_node(|c| Partition::one_way(&c[..1], &c[1..]));
}

#[test]
fn active_node_deaf_one_way_fences_itself_and_rejoins_as_standby() {
    // The others hear A; nothing they send reaches it.
    partitioned_active_node(|c| Partition::one_way(&c[1..], &c[..1]));
}

/// The active node A cut off by `cut` (given the members' cluster addresses): A fences
/// itself and refuses new calls, B takes over and takes calls, and once healed A is standby
/// with every record; never two active, nothing acknowledged lost.
fn partitioned_active_node(cut: impl FnOnce(&[SocketAddr; 3]) -> Partition) {
    let _serial = serial();
    let p = form(HaSpec::new(""), None);
    let mut acked = p.calls_on_a(5);
    let cut = cut(&p.spec.cluster);
    assert!(
        wait_role(&p.a.data_dir(), "fenced", Duration::from_secs(5)),
        "the cut-off A fences itself: {:?}",
        status(&p.a.data_dir())
    );
    assert!(
        p.a.wait_log("this node is no longer active", Duration::from_secs(2))
            .is_some(),
        "A stops taking new calls and unregisters its trunks"
    );
    let probe = Probe::new(p.a.sip);
    send_invite(&probe, p.a.sip, "isolated-a");
    assert_eq!(
        final_status(&probe, "isolated-a", Duration::from_secs(5)),
        Some(503)
    );
    assert!(
        wait_role(&p.b.data_dir(), "active", FAILOVER),
        "B takes over: {:?}",
        status(&p.b.data_dir())
    );
    assert!(calls(p.b.sip, p.dir(), 3), "B takes calls during the cut");
    acked = {
        let n = acked.len() + 3;
        let ids = wait_records(&p.b.data_dir(), n, Duration::from_secs(10));
        assert!(ids.len() >= n, "records on B: {ids:?}");
        ids
    };
    drop(cut);
    assert!(
        wait_role(&p.a.data_dir(), "standby", FAILOVER),
        "healed, A is standby: {:?}",
        status(&p.a.data_dir())
    );
    assert_eq!(
        (role(&p.a.data_dir()), role(&p.b.data_dir())),
        ("standby".to_string(), "active".to_string()),
        "exactly one active after healing"
    );
    let on_a = wait_records(&p.a.data_dir(), acked.len(), Duration::from_secs(10));
    assert!(on_a.len() >= acked.len(), "A caught up: {on_a:?}");
    let now = Utc::now();
    check(
        &[
            ("node-a", intervals(&p.a.log_text(), now)),
            ("node-b", intervals(&p.b.log_text(), now)),
        ],
        &p.b.data_dir(),
        &acked,
    );
}

#[test]
fn whole_cluster_restarted_reforms_with_every_record() {
    let _serial = serial();
    let mut p = form(HaSpec::new(""), None);
    let acked = p.calls_on_a(5);
    p.a.kill9();
    p.b.kill9();
    p.w.kill9();
    let killed = Utc::now();
    let (old_a, old_b) = (p.a.log_text(), p.b.log_text());
    let _w = p.w.restart(Some(&p.dir().join("witness.log")));
    let a = p.spec.node(0, Some(p.a.data_dir()));
    let b = p.spec.node(1, Some(p.b.data_dir()));
    let deadline = Instant::now() + FORM;
    let active = loop {
        let roles = (role(&a.data_dir()), role(&b.data_dir()));
        match roles {
            (x, _) if x == "active" => break &a,
            (_, y) if y == "active" => break &b,
            _ if Instant::now() > deadline => panic!("no active node after restart: {roles:?}"),
            _ => std::thread::yield_now(),
        }
    };
    let other = if std::ptr::eq(active, &a) { &b } else { &a };
    assert!(
        wait_role(&other.data_dir(), "standby", FAILOVER),
        "the other node is standby: {:?}",
        status(&other.data_dir())
    );
    assert!(
        one_call(active.sip, p.dir()),
        "the cluster takes calls again"
    );
    let now = Utc::now();
    let mut ia = intervals(&old_a, killed);
    ia.extend(intervals(&a.log_text(), now));
    let mut ib = intervals(&old_b, killed);
    ib.extend(intervals(&b.log_text(), now));
    check(
        &[("node-a", ia), ("node-b", ib)],
        &active.data_dir(),
        &acked,
    );
}

/// A small tmpfs for one node's data directory; unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, size: &str) -> SmallDisk {
        require_root("mount (the full disk)");
        std::fs::create_dir_all(&path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (this test needs it to fill a disk): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Writes a file until the filesystem refuses (ENOSPC); returns the bytes written.
    fn fill(&self) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.path.join("filler")).expect("filler");
        let block = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        let _ = f.sync_all();
        written
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn active_node_with_a_full_disk_steps_down_and_nothing_acknowledged_is_lost() {
    let _serial = serial();
    let spec = HaSpec::new("");
    let disk_root = tempfile::tempdir().expect("tempdir");
    let disk = SmallDisk::mount(disk_root.path().join("a-disk"), "64m");
    let p = form(spec, Some(disk.path.join("data")));
    let acked = p.calls_on_a(5);
    assert!(disk.fill() > 0, "the filler wrote something");
    // The next records cannot be written to A's raft log.
    let _ = calls(p.a.sip, p.dir(), 3);
    assert!(
        wait_role_in(&p.a.data_dir(), &["fenced", "standby"], FAILOVER).is_some(),
        "A leaves the active role: {:?}\n{}",
        status(&p.a.data_dir()),
        p.a.log_text()
    );
    assert!(
        wait_role(&p.b.data_dir(), "active", FAILOVER),
        "B takes over: {:?}",
        status(&p.b.data_dir())
    );
    let log = p.a.log_text();
    let disk_dir = disk.path.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("disk") && l.contains(&disk_dir)),
        "A logs an error naming its disk ({disk_dir}):\n{log}"
    );
    assert!(!log.contains("panicked"), "no panic:\n{log}");
    assert!(one_call(p.b.sip, p.dir()), "B takes calls");
    let now = Utc::now();
    check(
        &[
            ("node-a", intervals(&p.a.log_text(), now)),
            ("node-b", intervals(&p.b.log_text(), now)),
        ],
        &p.b.data_dir(),
        &acked,
    );
    // B's own call is recorded (written when the call ended: poll with a deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    let by_b = |recs: &[serde_json::Value]| recs.iter().any(|r| r["node"] == "node-b");
    while !by_b(&records(&p.b.data_dir())) && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(by_b(&records(&p.b.data_dir())), "B recorded its own call");
}
