//! Scenario tests of the call core in virtual time: a `Sim` owns the core, a start instant
//! and the current instant; it plays the caller, the legs' phones, the media workers and
//! the ACD by feeding inputs, jumps time to the next deadline, and keeps every output, so a
//! test reads as a script of one call.

mod bridge;
mod end;
mod flow;
mod origin;
mod queue;
mod snapshot;
mod survival;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip::endpoint::{Peer, ServerTxId, Transport};
use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage};

use super::*;
use crate::config::EngineConfig;
use crate::media::{DtmfDigit, DtmfSource, PromptStore};

pub(super) const CALLER: &str = "127.0.0.1:5070";
pub(super) const AGENT_1001: &str = "sip:1001@127.0.0.1:5091";

/// A caller's offer: PCMA, PCMU and telephone-event, sendrecv.
pub(super) fn offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na={direction}\r\n"
    )
}

/// A phone's SDP at `port` (answer to the engine's offer).
pub(super) fn phone_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

pub(super) fn parse_request(text: &str) -> Request {
    match parse_datagram(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}\n{text}"),
    }
}

fn with_body(head: &str, body: &str) -> String {
    with_typed_body(head, "application/sdp", body)
}

fn with_typed_body(head: &str, content_type: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {content_type}\r\n")
    };
    format!("{head}{ct}Content-Length: {}\r\n\r\n{body}", body.len())
}

/// The configuration of the tests: `flow` answers every number.
pub(super) fn config(flow: &str, extra: &str) -> EngineConfig {
    let text = format!(
        "[node]\nname = \"test\"\ndata_dir = \"/nonexistent/svi-core-tests\"\n\
         [sip]\nlisten = \"127.0.0.1:5060\"\nallowed_networks = [\"127.0.0.0/8\"]\n\
         dial_prefixes = [\"2\", \"+336\"]\n\
         [rtp]\ntimeout_secs = 30\n\
         [flows]\ndir = \"flows\"\ndefault = \"{flow}\"\n[[routes]]\nnumber = \"*\"\nflow = \"{flow}\"\n\
         [recording]\ndefault = \"none\"\n{extra}"
    );
    EngineConfig::parse(&text, Path::new("test.toml"), Path::new("/nonexistent"))
        .expect("test configuration")
}

/// Prompts of 1 s each (ringback, beep and music too), in English.
fn prompts(names: &[&str]) -> PromptStore {
    let mut store = PromptStore::new();
    for n in names {
        store.insert("en", crate::media::Prompt::from_pcm(*n, vec![0; 8000]));
    }
    store
}

pub(super) const PROMPTS: &[&str] = &[
    "welcome",
    "main_menu",
    "invalid_choice",
    "option1_info",
    "goodbye",
    "no_agent_available",
    "music_on_hold",
    "queue_callback_confirm",
    "ringback",
    "leave_message",
];

pub(super) fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Contacts for the tests: agent 1001's phone, and extension 2000 (a supervisor).
struct Book;

impl ContactBook for Book {
    fn contact(&self, extension: &str) -> Option<sip::message::Uri> {
        let text = match extension {
            "1001" => AGENT_1001,
            "2000" => "sip:2000@127.0.0.1:5092",
            _ => return None,
        };
        sip::message::Uri::parse(text).ok()
    }
}

pub(super) struct Sim {
    pub core: CallCore,
    env: CallEnv,
    flows: crate::flows::FlowSet,
    pub t0: Instant,
    pub now: Instant,
    /// Every output, in order.
    pub log: Vec<Output>,
    /// `log[..seen]` was returned by `fresh` already.
    seen: usize,
    /// The record is not reported stored until [`Sim::record_stored`] (by default the
    /// driver stores it at once).
    pub hold_record: bool,
    /// The caller's next CSeq in the dialog.
    cseq: u32,
    next_tx: u64,
}

impl Sim {
    /// A call from the caller with `sdp` into `flow` (YAML), with `extra` configuration.
    pub fn new(flow: &str, extra: &str, sdp: Option<String>) -> Sim {
        Self::try_new(flow, extra, sdp).expect("the call starts")
    }

