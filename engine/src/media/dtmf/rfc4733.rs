//! RFC 4733 telephone events: DTMF as RTP packets of their own payload type.
//!
//! A key press is one *event*: every packet of it carries the same RTP timestamp (the start
//! of the event) and a growing duration; the last one has the end bit and is sent three times
//! in case of loss (RFC 4733 section 2.5.1.4). The receiver therefore reports a digit the first
//! time it sees a new event timestamp, whatever packet that is: the start (marker) packet, a
//! middle one, or only an end packet when all the others were lost. It remembers the last few
//! event timestamps, so the repeated end packets, or a late packet of a previous event, are
//! never a second digit. Reporting at the first packet gives the IVR the digit about 20 ms
//! after the press instead of after the release.

use std::time::Duration;

use super::DtmfDigit;
use crate::media::codec::SAMPLES_PER_FRAME;

/// How many recent event timestamps the receiver remembers.
const REMEMBERED_EVENTS: usize = 8;
/// Volume sent in our events: -10 dBm0, the usual keypad level.
const VOLUME: u8 = 10;
/// Copies of the final packet (RFC 4733 section 2.5.1.4).
const END_PACKETS: u8 = 3;
/// Shortest event we send; shorter presses are not reliably recognised by gateways.
const MIN_DURATION: Duration = Duration::from_millis(40);
/// Longest event we send as one event: the duration field has 16 bits of 8 kHz samples.
const MAX_DURATION: Duration = Duration::from_millis(8000);

/// The four-byte event payload (RFC 4733 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code; 0-15 are DTMF digits.
    pub event: u8,
    /// The event has ended.
    pub end: bool,
    /// Power level, in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Reads the first event of a payload; `None` when shorter than four bytes.
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        let bytes = payload.get(..4)?;
        Some(EventPayload {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The wire form.
    pub fn to_bytes(self) -> [u8; 4] {
        let [high, low] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            high,
            low,
        ]
    }
}

/// Turns telephone-event packets into digits, once per key press.
#[derive(Debug, Clone, Default)]
pub struct Rfc4733Receiver {
    /// Timestamps of recent events, oldest first.
    recent: Vec<u32>,
    /// The latest event: timestamp, code, duration, ended.
    last: Option<(u32, u8, u16, bool)>,
}

impl Rfc4733Receiver {
    /// A receiver that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one telephone-event packet; returns the digit when it starts a new event.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<DtmfDigit> {
        let event = EventPayload::parse(payload)?;
        let digit = DtmfDigit::from_event_code(event.event)?;
        if self.recent.contains(&timestamp) {
            if let Some(last) = self.last.as_mut().filter(|last| last.0 == timestamp) {
                last.2 = last.2.max(event.duration);
                last.3 |= event.end;
            }
            return None;
        }
        // RFC 4733 2.5.1.3: an event longer than the 16-bit duration continues in a segment
        // whose timestamp is the previous one plus the previous duration; same key press.
        let continuation = self.last.is_some_and(|(ts, code, duration, ended)| {
            !ended && code == event.event && timestamp.wrapping_sub(ts) == u32::from(duration)
        });
        if self.recent.len() == REMEMBERED_EVENTS {
            self.recent.remove(0);
        }
        self.recent.push(timestamp);
        self.last = Some((timestamp, event.event, event.duration, event.end));
        (!continuation).then_some(digit)
    }
}

/// One packet of an outgoing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Set on the first packet of the event only.
    pub marker: bool,
    /// RTP timestamp: the event start, the same for every packet.
    pub timestamp: u32,
    /// The payload to send.
    pub payload: [u8; 4],
}

/// The packets of one outgoing digit, one per 20 ms slot.
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    digit: DtmfDigit,
    timestamp: u32,
    total: u16,
    sent_duration: u16,
    ends_sent: u8,
}

impl Rfc4733Sender {
    /// An event for `digit` lasting `duration` (rounded up to 20 ms, within 40 ms..8 s),
    /// starting at RTP timestamp `timestamp`.
    pub fn new(digit: DtmfDigit, duration: Duration, timestamp: u32) -> Self {
        let frame = SAMPLES_PER_FRAME as u64;
        let samples = duration.clamp(MIN_DURATION, MAX_DURATION).as_millis() as u64 * 8;
        let total = samples.div_ceil(frame) * frame;
        Rfc4733Sender {
            digit,
            timestamp,
            // At most 8 s = 64 000 samples, which fits the 16-bit field.
            total: total.min(u64::from(u16::MAX)) as u16,
            sent_duration: 0,
            ends_sent: 0,
        }
    }

