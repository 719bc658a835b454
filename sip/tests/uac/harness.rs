//! Two sans-IO endpoints wired back to back in virtual time: ours drives a [`Uac`] the way
//! the engine's call core does, the phone's is scripted by the test. Every message crosses a
//! simulated network that can lose what the test says, so retransmissions, Timer B and the
//! CANCEL rules run as on a real wire, only without sockets or sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sip::dialog::Dialog;
use sip::endpoint::Transport;
use sip::endpoint::{ClientTxId, Endpoint, EndpointConfig, EndpointEvent, Peer, ServerTxId};
use sip::message::{
    parse_datagram, CSeq, HeaderName, Method, NameAddr, Request, Response, SipMessage, Uri,
};
use sip::sdp::{LocalMedia, SdpSession, SessionDescription};
use sip::uac::{Credentials, InDialogRequest, RefusalReason, Uac, UacConfig, UacEvent, UacOutput};

pub const OURS: &str = "192.0.2.10:5060";
pub const PHONE: &str = "192.0.2.20:5060";
pub const PHONE_TAG: &str = "ph1";

pub fn udp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().expect("socket address"),
    }
}

pub fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

/// The leg the engine places to an agent's phone, with the caller's number as From.
pub fn config() -> UacConfig {
    let from = NameAddr::parse(
        &HeaderName::From,
        "\"Caller\" <sip:+33123456789@192.0.2.10>",
    )
    .expect("from");
    UacConfig::new(
        uri("sip:agent7@192.0.2.20:5060"),
        from,
        uri("sip:svi@192.0.2.10:5060"),
        udp(PHONE),
    )
}

