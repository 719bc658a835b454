//! What arrives from the network, and what the endpoint does with it before (or instead of)
//! telling the TU.
//!
//! Requests: the top Via is stamped for response routing (`routing`), then the request is
//! matched to a server transaction (§17.2.3). A match is a retransmission, answered from the
//! transaction's memory and never shown to the TU. Otherwise:
//! - INVITE: a new transaction that answers `100 Trying` at once (§17.2.1: the TU may take
//!   longer than 200 ms), To copied as received, Timestamp echoed (§8.2.6.1);
//! - ACK: absorbed by the INVITE transaction whose non-2xx final it acknowledges; an ACK for a
//!   2xx stops that 2xx's retransmission and goes to the TU with `tx: None` (§13.3.1.4);
//! - CANCEL (§9.2): a transaction of its own, answered here: 200 when it matches a server
//!   transaction (with the To tag of that transaction's responses), plus `Cancelled` when the
//!   INVITE has no final answer yet; 481 when nothing matches. The TU never sees the CANCEL;
//! - anything else: a new transaction, given to the TU.
//!
//! Responses are matched to client transactions (§17.1.3); the rest are stray and dropped
//! (RFC 6026 §7.3: a proxy-less UA has no business forwarding them). A 2xx retransmission
//! for an INVITE still finds its transaction, in Accepted, for 64*T1.
//!
//! Unparseable datagrams: a request whose headers survived (with a Via to answer to) gets
//! 400, or 505 for a SIP version other than 2.0, with the parse error in a `Warning`
//! (§8.2.6.2, RFC 4475 §3.1.2); everything else is dropped and counted. Nothing panics.

use std::time::Instant;

use bytes::Bytes;

use crate::message::{
    parse_datagram, HeaderName, Headers, Method, ParseError, Request, Response, SipMessage,
};
use crate::transaction::{
    AckDisposition, ClientKey, InviteServer, InviteServerState, NonInviteServer, ServerKey,
    ServerTransaction,
};

use super::ack_wait::AckKey;
use super::routing::stamp_received;
use super::{new_tag, Endpoint, EndpointEvent, Peer, ServerEntry, ServerTxId};

/// Puts a To tag on a response to a request that had none (§8.2.6.2), when To is readable.
fn add_to_tag(response: &mut Response, tag: Option<String>) {
    let Ok(to) = response.headers.to_addr() else {
        return;
    };
    if to.tag().is_none() {
        let tag = tag.unwrap_or_else(new_tag);
        response
            .headers
            .set(HeaderName::To, to.with_tag(&tag).to_string());
    }
}

/// A warn-text (RFC 3261 §20.43) from arbitrary error text: quoted-string safe, bounded.
fn warning_text(error: &ParseError) -> String {
    let text: String = error
        .to_string()
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .take(200)
        .collect();
    format!("399 - \"{text}\"")
}

fn is_ack(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"ACK ")
}

