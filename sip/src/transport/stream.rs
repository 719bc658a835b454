//! SIP over stream transports (TCP and TLS): the listener, the table of connections and one
//! reader and one writer task per connection. Connections are keyed by the peer's address,
//! so a response goes back on the connection its request came in on (RFC 3261 §18.2.2), and
//! a request to a peer with no connection opens one.
//!
//! What keeps a peer from exhausting the engine here (each limit in [`StreamLimits`]):
//! - the allow-list is checked by the driver as soon as a connection is accepted;
//! - a cap on connections in all and per source address, counted from accept (a TLS
//!   handshake in progress counts) to close;
//! - a head timeout: a connection must send a first byte, and a message once begun must be
//!   complete, within it (slowloris); the TLS handshake must finish within it too;
//! - an idle timeout: a connection that sends nothing for that long is closed;
//! - a bounded write queue and a write timeout: a peer that does not read is disconnected
//!   instead of holding the engine's memory;
//! - back-off on accept errors (out of file descriptors), so the loop does not spin;
//! - framing that parses a head once ([`super::framer`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::framer::{Frame, Framer};
use super::tls::TlsSide;
use crate::endpoint::Transport;

/// Limits of one stream transport (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_connections: usize,
    pub max_per_source: usize,
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    /// Messages waiting to be written on one connection before it is closed.
    pub write_queue: usize,
    pub write_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_connections: 1024,
            max_per_source: 64,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            write_queue: 256,
            write_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of one stream transport, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connections open now (handshakes and connects in progress included).
    pub open: usize,
    pub accepted: u64,
    /// Connections closed at accept: total or per-source cap reached.
    pub refused_by_cap: u64,
    /// Connections closed for a head, handshake or idle timeout.
    pub timed_out: u64,
    /// Connections closed because the peer did not read what we wrote.
    pub write_stalled: u64,
    /// Connections closed for unframeable input.
    pub unframeable: u64,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Closed,
    TimedOut,
    WriteStalled,
    Unframeable,
    ConnectFailed,
}

enum Inbound {
    Frame(SocketAddr, Bytes),
    Ended {
        peer: SocketAddr,
        id: u64,
        ending: Ending,
    },
}

/// What the driver hears from a stream transport.
pub(super) enum StreamEvent {
    /// A connection to check against the allow-list, then [`Streams::adopt`] or drop.
    Accepted(TcpStream, SocketAddr),
    Frame(SocketAddr, Bytes),
    /// Connecting to this peer failed, or its connection broke with messages unsent.
    Failed(SocketAddr),
}

struct Conn {
    id: u64,
    writer: mpsc::Sender<Bytes>,
    /// Dropped to close the connection.
    _close: oneshot::Sender<()>,
}

pub(super) struct Streams {
    transport: Transport,
    pub(super) local_addr: SocketAddr,
    listener: TcpListener,
    tls: Option<Arc<TlsSide>>,
    limits: StreamLimits,
    conns: HashMap<SocketAddr, Conn>,
    per_source: HashMap<IpAddr, usize>,
    next_id: u64,
    inbound_tx: mpsc::UnboundedSender<Inbound>,
    inbound_rx: mpsc::UnboundedReceiver<Inbound>,
    accept_paused_until: Option<Instant>,
    accept_backoff: Duration,
    stats: StreamStats,
    /// Names to verify TLS servers' certificates against (a trunk's registrar host); an
    /// address with no name is verified as an IP address.
    server_names: HashMap<SocketAddr, String>,
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Streams {
    pub(super) async fn bind(
        addr: SocketAddr,
        tls: Option<Arc<TlsSide>>,
        limits: StreamLimits,
    ) -> std::io::Result<Streams> {
        let listener = TcpListener::bind(addr).await?;
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        Ok(Streams {
            transport: if tls.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            },
            local_addr: listener.local_addr()?,
            listener,
            tls,
            limits,
            conns: HashMap::new(),
            per_source: HashMap::new(),
            next_id: 1,
            inbound_tx,
            inbound_rx,
            accept_paused_until: None,
            accept_backoff: ACCEPT_BACKOFF_MIN,
            stats: StreamStats::default(),
            server_names: HashMap::new(),
        })
    }

    pub(super) fn set_server_name(&mut self, peer: SocketAddr, name: String) {
        self.server_names.insert(peer, name);
    }

    pub(super) fn stats(&self) -> StreamStats {
        StreamStats {
            open: self.open(),
            ..self.stats
        }
    }

