//! The receiving side of a lane: one thread blocked on the lane's socket, timestamping every
//! datagram as it is read.
//!
//! Why a blocking thread and not a read per 20 ms tick: a tick-driven read sees every packet
//! that arrived during the last 20 ms at the same instant, so the engine's timing would be
//! quantised to the generator's tick and its lateness invisible. Here each packet is read
//! (and `Instant::now()` taken) as soon as the kernel queues it; the engine sends a lane's
//! packets in bursts, so the thread reads many per wake-up. The socket's receive buffer is
//! large (see `lanes`), so a scheduling hiccup of this thread delays timestamps (measured, on
//! the baseline, as the generator's own noise) but does not drop packets.
//!
//! Calls are told apart by the engine's source address (each call has its own engine port,
//! announced in its SDP answer). Loss comes from sequence numbers (RFC 3550 A.1 style,
//! extended to 64 bits); the send timing from the inter-arrival time of consecutive packets.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::hist::Histogram;
use crate::rtp::{classify, Datagram};

/// The frame interval the engine paces at.
const FRAME: Duration = Duration::from_millis(20);
/// How often a blocked read gives up to look at commands.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

pub enum RxCmd {
    /// Packets from `remote` belong to `call` (replaces an earlier owner of the address),
    /// whose media was set up `at` (the 200 OK).
    Register {
        call: u32,
        remote: SocketAddr,
        at: Instant,
    },
    /// Ends the current window: its figures are sent back and a new one starts.
    Cut(oneshot::Sender<RxWindow>),
    /// Per-call totals since the start.
    Totals(oneshot::Sender<Vec<RxTotals>>),
    Stop,
}

/// What one lane received during a window.
#[derive(Debug, Clone, Default)]
pub struct RxWindow {
    pub received: u64,
    /// Packets the sender must have sent, from the growth of the highest sequence number.
    pub expected: u64,
    /// Packets that arrived after a later one (reordered or duplicated).
    pub late: u64,
    /// |inter-arrival - 20 ms| of consecutive packets, in µs.
    pub deviation: Histogram,
    /// Distinct calls that received at least one packet in the window.
    pub calls_heard: u64,
    pub rtcp: u64,
    /// Datagrams from an address no call owns (or not RTP).
    pub stray: u64,
}

impl RxWindow {
    pub fn merge(&mut self, o: &RxWindow) {
        self.received += o.received;
        self.expected += o.expected;
        self.late += o.late;
        self.deviation.merge(&o.deviation);
        self.calls_heard += o.calls_heard;
        self.rtcp += o.rtcp;
        self.stray += o.stray;
    }

    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// One call's receive totals.
#[derive(Debug, Clone)]
pub struct RxTotals {
    pub call: u32,
    pub received: u64,
    pub expected: u64,
    /// Time from registration (the 200 OK) to the first packet.
    pub first_packet_ms: Option<f64>,
}

struct RxCall {
    registered_at: Instant,
    /// Sequence state of the current source (SSRC); a new SSRC starts a new segment.
    ssrc: Option<u32>,
    base_ext: u64,
    max_ext: u64,
    /// Expected packets of the segments that ended.
    expected_before: u64,
    received: u64,
    last_arrival: Instant,
    first_at: Option<Instant>,
    heard_in_window: u32,
}

impl RxCall {
    fn new(now: Instant) -> Self {
        RxCall {
            registered_at: now,
            ssrc: None,
            base_ext: 0,
            max_ext: 0,
            expected_before: 0,
            received: 0,
            last_arrival: now,
            first_at: None,
            heard_in_window: 0,
        }
    }

    fn expected(&self) -> u64 {
        let current = if self.ssrc.is_some() {
            self.max_ext - self.base_ext + 1
        } else {
            0
        };
        self.expected_before + current
    }

