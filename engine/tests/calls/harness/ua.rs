//! A scripted SIP user agent: its own endpoint on the test network (transactions and
//! retransmissions in virtual time) and the verbs a scenario reads as a script: dial,
//! answer or refuse a call, hang up, key a digit by INFO, put on hold, register.
//!
//! Every wait names what it waits for and how long at most (virtual time); an event that
//! is not the one awaited is kept for a later wait, so a scenario can take events in the
//! order it cares about.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use sip::dialog::Dialog;
use sip::endpoint::{
    new_call_id, new_tag, ClientTxId, EndpointConfig, Peer, ServerTxId, Transport,
};
use sip::message::{HeaderName, Headers, Method, NameAddr, Request, Response, SipMessage, Uri};
use sip::register::{RegistrationClient, RegistrationConfig, RegistrationEvent};
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::mpsc;

use super::net::Net;

/// The SDP of a test UA at `rtp`: PCMA, PCMU and telephone-event, `direction`.
pub fn sdp(rtp: SocketAddr, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na={direction}\r\n",
        ip = rtp.ip(),
        port = rtp.port(),
    )
}

/// A call of the UA once answered: its dialog.
#[derive(Debug, Clone)]
pub struct Call {
    pub dialog: Dialog,
}

/// An INVITE the UA received and has not answered yet (it sent 180).
#[derive(Debug)]
pub struct Ringing {
    pub tx: ServerTxId,
    pub invite: Request,
    tag: String,
}

pub struct Ua {
    pub user: String,
    /// Its SIP address.
    pub addr: SocketAddr,
    /// The media address in its SDP (the media stand-in knows the UA by it).
    pub rtp: SocketAddr,
    engine: Peer,
    sip: SipHandle,
    events: mpsc::UnboundedReceiver<SipEvent>,
    backlog: VecDeque<SipEvent>,
}

/// `request` with one Via, ours (the endpoint adds the branch).
fn with_via(local: SocketAddr, mut request: Request) -> Request {
    let mut headers = Headers::new();
    headers.push(HeaderName::Via, format!("SIP/2.0/UDP {local};rport"));
    for h in request.headers.iter().filter(|h| h.name != HeaderName::Via) {
        headers.push(h.name.clone(), h.value.clone());
    }
    request.headers = headers;
    request
}

impl Ua {
    pub fn new(net: &Net, user: &str, addr: SocketAddr, engine: SocketAddr) -> Ua {
        let config = EndpointConfig {
            user_agent: format!("test-ua-{user}"),
            ..EndpointConfig::default()
        };
        let (sip, events, _task) = net.endpoint(addr, config);
        Ua {
            user: user.to_string(),
            addr,
            rtp: SocketAddr::new(addr.ip(), addr.port() + 10_000),
            engine: Peer {
                transport: Transport::Udp,
                addr: engine,
            },
            sip,
            events,
            backlog: VecDeque::new(),
        }
    }

    fn contact(&self) -> NameAddr {
        let uri = Uri::parse(&format!("sip:{}@{}", self.user, self.addr)).expect("contact");
        NameAddr::new(uri)
    }