    /// The packet for the next 20 ms slot, `None` once the three end packets are out.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        if self.ends_sent == END_PACKETS {
            return None;
        }
        let marker = self.sent_duration == 0;
        self.sent_duration = self
            .sent_duration
            .saturating_add(SAMPLES_PER_FRAME as u16)
            .min(self.total);
        let end = self.sent_duration == self.total;
        if end {
            self.ends_sent += 1;
        }
        let payload = EventPayload {
            event: self.digit.event_code(),
            end,
            volume: VOLUME,
            duration: self.sent_duration,
        };
        Some(EventPacket {
            marker,
            timestamp: self.timestamp,
            payload: payload.to_bytes(),
        })
    }

    /// All packets have been produced.
    pub fn is_done(&self) -> bool {
        self.ends_sent == END_PACKETS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(c: char) -> DtmfDigit {
        DtmfDigit::from_char(c).expect("valid digit")
    }

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        EventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn payload_round_trips() {
        let bytes = [11, 0x8A, 0x03, 0x20];
        let event = EventPayload::parse(&bytes).expect("four bytes");
        assert_eq!(
            event,
            EventPayload {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(event.to_bytes(), bytes);
        assert_eq!(EventPayload::parse(&bytes[..3]), None);
    }

    #[test]
    fn a_full_event_with_three_end_packets_is_one_digit() {
        let mut rx = Rfc4733Receiver::new();
        let mut digits = Vec::new();
        for (end, duration) in [
            (false, 160),
            (false, 320),
            (false, 480),
            (true, 640),
            (true, 640),
            (true, 640),
        ] {
            digits.extend(rx.on_packet(1000, &payload(5, end, duration)));
        }
        assert_eq!(digits, vec![digit('5')]);
    }

    #[test]
    fn an_event_seen_only_through_its_end_packets_still_counts_once() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(
            rx.on_packet(4000, &payload(11, true, 800)),
            Some(digit('#'))
        );
        assert_eq!(rx.on_packet(4000, &payload(11, true, 800)), None);
    }

    #[test]
    fn the_same_key_twice_is_two_digits_and_late_packets_are_ignored() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(rx.on_packet(0, &payload(1, false, 160)), Some(digit('1')));
        assert_eq!(rx.on_packet(0, &payload(1, true, 800)), None);
        assert_eq!(
            rx.on_packet(2400, &payload(1, false, 160)),
            Some(digit('1'))
        );
        assert_eq!(
            rx.on_packet(0, &payload(1, true, 800)),
            None,
            "late end of the first press"
        );
        assert_eq!(rx.on_packet(2400, &payload(1, true, 800)), None);
    }

    #[test]
    fn non_digit_events_and_short_payloads_are_ignored() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(rx.on_packet(0, &payload(16, false, 160)), None); // flash
        assert_eq!(rx.on_packet(0, &[1, 2]), None);
    }

    #[test]
    fn a_long_event_segment_is_not_a_new_digit() {
        let mut rx = Rfc4733Receiver::new();
        assert_eq!(
            rx.on_packet(100, &payload(0, false, u16::MAX)),
            Some(digit('0'))
        );
        assert_eq!(
            rx.on_packet(100 + u32::from(u16::MAX), &payload(0, false, 160)),
            None
        );
    }

    #[test]
    fn sender_produces_the_rfc_sequence() {
        let mut tx = Rfc4733Sender::new(digit('9'), Duration::from_millis(100), 777);
        let packets: Vec<EventPacket> = std::iter::from_fn(|| tx.next_packet()).collect();
        assert!(tx.is_done());
        let summary: Vec<(bool, u32, bool, u16)> = packets
            .iter()
            .map(|p| {
                let e = EventPayload::parse(&p.payload).expect("four bytes");
                assert_eq!((e.event, e.volume), (9, 10));
                (p.marker, p.timestamp, e.end, e.duration)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (true, 777, false, 160),
                (false, 777, false, 320),
                (false, 777, false, 480),
                (false, 777, false, 640),
                (false, 777, true, 800),
                (false, 777, true, 800),
                (false, 777, true, 800),
            ]
        );
        // And our own receiver reads it as one digit.
        let mut rx = Rfc4733Receiver::new();
        let digits: Vec<DtmfDigit> = packets
            .iter()
            .filter_map(|p| rx.on_packet(p.timestamp, &p.payload))
            .collect();
        assert_eq!(digits, vec![digit('9')]);
    }

    #[test]
    fn sender_durations_are_rounded_and_bounded() {
        let count = |ms| {
            let mut tx = Rfc4733Sender::new(digit('1'), Duration::from_millis(ms), 0);
            std::iter::from_fn(|| tx.next_packet()).count()
        };
        // One packet per 20 ms, the last of them carrying the end bit, then two more copies.
        assert_eq!(count(0), 2 + 2, "at least 40 ms");
        assert_eq!(count(50), 3 + 2, "rounded up to 60 ms");
        assert_eq!(count(60_000), 400 + 2, "at most 8 s");
    }
}