    pub fn try_new(flow: &str, extra: &str, sdp: Option<String>) -> Result<Sim, Refused> {
        let (env, flows) = env_and_flows(flow, extra);
        let head = format!(
            "INVITE sip:5000@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-invite\r\n\
             From: <sip:+33612345678@{CALLER}>;tag=caller-tag\r\n\
             To: <sip:5000@127.0.0.1:5060>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{CALLER}>\r\nMax-Forwards: 70\r\n"
        );
        let invite = parse_request(&with_body(&head, sdp.as_deref().unwrap_or("")));
        let t0 = Instant::now();
        let from = peer(CALLER);
        let media = Ok("127.0.0.1:30000".parse().expect("addr"));
        let core = CallCore::new(t0, wall(), env.clone(), &flows, invite, from, media)?;
        Ok(Sim::of(core, env, flows, t0))
    }

    /// A call the engine places with `order`, into `flow` (YAML).
    pub fn originate(flow: &str, extra: &str, order: Originate) -> Result<Sim, OriginateError> {
        let (env, flows) = env_and_flows(flow, extra);
        let t0 = Instant::now();
        let core = CallCore::originate(t0, wall(), env.clone(), &flows, order)?;
        Ok(Sim::of(core, env, flows, t0))
    }

    fn of(core: CallCore, env: CallEnv, flows: crate::flows::FlowSet, t0: Instant) -> Sim {
        let mut sim = Sim {
            core,
            env,
            flows,
            t0,
            now: t0,
            log: Vec::new(),
            seen: 0,
            hold_record: false,
            cseq: 1,
            next_tx: 1,
        };
        sim.drain();
        sim
    }

    /// The demo flow: welcome, a menu (1: information, 2: support queue), goodbye.
    pub fn demo() -> Sim {
        Sim::new(DEMO, SUPPORT_QUEUE, Some(offer("sendrecv")))
    }

    /// The call saved as JSON and rebuilt from it, as another node would; the JSON.
    pub fn round_trip(&mut self) -> serde_json::Value {
        let saved = self.core.snapshot(self.now);
        let json = serde_json::to_value(&saved).expect("a snapshot serialises");
        let back: CallSnapshot = serde_json::from_value(json.clone()).expect("and reads back");
        self.restore(back);
        json
    }

    /// The call rebuilt from `saved`, as another node would.
    pub fn restore(&mut self, saved: CallSnapshot) {
        // The wall clock at `now`, as the node restoring the call reads it.
        let wall_now = wall() + (self.now - self.t0);
        let env = self.env.clone();
        self.core = CallCore::restore(self.now, wall_now, env, &self.flows, saved)
            .expect("the call is rebuilt");
    }

