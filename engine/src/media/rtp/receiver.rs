//! The receiving half of an RTP session: what arrived from the remote's SSRC.
//!
//! Sequence numbers are extended to 64 bits (the wrap count in the high bits, RFC 3550 A.1)
//! by choosing, of the three candidates around the highest number seen, the closest one. A
//! bitmap of the last 128 numbers tells a duplicate from a late packet. A jump of more than
//! [`MAX_DROPOUT`] ahead or [`REORDER_WINDOW`] behind is only believed when the next packet
//! follows it (the sender restarted); a lone stray packet is discarded instead.
//!
//! A new SSRC (a PBX re-anchoring media, a transfer) is tolerated: the old source's counts are
//! folded into the totals and tracking starts over. Extended numbers keep growing across
//! sources, so they can key buffers for the whole call.
//!
//! Interarrival jitter follows RFC 3550 A.8 in timestamp units, fed only by audio packets:
//! RFC 4733 events repeat their start timestamp, which would read as huge jitter.

use std::time::{Duration, Instant};

/// Largest forward jump accepted as loss rather than a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u64 = 3000;
/// How far behind the highest number a packet may arrive and still be used.
pub const REORDER_WINDOW: u64 = 128;

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A packet seen for the first time; its payload should be used.
    Accepted {
        /// 64-bit extended sequence number, increasing for the whole call.
        extended_seq: u64,
        /// First packet of a new SSRC (or of the first one).
        new_source: bool,
    },
    /// Already received: drop it.
    Duplicate,
    /// Too old, or a jump not yet confirmed by a following packet: drop it.
    Discarded,
}

/// Counters for all sources seen on the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceiverStats {
    /// Current remote SSRC.
    pub ssrc: Option<u32>,
    /// Distinct packets accepted.
    pub packets_received: u64,
    /// Packets expected but never received (RFC 3550 A.3), summed over sources.
    pub packets_lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets too old or out of sequence to use.
    pub discarded: u64,
    /// Times the remote changed SSRC or restarted its sequence.
    pub source_changes: u64,
    /// Interarrival jitter of the current source.
    pub jitter: Duration,
    /// Highest extended sequence number of the current source.
    pub highest_seq: Option<u64>,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    base_seq: u64,
    max_seq: u64,
    /// Bit `i` set: `max_seq - i` was received.
    seen: u128,
    received: u64,
    /// After a big jump, the sequence number that would confirm a restart.
    probation: Option<u16>,
    /// Arrival time and timestamp of the previous audio packet, in clock units.
    last_timing: Option<(i64, u32)>,
    jitter: f64,
    /// `expected` and `received` at the previous receiver report (RFC 3550 A.3).
    reported: (u64, u64),
}

impl Source {
    fn new(ssrc: u32, extended_seq: u64) -> Self {
        Source {
            ssrc,
            base_seq: extended_seq,
            max_seq: extended_seq,
            seen: 1,
            received: 1,
            probation: None,
            last_timing: None,
            jitter: 0.0,
            reported: (0, 0),
        }
    }

    fn expected(&self) -> u64 {
        self.max_seq - self.base_seq + 1
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// The candidate for `seq` closest to the highest extended number seen.
    fn extend(&self, seq: u16) -> u64 {
        let candidate = (self.max_seq & !0xFFFF) | u64::from(seq);
        if candidate > self.max_seq + 0x8000 && candidate >= 0x1_0000 {
            candidate - 0x1_0000
        } else if candidate + 0x8000 < self.max_seq {
            candidate + 0x1_0000
        } else {
            candidate
        }
    }
}

/// Sequence, loss and jitter tracking of the remote's stream.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    clock_rate: u32,
    epoch: Option<Instant>,
    source: Option<Source>,
    /// Counts of sources no longer current.
    closed_received: u64,
    closed_lost: u64,
    duplicates: u64,
    discarded: u64,
    source_changes: u64,
}

impl RtpReceiver {
    /// A receiver for a stream with this RTP clock rate.
    pub fn new(clock_rate: u32) -> Self {
        RtpReceiver {
            clock_rate: clock_rate.max(1),
            epoch: None,
            source: None,
            closed_received: 0,
            closed_lost: 0,
            duplicates: 0,
            discarded: 0,
            source_changes: 0,
        }
    }

