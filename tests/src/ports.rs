//! Free loopback ports for tests running in parallel (threads and processes).

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};

/// Where `free_sip_port` looks: below the kernel's ephemeral range (32768 and up on Linux)
/// and below the RTP ranges of `rtp_range`, so that no socket bound to port 0 (a test's
/// phone, sipp, a client connection) can take a port between its pick and the engine's bind.
const SIP_LOW: u32 = 20_000;
const SIP_PORTS: u32 = 10_000;

static NEXT_SIP: AtomicU16 = AtomicU16::new(0);

/// A port free for both UDP and TCP on 127.0.0.1 at the time of the call, outside the
/// ephemeral range, and always even, with the odd port above it free too: a SIP stack that
/// listens for TLS on the next port (baresip does) never meets the next pick. Each test
/// process starts at its own offset (by process id) and walks on, so parallel test binaries
/// rarely try the same port.
pub fn free_sip_port() -> u16 {
    let pairs = SIP_PORTS / 2;
    let start = (std::process::id() * 211) % pairs;
    for _ in 0..pairs {
        let step = NEXT_SIP.fetch_add(1, Ordering::Relaxed) as u32;
        let port = (SIP_LOW + 2 * ((start + step) % pairs)) as u16;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let next = std::net::SocketAddr::from(([127, 0, 0, 1], port + 1));
        if UdpSocket::bind(addr).is_ok()
            && TcpListener::bind(addr).is_ok()
            && TcpListener::bind(next).is_ok()
        {
            return port;
        }
    }
    panic!(
        "no free loopback port in {SIP_LOW}..{}",
        SIP_LOW + SIP_PORTS
    );
}

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

/// A distinct RTP port range per engine in this test process; spread by process id so that
/// parallel test binaries rarely collide (the engine skips ports in use anyway).
pub fn rtp_range(size: u16) -> (u16, u16) {
    let slot = NEXT_RANGE.fetch_add(1, Ordering::Relaxed) as u32;
    let base = 30_000 + ((std::process::id() % 40) * 700 + slot * size as u32) % 30_000;
    let low = (base as u16) & !1;
    (low, low + size - 1)
}
