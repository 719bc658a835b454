//! The phone's RTP side: one task owning the RTP socket. Every 20 ms (real time, a tokio
//! interval) it sends one G.711 frame of the current [`Signal`] or one RFC 4733 event packet
//! while a digit is being sent; whatever arrives is decoded into the shared [`Received`] ring,
//! and telephone-events become [`PhoneEvent::Dtmf`].
//!
//! The SIP side starts and stops sending ([`MediaCommand`]) as offer/answer completes;
//! receiving runs all the time, so early media is heard too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sip::sdp::Codec;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::received::{Received, ReceivedFrame};
use super::{g711, tone, DtmfVia, PhoneEvent, Signal};

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// A digit lasts 100 ms (5 packets, the fifth with the End bit), its End packet is sent 3
/// times in all (RFC 4733 §2.5.1.4), then 60 ms of audio separate it from the next digit.
const DTMF_HELD_PACKETS: u16 = 5;
const DTMF_END_PACKETS: u16 = 3;
const DTMF_GAP_PACKETS: u16 = 3;
/// RFC 4733 volume field: -10 dBm0.
const DTMF_VOLUME: u8 = 10;
/// The telephone-event payload type assumed before any negotiation (the one we offer).
pub const DEFAULT_TELEPHONE_EVENT: u8 = 101;

/// What offer/answer agreed, as the sender needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaParams {
    /// `None`: the peer asked us not to send (hold, `c=0.0.0.0`).
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// Our direction allows sending.
    pub send: bool,
}

#[derive(Debug)]
pub enum MediaCommand {
    Start(MediaParams),
    Stop,
    /// An RFC 4733 event code (0-9, 10 = `*`, 11 = `#`, 12-15 = A-D).
    Dtmf(u8),
}

/// The RFC 4733 event code of a key.
pub fn dtmf_event(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The key of an RFC 4733 event code.
pub fn dtmf_key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// A digit being sent: the timestamp of its first packet and how many packets went out.
#[derive(Debug, Clone, Copy)]
struct Sending {
    event: u8,
    timestamp: u32,
    packets: u16,
}

/// The sending half's state across frames.
#[derive(Debug)]
struct Sender {
    params: Option<MediaParams>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// Phase of the tone in radians, kept across frames and frequency changes (no clicks).
    phase: f64,
    digits: VecDeque<u8>,
    sending: Option<Sending>,
    /// Audio packets still to send before the next queued digit.
    gap: u16,
}

pub struct Media {
    pub socket: UdpSocket,
    pub commands: mpsc::UnboundedReceiver<MediaCommand>,
    pub signal: watch::Receiver<Signal>,
    /// Shared with the `Phone` handle, whose analysis calls are synchronous.
    pub received: Arc<Mutex<Received>>,
    /// Count of audio frames received, to wake waiters on new audio.
    pub frames: watch::Sender<u64>,
    pub events: mpsc::UnboundedSender<PhoneEvent>,
    /// Seed for SSRC, first sequence number and timestamp (RFC 3550 §5.1: random).
    pub seed: u64,
}

impl Media {
    pub async fn run(mut self) {
        let mut sender = Sender {
            params: None,
            ssrc: self.seed as u32,
            seq: (self.seed >> 32) as u16,
            timestamp: (self.seed >> 16) as u32,
            phase: 0.0,
            digits: VecDeque::new(),
            sending: None,
            gap: 0,
        };
        let mut receiver = Receiver::default();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        // After a stall, send the missed frames at once: the peer's jitter buffer expects the
        // full rate, and timestamps advance per frame anyway.
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::with_capacity(12 + FRAME);
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None => break,
                    Some(MediaCommand::Start(p)) => {
                        receiver.telephone_event = p.telephone_event;
                        receiver.payload = Some((p.payload_type, p.codec));
                        sender.params = Some(p);
                    }
                    Some(MediaCommand::Stop) => {
                        sender.params = None;
                        sender.digits.clear();
                        sender.sending = None;
                    }
                    Some(MediaCommand::Dtmf(event)) => sender.digits.push_back(event),
                },
                _ = tick.tick() => {
                    let signal = *self.signal.borrow();
                    if let Some(to) = sender.next_packet(signal, &mut out) {
                        // A send error (peer gone, ICMP) is not the test's business here.
                        let _ = self.socket.send_to(&out, to).await;
                    }
                }
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r {
                        self.receive(&mut receiver, &buf[..n]);
                    }
                }
            }
        }
    }

    fn receive(&self, receiver: &mut Receiver, datagram: &[u8]) {
        let Some(packet) = parse_rtp(datagram) else {
            return;
        };
        if packet.payload_type == receiver.telephone_event.unwrap_or(DEFAULT_TELEPHONE_EVENT) {
            if let Some(key) = receiver.event(&packet) {
                let _ = self.events.send(PhoneEvent::Dtmf {
                    digit: key,
                    via: DtmfVia::Rfc4733,
                });
            }
            return;
        }
        let codec = match receiver.payload {
            Some((pt, codec)) if pt == packet.payload_type => Some(codec),
            _ => g711::codec_of_static_pt(packet.payload_type),
        };
        let Some(codec) = codec else {
            return;
        };
        let frame = ReceivedFrame {
            at: Instant::now(),
            seq: packet.seq,
            rtp_timestamp: packet.timestamp,
            samples: packet
                .payload
                .iter()
                .map(|&b| g711::decode(codec, b))
                .collect(),
        };
        let total = {
            // Held only to push one frame; readers hold it to copy a window out.
            let mut r = self
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            r.push(frame);
            r.total()
        };
        self.frames.send_replace(total);
    }
}

