//! Symmetric RTP without hijack: send to where the remote's media really comes from, but
//! only ever to a source the engine may talk to.
//!
//! Behind NAT the address in the SDP is often private or wrong, but the phone sends from the
//! address we can reach it on (RFC 4961, "comedia"), so the stream answers the source of the
//! media it receives. Left at that, anyone who can reach the RTP port can take the stream
//! over ("RTP bleed"): hear the call, inject DTMF, or aim the call's audio at a third host.
//! Three rules close that door:
//!
//! 1. **Admission.** A datagram (RTP or RTCP) is looked at only if its source may carry this
//!    stream's media: when the SDP gave an address (the stream only keeps one inside
//!    `sip.allowed_networks`), its host; otherwise any host inside `sip.allowed_networks`.
//!    Everything else is refused and counted as coming from an unexpected source.
//! 2. **Learning.** The SDP address itself is used from its first packet. Any other source
//!    (the NAT case) is learnt only from [`LEARN_PACKETS`] packets in a row with consecutive
//!    sequence numbers, so a stray or sprayed packet never moves the stream.
//! 3. **Moving.** Once a source is latched, another one replaces it only after the same
//!    learning *and* a silence of [`RELATCH_QUIET`] from the latched source: a NAT
//!    rebinding satisfies both (the old mapping goes quiet for good); a third party
//!    talking over the real phone satisfies neither.
//!
//! Packets from a source that is not latched are neither played nor decoded. Since the send
//! target is the latched source or the SDP address, and both passed admission, nothing is
//! ever sent outside the allow-list.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::acl::Acl;

/// Packets with consecutive sequence numbers from a new source needed to learn it.
pub const LEARN_PACKETS: u32 = 3;
/// Silence of the latched source needed before moving away from it.
pub const RELATCH_QUIET: Duration = Duration::from_millis(100);

/// What to do with an RTP packet, given its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source: use it.
    Use,
    /// Its source was latched by this very packet: use it.
    Latched,
    /// From an admissible source that is being learnt (or waits for the latched one to go
    /// quiet): not used.
    Learning,
    /// From a source that may not carry this stream: refused.
    Refused,
}

/// A source being learnt: the last sequence number seen from it and the run length.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    last_seq: u16,
    run: u32,
}

/// The latched media source.
#[derive(Debug, Clone, Default)]
pub struct Latch {
    latched: Option<(SocketAddr, Instant)>,
    candidate: Option<Candidate>,
}

impl Latch {
    /// Whether a datagram from `from` may concern this stream at all (rule 1). `sdp` is the
    /// SDP address the stream kept (already inside the allow-list).
    pub fn admits(&self, from: SocketAddr, sdp: Option<SocketAddr>, allowed: &Acl) -> bool {
        if self.latched.is_some_and(|(address, _)| address == from) {
            return true;
        }
        match sdp {
            Some(sdp) => same_host(sdp.ip(), from.ip()),
            None => allowed.allows(from.ip()),
        }
    }

    /// Accounts for a valid RTP packet with sequence number `seq` from `from`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        seq: u16,
        sdp: Option<SocketAddr>,
        allowed: &Acl,
    ) -> Verdict {
        if !self.admits(from, sdp, allowed) {
            return Verdict::Refused;
        }
        match self.latched {
            Some((address, _)) if address == from => {
                self.latched = Some((from, now));
                self.candidate = None;
                return Verdict::Use;
            }
            None if sdp == Some(from) => {
                self.latch(now, from);
                return Verdict::Latched;
            }
            _ => {}
        }
        let run = match self.candidate {
            Some(c) if c.from == from && seq == c.last_seq.wrapping_add(1) => c.run + 1,
            _ => 1,
        };
        self.candidate = Some(Candidate {
            from,
            last_seq: seq,
            run,
        });
        let quiet = self
            .latched
            .is_none_or(|(_, heard)| now.saturating_duration_since(heard) >= RELATCH_QUIET);
        if run >= LEARN_PACKETS && quiet {
            self.latch(now, from);
            Verdict::Latched
        } else {
            Verdict::Learning
        }
    }

    /// Where to send: the latched address, else the SDP one.
    pub fn target(&self, sdp: Option<SocketAddr>) -> Option<SocketAddr> {
        self.latched.map(|(address, _)| address).or(sdp)
    }

    /// Forgets the latched address (the SDP address changed: a re-INVITE moved the media).
    pub fn reset(&mut self) {
        *self = Latch::default();
    }

    fn latch(&mut self, now: Instant, from: SocketAddr) {
        self.latched = Some((from, now));
        self.candidate = None;
    }
}