    fn open(&self) -> usize {
        self.per_source.values().sum()
    }

    /// The next event: a connection accepted, a framed message, a failure.
    pub(super) async fn next(&mut self) -> StreamEvent {
        loop {
            tokio::select! {
                accepted = accept(&self.listener, self.accept_paused_until) => match accepted {
                    Ok((stream, peer)) => {
                        self.accept_paused_until = None;
                        self.accept_backoff = ACCEPT_BACKOFF_MIN;
                        return StreamEvent::Accepted(stream, peer);
                    }
                    Err(e) => {
                        // EMFILE and the like: retrying at once would spin on the same error.
                        tracing::warn!(transport = self.transport.via_token(), error = %e, pause = ?self.accept_backoff, "SIP accept failed; pausing accepts");
                        self.accept_paused_until = Some(Instant::now() + self.accept_backoff);
                        self.accept_backoff = (self.accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                },
                msg = self.inbound_rx.recv() => match msg {
                    Some(Inbound::Frame(peer, bytes)) => return StreamEvent::Frame(peer, bytes),
                    Some(Inbound::Ended { peer, id, ending }) => {
                        if let Some(event) = self.ended(peer, id, ending) {
                            return event;
                        }
                    }
                    // The table holds a sender: not reached.
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn ended(&mut self, peer: SocketAddr, id: u64, ending: Ending) -> Option<StreamEvent> {
        if let Some(n) = self.per_source.get_mut(&peer.ip()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&peer.ip());
            }
        }
        let ours = self.conns.get(&peer).is_some_and(|c| c.id == id);
        if ours {
            self.conns.remove(&peer);
        }
        match ending {
            Ending::TimedOut => self.stats.timed_out += 1,
            Ending::WriteStalled => self.stats.write_stalled += 1,
            Ending::Unframeable => self.stats.unframeable += 1,
            Ending::Closed | Ending::ConnectFailed => {}
        }
        (ours && ending == Ending::ConnectFailed).then_some(StreamEvent::Failed(peer))
    }

    /// Takes a connection the allow-list let in, if the caps allow.
    pub(super) fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        let from_source = self.per_source.get(&peer.ip()).copied().unwrap_or(0);
        if self.open() >= self.limits.max_connections || from_source >= self.limits.max_per_source {
            self.stats.refused_by_cap += 1;
            tracing::debug!(transport = self.transport.via_token(), source = %peer.ip(), from_source, "SIP connection refused: connection cap reached");
            return;
        }
        self.stats.accepted += 1;
        let (id, writer, close) = self.register(peer);
        let limits = self.limits;
        let inbound = self.inbound_tx.clone();
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return serve(stream, peer, id, true, limits, inbound, writer, close).await;
            };
            match tokio::time::timeout(limits.head_timeout, tls.acceptor.accept(stream)).await {
                Ok(Ok(s)) => serve(s, peer, id, true, limits, inbound, writer, close).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    let _ = inbound.send(Inbound::Ended {
                        peer,
                        id,
                        ending: Ending::Closed,
                    });
                }
                Err(_) => {
                    let _ = inbound.send(Inbound::Ended {
                        peer,
                        id,
                        ending: Ending::TimedOut,
                    });
                }
            }
        });
    }

    /// A new table entry for `peer`; the caller starts the task that owns the other ends.
    fn register(
        &mut self,
        peer: SocketAddr,
    ) -> (u64, mpsc::Receiver<Bytes>, oneshot::Receiver<()>) {
        let id = self.next_id;
        self.next_id += 1;
        let (writer, writer_rx) = mpsc::channel(self.limits.write_queue.max(1));
        let (close_tx, close_rx) = oneshot::channel();
        *self.per_source.entry(peer.ip()).or_default() += 1;
        self.conns.insert(
            peer,
            Conn {
                id,
                writer,
                _close: close_tx,
            },
        );
        (id, writer_rx, close_rx)
    }

    /// Sends on the peer's connection, connecting first when there is none. False when the
    /// message cannot be sent (cap reached, or the connection does not drain its queue and
    /// was closed): the driver fails the transactions towards the peer.
    pub(super) fn send(&mut self, peer: SocketAddr, bytes: Bytes) -> bool {
        if let Some(conn) = self.conns.get(&peer) {
            return match conn.writer.try_send(bytes) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(transport = self.transport.via_token(), %peer, "SIP peer does not read: connection closed");
                    self.stats.write_stalled += 1;
                    self.conns.remove(&peer);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.conns.remove(&peer);
                    false
                }
            };
        }
        if self.open() >= self.limits.max_connections {
            tracing::warn!(transport = self.transport.via_token(), %peer, "SIP connection cap reached: cannot connect");
            return false;
        }
        let (id, writer_rx, close) = self.register(peer);
        if let Some(conn) = self.conns.get(&peer) {
            let _ = conn.writer.try_send(bytes);
        }
        let limits = self.limits;
        let inbound = self.inbound_tx.clone();
        let tls = self.tls.clone();
        let name = self.server_names.get(&peer).cloned();
        tokio::spawn(async move {
            let failed = |inbound: &mpsc::UnboundedSender<Inbound>| {
                let _ = inbound.send(Inbound::Ended {
                    peer,
                    id,
                    ending: Ending::ConnectFailed,
                });
            };
            let tcp = match tokio::time::timeout(limits.connect_timeout, TcpStream::connect(peer))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "SIP connect failed");
                    return failed(&inbound);
                }
                Err(_) => {
                    tracing::debug!(%peer, "SIP connect timed out");
                    return failed(&inbound);
                }
            };
            let Some(tls) = tls else {
                return serve(tcp, peer, id, false, limits, inbound, writer_rx, close).await;
            };
            let Some(name) = super::tls::server_name(name.as_deref(), peer) else {
                tracing::warn!(%peer, "no usable TLS server name for the SIP peer");
                return failed(&inbound);
            };
            match tokio::time::timeout(limits.head_timeout, tls.connector.connect(name, tcp)).await
            {
                Ok(Ok(s)) => serve(s, peer, id, false, limits, inbound, writer_rx, close).await,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake with the SIP peer failed");
                    failed(&inbound)
                }
                Err(_) => failed(&inbound),
            }
        });
        true
    }
}

