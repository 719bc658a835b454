//! HA pairs of real processes: the samples' pair (`samples/ha/`, fixed ports) or a
//! generated one (each member on its own loopback address and free ports, so that a test
//! can cut one member off with a packet filter), the witness process, `svi ha status`,
//! and the role history each node writes in its log.
//!
//! The "at most one active node" check works on the nodes' own words: every role change
//! is logged with the instant it was published (`at`) and, when a node leaves `active`,
//! the instant its lease ran out (`served_until`), after which its decision-time check
//! refuses calls even if the node was frozen and had not noticed yet.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::proc::{svi_bin, EngineOptions, EngineProc};
use crate::sipp::{Caller, Codec, Dtmf, Sipp};

/// A file of the HA samples (`samples/ha/<name>`).
pub fn sample(name: &str) -> PathBuf {
    crate::repo_root().join("samples/ha").join(name)
}

/// `svi witness` on a configuration and data directory; its log goes to `log` if given.
pub struct Witness {
    child: Child,
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

impl Witness {
    pub fn start(config: &Path, data_dir: &Path, log: Option<&Path>) -> Witness {
        let stderr = match log.map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
        }) {
            Some(Ok(f)) => Stdio::from(f),
            _ => Stdio::null(),
        };
        let child = Command::new(svi_bin())
            .args(["witness", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info,openraft=error")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("svi witness");
        Witness {
            child,
            config: config.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL (a crash).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the witness again on the same configuration and data.
    pub fn restart(&self, log: Option<&Path>) -> Witness {
        Witness::start(&self.config, &self.data_dir, log)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `svi ha status --json` of the node on `data_dir` (None: not running or not answering).
pub fn status(data_dir: &Path) -> Option<Value> {
    let out = Command::new(svi_bin())
        .args(["ha", "status", "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// The node's role, or "down".
pub fn role(data_dir: &Path) -> String {
    status(data_dir)
        .and_then(|s| s["role"].as_str().map(str::to_string))
        .unwrap_or_else(|| "down".into())
}

/// Polls until the node's role is one of `want` (a deadline, not a sleep); returns it.
pub fn wait_role_in(data_dir: &Path, want: &[&str], timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let r = role(data_dir);
        if want.contains(&r.as_str()) {
            return Some(r);
        }
        // `svi ha status` itself takes a few milliseconds: the loop is bounded by it.
        std::thread::yield_now();
    }
    None
}

pub fn wait_role(data_dir: &Path, want: &str, timeout: Duration) -> bool {
    wait_role_in(data_dir, &[want], timeout).is_some()
}

/// `n` short calls of the demo flow through `engine_sip` (10 per second); true if all
/// were answered and ended normally.
pub fn calls(engine_sip: std::net::SocketAddr, dir: &Path, n: usize) -> bool {
    let mut caller = Caller::new(Codec::Pcma).dtmf(Duration::from_millis(300), Dtmf::Info('1'));
    caller.hangup_after = Some(Duration::from_millis(200));
    Sipp::new(caller.xml())
        .calls(u32::try_from(n).expect("a few calls"))
        .arg("-r")
        .arg("10")
        .run(dir, Some(engine_sip))
        .success()
}

pub fn one_call(engine_sip: std::net::SocketAddr, dir: &Path) -> bool {
    calls(engine_sip, dir, 1)
}

/// The records of `svi calls --json --data-dir DIR` (works on a stopped node too).
pub fn records(data_dir: &Path) -> Vec<Value> {
    let out = Command::new(svi_bin())
        .args(["calls", "--json", "--limit", "10000", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run svi calls");
    assert!(
        out.status.success(),
        "svi calls --data-dir {}: {}",
        data_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(a)) => a,
        other => panic!("svi calls: not a JSON array: {other:?}"),
    }
}

/// The recording index of `svi recordings --json --data-dir DIR` (works on a stopped node
/// too).
pub fn recordings(data_dir: &Path) -> Vec<Value> {
    let out = Command::new(svi_bin())
        .args(["recordings", "--json", "--limit", "10000", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run svi recordings");
    assert!(
        out.status.success(),
        "svi recordings --data-dir {}: {}",
        data_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(a)) => a,
        other => panic!("svi recordings: not a JSON array: {other:?}"),
    }
}

/// The ids of the call records on the node's data directory.
pub fn record_ids(data_dir: &Path) -> Vec<String> {
    records(data_dir)
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect()
}

pub fn call_ids(engine: &EngineProc) -> Vec<String> {
    record_ids(&engine.data_dir())
}

/// Waits until the node's database holds at least `n` records; returns their ids.
pub fn wait_records(data_dir: &Path, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let ids = record_ids(data_dir);
        if ids.len() >= n || Instant::now() > deadline {
            return ids;
        }
        std::thread::yield_now();
    }
}

/// The shared secret of the generated clusters.
const SECRET: &str = "fault-test-secret-0123456789";

/// Addresses of a generated cluster's members: full nodes 1 and 2, witness 3.
const ADDRS: [&str; 3] = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];

/// A pair and a witness with generated configurations (the samples' flows, prompts and
/// timings), each member's cluster port on its own loopback address.
pub struct HaSpec {
    pub dir: tempfile::TempDir,
    pub cluster: [std::net::SocketAddr; 3],
    pub configs: [PathBuf; 3],
    /// Every member's cluster certificate is pinned (`new_tls`); the full nodes then run on
    /// `data_dir(i)`, where their certificates are.
    pub tls: bool,
}

/// The members' names: node A, node B, the witness.
const NAMES: [&str; 3] = ["node-a", "node-b", "witness"];

impl HaSpec {
    /// `extra` is added to each full node's `[ha]` section (e.g. `alarm_webhook = ...`).
    pub fn new(extra: &str) -> HaSpec {
        HaSpec::samples(extra, false)
    }

    /// Like `new`, with each member's cluster certificate made by `svi ha cert` in its data
    /// directory and pinned in every member's configuration: the link runs inside TLS.
    pub fn new_tls(extra: &str) -> HaSpec {
        HaSpec::samples(extra, true)
    }

    fn samples(extra: &str, tls: bool) -> HaSpec {
        let samples = sample("");
        HaSpec::build(extra, tls, |name| {
            let text = std::fs::read_to_string(sample(&format!("{name}.toml"))).expect("sample");
            text.split("[ha]")
                .next()
                .expect("split")
                .replace("\"../", &format!("\"{}/../", samples.display()))
        })
    }

    /// Like `new`, but each full node's configuration is `[node] name = "node-a"` (or
    /// `node-b`) followed by `engine` (everything but `[node]` and `[ha]`: flows,
    /// recording...) instead of the samples'.
    pub fn with_engine(engine: &str, extra: &str) -> HaSpec {
        HaSpec::build(extra, false, |name| {
            format!("[node]\nname = \"{name}\"\n\n{engine}\n")
        })
    }

    /// `head(name)`: a full node's configuration before its `[ha]` section.
    fn build(extra: &str, tls: bool, head: impl Fn(&str) -> String) -> HaSpec {
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = |i: usize| {
            if !tls {
                return String::new();
            }
            let data = dir.path().join(format!("{}-data", NAMES[i]));
            format!("fingerprint = \"{}\"\n", cert_fingerprint(&data))
        };
        let cluster = ADDRS.map(|ip| {
            let l = std::net::TcpListener::bind((ip, 0))
                .unwrap_or_else(|e| panic!("bind {ip}: {e} (loopback must cover 127.0.0.0/8)"));
            l.local_addr().expect("addr")
        });
        let members: String = (0..3)
            .map(|i| {
                let kind = if i == 2 { "witness" } else { "full" };
                format!(
                    "\n[[ha.members]]\nid = {}\ncluster = \"{}\"\nkind = \"{kind}\"\n{}",
                    i + 1,
                    cluster[i],
                    pin(i)
                )
            })
            .collect();
        let ha = |i: usize, extra: &str| {
            format!(
                "[ha]\nnode_id = {}\nlisten = \"{}\"\nsecret = \"{SECRET}\"\nheartbeat_ms = 50\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\nlease_ms = 250\n{extra}\n{members}",
                i + 1,
                cluster[i]
            )
        };
        let full = |i: usize, name: &str| {
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, format!("{}\n{}", head(name), ha(i, extra)))
                .expect("write config");
            path
        };
        let a = full(0, "node-a");
        let b = full(1, "node-b");
        let w = dir.path().join("witness.toml");
        std::fs::write(&w, format!("[node]\nname = \"witness\"\n\n{}", ha(2, ""))).expect("w");
        HaSpec {
            dir,
            cluster,
            configs: [a, b, w],
            tls,
        }
    }

    /// Member `i`'s data directory in the spec's directory (0: node-a, 1: node-b, 2: the
    /// witness).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}-data", NAMES[i]))
    }

    /// Starts full node `i` (0: node-a, 1: node-b) on `data_dir` (None: a fresh one, or
    /// `data_dir(i)` with pinned certificates).
    pub fn node(&self, i: usize, data_dir: Option<PathBuf>) -> EngineProc {
        let data_dir = data_dir.or_else(|| self.tls.then(|| self.data_dir(i)));
        EngineProc::start(EngineOptions {
            config: Some(self.configs[i].clone()),
            data_dir,
            ..EngineOptions::default()
        })
    }

    /// Starts the witness and both full nodes on fresh data directories, and waits until
    /// node A (0) is active and node B (1) standby.
    pub fn start_pair(&self) -> (Witness, EngineProc, EngineProc) {
        let w = self.witness();
        let a = self.node(0, None);
        let b = self.node(1, None);
        assert!(
            wait_role(&a.data_dir(), "active", Duration::from_secs(20)),
            "A active:\n{}",
            a.log_text()
        );
        assert!(
            wait_role(&b.data_dir(), "standby", Duration::from_secs(10)),
            "B standby:\n{}",
            b.log_text()
        );
        (w, a, b)
    }

    pub fn witness(&self) -> Witness {
        Witness::start(
            &self.configs[2],
            &self.data_dir(2),
            Some(&self.dir.path().join("witness.log")),
        )
    }

    pub fn witness_log(&self) -> String {
        crate::proc::read_to_string(&self.dir.path().join("witness.log"))
    }
}

/// `svi ha cert --data-dir DIR`: the member's certificate fingerprint (made if missing).
pub fn cert_fingerprint(data_dir: &Path) -> String {
    let out = Command::new(svi_bin())
        .args(["ha", "cert", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run svi ha cert");
    assert!(
        out.status.success(),
        "svi ha cert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// When a node could take calls: [start, end].
pub type Interval = (DateTime<Utc>, DateTime<Utc>);

/// One `ha role changed` line of a node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    /// On leaving `active`: when the node's lease ran out (or `at`, if it left earlier).
    pub served_until: Option<DateTime<Utc>>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let start = line.find(&pat)? + pat.len();
    line[start..].split_whitespace().next()
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The role changes a node logged, in order.
pub fn role_changes(log: &str) -> Vec<RoleChange> {
    log.lines()
        .filter(|l| l.contains("ha role changed"))
        .filter_map(|l| {
            Some(RoleChange {
                from: field(l, "from")?.to_string(),
                to: field(l, "to")?.to_string(),
                at: instant(field(l, "at")?)?,
                served_until: field(l, "served_until").and_then(instant),
            })
        })
        .collect()
}

/// The intervals during which a node could take calls: from `to=active` to the
/// `served_until` of the change that left it, or to `end` (when the process was killed,
/// or now) if it never left.
pub fn active_intervals(changes: &[RoleChange], end: DateTime<Utc>) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut since = None;
    for c in changes {
        if c.to == "active" {
            since = Some(c.at);
        } else if c.from == "active" {
            if let Some(s) = since.take() {
                out.push((s, c.served_until.unwrap_or(c.at)));
            }
        }
    }
    if let Some(s) = since {
        out.push((s, end));
    }
    out
}

/// Asserts that no two nodes' active intervals overlap; `nodes` are (name, intervals).
pub fn assert_never_two_active(nodes: &[(&str, Vec<Interval>)]) {
    for (i, (a, ia)) in nodes.iter().enumerate() {
        for (b, ib) in nodes.iter().skip(i + 1) {
            for x in ia {
                for y in ib {
                    assert!(
                        x.1 <= y.0 || y.1 <= x.0,
                        "{a} active {x:?} overlaps {b} active {y:?}\nall: {nodes:?}"
                    );
                }
            }
        }
    }
}

/// A tiny HTTP server on loopback that receives alarm webhooks: every POST body (JSON) is
/// kept and answered 200.
pub struct AlarmSink {
    pub url: String,
    events: std::sync::mpsc::Receiver<Value>,
    _runtime: tokio::runtime::Runtime,
}

impl AlarmSink {
    pub fn start() -> AlarmSink {
        let (runtime, listener) = crate::server_runtime();
        let url = format!("http://{}/alarm", listener.local_addr().expect("addr"));
        let (tx, events) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(v) = read_post(stream).await {
                        let _ = tx.send(v);
                    }
                });
            }
        });
        AlarmSink {
            url,
            events,
            _runtime: runtime,
        }
    }

    /// Waits for an event matching `pred`; returns it (events before it are dropped).
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes), answers 200.
async fn read_post(mut stream: tokio::net::TcpStream) -> Option<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_at = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..body_at]).to_ascii_lowercase();
    if !head.starts_with("post ") {
        return None;
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < body_at + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    serde_json::from_slice(&buf[body_at..body_at + len]).ok()
}
