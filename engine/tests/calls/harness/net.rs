//! The test network: every endpoint (the engine and each test UA) sits on a channel
//! transport; one forwarding task per endpoint delivers what it sends to the endpoint at
//! the destination address, as UDP would (an address nobody holds drops the datagram).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use sip::endpoint::{EndpointConfig, Peer, Transport};
use sip::transport::channel::{self, ChannelWire, Datagram};
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::mpsc;

/// Who listens at which address. A mutex because the forwarding tasks of every endpoint
/// read it and the test adds endpoints while they run; it is never held across an await.
type Hosts = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Datagram>>>>;

#[derive(Clone, Default)]
pub struct Net {
    hosts: Hosts,
}

impl Net {
    /// A new endpoint at `addr` on the network: its handle and events, as the UDP driver
    /// gives them.
    pub fn endpoint(
        &self,
        addr: SocketAddr,
        config: EndpointConfig,
    ) -> (
        SipHandle,
        mpsc::UnboundedReceiver<SipEvent>,
        tokio::task::JoinHandle<()>,
    ) {
        let (sip, events, task, wire) = channel::start(addr, config);
        self.attach(addr, wire);
        (sip, events, task)
    }

    fn attach(&self, addr: SocketAddr, wire: ChannelWire) {
        let ChannelWire {
            mut outbound,
            inbound,
        } = wire;
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr, inbound);
        let hosts = self.hosts.clone();
        let from = Peer {
            transport: Transport::Udp,
            addr,
        };
        tokio::spawn(async move {
            while let Some((to, bytes)) = outbound.recv().await {
                let host = hosts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&to.addr)
                    .cloned();
                if let Some(h) = host {
                    let _ = h.send((from, bytes));
                }
            }
        });
    }
}
