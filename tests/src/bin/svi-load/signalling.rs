//! The signalling side: one task, one UDP socket, every call's INVITE/ACK/BYE.
//!
//! Messages are written as text (they are few and fixed) and answers are read with the
//! project's codec (`sip::message`, `sip::sdp`). The task paces new calls and
//! hang-ups at a given rate, retransmits INVITE and BYE as a UDP client must (RFC 3261
//! §17.1: T1 = 500 ms, doubling), and keeps its timers in one deadline heap rather than a
//! task per call. Setup time is measured from the first INVITE sent to the 200 OK read
//! (`Instant::now()` at receive), so retransmissions count against the engine.
//!
//! When a call is answered, its media starts on its lane (`Lanes::start_media`) towards the
//! address of the SDP answer; when it ends (our BYE or the engine's), its media stops.
//!
//! The task's loop ([`drive`]) and the SDP helpers ([`sdp`], [`media_of`]) are shared with
//! the target role (`answer`), the UAS the engine calls for a bridged transfer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage};
use sip::sdp::SessionDescription;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::lanes::{ssrc_for, Lanes, MediaStart};
use crate::rtp::{Codec, DtmfPlan, Outbound, TELEPHONE_EVENT_PT};
use crate::tx::FRAME;

pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
/// How long a BYE may go unanswered before the call is counted as not cleanly ended.
const BYE_TIMEOUT: Duration = Duration::from_secs(8);
/// Pacing never runs more than this far behind (a stall does not turn into a burst of
/// thousands of INVITEs).
const MAX_PACING_DEBT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SipOptions {
    pub target: SocketAddr,
    /// Request-URI user part (the called number).
    pub service: String,
    pub codec: Codec,
    /// A call without a final answer after this long has failed.
    pub invite_timeout: Duration,
    /// The digit each call sends, and when (after the 200 OK).
    pub dtmf: Option<(Duration, u8)>,
}

pub enum SipCmd {
    /// Places calls `first..first + count` at `rate` calls per second.
    Place { first: u32, count: u32, rate: f64 },
    /// Hangs up every established call at `rate` per second.
    HangupAll { rate: f64 },
    /// Setup times (µs) of the calls answered since the last take.
    TakeSetup(oneshot::Sender<Vec<u64>>),
    /// One line per call, for the per-call report.
    Calls(oneshot::Sender<Vec<CallReport>>),
}

/// Counters published after every change (a `watch`, read by the controller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipCounters {
    pub placed: u64,
    pub answered: u64,
    pub failed: u64,
    /// Answered and not yet ended.
    pub active: u64,
    pub ended_by_us: u64,
    pub ended_by_engine: u64,
    /// BYEs without a 2xx (error answer or timeout).
    pub bye_failed: u64,
    pub invite_retransmits: u64,
    pub bye_retransmits: u64,
    /// Final answers that were not 2xx, and INVITE timeouts (status 408 here).
    pub failures: Vec<(u16, u64)>,
    /// Datagrams the codec refused.
    pub unparsable: u64,
}

#[derive(Debug, Clone)]
pub struct CallReport {
    pub call: u32,
    pub call_id: String,
    pub setup_ms: Option<f64>,
    pub outcome: &'static str,
}