    /// Accounts for one packet. `timed` says whether its timestamp is a sampling instant
    /// (audio) and may feed the jitter estimate.
    pub fn on_packet(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        timed: bool,
    ) -> Arrival {
        let arrival = self.arrival_units(now);
        let Some(source) = self.source.as_mut().filter(|s| s.ssrc == ssrc) else {
            let extended_seq = self.start_source(ssrc, seq);
            self.update_jitter(arrival, timestamp, timed);
            return Arrival::Accepted {
                extended_seq,
                new_source: true,
            };
        };
        let extended = source.extend(seq);
        let arrival_kind = if extended > source.max_seq && extended - source.max_seq <= MAX_DROPOUT
        {
            let shift = extended - source.max_seq;
            source.seen = if shift >= 128 {
                0
            } else {
                source.seen << shift
            };
            source.seen |= 1;
            source.max_seq = extended;
            source.received += 1;
            source.probation = None;
            Arrival::Accepted {
                extended_seq: extended,
                new_source: false,
            }
        } else if extended <= source.max_seq && source.max_seq - extended < REORDER_WINDOW {
            let bit = 1u128 << (source.max_seq - extended);
            if source.seen & bit != 0 {
                self.duplicates += 1;
                return Arrival::Duplicate;
            }
            source.seen |= bit;
            source.received += 1;
            Arrival::Accepted {
                extended_seq: extended,
                new_source: false,
            }
        } else if source.probation == Some(seq) {
            // Two packets in sequence after a jump: the sender restarted its numbering.
            let extended_seq = self.start_source(ssrc, seq);
            self.update_jitter(arrival, timestamp, timed);
            return Arrival::Accepted {
                extended_seq,
                new_source: true,
            };
        } else {
            source.probation = Some(seq.wrapping_add(1));
            self.discarded += 1;
            return Arrival::Discarded;
        };
        self.update_jitter(arrival, timestamp, timed);
        arrival_kind
    }

    /// Current counters.
    pub fn stats(&self) -> ReceiverStats {
        let (received, lost) = self
            .source
            .as_ref()
            .map_or((0, 0), |s| (s.received, s.lost()));
        ReceiverStats {
            ssrc: self.source.as_ref().map(|s| s.ssrc),
            packets_received: self.closed_received + received,
            packets_lost: self.closed_lost + lost,
            duplicates: self.duplicates,
            discarded: self.discarded,
            source_changes: self.source_changes,
            jitter: self.jitter(),
            highest_seq: self.source.as_ref().map(|s| s.max_seq),
        }
    }

    /// Interarrival jitter of the current source.
    pub fn jitter(&self) -> Duration {
        let units = self.source.as_ref().map_or(0.0, |s| s.jitter);
        Duration::from_secs_f64(units / f64::from(self.clock_rate))
    }

    /// Figures for an RTCP report block about the current source, resetting the interval
    /// used for the fraction lost (RFC 3550 A.3). `None` before any packet.
    pub fn report(&mut self) -> Option<SourceReport> {
        let source = self.source.as_mut()?;
        let expected = source.expected();
        let expected_interval = expected - source.reported.0;
        let received_interval = source.received.saturating_sub(source.reported.1);
        source.reported = (expected, source.received);
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |fraction| fraction.min(255) as u8);
        Some(SourceReport {
            ssrc: source.ssrc,
            fraction_lost,
            cumulative_lost: source.lost().min(0x7F_FFFF) as u32,
            // The wire field is the low 32 bits: cycles since the source's first packet.
            extended_highest_seq: (source.max_seq - (source.base_seq & !0xFFFF)) as u32,
            jitter: source.jitter as u32,
        })
    }

    fn start_source(&mut self, ssrc: u32, seq: u16) -> u64 {
        // Start one wrap cycle above the previous source so that extended numbers never
        // go backwards, and at least one cycle up so a late packet cannot underflow.
        let cycle = self.source.as_ref().map_or(1, |s| (s.max_seq >> 16) + 2);
        if let Some(old) = self.source.take() {
            self.closed_received += old.received;
            self.closed_lost += old.lost();
            self.source_changes += 1;
            tracing::debug!(old_ssrc = old.ssrc, new_ssrc = ssrc, "rtp source changed");
        }
        let extended_seq = (cycle << 16) | u64::from(seq);
        self.source = Some(Source::new(ssrc, extended_seq));
        extended_seq
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, where D is the change in transit time.
    fn update_jitter(&mut self, arrival: i64, timestamp: u32, timed: bool) {
        let Some(source) = self.source.as_mut().filter(|_| timed) else {
            return;
        };
        if let Some((last_arrival, last_timestamp)) = source.last_timing {
            let sent = i64::from(timestamp.wrapping_sub(last_timestamp) as i32);
            let d = ((arrival - last_arrival) - sent).unsigned_abs() as f64;
            source.jitter += (d - source.jitter) / 16.0;
        }
        source.last_timing = Some((arrival, timestamp));
    }

    fn arrival_units(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch);
        (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as i64
    }
}

