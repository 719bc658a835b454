//! The thin tokio driver around the sans-IO `Endpoint` (STYLE.md §2): it owns the UDP
//! socket, the TCP and TLS listeners and connections, and the endpoint; it waits on a
//! datagram, a framed message, a command or the endpoint's next timeout, then drains every
//! transmit and event. No SIP logic lives here.
//!
//! - `edge`: the allow-list, checked on the source address before anything is parsed;
//! - `framer`: stream framing, sans-IO; `stream`: TCP and TLS connections and their limits;
//! - `tls`: rustls configuration, self-signed certificates.
//!
//! The engine talks to it through `SipHandle` (commands) and receives `SipEvent`s, which are
//! the endpoint's events plus the Call-ID of the transaction when the driver knows it, so the
//! engine can route timeouts to the right call.
//!
//! `channel` is the same driver over in-process channels instead of sockets, for tests that
//! run an engine and its peers in one process in virtual time.

mod call_ids;
pub mod channel;
pub mod edge;
mod framer;
mod stream;
pub mod tls;

pub use edge::{EdgeConfig, Refusal};
pub use stream::{StreamLimits, StreamStats};
pub use tls::{TlsConfig, TlsError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use call_ids::CallIds;

use crate::endpoint::{
    ClientTxId, Endpoint, EndpointConfig, EndpointStats, Peer, ServerTxId, Transmit, Transport,
};
use crate::message::{Request, Response, SipMessage};

use edge::{Gate, Verdict};
use stream::{StreamEvent, Streams};
use tls::TlsSide;

#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// UDP and TCP (same port).
    pub listen: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    /// SIP over TLS: its listening address (usually port 5061) and identity.
    pub tls: Option<(SocketAddr, TlsConfig)>,
    pub edge: EdgeConfig,
    /// For TCP and TLS alike (each has its own connection count).
    pub stream_limits: StreamLimits,
    pub endpoint: EndpointConfig,
}

impl DriverConfig {
    /// UDP and TCP on `listen`, no TLS, requests taken from `edge.allowed` only.
    pub fn new(listen: SocketAddr, edge: EdgeConfig) -> DriverConfig {
        DriverConfig {
            listen,
            udp: true,
            tcp: true,
            tls: None,
            edge,
            stream_limits: StreamLimits::default(),
            endpoint: EndpointConfig::default(),
        }
    }
}

/// The endpoint's counters with the transport's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    pub endpoint: EndpointStats,
    /// Datagrams and connections refused by the allow-list.
    pub edge_refused: u64,
    pub tcp: StreamStats,
    pub tls: StreamStats,
}

#[derive(Debug)]
pub enum SipCommand {
    SendRequest {
        request: Request,
        to: Peer,
        reply: oneshot::Sender<ClientTxId>,
    },
    SendResponse {
        tx: ServerTxId,
        response: Response,
    },
    SendStateless {
        message: SipMessage,
        to: Peer,
    },
    Cancel {
        tx: ClientTxId,
    },
    Stats {
        reply: oneshot::Sender<DriverStats>,
    },
    /// The name to check a TLS server's certificate against when connecting to `addr`.
    TlsServerName {
        addr: SocketAddr,
        name: String,
    },
    Shutdown,
}

/// What the engine receives: endpoint events with the Call-ID added where the driver can.
#[derive(Debug)]
pub enum SipEvent {
    Request {
        tx: Option<ServerTxId>,
        request: Request,
        from: Peer,
    },
    Response {
        tx: ClientTxId,
        response: Response,
    },
    Timeout {
        tx: ClientTxId,
        call_id: Option<String>,
    },
    Cancelled {
        tx: ServerTxId,
        call_id: Option<String>,
    },
    AckTimeout {
        tx: ServerTxId,
        call_id: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SIP over TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("the SIP driver has stopped")]
    Stopped,
}