enum State {
    Inviting {
        provisional: bool,
        retransmit_at: Instant,
        interval: Duration,
        give_up_at: Instant,
    },
    Up,
    Ending {
        retransmit_at: Instant,
        interval: Duration,
        give_up_at: Instant,
    },
    Done(&'static str),
}

struct Call {
    invited_at: Instant,
    setup: Option<Duration>,
    state: State,
    invite: Vec<u8>,
    /// The To header of the 200 OK (with the engine's tag) and the request-URI for
    /// in-dialog requests (the engine's Contact).
    to: String,
    target_uri: String,
    bye: Vec<u8>,
}

pub struct SipHandle {
    pub commands: mpsc::UnboundedSender<SipCmd>,
    pub counters: watch::Receiver<SipCounters>,
}

/// Binds the signalling socket and starts the task.
pub async fn start(opts: SipOptions, lanes: Arc<Lanes>) -> std::io::Result<SipHandle> {
    let std_socket = crate::lanes::bind_udp(SocketAddr::new(opts.target.ip(), 0))?;
    std_socket.set_nonblocking(true)?;
    let socket = Arc::new(UdpSocket::from_std(std_socket)?);
    let local = socket.local_addr()?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (counters_tx, counters_rx) = watch::channel(SipCounters::default());
    let agent = Agent {
        opts,
        local,
        lanes,
        socket: Arc::clone(&socket),
        calls: HashMap::new(),
        timers: BinaryHeap::new(),
        to_place: VecDeque::new(),
        place_every: Duration::ZERO,
        next_place: Instant::now(),
        to_hang_up: VecDeque::new(),
        hangup_every: Duration::ZERO,
        next_hangup: Instant::now(),
        closing: false,
        setup_us: Vec::new(),
        counters: SipCounters::default(),
        failures: HashMap::new(),
        published: counters_tx,
        prefix: format!("load-{}", std::process::id()),
    };
    tokio::spawn(drive(agent, socket, cmd_rx));
    Ok(SipHandle {
        commands: cmd_tx,
        counters: counters_rx,
    })
}

struct Agent {
    opts: SipOptions,
    local: SocketAddr,
    lanes: Arc<Lanes>,
    socket: Arc<UdpSocket>,
    calls: HashMap<u32, Call>,
    /// (when, call): look at this call's state then. Stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    to_place: VecDeque<u32>,
    place_every: Duration,
    next_place: Instant,
    to_hang_up: VecDeque<u32>,
    hangup_every: Duration,
    next_hangup: Instant,
    /// Set by `HangupAll`: calls answered from now on are hung up at once.
    closing: bool,
    setup_us: Vec<u64>,
    counters: SipCounters,
    failures: HashMap<u16, u64>,
    published: watch::Sender<SipCounters>,
    prefix: String,
}

fn every(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(0.001))
}

/// A SIP role driven by [`drive`]: the caller side here, the target side in `answer`.
pub trait SipTask {
    type Cmd;
    /// Handles a datagram read at `now` from `from`.
    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant);
    fn on_command(&mut self, command: Self::Cmd, now: Instant);
    /// Does what is due at `now` (pacing, retransmissions, timeouts).
    fn run_due(&mut self, now: Instant);
    fn next_wake(&self) -> Option<Instant>;
    /// Publishes the counters if they changed.
    fn publish(&mut self);
}

