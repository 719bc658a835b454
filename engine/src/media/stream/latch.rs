//! Symmetric RTP: send to where the remote's media really comes from.
//!
//! Behind NAT, the address in the SDP is often private or wrong, but the phone sends from the
//! address we can reach it on (RFC 4961, "comedia"). The first valid RTP packet latches the
//! send target to its source; until then we send to the SDP address.
//!
//! Re-latching is guarded against RTP injection ("RTP bleed"): a new source replaces the
//! latched one only after [`RELATCH_PACKETS`] consecutive packets from it while the latched
//! source has been silent for [`RELATCH_QUIET`]. A NAT rebinding satisfies both (the old
//! mapping goes quiet for good); a third party spraying packets at our port while the real
//! phone keeps talking satisfies neither. Packets from an address that is not latched are
//! not played or decoded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Consecutive packets from a new address needed to move to it.
pub const RELATCH_PACKETS: u32 = 3;
/// Silence of the latched address needed before moving away from it.
pub const RELATCH_QUIET: Duration = Duration::from_millis(100);

/// The latched media source.
#[derive(Debug, Clone, Default)]
pub struct Latch {
    latched: Option<(SocketAddr, Instant)>,
    candidate: Option<(SocketAddr, u32)>,
}

impl Latch {
    /// Accounts for a valid RTP packet from `from`; returns the address when (re)latched.
    pub fn on_packet(&mut self, now: Instant, from: SocketAddr) -> Option<SocketAddr> {
        match self.latched {
            None => {
                self.latched = Some((from, now));
                Some(from)
            }
            Some((address, _)) if address == from => {
                self.latched = Some((from, now));
                self.candidate = None;
                None
            }
            Some((_, last_heard)) => {
                let count = match self.candidate {
                    Some((candidate, count)) if candidate == from => count + 1,
                    _ => 1,
                };
                self.candidate = Some((from, count));
                let quiet = now.saturating_duration_since(last_heard) >= RELATCH_QUIET;
                if count >= RELATCH_PACKETS && quiet {
                    self.latched = Some((from, now));
                    self.candidate = None;
                    Some(from)
                } else {
                    None
                }
            }
        }
    }

    /// Whether packets from `from` are to be used.
    pub fn accepts(&self, from: SocketAddr) -> bool {
        self.latched.is_some_and(|(address, _)| address == from)
    }

    /// Where to send: the latched address, else the SDP one.
    pub fn target(&self, sdp: Option<SocketAddr>) -> Option<SocketAddr> {
        self.latched.map(|(address, _)| address).or(sdp)
    }

    /// Forgets the latched address (the SDP address changed: a re-INVITE moved the media).
    pub fn reset(&mut self) {
        *self = Latch::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn latches_on_first_packet_and_relatches_only_when_the_old_source_is_quiet() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut latch = Latch::default();
        assert_eq!(latch.target(Some(addr(1))), Some(addr(1)));
        assert_eq!(latch.on_packet(t0, addr(2)), Some(addr(2)));
        assert_eq!(latch.target(Some(addr(1))), Some(addr(2)));
        // An intruder interleaved with the real source never wins.
        for i in 1..20u32 {
            assert_eq!(latch.on_packet(t0 + ms * (20 * i), addr(3)), None);
            assert_eq!(latch.on_packet(t0 + ms * (20 * i + 1), addr(3)), None);
            assert_eq!(latch.on_packet(t0 + ms * (20 * i + 2), addr(2)), None);
        }
        assert!(latch.accepts(addr(2)) && !latch.accepts(addr(3)));
        // The real source moves (NAT rebinding): quiet old address, steady new one.
        let moved = t0 + ms * 1000;
        assert_eq!(latch.on_packet(moved, addr(4)), None);
        assert_eq!(latch.on_packet(moved + ms * 20, addr(4)), None);
        assert_eq!(latch.on_packet(moved + ms * 40, addr(4)), Some(addr(4)));
        assert!(latch.accepts(addr(4)));
        latch.reset();
        assert_eq!(latch.target(None), None);
    }
}