/// The per-source figures of an RTCP report block (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceReport {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn accepted(arrival: Arrival) -> u64 {
        match arrival {
            Arrival::Accepted { extended_seq, .. } => extended_seq,
            other => panic!("expected accepted, got {other:?}"),
        }
    }

    #[test]
    fn extended_numbers_survive_wrap_and_count_loss() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        let mut seq = 65_530u16;
        let mut last = 0;
        for i in 0..20u32 {
            if i == 10 || i == 11 {
                seq = seq.wrapping_add(1); // two packets lost across the wrap
                continue;
            }
            let ext = accepted(rx.on_packet(t0 + 20 * MS * i, 7, seq, 160 * i, true));
            assert!(ext > last, "extended numbers increase");
            last = ext;
            seq = seq.wrapping_add(1);
        }
        let stats = rx.stats();
        assert_eq!(stats.packets_received, 18);
        assert_eq!(stats.packets_lost, 2);
        assert_eq!(stats.ssrc, Some(7));
        assert_eq!(
            stats.jitter,
            Duration::ZERO,
            "perfectly paced packets have no jitter"
        );
    }

    #[test]
    fn duplicates_and_reordering() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        accepted(rx.on_packet(t0, 1, 100, 0, true));
        accepted(rx.on_packet(t0, 1, 102, 320, true));
        assert_eq!(rx.on_packet(t0, 1, 102, 320, true), Arrival::Duplicate);
        accepted(rx.on_packet(t0, 1, 101, 160, true)); // late, not lost
        assert_eq!(rx.on_packet(t0, 1, 101, 160, true), Arrival::Duplicate);
        let stats = rx.stats();
        assert_eq!(
            (stats.packets_received, stats.packets_lost, stats.duplicates),
            (3, 0, 2)
        );
    }

    #[test]
    fn stray_jump_is_discarded_but_a_confirmed_restart_is_followed() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        accepted(rx.on_packet(t0, 1, 10, 0, true));
        assert_eq!(rx.on_packet(t0, 1, 40_000, 0, true), Arrival::Discarded);
        accepted(rx.on_packet(t0, 1, 11, 160, true));
        assert_eq!(rx.on_packet(t0, 1, 20_000, 0, true), Arrival::Discarded);
        let restarted = rx.on_packet(t0, 1, 20_001, 160, true);
        assert!(matches!(
            restarted,
            Arrival::Accepted {
                new_source: true,
                ..
            }
        ));
        assert_eq!(rx.stats().source_changes, 1);
        assert_eq!(rx.stats().packets_received, 3);
    }

    #[test]
    fn ssrc_change_is_tolerated_and_numbers_keep_growing() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        let first = accepted(rx.on_packet(t0, 1, 60_000, 0, true));
        let second = rx.on_packet(t0, 2, 5, 0, true);
        assert!(
            matches!(second, Arrival::Accepted { new_source: true, extended_seq } if extended_seq > first)
        );
        accepted(rx.on_packet(t0, 2, 6, 160, true));
        let stats = rx.stats();
        assert_eq!(
            (stats.ssrc, stats.packets_received, stats.source_changes),
            (Some(2), 3, 1)
        );
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        // Packets sent every 20 ms but arriving alternately 0 and 10 ms late.
        for i in 0..200u32 {
            let late = if i % 2 == 0 { 0 } else { 10 };
            rx.on_packet(t0 + MS * (20 * i + late), 9, i as u16, 160 * i, true);
        }
        // |D| is always 80 units, so J converges to 80 units = 10 ms.
        let jitter = rx.jitter().as_secs_f64() * 1000.0;
        assert!((jitter - 10.0).abs() < 0.1, "jitter {jitter} ms");
        // Untimed packets (DTMF events) do not disturb it.
        rx.on_packet(t0 + MS * 5000, 9, 200, 0, false);
        assert!((rx.jitter().as_secs_f64() * 1000.0 - jitter).abs() < 1e-9);
    }

    #[test]
    fn report_block_fraction_lost() {
        let t0 = Instant::now();
        let mut rx = RtpReceiver::new(8000);
        assert!(rx.report().is_none());
        for seq in (0..8u16).filter(|s| *s != 3 && *s != 5) {
            rx.on_packet(t0, 3, seq, 0, false);
        }
        let report = rx.report().expect("a source exists");
        assert_eq!(report.cumulative_lost, 2);
        assert_eq!(report.fraction_lost, (2 * 256 / 8) as u8);
        assert_eq!(report.extended_highest_seq, 7);
        rx.on_packet(t0, 3, 8, 0, false);
        assert_eq!(rx.report().map(|r| r.fraction_lost), Some(0));
    }
}