/// Cheap to clone; every call actor holds one.
#[derive(Debug, Clone)]
pub struct SipHandle {
    commands: mpsc::UnboundedSender<SipCommand>,
    local: SocketAddr,
    tls: Option<SocketAddr>,
}

impl SipHandle {
    /// The bound SIP address of UDP and TCP (useful when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The bound SIP over TLS address, when TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// Verify the certificate of the TLS server at `addr` against `name` (the host its URI
    /// gave) rather than its IP address.
    pub fn set_tls_server_name(&self, addr: SocketAddr, name: String) {
        let _ = self.commands.send(SipCommand::TlsServerName { addr, name });
    }

    pub async fn send_request(
        &self,
        request: Request,
        to: Peer,
    ) -> Result<ClientTxId, DriverError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(SipCommand::SendRequest { request, to, reply })
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    pub fn send_response(&self, tx: ServerTxId, response: Response) {
        let _ = self
            .commands
            .send(SipCommand::SendResponse { tx, response });
    }

    pub fn send_stateless(&self, message: SipMessage, to: Peer) {
        let _ = self
            .commands
            .send(SipCommand::SendStateless { message, to });
    }

    pub fn cancel(&self, tx: ClientTxId) {
        let _ = self.commands.send(SipCommand::Cancel { tx });
    }

    pub async fn stats(&self) -> Result<DriverStats, DriverError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(SipCommand::Stats { reply })
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    pub fn shutdown(&self) {
        let _ = self.commands.send(SipCommand::Shutdown);
    }
}

/// Binds the sockets and starts the driver task.
pub async fn start(
    config: DriverConfig,
) -> Result<(SipHandle, mpsc::UnboundedReceiver<SipEvent>, JoinHandle<()>), DriverError> {
    let bind_error = |transport, addr| {
        move |source| DriverError::Bind {
            transport,
            addr,
            source,
        }
    };
    let udp = if config.udp {
        Some(
            UdpSocket::bind(config.listen)
                .await
                .map_err(bind_error("UDP", config.listen))?,
        )
    } else {
        None
    };
    // With port 0, TCP takes the same port the UDP socket got.
    let mut listen = config.listen;
    if let Some(u) = &udp {
        listen = u.local_addr().map_err(bind_error("UDP", config.listen))?;
    }
    let tcp = if config.tcp {
        Some(
            Streams::bind(listen, None, config.stream_limits)
                .await
                .map_err(bind_error("TCP", listen))?,
        )
    } else {
        None
    };
    if udp.is_none() {
        if let Some(t) = &tcp {
            listen = t.local_addr;
        }
    }
    let tls = match &config.tls {
        Some((addr, tls)) => {
            let side = Arc::new(TlsSide::new(tls)?);
            Some(
                Streams::bind(*addr, Some(side), config.stream_limits)
                    .await
                    .map_err(bind_error("TLS", *addr))?,
            )
        }
        None => None,
    };
    let tls_addr = tls.as_ref().map(|t| t.local_addr);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        endpoint: Endpoint::new(config.endpoint),
        gate: Gate::new(config.edge),
        udp,
        tcp,
        tls,
        commands: cmd_rx,
        events: ev_tx,
        ids: CallIds::new(Instant::now()),
    };
    let task = tokio::spawn(driver.run());
    Ok((
        SipHandle {
            commands: cmd_tx,
            local: listen,
            tls: tls_addr,
        },
        ev_rx,
        task,
    ))
}

struct Driver {
    endpoint: Endpoint,
    gate: Gate,
    udp: Option<UdpSocket>,
    tcp: Option<Streams>,
    tls: Option<Streams>,
    commands: mpsc::UnboundedReceiver<SipCommand>,
    events: mpsc::UnboundedSender<SipEvent>,
    /// Call-IDs of live transactions, for routing their timeouts and cancellations.
    ids: CallIds,
}

