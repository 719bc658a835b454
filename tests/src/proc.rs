//! An engine process for a test: its own temporary data directory, SIP port and RTP range.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ports::{free_sip_port, rtp_range};
use crate::probe::Probe;

/// The `svi` binary: `SVI_BIN`, else the workspace's debug build.
pub fn svi_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SVI_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("target"));
    let bin = target.join("debug").join("svi");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin svi` first (the test script does)",
        bin.display()
    );
    bin
}

pub struct EngineProc {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub sip: SocketAddr,
    pub rtp: (u16, u16),
    /// The admin API's HTTPS address (`--http-listen`, a free port per engine).
    pub http: SocketAddr,
    data: PathBuf,
    /// Every log line the process wrote so far (stderr), shared with the reader thread.
    log: Arc<Mutex<Vec<String>>>,
    log_signal: Arc<(Mutex<()>, std::sync::Condvar)>,
}

#[derive(Default)]
pub struct EngineOptions {
    /// A configuration file to pass with --config (None: the embedded default).
    pub config: Option<PathBuf>,
    pub sip_port: Option<u16>,
    /// Data directory (default: a fresh temporary one); to restart a node on its data.
    pub data_dir: Option<PathBuf>,
    pub extra: Vec<String>,
    /// Environment variables of the process (e.g. systemd's `NOTIFY_SOCKET`).
    pub env: Vec<(String, String)>,
}

impl EngineProc {
    /// Starts `svi run` and waits until it answers OPTIONS (any final status).
    pub fn start(opts: EngineOptions) -> EngineProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = opts.sip_port.unwrap_or_else(free_sip_port);
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let rtp = rtp_range(200);
        let mut cmd = Command::new(svi_bin());
        let data = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        cmd.arg("run").arg("--data-dir").arg(&data);
        if let Some(c) = &opts.config {
            cmd.arg("--config").arg(c);
        }
        let http: SocketAddr = format!("127.0.0.1:{}", free_sip_port())
            .parse()
            .expect("addr");
        cmd.arg("--http-listen").arg(http.to_string());
        cmd.arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--rtp-ports")
            .arg(format!("{}-{}", rtp.0, rtp.1));
        cmd.args(&opts.extra);
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.env(
            "RUST_LOG",
            std::env::var("SVI_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn svi");
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_signal = Arc::new((Mutex::new(()), std::sync::Condvar::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        {
            let log = log.clone();
            let signal = log_signal.clone();
            let echo = std::env::var("SVI_TEST_ECHO").is_ok();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[svi {port}] {line}");
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                    signal.1.notify_all();
                }
            });
        }
        let mut engine = EngineProc {
            child,
            dir,
            sip,
            rtp,
            http,
            data,
            log,
            log_signal,
        };
        // Up once it answers OPTIONS at all: a node of an HA pair answers 503 until active.
        let mut probe = Probe::new(sip);
        if probe.wait_answer(Duration::from_secs(20)).is_none() {
            let status = engine.child.try_wait().ok().flatten();
            panic!(
                "engine did not answer OPTIONS within 20 s (exit: {status:?}); log:\n{}",
                engine.log_text()
            );
        }
        engine
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits until a log line contains `needle`, up to `timeout`; returns the line.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            if let Ok(l) = self.log.lock() {
                if let Some(line) = l[seen..].iter().find(|x| x.contains(needle)) {
                    return Some(line.clone());
                }
                seen = l.len();
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let (m, cv) = &*self.log_signal;
            let guard = m.lock().ok()?;
            let _ = cv.wait_timeout(guard, left.min(Duration::from_millis(200)));
        }
    }

    /// Waits until `needle` appears on at least `n` lines; returns the last such line.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(l) = self.log.lock() {
                let hits: Vec<&String> = l.iter().filter(|x| x.contains(needle)).collect();
                if hits.len() >= n {
                    return hits.last().map(|s| s.to_string());
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let (m, cv) = &*self.log_signal;
            let guard = m.lock().ok()?;
            let _ = cv.wait_timeout(guard, left.min(Duration::from_millis(200)));
        }
    }

    /// `svi calls --json` against this engine's data directory.
    pub fn calls(&self, limit: u32) -> serde_json::Value {
        let out = Command::new(svi_bin())
            .args([
                "calls",
                "--json",
                "--limit",
                &limit.to_string(),
                "--data-dir",
            ])
            .arg(self.data_dir())
            .output()
            .expect("run svi calls");
        assert!(
            out.status.success(),
            "svi calls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("calls JSON")
    }

    /// Waits until `svi calls` lists at least `n` calls.
    pub fn wait_calls(&self, n: usize, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls(n.max(1) as u32 + 10);
            if calls.as_array().map(|a| a.len()).unwrap_or(0) >= n || Instant::now() > deadline {
                return calls;
            }
            // Records are written when calls end; poll on a short period with a deadline.
            let _ = self.wait_log("call ended", Duration::from_millis(200));
        }
    }

    /// Resident memory of the process in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Sends a signal by name (`STOP`, `CONT`...) to the process.
    pub fn send_signal(&self, sig: &str) {
        self.signal(sig);
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader thread may still hold the last lines: give it the pipe's end.
                let _ = self.wait_log("\u{0}never", Duration::from_millis(50));
                return (status, self.log_text());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "engine did not exit within {timeout:?} after SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            let _ = self.wait_log("\u{0}never", Duration::from_millis(50));
        }
    }

    /// SIGKILL (a crash).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EngineProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a file to a string, for assertions with context.
pub fn read_to_string(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s
}
