//! What every driver of the endpoint does the same way, whatever carries its datagrams:
//! carry out a command, and name the call of each transaction in the events it hands over
//! (the engine routes a timeout or a CANCEL to its call by Call-ID).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{SipCommand, SipEvent};
use crate::endpoint::{
    shrink_sparse, ClientTxId, Endpoint, EndpointEvent, EndpointStats, ServerTxId,
};

/// How often the Call-ID tables drop the entries of ended transactions. At 2,000 calls/s
/// that is some 8,000 entries per sweep; keeping them for 300 s instead (as before) held
/// about 1.2 million.
const PURGE_EVERY: Duration = Duration::from_secs(2);

/// Call-IDs of live client and server transactions; an entry goes once the endpoint no
/// longer knows its transaction.
pub(super) struct CallIds {
    client: HashMap<ClientTxId, String>,
    server: HashMap<ServerTxId, String>,
    last_purge: Instant,
}

impl CallIds {
    pub(super) fn new(now: Instant) -> Self {
        CallIds {
            client: HashMap::new(),
            server: HashMap::new(),
            last_purge: now,
        }
    }

    /// Carries out a command that only concerns the endpoint; hands any other back to the
    /// driver (statistics, shutdown, what its own transports need).
    pub(super) fn command(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        cmd: SipCommand,
    ) -> Option<SipCommand> {
        match cmd {
            SipCommand::SendRequest { request, to, reply } => {
                let call_id = request.headers.call_id().map(str::to_string);
                let tx = endpoint.send_request(now, request, to);
                if let Some(c) = call_id {
                    self.client.insert(tx, c);
                }
                let _ = reply.send(tx);
            }
            SipCommand::SendResponse { tx, response } => endpoint.send_response(now, tx, response),
            SipCommand::SendStateless { message, to } => endpoint.send_stateless(now, message, to),
            SipCommand::Cancel { tx } => {
                if let Some(cancel_tx) = endpoint.cancel(now, tx) {
                    if let Some(c) = self.client.get(&tx).cloned() {
                        self.client.insert(cancel_tx, c);
                    }
                }
            }
            other => return Some(other),
        }
        None
    }

    /// The endpoint's statistics, with the entries of these tables.
    pub(super) fn stats(&self, endpoint: &Endpoint) -> EndpointStats {
        let mut stats = endpoint.stats();
        stats.call_id_entries = self.client.len() + self.server.len();
        stats
    }

    /// The endpoint's event as the engine gets it: with the Call-ID of its transaction.
    pub(super) fn event(&mut self, ev: EndpointEvent) -> SipEvent {
        match ev {
            EndpointEvent::Request { tx, request, from } => {
                if let (Some(tx), Some(c)) = (tx, request.headers.call_id()) {
                    self.server.insert(tx, c.to_string());
                }
                SipEvent::Request { tx, request, from }
            }
            EndpointEvent::Response { tx, response } => SipEvent::Response { tx, response },
            EndpointEvent::Timeout { tx } => SipEvent::Timeout {
                tx,
                call_id: self.client.get(&tx).cloned(),
            },
            EndpointEvent::Cancelled { tx } => SipEvent::Cancelled {
                tx,
                call_id: self.server.get(&tx).cloned(),
            },
            EndpointEvent::AckTimeout { tx } => SipEvent::AckTimeout {
                tx,
                call_id: self.server.get(&tx).cloned(),
            },
        }
    }

    /// Drops the entries of ended transactions, at most every `PURGE_EVERY`.
    pub(super) fn purge(&mut self, endpoint: &Endpoint, now: Instant) {
        if now.duration_since(self.last_purge) < PURGE_EVERY {
            return;
        }
        self.last_purge = now;
        self.client.retain(|tx, _| endpoint.client_alive(*tx));
        self.server.retain(|tx, _| endpoint.server_alive(*tx));
        shrink_sparse(&mut self.client);
        shrink_sparse(&mut self.server);
    }
}
