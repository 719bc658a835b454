//! Media lanes: the generator's RTP side, split into a few lanes that each own one UDP
//! socket, one sending task (`tx`) and one receiving thread (`rx`).
//!
//! Call `i` belongs to lane `i % lanes`; its SDP offer names that lane's socket, and the
//! engine's answer names a distinct engine port per call, which is how the receiver tells the
//! calls apart. A handful of sockets for a thousand calls keeps the generator's cost per
//! packet low (one receive syscall per packet, no readiness bookkeeping per call), so that
//! on a shared 2-core machine most of the CPU stays with the engine being measured.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{mpsc, oneshot};

use crate::rtp::{Codec, Outbound};
use crate::rx::{self, RxCmd, RxTotals, RxWindow};
use crate::tx::{self, TxCmd, TxTotals, TxWindow};

/// Socket buffers: a lane receives one burst per engine tick (up to a packet per call), so
/// the default 208 KiB (about 270 packets) would overflow at a few hundred calls.
const SOCKET_BUFFER: usize = 4 << 20;

struct Lane {
    local: SocketAddr,
    tx: mpsc::UnboundedSender<TxCmd>,
    rx: std_mpsc::Sender<RxCmd>,
}

pub struct Lanes {
    lanes: Vec<Lane>,
    /// Taken once by `stop`, which the signalling task's shared reference must not prevent;
    /// never locked anywhere else.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What the media of one call needs to start.
pub struct MediaStart {
    pub call: u32,
    pub remote: SocketAddr,
    pub outbound: Outbound,
}

/// Binds a UDP socket on `addr` with large buffers.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps the size at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl Lanes {
    /// Starts `count` lanes on `ip`. Must be called inside a Tokio runtime.
    pub fn start(count: usize, ip: std::net::IpAddr, codec: Codec) -> std::io::Result<Lanes> {
        let frames = Arc::new(crate::rtp::tone_frames(codec));
        let mut lanes = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let socket = bind_udp(SocketAddr::new(ip, 0))?;
            let local = socket.local_addr()?;
            let reader = socket.try_clone()?;
            let (rx_tx, rx_rx) = std_mpsc::channel();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("rx-lane-{index}"))
                    .spawn(move || rx::run(reader, rx_rx))?,
            );
            let (tx_tx, tx_rx) = mpsc::unbounded_channel();
            tokio::spawn(tx::run(Arc::new(socket), tx_rx, Arc::clone(&frames)));
            lanes.push(Lane {
                local,
                tx: tx_tx,
                rx: rx_tx,
            });
        }
        Ok(Lanes {
            lanes,
            threads: Mutex::new(threads),
        })
    }

    fn lane(&self, call: u32) -> &Lane {
        &self.lanes[call as usize % self.lanes.len()]
    }

    /// The RTP address call `call` offers in its SDP.
    pub fn local_addr(&self, call: u32) -> SocketAddr {
        self.lane(call).local
    }

    pub fn start_media(&self, m: MediaStart) {
        let lane = self.lane(m.call);
        // Registration first: the receiver must know the address before packets come back.
        let _ = lane.rx.send(RxCmd::Register {
            call: m.call,
            remote: m.remote,
            at: Instant::now(),
        });
        let _ = lane.tx.send(TxCmd::Add {
            call: m.call,
            remote: m.remote,
            outbound: m.outbound,
        });
    }

    pub fn stop_media(&self, call: u32) {
        let _ = self.lane(call).tx.send(TxCmd::Remove(call));
    }

    /// Ends the current measurement window on every lane and returns the merged figures.
    pub async fn cut(&self) -> (RxWindow, TxWindow) {
        let mut rx_replies = Vec::new();
        let mut tx_replies = Vec::new();
        for lane in &self.lanes {
            let (a, b) = oneshot::channel();
            let _ = lane.rx.send(RxCmd::Cut(a));
            rx_replies.push(b);
            let (a, b) = oneshot::channel();
            let _ = lane.tx.send(TxCmd::Cut(a));
            tx_replies.push(b);
        }
        let mut rx_all = RxWindow::default();
        for r in rx_replies {
            if let Ok(w) = r.await {
                rx_all.merge(&w);
            }
        }
        let mut tx_all = TxWindow::default();
        for r in tx_replies {
            if let Ok(w) = r.await {
                tx_all.merge(&w);
            }
        }
        (rx_all, tx_all)
    }

    /// Per-call totals of every lane, sorted by call.
    pub async fn totals(&self) -> (Vec<RxTotals>, Vec<TxTotals>) {
        let mut rx_all = Vec::new();
        let mut tx_all = Vec::new();
        for lane in &self.lanes {
            let (a, b) = oneshot::channel();
            let _ = lane.rx.send(RxCmd::Totals(a));
            rx_all.extend(b.await.unwrap_or_default());
            let (a, b) = oneshot::channel();
            let _ = lane.tx.send(TxCmd::Totals(a));
            tx_all.extend(b.await.unwrap_or_default());
        }
        rx_all.sort_by_key(|t| t.call);
        tx_all.sort_by_key(|t| t.call);
        (rx_all, tx_all)
    }

    /// Stops the tasks and joins the receiving threads (they notice within their read
    /// timeout).
    pub fn stop(&self) {
        for lane in &self.lanes {
            let _ = lane.rx.send(RxCmd::Stop);
            let _ = lane.tx.send(TxCmd::Stop);
        }
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A stable, distinct SSRC per call (a hash of the call number and the process id).
pub fn ssrc_for(call: u32) -> u32 {
    let mut x = u64::from(call) ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x as u32
}
