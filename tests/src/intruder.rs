//! An RTP intruder: a host outside the engine's allow-list that sprays a whole RTP port
//! range with well-formed media (a tone, a digit as RFC 4733 events, RTCP), each port a
//! steady stream with consecutive sequence numbers, the way an attacker would try to take a
//! call's media over (hear it, inject DTMF, aim its audio elsewhere). It counts what the
//! engine sends back to it, which must be nothing.
//!
//! It paces itself on a 20 ms tokio interval, like a phone, and stops when dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sip::sdp::Codec;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::phone::g711;

/// The tone the intruder sends: none of the phones' test tones are near it.
pub const INTRUDER_HZ: f32 = 2300.0;
/// The digit the intruder keys, every [`DIGIT_EVERY`] frames.
pub const INTRUDER_DIGIT: u8 = 9;
const DIGIT_EVERY: u32 = 10;

pub struct Intruder {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Intruder {
    /// Binds `ip` (e.g. 127.0.0.2) and sprays every even port of `low..=high` on `target`
    /// (RTP: PCMU and PCMA tone frames, telephone-events on payload types 101 and 96) and
    /// every odd one (RTCP receiver reports).
    pub async fn start(ip: IpAddr, target: IpAddr, (low, high): (u16, u16)) -> Intruder {
        let socket = Arc::new(
            UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .unwrap_or_else(|e| panic!("bind {ip}: {e}")),
        );
        let addr = socket.local_addr().expect("intruder address");
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(spray(
            socket,
            target,
            (low & !1, high),
            Arc::clone(&sent),
            Arc::clone(&received),
        ));
        Intruder {
            addr,
            sent,
            received,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams sprayed so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Datagrams the engine sent to the intruder so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spray(
    socket: Arc<UdpSocket>,
    target: IpAddr,
    (low, high): (u16, u16),
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
) {
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut buffer = [0u8; 2048];
    let mut frame = 0u32;
    loop {
        interval.tick().await;
        while socket.try_recv_from(&mut buffer).is_ok() {
            received.fetch_add(1, Ordering::Relaxed);
        }
        let seq = frame as u16;
        let ts = frame.wrapping_mul(160);
        let codec = if frame.is_multiple_of(2) {
            Codec::Pcmu
        } else {
            Codec::Pcma
        };
        let mut packets = vec![rtp(codec.static_payload_type(), seq, ts, tone(codec, ts))];
        if frame.is_multiple_of(DIGIT_EVERY) {
            for pt in [101, 96] {
                packets.push(rtp(pt, seq, ts, digit_end()));
            }
        }
        for port in (low..=high).step_by(2) {
            for packet in &packets {
                if socket.send_to(packet, (target, port)).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            if frame.is_multiple_of(50) && port < high {
                let _ = socket.send_to(&receiver_report(), (target, port + 1)).await;
            }
        }
        frame = frame.wrapping_add(1);
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: Vec<u8>) -> Vec<u8> {
    let mut packet = vec![0x80, pt];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&0xBAD0_5EEDu32.to_be_bytes());
    packet.extend(payload);
    packet
}

/// 20 ms of the intruder's tone at -6 dBFS.
fn tone(codec: Codec, ts: u32) -> Vec<u8> {
    (0..160u32)
        .map(|i| {
            let t = f64::from(ts.wrapping_add(i)) / 8000.0;
            let sample = (t * f64::from(INTRUDER_HZ) * std::f64::consts::TAU).sin() * 16_000.0;
            g711::encode(codec, sample as i16)
        })
        .collect()
}

/// An RFC 4733 End packet for the intruder's digit, 100 ms long.
fn digit_end() -> Vec<u8> {
    vec![INTRUDER_DIGIT, 0x80 | 10, 0x03, 0x20]
}

/// An empty RTCP receiver report.
fn receiver_report() -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&0xBAD0_5EEDu32.to_be_bytes());
    packet
}