impl Endpoint {
    /// One UDP datagram, or one message framed from a TCP stream (`stream_frame_len`).
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        match parse_datagram(bytes) {
            Ok(SipMessage::Request(request)) => self.handle_request(now, from, request),
            Ok(SipMessage::Response(response)) => self.handle_response(now, response),
            // CRLF keep-alives (RFC 5626 §4.4.1) are not errors.
            Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {}
            Err(error) => self.handle_malformed(from, bytes, error),
        }
    }

    fn handle_request(&mut self, now: Instant, from: Peer, mut request: Request) {
        self.stats.requests_received.add(&request.method);
        let peer = stamp_received(&mut request.headers, from, self.config.force_rport);
        let key = match ServerKey::of_request(&request) {
            Ok(key) => key,
            Err(e) => {
                // The parser validated Via, From and CSeq, so this is not expected.
                tracing::debug!(error = %e, "request without a transaction key dropped");
                self.stats.malformed_dropped += 1;
                return;
            }
        };
        match request.method {
            Method::Ack => self.handle_ack(now, key, request, from),
            Method::Cancel => self.handle_cancel(now, key, request, peer),
            _ => self.handle_new_or_retransmitted(now, key, request, from, peer),
        }
    }

    fn handle_new_or_retransmitted(
        &mut self,
        now: Instant,
        key: ServerKey,
        request: Request,
        from: Peer,
        peer: Peer,
    ) {
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(entry) = self.servers.get_mut(&id) {
                entry.tx.handle_retransmission();
                self.stats.retransmissions_absorbed += 1;
            }
            self.drain_server(id);
            return;
        }
        let id = self.next_id();
        let reliable = peer.transport.is_reliable();
        let is_invite = request.method == Method::Invite;
        let tx = if is_invite {
            ServerTransaction::Invite(InviteServer::new(reliable, self.timers))
        } else {
            ServerTransaction::NonInvite(NonInviteServer::new(reliable, self.timers))
        };
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                tx,
                key,
                peer,
                response_to_tag: None,
                cancelled: false,
            },
        );
        if is_invite {
            let mut trying = Response::for_request(&request, 100);
            trying
                .headers
                .copy_from(&request.headers, &HeaderName::Timestamp);
            self.send_response(now, ServerTxId(id), trying);
        }
        self.events.push_back(EndpointEvent::Request {
            tx: Some(ServerTxId(id)),
            request,
            from,
        });
    }

    fn handle_ack(&mut self, now: Instant, key: ServerKey, ack: Request, from: Peer) {
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(entry) = self.servers.get_mut(&id) {
                // RFC 2543 keys leave out the To tag: an ACK must carry our response's (§17.2.3).
                let tag_matches = !entry.key.is_rfc2543()
                    || entry.response_to_tag.is_none()
                    || ServerKey::to_tag(&ack) == entry.response_to_tag;
                if let (true, ServerTransaction::Invite(tx)) = (tag_matches, &mut entry.tx) {
                    let repeated = tx.state() == InviteServerState::Confirmed;
                    if tx.handle_ack(now) == AckDisposition::Absorbed {
                        if repeated {
                            self.stats.retransmissions_absorbed += 1;
                        }
                        self.drain_server(id);
                        return;
                    }
                }
            }
        }
        if let Some(wait_id) = AckKey::of_ack(&ack).and_then(|k| self.ack_keys.get(&k).copied()) {
            self.remove_ack_wait(wait_id);
        }
        self.events.push_back(EndpointEvent::Request {
            tx: None,
            request: ack,
            from,
        });
    }

    fn handle_cancel(&mut self, now: Instant, key: ServerKey, cancel: Request, peer: Peer) {
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(entry) = self.servers.get_mut(&id) {
                entry.tx.handle_retransmission();
                self.stats.retransmissions_absorbed += 1;
            }
            self.drain_server(id);
            return;
        }
        let id = self.next_id();
        let tx = ServerTransaction::NonInvite(NonInviteServer::new(
            peer.transport.is_reliable(),
            self.timers,
        ));
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                tx,
                key,
                peer,
                response_to_tag: None,
                cancelled: false,
            },
        );

        let target = ServerKey::cancelled_by(&cancel)
            .ok()
            .and_then(|k| self.server_keys.get(&k).copied());
        let mut cancelled = None;
        let (status, tag) = match target.and_then(|t| self.servers.get_mut(&t).map(|e| (t, e))) {
            Some((target_id, entry)) => {
                let pending = matches!(&entry.tx, ServerTransaction::Invite(tx) if tx.state() == InviteServerState::Proceeding);
                if pending && !entry.cancelled {
                    entry.cancelled = true;
                    cancelled = Some(ServerTxId(target_id));
                }
                (200, entry.response_to_tag.clone())
            }
            None => (481, None),
        };
        let mut response = Response::for_request(&cancel, status);
        add_to_tag(&mut response, tag);
        self.send_response(now, ServerTxId(id), response);
        if let Some(tx) = cancelled {
            self.events.push_back(EndpointEvent::Cancelled { tx });
        }
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        self.stats.responses_received.add(response.status);
        let id = ClientKey::of_response(&response)
            .ok()
            .and_then(|k| self.client_keys.get(&k).copied());
        let Some(id) = id else {
            tracing::debug!(status = response.status, call_id = ?response.headers.call_id(), "stray response dropped");
            self.stats.stray_responses += 1;
            return;
        };
        let before = self.events.len();
        if let Some(entry) = self.clients.get_mut(&id) {
            entry.tx.handle_response(now, response);
        }
        self.drain_client(now, id);
        if self.events.len() == before {
            self.stats.retransmissions_absorbed += 1;
        }
    }

    fn handle_malformed(&mut self, from: Peer, bytes: &[u8], error: ParseError) {
        let headers: Option<&Headers> = error
            .request_headers
            .as_ref()
            .filter(|h| h.get(&HeaderName::Via).is_some());
        let Some(headers) = headers.filter(|_| !is_ack(bytes)) else {
            tracing::debug!(%error, peer = %from.addr, "unparseable message dropped");
            self.stats.malformed_dropped += 1;
            return;
        };
        let mut headers = headers.clone();
        let peer = stamp_received(&mut headers, from, self.config.force_rport);
        let mut response = Response::for_headers(&headers, error.status());
        add_to_tag(&mut response, None);
        response
            .headers
            .push(HeaderName::Warning, warning_text(&error));
        self.add_server_header(&mut response);
        tracing::debug!(%error, peer = %from.addr, status = response.status, "unparseable request answered");
        self.stats.malformed_answered += 1;
        self.stats.responses_sent.add(response.status);
        self.push_transmit(peer, Bytes::from(response.to_bytes()), false);
    }
}