async fn accept(
    listener: &TcpListener,
    paused_until: Option<Instant>,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    if let Some(t) = paused_until {
        tokio::time::sleep_until(t).await;
    }
    listener.accept().await
}

/// Runs one connection until it closes: the writer in a task of its own, the reader here.
#[allow(clippy::too_many_arguments)]
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    id: u64,
    accepted: bool,
    limits: StreamLimits,
    inbound: mpsc::UnboundedSender<Inbound>,
    mut writes: mpsc::Receiver<Bytes>,
    mut close: oneshot::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (pong_tx, mut pong_rx) = mpsc::channel::<()>(1);
    let (stalled_tx, mut stalled) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let bytes = tokio::select! {
                b = writes.recv() => match b { Some(b) => b, None => break },
                Some(()) = pong_rx.recv() => Bytes::from_static(b"\r\n"),
            };
            match tokio::time::timeout(limits.write_timeout, wr.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => {
                    let _ = stalled_tx.send(());
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });

    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    let start = Instant::now();
    // An accepted connection owes us a first byte within the head timeout; one we opened
    // waits for answers to what we send.
    let mut message_started = accepted.then_some(start);
    let mut last_frame = start;
    let ending = loop {
        let deadline = match message_started {
            Some(t) => t + limits.head_timeout,
            None => last_frame + limits.idle_timeout,
        };
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break Ending::Closed,
                Ok(n) => n,
            },
            _ = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
            _ = &mut stalled => break Ending::WriteStalled,
            // The driver dropped the connection (its sender goes with it).
            _ = &mut close => break Ending::Closed,
        };
        framer.push(&buf[..n]);
        let now = Instant::now();
        let ending = loop {
            match framer.next() {
                Ok(Some(Frame::Message(bytes))) => {
                    last_frame = now;
                    message_started = None;
                    if inbound.send(Inbound::Frame(peer, bytes)).is_err() {
                        break Some(Ending::Closed);
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    last_frame = now;
                    message_started = None;
                    let _ = pong_tx.try_send(());
                }
                Ok(None) => break None,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "unframeable SIP on a stream; closing the connection");
                    break Some(Ending::Unframeable);
                }
            }
        };
        if let Some(ending) = ending {
            break ending;
        }
        if framer.in_message() && message_started.is_none() {
            message_started = Some(now);
        }
    };
    if ending == Ending::TimedOut {
        tracing::debug!(%peer, "SIP connection closed: head or idle timeout");
    }
    let _ = inbound.send(Inbound::Ended { peer, id, ending });
}