/// The loop of a signalling task: wait for a datagram, a command or the next deadline, then
/// handle it; returns when the command channel closes.
pub async fn drive<T: SipTask>(
    mut task: T,
    socket: Arc<UdpSocket>,
    mut commands: mpsc::UnboundedReceiver<T::Cmd>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        task.run_due(now);
        task.publish();
        let wake = task.next_wake().unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = received {
                    task.on_datagram(&buf[..len], from, Instant::now());
                    // Drain what else is queued before looking at timers again.
                    for _ in 0..256 {
                        match socket.try_recv_from(&mut buf) {
                            Ok((len, from)) => task.on_datagram(&buf[..len], from, Instant::now()),
                            Err(_) => break,
                        }
                    }
                }
            }
            command = commands.recv() => match command {
                Some(c) => task.on_command(c, Instant::now()),
                None => return,
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// Sends `value` to the watchers if it differs from what they have.
pub fn publish_if_changed<T: PartialEq>(published: &watch::Sender<T>, value: T) {
    published.send_if_modified(|c| {
        if *c == value {
            false
        } else {
            *c = value;
            true
        }
    });
}

impl SipTask for Agent {
    type Cmd = SipCmd;

    fn on_datagram(&mut self, bytes: &[u8], _from: SocketAddr, now: Instant) {
        match parse_datagram(bytes) {
            Ok(SipMessage::Response(r)) => self.on_response(r, now),
            Ok(SipMessage::Request(r)) => self.on_request(r, now),
            Err(_) => self.counters.unparsable += 1,
        }
    }

    fn on_command(&mut self, command: SipCmd, now: Instant) {
        Agent::on_command(self, command, now);
    }

    fn run_due(&mut self, now: Instant) {
        Agent::run_due(self, now);
    }

    fn next_wake(&self) -> Option<Instant> {
        Agent::next_wake(self)
    }

    fn publish(&mut self) {
        let mut failures: Vec<(u16, u64)> = self.failures.iter().map(|(&k, &v)| (k, v)).collect();
        failures.sort_unstable();
        self.counters.failures = failures;
        publish_if_changed(&self.published, self.counters.clone());
    }
}

impl Agent {
    fn next_wake(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let place = (!self.to_place.is_empty()).then_some(self.next_place);
        let hangup = (!self.to_hang_up.is_empty()).then_some(self.next_hangup);
        [timer, place, hangup].into_iter().flatten().min()
    }

    fn on_command(&mut self, command: SipCmd, now: Instant) {
        match command {
            SipCmd::Place { first, count, rate } => {
                self.to_place.extend(first..first + count);
                self.place_every = every(rate);
                self.next_place = now;
            }
            SipCmd::HangupAll { rate } => {
                let mut up: Vec<u32> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| matches!(c.state, State::Up))
                    .map(|(&i, _)| i)
                    .collect();
                up.sort_unstable();
                self.to_hang_up.extend(up);
                // Calls still being set up are hung up once answered (see `on_answer`).
                self.to_place.clear();
                self.closing = true;
                self.hangup_every = every(rate);
                self.next_hangup = now;
            }
            SipCmd::TakeSetup(reply) => {
                let _ = reply.send(std::mem::take(&mut self.setup_us));
            }
            SipCmd::Calls(reply) => {
                let mut all: Vec<CallReport> = self
                    .calls
                    .iter()
                    .map(|(&call, c)| CallReport {
                        call,
                        call_id: self.call_id(call),
                        setup_ms: c.setup.map(|d| d.as_secs_f64() * 1e3),
                        outcome: match c.state {
                            State::Inviting { .. } => "inviting",
                            State::Up => "up",
                            State::Ending { .. } => "ending",
                            State::Done(how) => how,
                        },
                    })
                    .collect();
                all.sort_by_key(|r| r.call);
                let _ = reply.send(all);
            }
        }
    }

    fn run_due(&mut self, now: Instant) {
        if self.next_place + MAX_PACING_DEBT < now {
            self.next_place = now;
        }
        while self.next_place <= now {
            let Some(call) = self.to_place.pop_front() else {
                break;
            };
            self.place(call, now);
            self.next_place += self.place_every;
        }
        if self.next_hangup + MAX_PACING_DEBT < now {
            self.next_hangup = now;
        }
        while self.next_hangup <= now {
            let Some(call) = self.to_hang_up.pop_front() else {
                break;
            };
            self.hang_up(call, now);
            self.next_hangup += self.hangup_every;
        }
        while let Some(Reverse((at, call))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.on_timer(call, now);
        }
    }

    fn call_id(&self, call: u32) -> String {
        format!("{}-{call}@svi-load", self.prefix)
    }

    fn call_of(&self, call_id: &str) -> Option<u32> {
        call_id
            .strip_suffix("@svi-load")?
            .strip_prefix(&self.prefix)?
            .strip_prefix('-')?
            .parse()
            .ok()
    }

    fn send(&self, bytes: &[u8]) {
        // UDP to loopback: a full buffer drops the datagram, which retransmission covers.
        let _ = self.socket.try_send_to(bytes, self.opts.target);
    }

    fn place(&mut self, call: u32, now: Instant) {
        let sdp = sdp(
            call,
            self.lanes.local_addr(call),
            self.opts.codec,
            TELEPHONE_EVENT_PT,
        );
        let invite = format!(
            "INVITE sip:{service}@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{prefix}i{call};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:load@{local}>;tag=f{call}\r\n\
             To: <sip:{service}@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:load@{local}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            service = self.opts.service,
            target = self.opts.target,
            local = self.local,
            prefix = self.prefix,
            call_id = self.call_id(call),
            len = sdp.len(),
        );
        let invite = invite.into_bytes();
        self.send(&invite);
        self.counters.placed += 1;
        self.calls.insert(
            call,
            Call {
                invited_at: now,
                setup: None,
                state: State::Inviting {
                    provisional: false,
                    retransmit_at: now + T1,
                    interval: T1,
                    give_up_at: now + self.opts.invite_timeout,
                },
                invite,
                to: String::new(),
                target_uri: String::new(),
                bye: Vec::new(),
            },
        );
        self.timers.push(Reverse((now + T1, call)));
        self.timers
            .push(Reverse((now + self.opts.invite_timeout, call)));
    }

    fn hang_up(&mut self, call: u32, now: Instant) {
        let call_id = self.call_id(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !matches!(c.state, State::Up) {
            return;
        }
        c.bye = format!(
            "BYE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{prefix}b{call};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:load@{local}>;tag=f{call}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            uri = c.target_uri,
            local = self.local,
            prefix = self.prefix,
            to = c.to,
        )
        .into_bytes();
        c.state = State::Ending {
            retransmit_at: now + T1,
            interval: T1,
            give_up_at: now + BYE_TIMEOUT,
        };
        let bye = c.bye.clone();
        self.send(&bye);
        self.lanes.stop_media(call);
        self.counters.active = self.counters.active.saturating_sub(1);
        self.timers.push(Reverse((now + T1, call)));
        self.timers.push(Reverse((now + BYE_TIMEOUT, call)));
    }

    fn on_timer(&mut self, call: u32, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let mut resend = None;
        match &mut c.state {
            State::Inviting { give_up_at, .. } if *give_up_at <= now => {
                c.state = State::Done("invite_timeout");
                self.counters.failed += 1;
                *self.failures.entry(408).or_default() += 1;
            }
            State::Inviting {
                provisional: false,
                retransmit_at,
                interval,
                ..
            } if *retransmit_at <= now => {
                // Timer A doubles without a cap (RFC 3261 §17.1.1.2).
                *interval *= 2;
                *retransmit_at = now + *interval;
                self.timers.push(Reverse((*retransmit_at, call)));
                resend = Some(c.invite.clone());
                self.counters.invite_retransmits += 1;
            }
            State::Ending { give_up_at, .. } if *give_up_at <= now => {
                c.state = State::Done("bye_timeout");
                self.counters.bye_failed += 1;
            }
            State::Ending {
                retransmit_at,
                interval,
                ..
            } if *retransmit_at <= now => {
                *interval = (*interval * 2).min(T2);
                *retransmit_at = now + *interval;
                self.timers.push(Reverse((*retransmit_at, call)));
                resend = Some(c.bye.clone());
                self.counters.bye_retransmits += 1;
            }
            _ => {}
        }
        if let Some(bytes) = resend {
            self.send(&bytes);
        }
    }

    fn on_response(&mut self, r: Response, now: Instant) {
        let Some(call) = r.headers.call_id().and_then(|id| self.call_of(id)) else {
            return;
        };
        let Ok(cseq) = r.headers.cseq() else {
            return;
        };
        match cseq.method {
            Method::Invite => self.on_invite_response(call, r, now),
            Method::Bye if r.status >= 200 => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if matches!(c.state, State::Ending { .. }) {
                        if r.status < 300 {
                            c.state = State::Done("ended_by_us");
                            self.counters.ended_by_us += 1;
                        } else {
                            c.state = State::Done("bye_refused");
                            self.counters.bye_failed += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, call: u32, r: Response, now: Instant) {
        let call_id = self.call_id(call);
        let local = self.local;
        let prefix = self.prefix.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let to = r.headers.get(&HeaderName::To).unwrap_or("").to_string();
        if r.status < 200 {
            if let State::Inviting { provisional, .. } = &mut c.state {
                *provisional = true;
            }
            return;
        }
        if r.status >= 300 {
            // The ACK of a non-2xx answer is part of the INVITE transaction: same branch
            // (RFC 3261 §17.1.1.3).
            let ack = format!(
                "ACK sip:{service}@{target} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK{prefix}i{call};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:load@{local}>;tag=f{call}\r\n\
                 To: {to}\r\n\
                 Call-ID: {call_id}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Length: 0\r\n\r\n",
                service = self.opts.service,
                target = self.opts.target,
            );
            if matches!(c.state, State::Inviting { .. }) {
                c.state = State::Done("rejected");
                self.counters.failed += 1;
                *self.failures.entry(r.status).or_default() += 1;
            }
            self.send(ack.as_bytes());
            return;
        }
        // 2xx: the ACK is a new transaction to the Contact (RFC 3261 §13.2.2.4); it is sent
        // again for every retransmitted 200.
        let target_uri = r
            .headers
            .contacts()
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|na| na.uri.to_string())
            .unwrap_or_else(|| format!("sip:{}@{}", self.opts.service, self.opts.target));
        let ack = format!(
            "ACK {target_uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{prefix}a{call};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:load@{local}>;tag=f{call}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let first_answer = matches!(c.state, State::Inviting { .. });
        let late_answer = matches!(c.state, State::Done("invite_timeout"));
        if first_answer {
            let setup = now.saturating_duration_since(c.invited_at);
            c.setup = Some(setup);
            c.to = to;
            c.target_uri = target_uri;
            match media_of(&r.body) {
                Some((remote, te_pt)) => {
                    c.state = State::Up;
                    self.setup_us.push(setup.as_micros() as u64);
                    self.counters.answered += 1;
                    self.counters.active += 1;
                    let dtmf = self.opts.dtmf.map(|(after, event)| DtmfPlan {
                        at_frame: (after.as_millis() / FRAME.as_millis()) as u64,
                        event,
                    });
                    let pt = self.opts.codec.pt();
                    let outbound = Outbound::new(pt, te_pt, ssrc_for(call), dtmf);
                    self.lanes.start_media(MediaStart {
                        call,
                        remote,
                        outbound,
                    });
                }
                None => {
                    // Answered without usable media: a failure, ended at once.
                    c.state = State::Up;
                    self.counters.failed += 1;
                    *self.failures.entry(606).or_default() += 1;
                    self.counters.active += 1;
                    self.send(ack.as_bytes());
                    self.hang_up(call, now);
                    return;
                }
            }
            // Calls answered after a general hang-up was ordered go straight to the queue.
            if self.closing {
                self.to_hang_up.push_back(call);
            }
        }
        self.send(ack.as_bytes());
        if late_answer {
            // Answered after we gave up: accept and end it, so the engine does not keep it.
            if let Some(c) = self.calls.get_mut(&call) {
                c.to = r.headers.get(&HeaderName::To).unwrap_or("").to_string();
                c.target_uri = format!("sip:{}@{}", self.opts.service, self.opts.target);
                c.state = State::Up;
                self.counters.active += 1;
            }
            self.hang_up(call, now);
        }
    }

    fn on_request(&mut self, req: Request, _now: Instant) {
        if req.method == Method::Ack {
            return;
        }
        let response = Response::for_request(&req, 200);
        self.send(&response.to_bytes());
        if req.method != Method::Bye {
            return;
        }
        let Some(call) = req.headers.call_id().and_then(|id| self.call_of(id)) else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&call) {
            match c.state {
                State::Up => {
                    c.state = State::Done("ended_by_engine");
                    self.counters.ended_by_engine += 1;
                    self.counters.active = self.counters.active.saturating_sub(1);
                    self.lanes.stop_media(call);
                }
                State::Ending { .. } => {
                    // Both sides hung up at once: ours is answered 481 or 200, either way over.
                    c.state = State::Done("ended_by_us");
                    self.counters.ended_by_us += 1;
                }
                _ => {}
            }
        }
    }
}

/// Our SDP (offer or answer): one audio stream on `media` with `codec` and telephone-event
/// as payload type `te`, sendrecv, 20 ms packets.
pub fn sdp(session: u32, media: SocketAddr, codec: Codec, te: u8) -> String {
    format!(
        "v=0\r\no=svi-load {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} {te}\r\na=rtpmap:{pt} {name}/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = media.ip(),
        port = media.port(),
        pt = codec.pt(),
        name = codec.name(),
    )
}

/// The engine's RTP address and telephone-event payload type from the SDP it sent (the
/// answer in a 200, or the offer in an INVITE).
pub fn media_of(body: &[u8]) -> Option<(SocketAddr, u8)> {
    let sdp = SessionDescription::parse_bytes(body).ok()?;
    let media = sdp.media.first()?;
    if media.port == 0 {
        return None;
    }
    let ip = sdp.connection_of(media)?.ip()?;
    let te = media
        .rtpmaps()
        .find(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
        .map(|m| m.payload_type)
        .unwrap_or(TELEPHONE_EVENT_PT);
    Some((SocketAddr::new(ip, media.port), te))
}
