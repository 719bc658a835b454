//! Kamailio on the sample configuration (`samples/kamailio/kamailio.cfg`, unchanged) in front
//! of several HA pairs: the dispatcher list and the agent mapping are written in the
//! samples' format with the test's addresses, the site settings are given on the command line
//! (`-A`), and the dispatcher's view of each node is read with `kamcmd dispatcher.list`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::ports::free_sip_port;

/// The dispatcher set of calls in the sample (every node of every pair).
pub const CALL_SET: u32 = 10;

pub struct Dispatcher {
    child: Child,
    pub addr: SocketAddr,
    ctl: PathBuf,
    log: PathBuf,
}

/// The sample's file `name` (`samples/kamailio/<name>`).
pub fn sample(name: &str) -> PathBuf {
    crate::repo_root().join("samples/kamailio").join(name)
}

/// The dispatcher list for `pairs` (pair `i` is set `i + 1`, every node in the call set with
/// an equal `rweight`), as in the sample.
pub fn list(pairs: &[[SocketAddr; 2]]) -> String {
    let mut calls = String::new();
    let mut per_pair = String::new();
    for (i, pair) in pairs.iter().enumerate() {
        for (node, addr) in ["a", "b"].iter().zip(pair) {
            let duid = format!("pair{}-{node}", i + 1);
            calls.push_str(&format!(
                "{CALL_SET} sip:{addr} 8 0 duid={duid};rweight=50\n"
            ));
            per_pair.push_str(&format!("{} sip:{addr} 8 0 duid={duid}\n", i + 1));
        }
    }
    format!("{calls}{per_pair}")
}

/// The agent mapping: each agent's user name and the pair (1-based) that serves its queues
/// (none: every REGISTER is refused).
pub fn agents(map: &[(&str, usize)]) -> String {
    if map.is_empty() {
        return "# No agent is mapped to a pair.\n".into();
    }
    let lines: String = map
        .iter()
        .map(|(user, pair)| format!("    $sht(agent_pair=>{user}) = {pair};\n"))
        .collect();
    format!("event_route[htable:mod-init] {{\n{lines}}}\n")
}

impl Dispatcher {
    /// Starts Kamailio in `dir` on the sample configuration in front of `pairs`, probing
    /// every `probe_interval_s` seconds, with `agents` mapped to their pairs.
    pub fn start(
        dir: &Path,
        pairs: &[[SocketAddr; 2]],
        agents_map: &[(&str, usize)],
        probe_interval_s: u32,
    ) -> Dispatcher {
        std::fs::create_dir_all(dir).expect("kamailio dir");
        let port = free_sip_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let cfg = dir.join("kamailio.cfg");
        std::fs::copy(sample("kamailio.cfg"), &cfg).expect("copy samples/kamailio/kamailio.cfg");
        let list_file = dir.join("svi-dispatcher.list");
        std::fs::write(&list_file, list(pairs)).expect("write the dispatcher list");
        std::fs::write(dir.join("svi-agents.cfg"), agents(agents_map)).expect("agents");
        let ctl = dir.join("ctl.sock");
        let args = [
            "-L".to_string(),
            crate::kamailio::modules_dir().display().to_string(),
            "-A".into(),
            format!("LISTEN=udp:{addr}"),
            "-A".into(),
            format!("DISPATCHER_LIST=\"{}\"", list_file.display()),
            "-A".into(),
            format!("CTL_SOCKET=\"unix:{}\"", ctl.display()),
            "-A".into(),
            format!("PROBE_INTERVAL={probe_interval_s}"),
        ];
        let (child, log) = crate::kamailio::spawn(dir, &args);
        let d = Dispatcher {
            child,
            addr,
            ctl,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.rpc("dispatcher.list").is_none() {
            assert!(
                Instant::now() < deadline,
                "kamailio did not answer on its control socket:\n{}",
                d.log_text()
            );
            std::thread::yield_now();
        }
        d
    }

    /// The destinations of `set` as the dispatcher sees them now: (URI, flags such as `AP`
    /// for active and probed, `IP` for inactive).
    pub fn destinations(&self, set: u32) -> Vec<(String, String)> {
        destinations(&self.ctl, set)
    }

    fn rpc(&self, cmd: &str) -> Option<String> {
        crate::kamailio::kamcmd(&self.ctl, cmd)
    }

    /// The nodes of `set` the dispatcher sends to now (active: flags starting with `A`).
    pub fn active(&self, set: u32) -> Vec<SocketAddr> {
        active(&self.ctl, set)
    }

    /// Polls the active nodes of `set` every `period` on its own thread until finished;
    /// keeps every change with its instant.
    pub fn watch(&self, set: u32, period: Duration) -> ActiveWatch {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let ctl = self.ctl.clone();
        let thread = std::thread::spawn(move || {
            let mut changes: Changes = Vec::new();
            loop {
                let mut now = active(&ctl, set);
                now.sort();
                if changes.last().map(|c| &c.1) != Some(&now) {
                    changes.push((Instant::now(), now));
                }
                // The poll period itself (a sampling clock, not a wait for an event).
                if stopped.recv_timeout(period).is_ok() {
                    return changes;
                }
            }
        });
        ActiveWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until the active nodes of `set` are exactly `want` (any order); true if so.
    pub fn wait_active(&self, set: u32, want: &[SocketAddr], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut want = want.to_vec();
        want.sort();
        loop {
            let mut now = self.active(set);
            now.sort();
            if now == want {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            // `kamcmd` itself takes a few milliseconds: the loop is bounded by it.
            std::thread::yield_now();
        }
    }

    pub fn log_text(&self) -> String {
        crate::proc::read_to_string(&self.log)
    }
}

fn destinations(ctl: &Path, set: u32) -> Vec<(String, String)> {
    let Some(text) = crate::kamailio::kamcmd(ctl, "dispatcher.list") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut in_set = false;
    let mut uri = None;
    for line in text.lines().map(str::trim) {
        if let Some(id) = line.strip_prefix("ID:") {
            in_set = id.trim().parse::<u32>().ok() == Some(set);
        } else if let Some(u) = line.strip_prefix("URI:") {
            uri = in_set.then(|| u.trim().to_string());
        } else if let Some(f) = line.strip_prefix("FLAGS:") {
            if let Some(u) = uri.take() {
                out.push((u, f.trim().to_string()));
            }
        }
    }
    out
}

fn active(ctl: &Path, set: u32) -> Vec<SocketAddr> {
    destinations(ctl, set)
        .into_iter()
        .filter(|(_, flags)| flags.starts_with('A'))
        .filter_map(|(uri, _)| uri.strip_prefix("sip:")?.parse().ok())
        .collect()
}

/// Each change of a set's active nodes (sorted) with its instant.
pub type Changes = Vec<(Instant, Vec<SocketAddr>)>;

/// The changes of a set's active nodes seen by `Dispatcher::watch`.
pub struct ActiveWatch {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<Changes>>,
}

impl ActiveWatch {
    /// Stops polling; returns every change (instant, active nodes sorted), the first being
    /// the state when the watch started.
    pub fn finish(mut self) -> Changes {
        let _ = self.stop.send(());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Dispatcher {
    /// SIGTERM first: the main process then stops its children (a SIGKILL would leave them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::yield_now();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