    /// The next event `matching`, within `within` of virtual time; others wait their turn.
    pub async fn event(
        &mut self,
        what: &str,
        within: Duration,
        mut matching: impl FnMut(&SipEvent) -> bool,
    ) -> SipEvent {
        if let Some(i) = self.backlog.iter().position(&mut matching) {
            return self.backlog.remove(i).expect("index from position");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv()).await;
            match ev {
                Ok(Some(ev)) if matching(&ev) => return ev,
                Ok(Some(ev)) => self.backlog.push_back(ev),
                Ok(None) => panic!(
                    "{}: the network is gone while waiting for {what}",
                    self.user
                ),
                Err(_) => panic!(
                    "{}: no {what} within {within:?}; pending: {:#?}",
                    self.user, self.backlog
                ),
            }
        }
    }

    /// Whether an event `matching` came (already received, nothing awaited).
    pub fn got(&mut self, mut matching: impl FnMut(&SipEvent) -> bool) -> bool {
        while let Ok(ev) = self.events.try_recv() {
            self.backlog.push_back(ev);
        }
        self.backlog.iter().any(&mut matching)
    }

    async fn send(&self, request: Request, to: Peer) -> ClientTxId {
        let request = with_via(self.addr, request);
        self.sip
            .send_request(request, to)
            .await
            .expect("the UA's transport runs")
    }

    /// The final response to our request `tx`.
    pub async fn final_response(&mut self, tx: ClientTxId, within: Duration) -> Response {
        let ev = self
            .event("a final response", within, |e| {
                matches!(e, SipEvent::Response { tx: t, response } if *t == tx && response.status >= 200)
                    || matches!(e, SipEvent::Timeout { tx: t, .. } if *t == tx)
            })
            .await;
        match ev {
            SipEvent::Response { response, .. } => response,
            other => panic!("{}: no final response: {other:?}", self.user),
        }
    }

    /// An INVITE to `number` at the engine, with our offer (`sdp`: None for none).
    pub async fn invite(&mut self, number: &str, body: Option<String>) -> (ClientTxId, Request) {
        let target = Uri::parse(&format!("sip:{number}@{}", self.engine.addr)).expect("uri");
        let from = Uri::parse(&format!("sip:{}@{}", self.user, self.addr)).expect("uri");
        let mut invite = Request::new(Method::Invite, target.clone());
        let h = &mut invite.headers;
        h.push(
            HeaderName::From,
            NameAddr::new(from).with_tag(&new_tag()).to_string(),
        );
        h.push(HeaderName::To, NameAddr::new(target).to_string());
        h.push(HeaderName::CallId, new_call_id());
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(HeaderName::Contact, self.contact().to_string());
        h.push(HeaderName::MaxForwards, "70");
        if let Some(body) = body {
            h.push(HeaderName::ContentType, "application/sdp");
            invite.body = body.into_bytes().into();
        }
        let invite = with_via(self.addr, invite);
        let tx = self.send(invite.clone(), self.engine).await;
        (tx, invite)
    }

    /// Calls `number` with our offer; answered (200, ACKed) within `within`.
    pub async fn dial(&mut self, number: &str, within: Duration) -> Call {
        let (tx, invite) = self.invite(number, Some(sdp(self.rtp, "sendrecv"))).await;
        let ok = self.final_response(tx, within).await;
        assert_eq!(ok.status, 200, "{}: {number} answered {ok:?}", self.user);
        let dialog = Dialog::new_uac(&invite, &ok).expect("a dialog from the 200");
        self.ack(&dialog, &ok);
        Call { dialog }
    }

    fn ack(&self, dialog: &Dialog, ok: &Response) {
        let ack = with_via(self.addr, dialog.create_ack(ok));
        self.sip
            .send_stateless(SipMessage::Request(ack), self.engine);
    }

    /// A request in `call`'s dialog; its final response.
    pub async fn request(
        &mut self,
        call: &mut Call,
        method: Method,
        content: Option<(&str, String)>,
    ) -> Response {
        self.request_with(call, method, &[], content).await
    }

    /// A request in `call`'s dialog with `headers`; its final response (a 2xx to an
    /// INVITE is acknowledged).
    pub async fn request_with(
        &mut self,
        call: &mut Call,
        method: Method,
        headers: &[(&str, &str)],
        content: Option<(&str, String)>,
    ) -> Response {
        let mut request = call.dialog.create_request(method.clone());
        for (name, value) in headers {
            request.headers.push(HeaderName::parse(name), *value);
        }
        if let Some((content_type, body)) = content {
            request.headers.push(HeaderName::ContentType, content_type);
            request.body = body.into_bytes().into();
        }
        let tx = self.send(request, self.engine).await;
        let response = self.final_response(tx, Duration::from_secs(40)).await;
        if method == Method::Invite && response.status == 200 {
            self.ack(&call.dialog, &response);
        }
        response
    }

    /// Hangs up: BYE, answered 200.
    pub async fn hang_up(&mut self, call: &mut Call) {
        let r = self.request(call, Method::Bye, None).await;
        assert_eq!(r.status, 200, "{}: BYE answered {r:?}", self.user);
    }

    /// Puts `call` on hold (`sendonly`) or resumes it (`sendrecv`) by re-INVITE; the
    /// response (acknowledged when 200).
    pub async fn reinvite(&mut self, call: &mut Call, direction: &str) -> Response {
        let offer = sdp(self.rtp, direction);
        self.request(call, Method::Invite, Some(("application/sdp", offer)))
            .await
    }

    /// Accepts the engine's REFER in `call` (202), then reports the transfer's outcome in
    /// a NOTIFY (`status`, e.g. "200 OK"), as a PBX does. The REFER's `Refer-To`.
    pub async fn accept_refer(
        &mut self,
        call: &mut Call,
        status: &str,
        within: Duration,
    ) -> String {
        let refer = self.expect_in(call, Method::Refer, 202, within).await;
        let refer_to = refer
            .headers
            .get(&HeaderName::ReferTo)
            .unwrap_or_default()
            .to_string();
        let frag = format!("SIP/2.0 {status}\r\n");
        let headers = [
            ("Event", "refer"),
            ("Subscription-State", "terminated;reason=noresource"),
        ];
        let r = self
            .request_with(
                call,
                Method::Notify,
                &headers,
                Some(("message/sipfrag", frag)),
            )
            .await;
        assert_eq!(r.status, 200, "{}: NOTIFY answered {r:?}", self.user);
        refer_to
    }

    /// Keys `digits` as SIP INFO (`application/dtmf-relay`).
    pub async fn info(&mut self, call: &mut Call, digits: &str) {
        for d in digits.chars() {
            let body = format!("Signal={d}\r\nDuration=160\r\n");
            let r = self
                .request(call, Method::Info, Some(("application/dtmf-relay", body)))
                .await;
            assert_eq!(r.status, 200);
        }
    }

    /// A request of `method` from the engine in `call`'s dialog, answered `status`.
    pub async fn expect_in(
        &mut self,
        call: &Call,
        method: Method,
        status: u16,
        within: Duration,
    ) -> Request {
        let call_id = call.dialog.id.call_id.clone();
        let what = format!("{method} in the dialog");
        let ev = self
            .event(&what, within, |e| {
                matches!(e, SipEvent::Request { request, .. }
                    if request.method == method && request.headers.call_id() == Some(call_id.as_str()))
            })
            .await;
        let SipEvent::Request { tx, request, .. } = ev else {
            unreachable!("matched a request")
        };
        if let Some(tx) = tx {
            let r = Response::for_request(&request, status).with_to_tag(&call.dialog.id.local_tag);
            self.sip.send_response(tx, r);
        }
        request
    }

    /// The engine hangs up `call` (BYE, answered 200) within `within`.
    pub async fn expect_bye(&mut self, call: &Call, within: Duration) -> Request {
        self.expect_in(call, Method::Bye, 200, within).await
    }

    /// An INVITE from the engine arrives within `within`; the UA answers 180.
    pub async fn ringing(&mut self, within: Duration) -> Ringing {
        let ev = self
            .event("an INVITE", within, |e| {
                matches!(e, SipEvent::Request { request, tx: Some(_), .. } if request.method == Method::Invite
                    && request.headers.to_addr().is_ok_and(|t| t.tag().is_none()))
            })
            .await;
        let SipEvent::Request {
            tx: Some(tx),
            request,
            ..
        } = ev
        else {
            unreachable!("matched an INVITE with a transaction")
        };
        let tag = new_tag();
        let mut ringing = Response::for_request(&request, 180).with_to_tag(&tag);
        ringing
            .headers
            .push(HeaderName::Contact, self.contact().to_string());
        self.sip.send_response(tx, ringing);
        Ringing {
            tx,
            invite: request,
            tag,
        }
    }

    /// Whether an INVITE from the engine came already (answered or not).
    pub fn got_invite(&mut self) -> bool {
        self.got(
            |e| matches!(e, SipEvent::Request { request, .. } if request.method == Method::Invite),
        )
    }

    /// Answers the ringing INVITE (200 with our SDP; `with_sdp` false: no body) and waits
    /// for its ACK.
    pub async fn answer(&mut self, r: Ringing, with_sdp: bool) -> Call {
        let body = with_sdp.then(|| sdp(self.rtp, "sendrecv"));
        self.answer_with(r, body).await
    }

    /// Answers the ringing INVITE with `body` as SDP and waits for its ACK.
    pub async fn answer_with(&mut self, r: Ringing, body: Option<String>) -> Call {
        let mut ok = Response::for_request(&r.invite, 200).with_to_tag(&r.tag);
        ok.headers
            .push(HeaderName::Contact, self.contact().to_string());
        if let Some(body) = body {
            ok.headers.push(HeaderName::ContentType, "application/sdp");
            ok.body = body.into_bytes().into();
        }
        self.sip.send_response(r.tx, ok);
        let contact = self.contact().uri;
        let dialog = Dialog::new_uas(&r.invite, &r.tag, contact).expect("a dialog");
        let call_id = dialog.id.call_id.clone();
        self.event("the ACK of our 200", Duration::from_secs(40), |e| {
            matches!(e, SipEvent::Request { request, .. }
                if request.method == Method::Ack && request.headers.call_id() == Some(call_id.as_str()))
        })
        .await;
        Call { dialog }
    }

    /// Refuses the ringing INVITE with `status`.
    pub fn reject(&self, r: &Ringing, status: u16) {
        let refused = Response::for_request(&r.invite, status).with_to_tag(&r.tag);
        self.sip.send_response(r.tx, refused);
    }

    /// The engine cancels the ringing INVITE within `within`; the UA answers 487.
    pub async fn expect_cancel(&mut self, r: &Ringing, within: Duration) {
        let tx = r.tx;
        self.event(
            "a CANCEL",
            within,
            |e| matches!(e, SipEvent::Cancelled { tx: t, .. } if *t == tx),
        )
        .await;
        self.reject(r, 487);
    }

    /// Registers as `user` (digest with `password`) with the engine's registrar.
    pub async fn register(&mut self, password: &str) {
        if let Err(refused) = self.try_register(password).await {
            panic!("{}: registration: {refused:?}", self.user);
        }
    }

    /// As [`Ua::register`]; when the registrar does not take the binding, the client's event
    /// that says so (a `Failed` with the final status).
    pub async fn try_register(&mut self, password: &str) -> Result<(), RegistrationEvent> {
        let registrar = Uri::parse(&format!("sip:{}", self.engine.addr)).expect("uri");
        let aor = Uri::parse(&format!("sip:{}@{}", self.user, self.engine.addr.ip())).expect("uri");
        let config =
            RegistrationConfig::new(registrar, aor, self.contact().uri, &self.user, password);
        let mut client = RegistrationClient::new(config);
        client.register(now());
        loop {
            while let Some(request) = client.poll_request() {
                let tx = self.send(request, self.engine).await;
                let ev = self
                    .event("the REGISTER's answer", Duration::from_secs(40), |e| {
                        matches!(e, SipEvent::Response { tx: t, response } if *t == tx && response.status >= 200)
                            || matches!(e, SipEvent::Timeout { tx: t, .. } if *t == tx)
                    })
                    .await;
                match ev {
                    SipEvent::Response { response, .. } => client.handle_response(now(), &response),
                    _ => client.handle_transaction_timeout(now()),
                }
            }
            match client.poll_event() {
                Some(RegistrationEvent::Registered { .. }) => return Ok(()),
                Some(other) => return Err(other),
                None => {}
            }
        }
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