/// Same host, an IPv4 address and its IPv4-mapped IPv6 form being the same.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Network;

    const MS: Duration = Duration::from_millis(1);

    fn addr(host: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, host], port))
    }

    fn lan() -> Acl {
        Acl::new(vec![Network::parse("192.0.2.0/24").expect("net")])
    }

    /// Feeds `count` packets with consecutive sequence numbers from `seq`, 20 ms apart.
    fn run(
        latch: &mut Latch,
        at: Instant,
        from: SocketAddr,
        seq: u16,
        count: u16,
        sdp: Option<SocketAddr>,
    ) -> Vec<Verdict> {
        (0..count)
            .map(|i| {
                let now = at + MS * (20 * u32::from(i));
                latch.on_packet(now, from, seq.wrapping_add(i), sdp, &lan())
            })
            .collect()
    }

    #[test]
    fn the_sdp_address_latches_at_once_another_source_of_its_host_after_a_run() {
        let t0 = Instant::now();
        let sdp = Some(addr(1, 4000));
        let mut latch = Latch::default();
        assert_eq!(latch.target(sdp), sdp);
        assert_eq!(
            latch.on_packet(t0, addr(1, 4000), 7, sdp, &lan()),
            Verdict::Latched
        );

        let mut natted = Latch::default();
        let verdicts = run(&mut natted, t0, addr(1, 6000), 65_535, 3, sdp);
        assert_eq!(
            verdicts,
            [Verdict::Learning, Verdict::Learning, Verdict::Latched],
            "three in a row, across the sequence wrap"
        );
        assert_eq!(natted.target(sdp), Some(addr(1, 6000)));
    }

    #[test]
    fn sources_outside_the_sdp_host_or_the_allow_list_are_refused() {
        let t0 = Instant::now();
        let mut latch = Latch::default();
        // With an SDP address, another allowed host is refused too.
        let sdp = Some(addr(1, 4000));
        assert!(run(&mut latch, t0, addr(2, 4000), 1, 10, sdp)
            .iter()
            .all(|v| *v == Verdict::Refused));
        // Without one, allowed hosts may be learnt, others never.
        let outside = SocketAddr::from(([198, 51, 100, 7], 4000));
        assert!(run(&mut latch, t0, outside, 1, 10, None)
            .iter()
            .all(|v| *v == Verdict::Refused));
        assert_eq!(latch.target(None), None);
        assert_eq!(
            run(&mut latch, t0, addr(2, 4000), 1, 3, None).last(),
            Some(&Verdict::Latched)
        );
        assert!(!latch.admits(outside, None, &lan()));
    }

    #[test]
    fn a_source_is_learnt_only_from_consecutive_sequence_numbers() {
        let t0 = Instant::now();
        let mut latch = Latch::default();
        let spray = addr(9, 5000);
        for (i, seq) in [10u16, 12, 14, 13, 40, 41, 1000, 1002]
            .into_iter()
            .enumerate()
        {
            let now = t0 + MS * (20 * i as u32);
            assert_eq!(
                latch.on_packet(now, spray, seq, None, &lan()),
                Verdict::Learning,
                "seq {seq}"
            );
        }
        assert_eq!(latch.target(None), None);
    }

    #[test]
    fn a_latched_source_moves_only_when_it_goes_quiet() {
        let t0 = Instant::now();
        let mut latch = Latch::default();
        let phone = addr(2, 4000);
        run(&mut latch, t0, phone, 100, 3, None);
        // An intruder interleaved with the real source, even in sequence, never wins.
        for i in 0..20u16 {
            let now = t0 + MS * (100 + 20 * u32::from(i));
            let intruder = latch.on_packet(now, addr(3, 4000), 500 + i, None, &lan());
            assert_eq!(intruder, Verdict::Learning);
            assert_eq!(
                latch.on_packet(now + MS, phone, 103 + i, None, &lan()),
                Verdict::Use
            );
        }
        // The real source moves for good (NAT rebinding): quiet old address, steady new one.
        let moved = t0 + MS * 2000;
        let verdicts = run(&mut latch, moved, addr(2, 4002), 900, 3, None);
        assert_eq!(verdicts.last(), Some(&Verdict::Latched));
        assert_eq!(latch.target(None), Some(addr(2, 4002)));
        latch.reset();
        assert_eq!(latch.target(None), None);
    }
}