pub fn our_media() -> SdpSession {
    SdpSession::new(LocalMedia::new(ip("192.0.2.10"), 40_000, 4242))
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Which of our messages the network loses.
pub type Loss = Box<dyn FnMut(&SipMessage) -> bool>;

pub struct Net {
    pub t0: Instant,
    pub now: Instant,
    pub ours: Endpoint,
    pub uac: Uac,
    txs: HashMap<ClientTxId, CSeq>,
    pub phone: Endpoint,
    /// The phone's media session: it answers our offers for real.
    pub phone_sdp: SdpSession,
    /// Everything our side put on the wire, with when (lost messages included).
    pub wire: Vec<(Duration, SipMessage)>,
    pub events: Vec<UacEvent>,
    /// Requests the phone received and the test has not taken yet.
    pub inbox: VecDeque<(Option<ServerTxId>, Request)>,
    /// The ACKs the phone got.
    pub phone_acks: Vec<Request>,
    /// The phone endpoint's other events (answers to its requests, CANCELs, ACK timeouts).
    pub phone_events: Vec<EndpointEvent>,
    /// What the client said of each request the phone sent in the dialog.
    pub in_dialog: Vec<Result<InDialogRequest, RefusalReason>>,
    pub lose: Option<Loss>,
}

impl Net {
    pub fn new() -> Net {
        Net::build(config(), None, None)
    }

    /// A client calling the phone over a network that loses what `lose` says from the start.
    pub fn build(config: UacConfig, credentials: Option<Credentials>, lose: Option<Loss>) -> Net {
        let t0 = Instant::now();
        let uac = Uac::new(t0, config, our_media(), credentials);
        let mut net = Net {
            t0,
            now: t0,
            ours: Endpoint::new(EndpointConfig::default()),
            uac,
            txs: HashMap::new(),
            phone: Endpoint::new(EndpointConfig {
                user_agent: "phone".into(),
                ..EndpointConfig::default()
            }),
            phone_sdp: SdpSession::new(LocalMedia::new(ip("192.0.2.20"), 30_000, 7)),
            wire: Vec::new(),
            events: Vec::new(),
            inbox: VecDeque::new(),
            phone_acks: Vec::new(),
            phone_events: Vec::new(),
            in_dialog: Vec::new(),
            lose,
        };
        net.pump();
        net
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Moves every message and event until nothing moves any more (no time passes).
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(out) = self.uac.poll_output() {
                moved = true;
                self.send(out);
            }
            while let Some(t) = self.ours.poll_transmit() {
                moved = true;
                let msg = parse_datagram(&t.bytes).expect("we send parseable messages");
                self.wire.push((self.elapsed(), msg.clone()));
                let lost = self.lose.as_mut().is_some_and(|lose| lose(&msg));
                if !lost {
                    self.phone.handle_datagram(self.now, udp(OURS), &t.bytes);
                }
            }
            while let Some(t) = self.phone.poll_transmit() {
                moved = true;
                self.ours.handle_datagram(self.now, udp(PHONE), &t.bytes);
            }
            while let Some(ev) = self.ours.poll_event() {
                moved = true;
                self.our_event(ev);
            }
            while let Some(ev) = self.phone.poll_event() {
                moved = true;
                match ev {
                    EndpointEvent::Request { request, .. } if request.method == Method::Ack => {
                        self.phone_acks.push(request)
                    }
                    EndpointEvent::Request { tx, request, .. } => {
                        self.inbox.push_back((tx, request))
                    }
                    other => self.phone_events.push(other),
                }
            }
            while let Some(e) = self.uac.poll_event() {
                moved = true;
                self.events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs every timer (both endpoints and the client) up to `elapsed` since the start.
    pub fn run_until(&mut self, elapsed: Duration) {
        let end = self.t0 + elapsed;
        loop {
            let next = [
                self.ours.poll_timeout(),
                self.phone.poll_timeout(),
                self.uac.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.ours.handle_timeout(self.now);
                    self.phone.handle_timeout(self.now);
                    self.uac.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    pub fn run_for(&mut self, d: Duration) {
        let at = self.elapsed() + d;
        self.run_until(at);
    }

    fn send(&mut self, out: UacOutput) {
        match out {
            UacOutput::Request {
                cseq,
                mut request,
                to,
            } => {
                with_via(&mut request);
                let tx = self.ours.send_request(self.now, request, to);
                self.txs.insert(tx, cseq);
            }
            UacOutput::Ack { mut request, to } => {
                with_via(&mut request);
                self.ours
                    .send_stateless(self.now, SipMessage::Request(request), to);
            }
            UacOutput::CancelInvite { invite } => {
                let tx = self
                    .txs
                    .iter()
                    .find(|(_, c)| **c == invite)
                    .map(|(tx, _)| *tx)
                    .expect("the INVITE's transaction");
                if let Some(cancel) = self.ours.cancel(self.now, tx) {
                    let cseq = CSeq {
                        seq: invite.seq,
                        method: Method::Cancel,
                    };
                    self.txs.insert(cancel, cseq);
                }
            }
        }
    }

    /// What the engine's call core does with the endpoint's events for this leg.
    fn our_event(&mut self, ev: EndpointEvent) {
        let now = self.now;
        match ev {
            EndpointEvent::Response { response, .. } => self.uac.handle_response(now, &response),
            EndpointEvent::Timeout { tx } => {
                if let Some(cseq) = self.txs.get(&tx).cloned() {
                    self.uac.handle_transaction_timeout(now, &cseq);
                }
            }
            EndpointEvent::Request { tx, request, .. } => {
                match self.uac.handle_request(now, &request) {
                    Ok(kind) => {
                        self.in_dialog.push(Ok(kind));
                        let response = match kind {
                            InDialogRequest::Ack => return,
                            InDialogRequest::Offer => self.uac.answer_offer(&request),
                            InDialogRequest::Bye | InDialogRequest::Other => {
                                self.uac.respond(&request, 200)
                            }
                        };
                        if let Some(tx) = tx {
                            self.ours.send_response(now, tx, response);
                        }
                    }
                    Err(refusal) => {
                        self.in_dialog.push(Err(refusal.reason));
                        if let Some(tx) = tx {
                            self.ours.send_response(now, tx, refusal.response);
                        }
                    }
                }
            }
            EndpointEvent::AckTimeout { .. } => self.uac.handle_ack_timeout(now),
            EndpointEvent::Cancelled { .. } => {}
        }
    }

    /// The next request the phone got, which must be a `method`.
    pub fn take(&mut self, method: Method) -> (Option<ServerTxId>, Request) {
        let (tx, req) = self.inbox.pop_front().expect("a request at the phone");
        assert_eq!(req.method, method, "the phone got {}", req.method);
        (tx, req)
    }

    /// The phone answers `req` (its To tag, its Contact on 1xx/2xx, `body` as SDP).
    pub fn reply(
        &mut self,
        tx: Option<ServerTxId>,
        req: &Request,
        status: u16,
        body: Option<String>,
    ) {
        let mut r = Response::for_request(req, status).with_to_tag(PHONE_TAG);
        if status < 300 && req.method == Method::Invite {
            r.headers
                .push(HeaderName::Contact, "<sip:agent7@192.0.2.20:5060>");
        }
        if let Some(b) = body {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = b.into_bytes().into();
        }
        self.phone
            .send_response(self.now, tx.expect("a server transaction"), r);
        self.pump();
    }

    /// The phone's SDP answer to the offer in `req`.
    pub fn answer(&mut self, req: &Request) -> String {
        let offer = SessionDescription::parse_bytes(&req.body).expect("an SDP offer");
        self.phone_sdp
            .answer(&offer)
            .expect("the phone accepts the offer")
            .sdp
            .to_string()
    }

    /// Rings (180) then answers (200 with SDP) the INVITE waiting at the phone; returns it.
    pub fn ring_and_answer(&mut self) -> (Request, Dialog) {
        let (tx, invite) = self.take(Method::Invite);
        self.reply(tx, &invite, 180, None);
        let sdp = self.answer(&invite);
        self.reply(tx, &invite, 200, Some(sdp));
        let contact = uri("sip:agent7@192.0.2.20:5060");
        let dialog = Dialog::new_uas(&invite, PHONE_TAG, contact).expect("the phone's dialog");
        (invite, dialog)
    }

    /// The phone sends a request (built from its dialog) to us.
    pub fn phone_sends(&mut self, mut req: Request) {
        req.headers
            .push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.20:5060;rport");
        self.phone.send_request(self.now, req, udp(OURS));
        self.pump();
    }

    /// The requests of `method` we put on the wire, in order.
    pub fn sent(&self, method: Method) -> Vec<Request> {
        self.wire
            .iter()
            .filter_map(|(_, m)| match m {
                SipMessage::Request(r) if r.method == method => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The answers the phone got to its own requests.
    pub fn phone_answers(&self) -> Vec<u16> {
        self.phone_events
            .iter()
            .filter_map(|e| match e {
                EndpointEvent::Response { response, .. } if response.status >= 200 => {
                    Some(response.status)
                }
                _ => None,
            })
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<UacEvent> {
        std::mem::take(&mut self.events)
    }
}

fn with_via(request: &mut Request) {
    request
        .headers
        .push(HeaderName::Via, format!("SIP/2.0/UDP {OURS};rport"));
}
