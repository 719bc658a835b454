//! The sending side of a lane: one task pacing all the lane's calls on a single 20 ms
//! schedule, as the engine's media workers do (no task or timer per call).
//!
//! Each tick the task applies its commands (calls added or removed, window cuts), then sends
//! one packet per call. With `MissedTickBehavior::Burst`, a late wake-up sends the missed
//! frames back to back, so every call sends exactly 50 packets a second on average and the
//! engine's receive counters can be compared with ours. How late the task itself woke up is
//! measured too: it is the generator's own share of any timing noise.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::hist::Histogram;
use crate::rtp::{Outbound, FRAME_SAMPLES, MAX_PACKET};

pub const FRAME: Duration = Duration::from_millis(20);

pub enum TxCmd {
    Add {
        call: u32,
        remote: SocketAddr,
        outbound: Outbound,
    },
    Remove(u32),
    Cut(oneshot::Sender<TxWindow>),
    Totals(oneshot::Sender<Vec<TxTotals>>),
    Stop,
}

/// What one lane sent during a window.
#[derive(Debug, Clone, Default)]
pub struct TxWindow {
    pub sent: u64,
    pub send_errors: u64,
    pub digits: u64,
    /// How late the sending task woke up after each scheduled tick, in µs.
    pub tick_lateness: Histogram,
}

impl TxWindow {
    pub fn merge(&mut self, o: &TxWindow) {
        self.sent += o.sent;
        self.send_errors += o.send_errors;
        self.digits += o.digits;
        self.tick_lateness.merge(&o.tick_lateness);
    }
}

#[derive(Debug, Clone)]
pub struct TxTotals {
    pub call: u32,
    pub sent: u64,
    pub digits: u64,
}

struct TxCall {
    call: u32,
    remote: SocketAddr,
    outbound: Outbound,
}

pub async fn run(
    socket: Arc<UdpSocket>,
    mut commands: mpsc::UnboundedReceiver<TxCmd>,
    frames: Arc<Vec<[u8; FRAME_SAMPLES]>>,
) {
    let mut interval = tokio::time::interval(FRAME);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut calls: Vec<TxCall> = Vec::new();
    // Totals of calls that ended, kept for the per-call report.
    let mut ended: HashMap<u32, TxTotals> = HashMap::new();
    let mut window = TxWindow::default();
    let mut buf = [0u8; MAX_PACKET];
    loop {
        let scheduled = interval.tick().await.into_std();
        let late = Instant::now().saturating_duration_since(scheduled);
        window.tick_lateness.add(late.as_micros() as u64);
        loop {
            match commands.try_recv() {
                Ok(TxCmd::Add {
                    call,
                    remote,
                    outbound,
                }) => calls.push(TxCall {
                    call,
                    remote,
                    outbound,
                }),
                Ok(TxCmd::Remove(call)) => {
                    if let Some(i) = calls.iter().position(|c| c.call == call) {
                        let c = calls.swap_remove(i);
                        ended.insert(call, totals_of(&c));
                    }
                }
                Ok(TxCmd::Cut(reply)) => {
                    let _ = reply.send(std::mem::take(&mut window));
                }
                Ok(TxCmd::Totals(reply)) => {
                    let mut all: Vec<TxTotals> = ended.values().cloned().collect();
                    all.extend(calls.iter().map(totals_of));
                    all.sort_by_key(|t| t.call);
                    let _ = reply.send(all);
                }
                Ok(TxCmd::Stop) | Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        for c in &mut calls {
            let digits_before = c.outbound.digits_sent;
            let len = c.outbound.next_packet(&frames, &mut buf);
            window.digits += c.outbound.digits_sent - digits_before;
            // A blocking send on loopback: the datagram is queued on the peer's socket (or
            // dropped there) at once, so it does not wait; an error is counted, not retried.
            match socket.send_to(&buf[..len], c.remote) {
                Ok(_) => window.sent += 1,
                Err(_) => window.send_errors += 1,
            }
        }
    }
}

fn totals_of(c: &TxCall) -> TxTotals {
    TxTotals {
        call: c.call,
        sent: c.outbound.packets(),
        digits: c.outbound.digits_sent,
    }
}
