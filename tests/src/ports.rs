//! Free loopback ports for tests running in parallel (threads and processes).

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};

/// A port free for both UDP and TCP on 127.0.0.1 at the time of the call.
pub fn free_sip_port() -> u16 {
    for _ in 0..200 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = udp.local_addr() else { continue };
        if TcpListener::bind(addr).is_ok() {
            return addr.port();
        }
    }
    panic!("no free loopback port found");
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
