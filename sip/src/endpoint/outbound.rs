//! What the TU sends: requests (through client transactions), responses (through the server
//! transaction of their request), stateless messages, and CANCELs.
//!
//! The TU builds a request's Via itself, with its local address as sent-by (only the driver
//! knows which socket a peer is reached from): `SIP/2.0/UDP 192.0.2.10:5060;rport`. The
//! endpoint adds a fresh magic-cookie branch when the top Via has none (or a pre-RFC 3261
//! one), because the branch is the client transaction's key (§8.1.1.7, §17.1.3).

use std::time::Instant;

use bytes::Bytes;

use crate::message::{HeaderName, Method, Request, Response, SipMessage, Via};
use crate::transaction::{
    cancel_for, is_rfc3261_branch, ClientEvent, ClientKey, ClientTransaction, InviteClient,
    InviteClientState, NonInviteClient, ServerTransaction,
};

use super::ack_wait::{AckKey, AckWait};
use super::routing::replace_first;
use super::schedule::Slot;
use super::{
    new_branch, CancelState, ClientEntry, ClientTxId, Endpoint, EndpointEvent, Peer, ServerTxId,
};

/// Gives the top Via a fresh RFC 3261 branch unless it has one (or always, with `force`).
/// `None` when the request has no readable Via (the TU must provide one).
fn ensure_branch(request: &mut Request, force: bool) -> Option<()> {
    let line = request.headers.get(&HeaderName::Via)?;
    let mut vias = Via::parse_list(line).ok()?;
    let top = vias.first_mut()?;
    if !force && top.branch().is_some_and(is_rfc3261_branch) {
        return Some(());
    }
    top.set_param("branch", Some(new_branch()));
    let line = vias
        .iter()
        .map(Via::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    request.headers = replace_first(&request.headers, &HeaderName::Via, line);
    Some(())
}

impl Endpoint {
    /// Starts a client transaction (INVITE or non-INVITE) for `request` towards `to`.
    ///
    /// The request must carry a Via (see the module documentation); a missing branch is added.
    /// `Max-Forwards: 70` and `User-Agent` are added when absent. A request without a Via,
    /// or an ACK (which has no transaction: use [`Endpoint::send_stateless`]), gets an id that
    /// reports `Timeout` at once, resp. sends the ACK statelessly and reports nothing.
    pub fn send_request(&mut self, now: Instant, mut request: Request, to: Peer) -> ClientTxId {
        let id = self.next_id();
        if request.method == Method::Ack {
            self.send_stateless(now, SipMessage::Request(request), to);
            return ClientTxId(id);
        }
        if request.headers.get(&HeaderName::MaxForwards).is_none() {
            request.headers.push(HeaderName::MaxForwards, "70");
        }
        if !self.config.user_agent.is_empty()
            && request.headers.get(&HeaderName::UserAgent).is_none()
        {
            request
                .headers
                .push(HeaderName::UserAgent, self.config.user_agent.clone());
        }
        let Some(mut key) =
            ensure_branch(&mut request, false).and_then(|()| ClientKey::of_request(&request).ok())
        else {
            tracing::warn!(method = %request.method, "request without a usable Via: not sent");
            self.events
                .push_back(EndpointEvent::Timeout { tx: ClientTxId(id) });
            return ClientTxId(id);
        };
        if self.client_keys.contains_key(&key) {
            // The TU reused a branch still in use: a new one keeps both transactions apart.
            tracing::warn!(branch = %key.branch, "branch reused by the TU; replaced");
            ensure_branch(&mut request, true);
            match ClientKey::of_request(&request) {
                Ok(k) => key = k,
                Err(_) => {
                    self.events
                        .push_back(EndpointEvent::Timeout { tx: ClientTxId(id) });
                    return ClientTxId(id);
                }
            }
        }
        self.start_client(now, id, request, key, to);
        ClientTxId(id)
    }

    fn start_client(&mut self, now: Instant, id: u64, request: Request, key: ClientKey, to: Peer) {
        let reliable = to.transport.is_reliable();
        let tx = if request.method == Method::Invite {
            InviteClient::new(now, request, reliable, self.timers).map(ClientTransaction::Invite)
        } else {
            NonInviteClient::new(now, request, reliable, self.timers)
                .map(ClientTransaction::NonInvite)
        };
        match tx {
            Ok(tx) => {
                self.client_keys.insert(key.clone(), id);
                self.clients.insert(
                    id,
                    ClientEntry {
                        tx,
                        key,
                        peer: to,
                        cancel: None,
                    },
                );
                self.drain_client(now, id);
            }
            Err(e) => {
                tracing::warn!(error = %e, "request refused by the transaction layer");
                self.events
                    .push_back(EndpointEvent::Timeout { tx: ClientTxId(id) });
            }
        }
    }

    /// Sends `response` through the server transaction `tx`, to where its request came from.
    /// A 2xx to an INVITE is then retransmitted until its ACK arrives, or `AckTimeout`.
    /// Unknown or finished transactions drop the response (logged).
    pub fn send_response(&mut self, now: Instant, tx: ServerTxId, mut response: Response) {
        self.add_server_header(&mut response);
        let Some(entry) = self.servers.get_mut(&tx.0) else {
            tracing::warn!(%tx, status = response.status, "response for an unknown server transaction dropped");
            return;
        };
        if let Err(e) = entry.tx.send_response(now, &response) {
            tracing::warn!(%tx, error = %e, "response dropped");
            return;
        }
        self.stats.responses_sent.add(response.status);
        if let Some(tag) = response
            .headers
            .to_addr()
            .ok()
            .and_then(|to| to.tag().map(str::to_string))
        {
            entry.response_to_tag = Some(tag);
        }
        let invite_2xx = matches!(entry.tx, ServerTransaction::Invite(_))
            && (200..300).contains(&response.status);
        let peer = entry.peer;
        self.drain_server(tx.0);
        if invite_2xx && !self.ack_waits.contains_key(&tx.0) {
            match AckKey::of_response(&response.headers) {
                Some(key) => {
                    let wait = AckWait::new(
                        now,
                        tx,
                        peer,
                        key.clone(),
                        Bytes::from(response.to_bytes()),
                        self.timers,
                    );
                    self.schedule
                        .update(Slot::AckWait(tx.0), wait.poll_timeout());
                    self.ack_keys.insert(key, tx.0);
                    self.ack_waits.insert(tx.0, wait);
                }
                None => tracing::warn!(%tx, "2xx without Call-ID/CSeq/To: not retransmitted"),
            }
        }
    }

    /// Sends a message outside any transaction: the ACK for a 2xx (a request gets a fresh
    /// branch if its top Via has none), or a response a proxy-like TU forwards.
    pub fn send_stateless(&mut self, _now: Instant, message: SipMessage, to: Peer) {
        let bytes = match message {
            SipMessage::Request(mut request) => {
                if ensure_branch(&mut request, false).is_none() {
                    tracing::warn!(method = %request.method, "stateless request without a Via");
                }
                request.to_bytes()
            }
            SipMessage::Response(response) => {
                self.stats.responses_sent.add(response.status);
                response.to_bytes()
            }
        };
        self.push_transmit(to, Bytes::from(bytes), false);
    }

    /// Cancels a pending INVITE client transaction (§9.1) and returns the CANCEL's own client
    /// transaction, whose 200 (or 481) comes as `Response`. The INVITE itself then ends with its
    /// own final answer (487, normally). Before any provisional response the CANCEL is held and
    /// sent when one arrives; if the INVITE ends first, it is never sent and its id stays silent.
    /// `None` when `tx` is not an INVITE without a final response. Calling it again before the
    /// final response returns the same CANCEL.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) -> Option<ClientTxId> {
        let entry = self.clients.get(&tx.0)?;
        let ClientTransaction::Invite(invite) = &entry.tx else {
            return None;
        };
        let state = invite.state();
        if !matches!(
            state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            return None;
        }
        if let Some(CancelState::WaitingForProvisional { id, .. } | CancelState::Sent { id }) =
            &entry.cancel
        {
            return Some(ClientTxId(*id));
        }
        let mut cancel = match cancel_for(invite.request()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%tx, error = %e, "cannot build a CANCEL");
                return None;
            }
        };
        if !self.config.user_agent.is_empty() {
            cancel
                .headers
                .push(HeaderName::UserAgent, self.config.user_agent.clone());
        }
        let id = self.next_id();
        if state == InviteClientState::Proceeding {
            self.send_cancel(now, tx.0, id, cancel);
        } else if let Some(entry) = self.clients.get_mut(&tx.0) {
            entry.cancel = Some(CancelState::WaitingForProvisional {
                id,
                cancel: Box::new(cancel),
            });
        }
        Some(ClientTxId(id))
    }

    fn send_cancel(&mut self, now: Instant, invite_id: u64, id: u64, cancel: Request) {
        let Some(entry) = self.clients.get_mut(&invite_id) else {
            return;
        };
        entry.cancel = Some(CancelState::Sent { id });
        let peer = entry.peer;
        match ClientKey::of_request(&cancel) {
            Ok(key) => self.start_client(now, id, cancel, key, peer),
            Err(e) => tracing::warn!(error = %e, "CANCEL without a branch"),
        }
    }

    /// Turns a client transaction's event into the TU's, sending a held CANCEL on the first
    /// provisional response.
    pub(super) fn client_event(&mut self, now: Instant, id: u64, event: ClientEvent) {
        let tx = ClientTxId(id);
        match event {
            ClientEvent::Response(response) => {
                if response.is_provisional() {
                    let held = self
                        .clients
                        .get_mut(&id)
                        .and_then(|e| match e.cancel.take() {
                            Some(CancelState::WaitingForProvisional { id, cancel }) => {
                                Some((id, *cancel))
                            }
                            other => {
                                e.cancel = other;
                                None
                            }
                        });
                    if let Some((cancel_id, cancel)) = held {
                        self.send_cancel(now, id, cancel_id, cancel);
                    }
                }
                self.events
                    .push_back(EndpointEvent::Response { tx, response });
            }
            ClientEvent::Timeout | ClientEvent::TransportError => {
                self.events.push_back(EndpointEvent::Timeout { tx });
            }
        }
    }
}