impl Sender {
    /// Writes the packet of this 20 ms slot into `out`; the address to send it to, if any.
    fn next_packet(&mut self, signal: Signal, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let params = self.params.clone()?;
        let to = params.remote.filter(|_| params.send)?;
        out.clear();
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let slot_timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME as u32);

        if self.sending.is_none() && self.gap == 0 {
            if let (Some(event), Some(_)) = (self.digits.front().copied(), params.telephone_event) {
                self.digits.pop_front();
                self.sending = Some(Sending {
                    event,
                    timestamp: slot_timestamp,
                    packets: 0,
                });
            }
        }
        if let (Some(s), Some(te)) = (self.sending.as_mut(), params.telephone_event) {
            s.packets += 1;
            let held = s.packets.min(DTMF_HELD_PACKETS);
            let end = s.packets >= DTMF_HELD_PACKETS;
            // The duration counts from the event's timestamp to the end of this packet.
            let duration = held * FRAME as u16;
            write_header(out, s.packets == 1, te, seq, s.timestamp, self.ssrc);
            out.push(s.event);
            out.push(if end { 0x80 } else { 0 } | DTMF_VOLUME);
            out.extend_from_slice(&duration.to_be_bytes());
            if s.packets >= DTMF_HELD_PACKETS + DTMF_END_PACKETS - 1 {
                self.sending = None;
                self.gap = DTMF_GAP_PACKETS;
            }
            return Some(to);
        }
        self.gap = self.gap.saturating_sub(1);
        write_header(
            out,
            false,
            params.payload_type,
            seq,
            slot_timestamp,
            self.ssrc,
        );
        match signal {
            Signal::Silence => {
                out.extend((0..FRAME).map(|_| g711::encode(params.codec, 0)));
            }
            Signal::Tone {
                freq_hz,
                level_dbfs,
            } => {
                let amplitude = tone::peak_amplitude(level_dbfs);
                let step = 2.0 * std::f64::consts::PI * f64::from(freq_hz) / 8000.0;
                for _ in 0..FRAME {
                    let x = (amplitude * self.phase.sin()).round() as i16;
                    out.push(g711::encode(params.codec, x));
                    self.phase = (self.phase + step) % (2.0 * std::f64::consts::PI);
                }
            }
        }
        Some(to)
    }
}

