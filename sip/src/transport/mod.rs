//! The thin tokio driver around the sans-IO `Endpoint` (STYLE.md §2): it owns the UDP
//! socket, the TCP listener and connections, and the endpoint; it waits on a datagram, a
//! framed TCP message, a command or the endpoint's next timeout, then drains every transmit
//! and event. No SIP logic lives here.
//!
//! The engine talks to it through `SipHandle` (commands) and receives `SipEvent`s, which are
//! the endpoint's events plus the Call-ID of the transaction when the driver knows it, so the
//! engine can route timeouts to the right call.
//!
//! `channel` is the same driver over in-process channels instead of sockets, for tests that
//! run an engine and its peers in one process in virtual time.

mod call_ids;
pub mod channel;
mod tcp;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use call_ids::CallIds;

use crate::endpoint::{
    ClientTxId, Endpoint, EndpointConfig, EndpointStats, Peer, ServerTxId, Transmit, Transport,
};
use crate::message::{Request, Response, SipMessage};

#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub listen: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    pub endpoint: EndpointConfig,
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
        reply: oneshot::Sender<EndpointStats>,
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
    #[error("the SIP driver has stopped")]
    Stopped,
}

/// Cheap to clone; every call actor holds one.
#[derive(Debug, Clone)]
pub struct SipHandle {
    commands: mpsc::UnboundedSender<SipCommand>,
    local: SocketAddr,
}

impl SipHandle {
    /// The bound SIP address (useful when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
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

    pub async fn stats(&self) -> Result<EndpointStats, DriverError> {
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
    let udp = if config.udp {
        Some(
            UdpSocket::bind(config.listen)
                .await
                .map_err(|source| DriverError::Bind {
                    transport: "UDP",
                    addr: config.listen,
                    source,
                })?,
        )
    } else {
        None
    };
    // With port 0, TCP takes the same port the UDP socket got.
    let mut listen = config.listen;
    if let Some(u) = &udp {
        listen = u.local_addr().map_err(|source| DriverError::Bind {
            transport: "UDP",
            addr: config.listen,
            source,
        })?;
    }
    let tcp = if config.tcp {
        Some(
            tcp::Tcp::bind(listen)
                .await
                .map_err(|source| DriverError::Bind {
                    transport: "TCP",
                    addr: listen,
                    source,
                })?,
        )
    } else {
        None
    };
    if udp.is_none() {
        if let Some(t) = &tcp {
            listen = t.local_addr;
        }
    }
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        endpoint: Endpoint::new(config.endpoint),
        udp,
        tcp,
        commands: cmd_rx,
        events: ev_tx,
        ids: CallIds::new(Instant::now()),
    };
    let task = tokio::spawn(driver.run());
    Ok((
        SipHandle {
            commands: cmd_tx,
            local: listen,
        },
        ev_rx,
        task,
    ))
}

struct Driver {
    endpoint: Endpoint,
    udp: Option<UdpSocket>,
    tcp: Option<tcp::Tcp>,
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
                    Ok((n, from)) => {
                        let peer = Peer { transport: Transport::Udp, addr: from };
                        self.endpoint.handle_datagram(Instant::now(), peer, &buf[..n]);
                    }
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                frame = recv_tcp(self.tcp.as_mut()) => {
                    if let Some((addr, bytes)) = frame {
                        let peer = Peer { transport: Transport::Tcp, addr };
                        self.endpoint.handle_datagram(Instant::now(), peer, &bytes);
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None | Some(SipCommand::Shutdown) => break,
                    Some(cmd) => self.command(cmd),
                },
                _ = sleep => self.endpoint.handle_timeout(Instant::now()),
            }
            self.drain().await;
        }
    }

    fn command(&mut self, cmd: SipCommand) {
        if let Some(SipCommand::Stats { reply }) =
            self.ids.command(&mut self.endpoint, Instant::now(), cmd)
        {
            let _ = reply.send(self.ids.stats(&self.endpoint));
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
        match t.peer.transport {
            Transport::Udp => {
                if let Some(u) = &self.udp {
                    if let Err(e) = u.send_to(&t.bytes, t.peer.addr).await {
                        tracing::debug!(to = %t.peer.addr, error = %e, "UDP send failed");
                    }
                }
            }
            Transport::Tcp => {
                if let Some(tcp) = &mut self.tcp {
                    tcp.send(t.peer.addr, t.bytes);
                }
            }
        }
    }
}

async fn recv_udp(udp: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(u) => u.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn recv_tcp(tcp: Option<&mut tcp::Tcp>) -> Option<(SocketAddr, Bytes)> {
    match tcp {
        Some(t) => t.next_frame().await,
        None => std::future::pending().await,
    }
}
