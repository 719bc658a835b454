//! Kamailio (Debian's `kamailio`) as the IPBX's registrar for the HA tests: a minimal
//! configuration written by the test (registrar + usrloc in memory + digest auth with a
//! fixed password), started on a private loopback port, its bindings read with `kamcmd
//! ul.dump` over the control socket, and INVITEs to a registered user relayed to its
//! binding.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_sip_port;

/// The trunk user's password at the registrar.
pub const PASSWORD: &str = "trunk-password-0123";

const MODULES: &[&str] = &[
    "kex",
    "corex",
    "tm",
    "sl",
    "pv",
    "maxfwd",
    "textops",
    "siputils",
    "usrloc",
    "registrar",
    "auth",
    "ctl",
];

pub struct Kamailio {
    child: Child,
    pub addr: std::net::SocketAddr,
    ctl: PathBuf,
    log: PathBuf,
}

pub(crate) fn modules_dir() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("registrar.so").exists())
    .unwrap_or_else(|| {
        panic!("Kamailio's modules not found: install kamailio (scripts/test.sh does)")
    })
}

impl Kamailio {
    /// Starts Kamailio in `dir` (configuration, control socket, log).
    pub fn start(dir: &Path) -> Kamailio {
        std::fs::create_dir_all(dir).expect("kamailio dir");
        let port = free_sip_port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let ctl = dir.join("ctl.sock");
        let loads: String = MODULES
            .iter()
            .map(|m| format!("loadmodule \"{m}.so\"\n"))
            .collect();
        let cfg = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:{addr}
mpath="{modules}/"
{loads}modparam("ctl", "binrpc", "unix:{ctl}")
modparam("usrloc", "db_mode", 0)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{PASSWORD}", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (has_totag() || is_method("ACK")) {{ t_relay(); exit; }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"#,
            modules = modules_dir().display(),
            ctl = ctl.display(),
        );
        std::fs::write(dir.join("kamailio.cfg"), cfg).expect("write kamailio.cfg");
        let (child, log) = spawn(dir, &[]);
        let k = Kamailio {
            child,
            addr,
            ctl,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while k.dump().is_none() {
            assert!(
                Instant::now() < deadline,
                "kamailio did not answer on its control socket:\n{}",
                k.log_text()
            );
            std::thread::yield_now();
        }
        k
    }

    fn dump(&self) -> Option<String> {
        dump(&self.ctl)
    }

    /// The contact addresses bound to `user` now (any domain).
    pub fn bindings(&self, user: &str) -> Vec<String> {
        bindings(&self.ctl, user)
    }

    pub fn log_text(&self) -> String {
        crate::proc::read_to_string(&self.log)
    }
}

/// Starts `kamailio` on `DIR/kamailio.cfg` with `args`, in the foreground (its children
/// forked), its runtime files in `dir` and its log in `DIR/kamailio.log` (returned).
pub(crate) fn spawn(dir: &Path, args: &[String]) -> (Child, PathBuf) {
    let log = dir.join("kamailio.log");
    let out = std::fs::File::create(&log).expect("kamailio log");
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(dir.join("kamailio.cfg"))
        .args(args)
        .args(["-DD", "-E", "-Y"])
        .arg(dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("kamailio (is it installed? scripts/test.sh installs it)");
    (child, log)
}

/// `kamcmd CMD` on the control socket `ctl`: its output, if it succeeded.
pub(crate) fn kamcmd(ctl: &Path, cmd: &str) -> Option<String> {
    let out = Command::new("kamcmd")
        .arg("-s")
        .arg(format!("unix:{}", ctl.display()))
        .arg(cmd)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `kamcmd ul.dump` on the control socket `ctl`.
fn dump(ctl: &Path) -> Option<String> {
    kamcmd(ctl, "ul.dump")
}

fn bindings(ctl: &Path, user: &str) -> Vec<String> {
    let Some(dump) = dump(ctl) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut in_user = false;
    for line in dump.lines() {
        let line = line.trim();
        if let Some(aor) = line.strip_prefix("AoR:") {
            let aor = aor.trim();
            in_user = aor == user || aor.starts_with(&format!("{user}@"));
        } else if let Some(address) = line.strip_prefix("Address:") {
            if in_user {
                out.push(address.trim().to_string());
            }
        }
    }
    out
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a `BindingWatch` saw: the most bindings at once, the number of polls, and every
/// poll that found more than one (their contacts).
pub type Watched = (usize, usize, Vec<Vec<String>>);

/// Polls the bindings of `user` every `period` on its own thread until stopped; keeps the
/// most seen at once and the samples where there were more than one.
pub struct BindingWatch {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<Watched>>,
}

impl BindingWatch {
    pub fn start(k: &Kamailio, user: &str, period: Duration) -> BindingWatch {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (ctl, user) = (k.ctl.clone(), user.to_string());
        let thread = std::thread::spawn(move || {
            let (mut max, mut samples, mut over) = (0, 0, Vec::new());
            loop {
                let b = bindings(&ctl, &user);
                samples += 1;
                max = max.max(b.len());
                if b.len() > 1 {
                    over.push(b);
                }
                // The poll period itself (a sampling clock, not a wait for an event).
                if stopped.recv_timeout(period).is_ok() {
                    return (max, samples, over);
                }
            }
        });
        BindingWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops polling; returns the most bindings seen at once, the number of samples and
    /// every sample that had more than one.
    pub fn finish(mut self) -> Watched {
        let _ = self.stop.send(());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}