    fn on_packet(&mut self, now: Instant, seq: u16, ssrc: u32, window: &mut RxWindow, epoch: u32) {
        self.received += 1;
        window.received += 1;
        if self.heard_in_window != epoch {
            self.heard_in_window = epoch;
            window.calls_heard += 1;
        }
        if self.first_at.is_none() {
            self.first_at = Some(now);
        }
        if self.ssrc != Some(ssrc) {
            self.expected_before = self.expected();
            self.ssrc = Some(ssrc);
            // Offset by 2^32 so that a reordered packet before the first one stays positive.
            self.base_ext = (1 << 32) + u64::from(seq);
            self.max_ext = self.base_ext;
            self.last_arrival = now;
            window.expected += 1;
            return;
        }
        let delta = i64::from(seq.wrapping_sub(self.max_ext as u16) as i16);
        let ext = (self.max_ext as i64 + delta) as u64;
        if ext > self.max_ext {
            window.expected += ext - self.max_ext;
            if ext == self.max_ext + 1 {
                let gap = now.saturating_duration_since(self.last_arrival);
                let deviation = gap.abs_diff(FRAME);
                window.deviation.add(deviation.as_micros() as u64);
            }
            self.max_ext = ext;
            self.last_arrival = now;
        } else {
            window.late += 1;
            self.base_ext = self.base_ext.min(ext);
        }
    }
}

/// The receive loop of one lane; returns on `Stop` or when the command channel closes.
pub fn run(socket: UdpSocket, commands: Receiver<RxCmd>) {
    if let Err(e) = socket.set_read_timeout(Some(READ_TIMEOUT)) {
        eprintln!("svi-load: cannot set a read timeout: {e}");
        return;
    }
    let mut owners: HashMap<SocketAddr, u32> = HashMap::new();
    let mut calls: HashMap<u32, RxCall> = HashMap::new();
    let mut window = RxWindow::default();
    let mut epoch: u32 = 1;
    let mut buf = [0u8; 2048];
    loop {
        // Commands first: a registration must be seen before the packets it announces.
        loop {
            match commands.try_recv() {
                Ok(RxCmd::Register { call, remote, at }) => {
                    owners.insert(remote, call);
                    calls.insert(call, RxCall::new(at));
                }
                Ok(RxCmd::Cut(reply)) => {
                    let _ = reply.send(std::mem::take(&mut window));
                    epoch = epoch.wrapping_add(1).max(1);
                }
                Ok(RxCmd::Totals(reply)) => {
                    let mut all: Vec<RxTotals> = calls
                        .iter()
                        .map(|(&call, c)| RxTotals {
                            call,
                            received: c.received,
                            expected: c.expected(),
                            first_packet_ms: c.first_at.map(|t| {
                                t.saturating_duration_since(c.registered_at).as_secs_f64() * 1e3
                            }),
                        })
                        .collect();
                    all.sort_by_key(|t| t.call);
                    let _ = reply.send(all);
                }
                Ok(RxCmd::Stop) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            // ICMP errors (port unreachable after a call ended) surface here: not fatal.
            Err(_) => continue,
        };
        let now = Instant::now();
        let Datagram::Rtp(h) = classify(&buf[..len]) else {
            if classify(&buf[..len]) == Datagram::Rtcp {
                window.rtcp += 1;
            } else {
                window.stray += 1;
            }
            continue;
        };
        let mut owner = owners.get(&from).copied();
        if owner.is_none() {
            // The engine may send its first packet before the registration is read.
            while let Ok(cmd) = commands.try_recv() {
                if let RxCmd::Register { call, remote, at } = cmd {
                    owners.insert(remote, call);
                    calls.insert(call, RxCall::new(at));
                } else if let RxCmd::Cut(reply) = cmd {
                    let _ = reply.send(std::mem::take(&mut window));
                    epoch = epoch.wrapping_add(1).max(1);
                }
            }
            owner = owners.get(&from).copied();
        }
        match owner.and_then(|call| calls.get_mut(&call)) {
            Some(c) => c.on_packet(now, h.seq, h.ssrc, &mut window, epoch),
            None => window.stray += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reorder_and_deviation_from_sequence_numbers() {
        let t0 = Instant::now();
        let mut c = RxCall::new(t0);
        let mut w = RxWindow::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        c.on_packet(at(0), 65_534, 7, &mut w, 1);
        c.on_packet(at(20), 65_535, 7, &mut w, 1);
        c.on_packet(at(43), 0, 7, &mut w, 1); // wraps; 3 ms late
        c.on_packet(at(100), 3, 7, &mut w, 1); // 1 and 2 missing
        c.on_packet(at(101), 1, 7, &mut w, 1); // 1 arrives late
        assert_eq!(w.received, 5);
        assert_eq!(w.expected, 6);
        assert_eq!(w.lost(), 1);
        assert_eq!(w.late, 1);
        assert_eq!(w.calls_heard, 1);
        assert_eq!(w.deviation.count(), 2);
        assert_eq!(w.deviation.max_us(), 3_000);
        assert_eq!(c.expected(), 6);
        // A new SSRC starts a new segment; the old one's expected count is kept.
        c.on_packet(at(120), 500, 9, &mut w, 2);
        c.on_packet(at(140), 501, 9, &mut w, 2);
        assert_eq!(c.expected(), 8);
        assert_eq!(c.received, 7);
        assert_eq!(w.calls_heard, 2);
    }
}