impl Driver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let deadline = self.endpoint.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = recv_udp(self.udp.as_ref(), &mut buf) => match r {
                    Ok((n, from)) => self.datagram(from, n, &buf).await,
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                ev = next_stream(self.tcp.as_mut()) => self.stream_event(Transport::Tcp, ev),
                ev = next_stream(self.tls.as_mut()) => self.stream_event(Transport::Tls, ev),
                cmd = self.commands.recv() => match cmd {
                    None | Some(SipCommand::Shutdown) => break,
                    Some(cmd) => self.command(cmd),
                },
                _ = sleep => self.endpoint.handle_timeout(Instant::now()),
            }
            self.drain().await;
        }
    }

    /// A UDP datagram: the allow-list first, on the source address alone.
    async fn datagram(&mut self, from: SocketAddr, n: usize, buf: &[u8]) {
        let now = Instant::now();
        let bytes = &buf[..n];
        match self.gate.check_datagram(now, from, bytes) {
            Verdict::Pass => {
                let peer = Peer {
                    transport: Transport::Udp,
                    addr: from,
                };
                self.endpoint.handle_datagram(now, peer, bytes);
            }
            Verdict::Drop => {}
            Verdict::Answer(answer) => {
                if let Some(u) = &self.udp {
                    let _ = u.send_to(&answer, from).await;
                }
            }
        }
    }

    fn stream_event(&mut self, transport: Transport, event: StreamEvent) {
        let now = Instant::now();
        let streams = match transport {
            Transport::Tls => self.tls.as_mut(),
            _ => self.tcp.as_mut(),
        };
        match event {
            StreamEvent::Accepted(stream, addr) => {
                // Dropping the stream closes a refused connection at once.
                if self.gate.check_connection(now, addr) {
                    if let Some(s) = streams {
                        s.adopt(stream, addr);
                    }
                }
            }
            StreamEvent::Frame(addr, bytes) => {
                self.endpoint
                    .handle_datagram(now, Peer { transport, addr }, &bytes);
            }
            StreamEvent::Failed(addr) => self
                .endpoint
                .handle_transport_error(now, Peer { transport, addr }),
        }
    }

    fn command(&mut self, cmd: SipCommand) {
        match self.ids.command(&mut self.endpoint, Instant::now(), cmd) {
            Some(SipCommand::Stats { reply }) => {
                let _ = reply.send(DriverStats {
                    endpoint: self.ids.stats(&self.endpoint),
                    edge_refused: self.gate.refused(),
                    tcp: self.tcp.as_ref().map(Streams::stats).unwrap_or_default(),
                    tls: self.tls.as_ref().map(Streams::stats).unwrap_or_default(),
                });
            }
            Some(SipCommand::TlsServerName { addr, name }) => {
                if let Some(tls) = &mut self.tls {
                    tls.set_server_name(addr, name);
                }
            }
            _ => {}
        }
    }

    async fn drain(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmit(t).await;
        }
        while let Some(ev) = self.endpoint.poll_event() {
            if self.events.send(self.ids.event(ev)).is_err() {
                return;
            }
        }
        self.ids.purge(&self.endpoint, Instant::now());
    }

    async fn transmit(&mut self, t: Transmit) {
        let streams = match t.peer.transport {
            Transport::Udp => {
                if let Some(u) = &self.udp {
                    if let Err(e) = u.send_to(&t.bytes, t.peer.addr).await {
                        tracing::debug!(to = %t.peer.addr, error = %e, "UDP send failed");
                    }
                }
                return;
            }
            Transport::Tcp => self.tcp.as_mut(),
            Transport::Tls => self.tls.as_mut(),
        };
        let sent = streams.is_some_and(|s| s.send(t.peer.addr, t.bytes));
        if !sent {
            // No such transport, the cap is reached, or the peer does not read: the
            // transactions towards it fail now rather than at their timeout.
            self.endpoint.handle_transport_error(Instant::now(), t.peer);
        }
    }
}

async fn recv_udp(udp: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(u) => u.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn next_stream(streams: Option<&mut Streams>) -> StreamEvent {
    match streams {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