    pub fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            // Streams open at once, on ports from 31000 up.
            if let Output::Media(MediaOut::Open { stream, .. }) = &o {
                let stream = *stream;
                self.log.push(o);
                let addr = SocketAddr::from(([127, 0, 0, 1], 31000 + stream.0 as u16 * 2));
                self.core.handle_stream_opened(self.now, stream, Ok(addr));
                continue;
            }
            let store = matches!(o, Output::Record { .. }) && !self.hold_record;
            self.log.push(o);
            if store {
                self.core.handle_record_stored(self.now);
            }
        }
    }

    /// Outputs since the last call.
    pub fn fresh(&mut self) -> &[Output] {
        let from = self.seen;
        self.seen = self.log.len();
        &self.log[from..]
    }

    /// Moves the clock to `t0 + at`, firing every deadline on the way, in order.
    pub fn at(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(due) = self.core.poll_timeout() {
            if due > target {
                break;
            }
            self.now = due.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        self.now = target.max(self.now);
    }

    /// Moves the clock `d` on.
    pub fn after(&mut self, d: Duration) {
        let at = self.now + d - self.t0;
        self.at(at);
    }

    fn tx(&mut self) -> ServerTxId {
        // Server transaction ids come from the endpoint; any value names one here.
        self.next_tx += 1;
        sip::endpoint::ServerTxId::for_tests(self.next_tx)
    }

    /// Prompts played on `stream`, by play id.
    pub fn plays(&self, stream: StreamId) -> Vec<(PlayId, Vec<String>)> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Media(MediaOut::Play {
                    stream: s,
                    id,
                    prompts,
                }) if *s == stream => {
                    Some((*id, prompts.iter().map(|p| p.name().to_string()).collect()))
                }
                _ => None,
            })
            .collect()
    }

    /// The names of the last prompts played to the caller.
    pub fn playing(&self) -> Vec<String> {
        self.plays(CALLER_STREAM)
            .last()
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    /// The last playback to the caller ends.
    pub fn play_ends(&mut self) {
        let (id, _) = self
            .plays(CALLER_STREAM)
            .last()
            .cloned()
            .expect("something plays");
        self.media(CALLER_STREAM, MediaEvent::PlaybackFinished { id });
    }

    pub fn media(&mut self, stream: StreamId, event: MediaEvent) {
        self.core.handle_media(self.now, stream, event);
        self.drain();
    }

    /// The caller keys `digits` (RFC 4733).
    pub fn key(&mut self, digits: &str) {
        self.key_on(CALLER_STREAM, digits);
    }

    /// `digits` keyed (RFC 4733) on `stream`.
    pub fn key_on(&mut self, stream: StreamId, digits: &str) {
        for c in digits.chars() {
            let digit = DtmfDigit::from_char(c).expect("a DTMF digit");
            let source = DtmfSource::Rfc4733;
            let digit = pii::Pii::new(digit);
            self.media(stream, MediaEvent::Dtmf { digit, source });
        }
    }

    pub fn acd(&mut self, action: acd::Action) {
        self.core.handle_acd(self.now, action);
        self.drain();
    }

    /// Our 200 to the caller's INVITE.
    pub fn ok_to_caller(&self) -> &Response {
        self.log
            .iter()
            .find_map(|o| match o {
                Output::Sip(SipOut::AnswerInvite(r)) if r.status == 200 => Some(r),
                _ => None,
            })
            .expect("the call was answered")
    }

    /// The caller sends `method` in the dialog; returns the engine's answers to it.
    pub fn caller_sends(&mut self, method: &str, body: &str) -> Vec<Response> {
        self.caller_sends_typed(method, "application/sdp", body)
    }

    pub fn caller_sends_typed(
        &mut self,
        method: &str,
        content_type: &str,
        body: &str,
    ) -> Vec<Response> {
        let to_tag = self
            .ok_to_caller()
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_string))
            .expect("our To tag");
        self.cseq += 1;
        let head = format!(
            "{method} sip:svi@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {CALLER};branch=z9hG4bK-c{cseq}\r\n\
             From: <sip:+33612345678@{CALLER}>;tag=caller-tag\r\n\
             To: <sip:5000@127.0.0.1:5060>;tag={to_tag}\r\nCall-ID: call-1\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{CALLER}>\r\nMax-Forwards: 70\r\n",
            cseq = self.cseq
        );
        let request = parse_request(&with_typed_body(&head, content_type, body));
        self.deliver(request)
    }

    /// Hands `request` to the core in a new server transaction; its answers.
    pub fn deliver(&mut self, request: Request) -> Vec<Response> {
        let tx = (request.method != Method::Ack).then(|| self.tx());
        self.fresh();
        let from = peer(CALLER);
        self.core
            .handle_sip(self.now, SipIn::Request { tx, request, from });
        self.drain();
        self.fresh()
            .iter()
            .filter_map(|o| match o {
                Output::Sip(SipOut::Respond { tx: t, response }) if Some(*t) == tx => {
                    Some(response.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Requests the core sent, with their ids.
    pub fn requests(&self) -> Vec<(ReqId, Request, Peer)> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Sip(SipOut::Request { req, request, to }) => {
                    Some((*req, request.clone(), *to))
                }
                _ => None,
            })
            .collect()
    }

    /// The last request of `method` sent to the user `user` (its To URI).
    pub fn sent(&self, method: Method, user: &str) -> (ReqId, Request) {
        let to_user = |r: &Request| {
            r.headers
                .to_addr()
                .ok()
                .and_then(|t| t.uri.user().map(str::to_string))
        };
        self.requests()
            .into_iter()
            .rev()
            .find(|(_, r, _)| r.method == method && to_user(r).as_deref() == Some(user))
            .map(|(id, r, _)| (id, r))
            .unwrap_or_else(|| panic!("no {method} to {user}"))
    }

    /// The last request of `method` to the caller.
    pub fn sent_to_caller(&self, method: Method) -> Option<(ReqId, Request)> {
        self.requests()
            .into_iter()
            .rev()
            .find(|(_, r, to)| r.method == method && *to == peer(CALLER))
            .map(|(id, r, _)| (id, r))
    }

    /// A phone answers our request `req` with `status` (2xx: To tag `tag`, SDP at `port`).
    pub fn answer(&mut self, req: ReqId, request: &Request, status: u16, port: Option<u16>) {
        let mut r = Response::for_request(request, status).with_to_tag("callee-tag");
        if status < 300 && request.method == Method::Invite {
            r.headers
                .push(HeaderName::Contact, "<sip:callee@127.0.0.1:5091>");
        }
        if let Some(port) = port {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = phone_sdp(port).into_bytes().into();
        }
        self.core
            .handle_sip(self.now, SipIn::Response { req, response: r });
        self.drain();
    }

    /// A request from a leg's phone in its dialog (after its 2xx with `callee-tag`).
    pub fn leg_sends(&mut self, invite: &Request, method: &str, body: &str) -> Vec<Response> {
        let call_id = invite.headers.call_id().expect("Call-ID");
        let from = invite.headers.get(&HeaderName::From).expect("From");
        let head = format!(
            "{method} sip:svi@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-leg{n}\r\n\
             From: <{uri}>;tag=callee-tag\r\nTo: {from}\r\nCall-ID: {call_id}\r\n\
             CSeq: {n} {method}\r\nContact: <sip:callee@127.0.0.1:5091>\r\nMax-Forwards: 70\r\n",
            uri = invite.uri,
            n = 10 + self.next_tx,
        );
        self.deliver(parse_request(&with_body(&head, body)))
    }

    /// Media commands of the log.
    pub fn media_out(&self) -> Vec<&MediaOut> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Media(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// ACD inputs of the log, in order (joins included).
    pub fn acd_inputs(&self) -> Vec<acd::Input> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Acd(AcdOut::Input(i) | AcdOut::Join(i)) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn left_acd(&self) -> bool {
        self.log
            .iter()
            .any(|o| matches!(o, Output::Acd(AcdOut::Leave)))
    }

    /// The record, once the call ended.
    pub fn record(&self) -> &CallRecord {
        self.log
            .iter()
            .find_map(|o| match o {
                Output::Record { record, .. } => Some(&**record),
                _ => None,
            })
            .expect("the call ended")
    }

    /// The driver reports the record stored (with `hold_record`).
    pub fn record_stored(&mut self) {
        self.core.handle_record_stored(self.now);
        self.drain();
    }

    /// The caller hangs up (BYE); the engine answers 200.
    pub fn caller_hangs_up(&mut self) {
        let answers = self.caller_sends("BYE", "");
        assert_eq!(status(&answers), vec![200]);
    }

    /// Our BYE to the caller is answered.
    pub fn caller_answers_bye(&mut self) {
        let (req, bye) = self.sent_to_caller(Method::Bye).expect("our BYE");
        self.answer(req, &bye, 200, None);
    }

    pub fn call_id(&self) -> crate::acd::CallId {
        crate::acd::CallId::from(self.core.id())
    }
}

/// The call's environment (agent 1001 and extension 2000 registered) and `flow` compiled.
fn env_and_flows(flow: &str, extra: &str) -> (CallEnv, crate::flows::FlowSet) {
    let flow = crate::flows::compile_source(
        flow,
        Path::new("test.yaml"),
        &ivr_scripts::CheckContext::permissive(),
    )
    .map_err(|d| crate::flows::render(&d, flow))
    .expect("test flow");
    let env = CallEnv {
        config: Arc::new(config(flow.flow.name(), extra)),
        prompts: Arc::new(prompts(PROMPTS)),
        local_sip: "127.0.0.1:5060"
            .parse::<std::net::SocketAddr>()
            .expect("addr")
            .into(),
        contacts: Arc::new(Book),
    };
    (env, crate::flows::FlowSet::of([flow]))
}

pub(super) fn peer(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().expect("addr"),
    }
}

pub(super) fn status(r: &[Response]) -> Vec<u16> {
    r.iter().map(|r| r.status).collect()
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

pub(super) const DEMO: &str = include_str!("../../../../../samples/flows/demo.yaml");

pub(super) const SUPPORT_QUEUE: &str = "[[queues]]\nid = \"support\"\nname = \"Support\"\n\
    skills = { support = 1 }\nrecord = \"all\"\n\
    callback = { max_attempts = 2, retry_after = 1000 }\n";