fn write_header(out: &mut Vec<u8>, marker: bool, pt: u8, seq: u16, timestamp: u32, ssrc: u32) {
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (pt & 0x7F));
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// What the receiving half remembers: the negotiated payload types and the last event seen.
#[derive(Debug, Default)]
struct Receiver {
    payload: Option<(u8, Codec)>,
    telephone_event: Option<u8>,
    /// Timestamp of the last event reported, so its repeated End packets report once.
    last_event: Option<u32>,
}

impl Receiver {
    /// The key of an RFC 4733 event packet, reported once per event at its first End packet.
    fn event(&mut self, packet: &Rtp<'_>) -> Option<char> {
        let [event, flags, ..] = *packet.payload else {
            return None;
        };
        if flags & 0x80 == 0 || self.last_event == Some(packet.timestamp) {
            return None;
        }
        self.last_event = Some(packet.timestamp);
        dtmf_key(event)
    }
}

/// The fields of an RTP packet the phone uses.
#[derive(Debug)]
struct Rtp<'a> {
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    payload: &'a [u8],
}

/// Parses an RTP packet (RFC 3550 §5.1): CSRCs, header extension and padding skipped.
/// `None` for anything that is not well-formed RTP version 2.
fn parse_rtp(b: &[u8]) -> Option<Rtp<'_>> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(b[0] & 0x0F);
    let mut offset = 12 + 4 * csrc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(Rtp {
        payload_type: b[1] & 0x7F,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        payload: b.get(offset..end)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> MediaParams {
        MediaParams {
            remote: Some("127.0.0.1:4000".parse().expect("addr")),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            send: true,
        }
    }

    fn sender() -> Sender {
        Sender {
            params: Some(params()),
            ssrc: 7,
            seq: 65_534,
            timestamp: u32::MAX - 100,
            phase: 0.0,
            digits: VecDeque::new(),
            sending: None,
            gap: 0,
        }
    }

    #[test]
    fn audio_packets_carry_the_tone_and_advance() {
        let mut s = sender();
        let mut out = Vec::new();
        let mut audio = Vec::new();
        for i in 0..10u16 {
            let signal = Signal::Tone {
                freq_hz: 1100.0,
                level_dbfs: -10.0,
            };
            assert!(s.next_packet(signal, &mut out).is_some());
            let p = parse_rtp(&out).expect("rtp");
            assert_eq!(p.seq, 65_534u16.wrapping_add(i));
            assert_eq!(p.payload.len(), FRAME);
            audio.extend(p.payload.iter().map(|&b| g711::decode(Codec::Pcmu, b)));
        }
        assert!(tone::tone_power(&audio, 8000, 1100.0) > 0.95);
        s.params = None;
        assert!(s.next_packet(Signal::Silence, &mut out).is_none());
    }

    #[test]
    fn a_digit_is_a_held_event_then_three_ends() {
        let mut s = sender();
        s.digits.push_back(dtmf_event('#').expect("key"));
        let mut out = Vec::new();
        let mut receiver = Receiver {
            telephone_event: Some(101),
            ..Receiver::default()
        };
        let mut keys = Vec::new();
        let mut events = 0;
        for _ in 0..12 {
            s.next_packet(Signal::Silence, &mut out).expect("packet");
            let p = parse_rtp(&out).expect("rtp");
            if p.payload_type == 101 {
                events += 1;
                assert_eq!(p.payload[0], 11);
                keys.extend(receiver.event(&p));
            }
        }
        assert_eq!(events, DTMF_HELD_PACKETS + DTMF_END_PACKETS - 1);
        assert_eq!(keys, vec!['#']);
    }

    #[test]
    fn rtp_parsing_refuses_garbage() {
        assert!(parse_rtp(&[0x80, 0, 0]).is_none());
        assert!(parse_rtp(&[0x40; 20]).is_none());
        // Extension bit with a length running past the end.
        let mut p = vec![0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0xFF, 0xFF];
        assert!(parse_rtp(&p).is_none());
        // Padding longer than the packet.
        p = vec![0xA0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 200];
        assert!(parse_rtp(&p).is_none());
        for key in "0123456789*#ABCD".chars() {
            assert_eq!(dtmf_key(dtmf_event(key).expect("event")), Some(key));
        }
    }
}
