//! A transport over in-process channels, beside the UDP/TCP driver: the same sans-IO
//! `Endpoint`, `SipHandle` and `SipEvent`s, but datagrams come from and go to a
//! [`ChannelWire`] the owner holds instead of sockets. Its clock is tokio's, so under
//! `tokio::time::pause` transactions retransmit and time out in virtual time: an engine and
//! its peers in one test process, whole calls in milliseconds.
//!
//! It has no allow-list, no streams and no TLS: the test network holds only the test's own
//! endpoints, and the edge is tested over real sockets (`sip/tests/edge.rs`).

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::call_ids::CallIds;
use super::{DriverStats, SipCommand, SipEvent, SipHandle};
use crate::endpoint::{Endpoint, EndpointConfig, Peer};

/// A datagram on the wire: who sent it (inbound) or where it goes (outbound).
pub type Datagram = (Peer, Bytes);

/// The far side of a channel transport: what it sends, and a way to deliver to it.
#[derive(Debug)]
pub struct ChannelWire {
    /// Datagrams the endpoint sends, with their destination.
    pub outbound: mpsc::UnboundedReceiver<Datagram>,
    /// Delivers a datagram to the endpoint, from the given peer.
    pub inbound: mpsc::UnboundedSender<Datagram>,
}

/// Starts an endpoint whose address is `local` and whose datagrams are the wire's.
pub fn start(
    local: SocketAddr,
    endpoint: EndpointConfig,
) -> (
    SipHandle,
    mpsc::UnboundedReceiver<SipEvent>,
    JoinHandle<()>,
    ChannelWire,
) {
    let (cmd_tx, commands) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (out_tx, outbound) = mpsc::unbounded_channel();
    let (inbound, in_rx) = mpsc::unbounded_channel();
    let driver = ChannelDriver {
        endpoint: Endpoint::new(endpoint),
        commands,
        events: ev_tx,
        inbound: in_rx,
        outbound: out_tx,
        ids: CallIds::new(now()),
    };
    let task = tokio::spawn(driver.run());
    let handle = SipHandle {
        commands: cmd_tx,
        local,
        tls: None,
    };
    (handle, ev_rx, task, ChannelWire { outbound, inbound })
}

struct ChannelDriver {
    endpoint: Endpoint,
    commands: mpsc::UnboundedReceiver<SipCommand>,
    events: mpsc::UnboundedSender<SipEvent>,
    inbound: mpsc::UnboundedReceiver<Datagram>,
    outbound: mpsc::UnboundedSender<Datagram>,
    /// Call-IDs of live transactions, for routing their timeouts and cancellations.
    ids: CallIds,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl ChannelDriver {
    async fn run(mut self) {
        loop {
            let deadline = self.endpoint.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                datagram = self.inbound.recv() => match datagram {
                    Some((from, bytes)) => self.endpoint.handle_datagram(now(), from, &bytes),
                    None => break,
                },
                cmd = self.commands.recv() => match cmd {
                    None | Some(SipCommand::Shutdown) => break,
                    Some(cmd) => {
                        if let Some(SipCommand::Stats { reply }) =
                            self.ids.command(&mut self.endpoint, now(), cmd)
                        {
                            let _ = reply.send(DriverStats {
                                endpoint: self.ids.stats(&self.endpoint),
                                ..DriverStats::default()
                            });
                        }
                    }
                },
                () = sleep => self.endpoint.handle_timeout(now()),
            }
            if !self.drain() {
                break;
            }
        }
    }

    /// Sends every transmit and hands every event over; false once nobody listens.
    fn drain(&mut self) -> bool {
        while let Some(t) = self.endpoint.poll_transmit() {
            let _ = self.outbound.send((t.peer, t.bytes));
        }
        while let Some(ev) = self.endpoint.poll_event() {
            if self.events.send(self.ids.event(ev)).is_err() {
                return false;
            }
        }
        self.ids.purge(&self.endpoint, now());
        true
    }
}
