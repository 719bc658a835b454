//! systemd's service protocol, as `Type=notify` units use it (sd_notify(3)): the process
//! sends `READY=1` once it serves, `WATCHDOG=1` at least every `WatchdogSec` while it is
//! healthy, and `STOPPING=1` when it begins to stop. Each is one datagram to the Unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Outside
//! systemd the variable is unset and nothing is sent. Written here with std's Unix sockets
//! rather than a crate: the protocol is a datagram, and unsafe code is forbidden.
//!
//! Also here: the check that the open-files limit fits `sip.max_calls`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// File descriptors one call may hold: RTP and RTCP sockets of two legs (a bridged call),
/// the recording file and its journal.
const FDS_PER_CALL: u64 = 6;
/// Descriptors the engine holds besides calls (listeners, databases, logs, prompts).
const FDS_BASE: u64 = 1024;

/// Where to notify systemd, if it asked for it.
pub struct Notify {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl Notify {
    /// From `$NOTIFY_SOCKET` (None outside a notify unit, or if the socket is unusable).
    pub fn from_env() -> Option<Notify> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let name = name.to_str()?;
        let addr = match name.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name).ok()?
            }
            #[cfg(not(target_os = "linux"))]
            Some(_) => return None,
            None => std::os::unix::net::SocketAddr::from_pathname(name).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notify { socket, addr })
    }

    /// Sends one state (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=...`).
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            tracing::warn!(error = %e, state, "systemd notification not sent");
        }
    }
}

/// How often to feed the watchdog: half of `$WATCHDOG_USEC`, if it is meant for this
/// process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_period() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

/// Feeds the watchdog while `alive` says the engine works; stops feeding (so that systemd
/// restarts the service) when it does not.
pub async fn watchdog<F, Fut>(notify: std::sync::Arc<Notify>, period: Duration, alive: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        if tokio::time::timeout(period, alive()).await == Ok(true) {
            notify.send("WATCHDOG=1");
        } else {
            tracing::error!("the engine did not answer its health check: the watchdog is not fed");
        }
    }
}

/// Warns when the open-files limit cannot hold `max_calls` calls.
pub fn check_open_files(max_calls: u64) {
    let needed = FDS_BASE + FDS_PER_CALL * max_calls;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    if let Some(limit) = limit.filter(|l| *l < needed) {
        tracing::warn!(
            limit,
            needed,
            max_calls,
            "the open-files limit is below what sip.max_calls needs (about 6 per call): raise LimitNOFILE or `ulimit -n`"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_systemd_names() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let addr = std::os::unix::net::SocketAddr::from_pathname(&path).expect("addr");
        let n = Notify {
            socket: UnixDatagram::unbound().expect("socket"),
            addr,
        };
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1");
    }
}
