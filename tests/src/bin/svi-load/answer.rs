//! The target role (`svi-load calls --answer-on IP:PORT`): the UAS the engine calls when a
//! flow transfers a call in bridged mode (`bench/flows/relay.yaml`), so that each relayed
//! call carries four RTP streams through the engine (caller and target, each way).
//!
//! Every INVITE is answered at once with a 200 whose SDP names a lane socket; the 200 is
//! sent again for a retransmitted INVITE and on a timer until the ACK comes (RFC 3261
//! §13.3.1.4: T1 doubling up to T2, 64·T1 at most). The leg's media starts with the 200, on
//! the callers' lanes, so it is paced, counted and timed exactly as theirs; a BYE from the
//! engine ends it. Legs are numbered from [`LEG_BASE`] in the order their INVITEs arrive, so
//! their numbers on the lanes never meet the callers' (0, 1, 2, ...).
//!
//! One task, one socket and one deadline heap, run by the caller side's loop
//! ([`signalling::drive`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::lanes::{ssrc_for, Lanes, MediaStart};
use crate::rtp::{Codec, Outbound};
use crate::signalling::{self, media_of, publish_if_changed, CallReport, SipTask, T1, T2};

/// The first leg's number on the lanes.
pub const LEG_BASE: u32 = 1 << 30;
/// How long a 200 is retransmitted without an ACK (RFC 3261 §13.3.1.4: 64·T1).
const ACK_TIMEOUT: Duration = Duration::from_secs(32);

/// Counters published after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerCounters {
    /// Distinct INVITEs (legs offered by the engine).
    pub invited: u64,
    /// INVITEs answered 200 (their media started).
    pub answered: u64,
    pub acked: u64,
    /// Answered and not yet ended.
    pub active: u64,
    /// Legs ended by the engine's BYE.
    pub ended_by_engine: u64,
    /// 200s never acknowledged (the leg's media is stopped).
    pub no_ack: u64,
    /// Offers without usable media, answered 488.
    pub refused: u64,
    pub ok_retransmits: u64,
    pub unparsable: u64,
}

pub enum AnswerCmd {
    /// One line per leg, for the per-call report.
    Legs(oneshot::Sender<Vec<CallReport>>),
}

pub struct AnswerHandle {
    pub commands: mpsc::UnboundedSender<AnswerCmd>,
    pub counters: watch::Receiver<AnswerCounters>,
}

enum LegState {
    /// 200 sent, no ACK yet.
    Answered {
        retransmit_at: Instant,
        interval: Duration,
        give_up_at: Instant,
    },
    Up,
    Done(&'static str),
}

struct Leg {
    call_id: String,
    /// Where the engine's requests come from, and our answers go.
    peer: SocketAddr,
    /// The 200, kept for retransmission.
    ok: Vec<u8>,
    state: LegState,
}

/// Binds `listen` and starts the task; legs' media run on `lanes`.
pub async fn start(
    listen: SocketAddr,
    codec: Codec,
    lanes: Arc<Lanes>,
) -> std::io::Result<AnswerHandle> {
    let std_socket = crate::lanes::bind_udp(listen)?;
    std_socket.set_nonblocking(true)?;
    let socket = Arc::new(UdpSocket::from_std(std_socket)?);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (counters_tx, counters_rx) = watch::channel(AnswerCounters::default());
    let answerer = Answerer {
        local: socket.local_addr()?,
        socket: Arc::clone(&socket),
        codec,
        lanes,
        legs: HashMap::new(),
        by_call_id: HashMap::new(),
        timers: BinaryHeap::new(),
        counters: AnswerCounters::default(),
        published: counters_tx,
    };
    tokio::spawn(signalling::drive(answerer, socket, cmd_rx));
    Ok(AnswerHandle {
        commands: cmd_tx,
        counters: counters_rx,
    })
}

struct Answerer {
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    codec: Codec,
    lanes: Arc<Lanes>,
    legs: HashMap<u32, Leg>,
    by_call_id: HashMap<String, u32>,
    /// (when, leg): look at this leg's state then. Stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    counters: AnswerCounters,
    published: watch::Sender<AnswerCounters>,
}

impl SipTask for Answerer {
    type Cmd = AnswerCmd;

    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        match parse_datagram(bytes) {
            Ok(SipMessage::Request(r)) => self.on_request(r, from, now),
            // We send no requests: a response is a stray.
            Ok(SipMessage::Response(_)) => {}
            Err(_) => self.counters.unparsable += 1,
        }
    }

    fn on_command(&mut self, command: AnswerCmd, _now: Instant) {
        match command {
            AnswerCmd::Legs(reply) => {
                let mut all: Vec<CallReport> = self
                    .legs
                    .iter()
                    .map(|(&call, leg)| CallReport {
                        call,
                        call_id: leg.call_id.clone(),
                        setup_ms: None,
                        outcome: match leg.state {
                            LegState::Answered { .. } => "answered",
                            LegState::Up => "up",
                            LegState::Done(how) => how,
                        },
                    })
                    .collect();
                all.sort_by_key(|r| r.call);
                let _ = reply.send(all);
            }
        }
    }

    fn run_due(&mut self, now: Instant) {
        while let Some(Reverse((at, leg))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.on_timer(leg, now);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn publish(&mut self) {
        publish_if_changed(&self.published, self.counters.clone());
    }
}

impl Answerer {
    fn send(&self, bytes: &[u8], to: SocketAddr) {
        // UDP to loopback: a full buffer drops the datagram, which retransmission covers.
        let _ = self.socket.try_send_to(bytes, to);
    }

    fn leg_of(&self, req: &Request) -> Option<u32> {
        req.headers
            .call_id()
            .and_then(|id| self.by_call_id.get(id))
            .copied()
    }

    fn on_request(&mut self, req: Request, from: SocketAddr, now: Instant) {
        match req.method {
            Method::Invite => self.on_invite(req, from, now),
            Method::Ack => {
                if let Some(leg) = self.leg_of(&req).and_then(|n| self.legs.get_mut(&n)) {
                    if matches!(leg.state, LegState::Answered { .. }) {
                        leg.state = LegState::Up;
                        self.counters.acked += 1;
                    }
                }
            }
            Method::Bye => {
                self.send(&Response::for_request(&req, 200).to_bytes(), from);
                if self
                    .leg_of(&req)
                    .is_some_and(|n| self.end(n, "ended_by_engine"))
                {
                    self.counters.ended_by_engine += 1;
                }
            }
            // CANCEL after our 200 changes nothing (RFC 3261 §9.2); OPTIONS and the rest: 200.
            _ => self.send(&Response::for_request(&req, 200).to_bytes(), from),
        }
    }

    fn on_invite(&mut self, req: Request, from: SocketAddr, now: Instant) {
        let Some(call_id) = req.headers.call_id().map(str::to_string) else {
            return;
        };
        if let Some(leg) = self.by_call_id.get(&call_id).and_then(|n| self.legs.get(n)) {
            // A retransmission (our 200 lost or late), or a re-INVITE: the same answer.
            if !matches!(leg.state, LegState::Done(_)) {
                self.send(&leg.ok, leg.peer);
            }
            return;
        }
        let number = LEG_BASE + self.legs.len() as u32;
        self.counters.invited += 1;
        self.by_call_id.insert(call_id.clone(), number);
        let tag = format!("t{number}");
        let Some((remote, te)) = media_of(&req.body) else {
            self.counters.refused += 1;
            let refusal = Response::for_request(&req, 488).with_to_tag(&tag);
            self.send(&refusal.to_bytes(), from);
            self.legs.insert(
                number,
                Leg {
                    call_id,
                    peer: from,
                    ok: Vec::new(),
                    state: LegState::Done("refused"),
                },
            );
            return;
        };
        let mut ok = Response::for_request(&req, 200).with_to_tag(&tag);
        ok.headers
            .push(HeaderName::Contact, format!("<sip:agent@{}>", self.local));
        ok.headers.push(HeaderName::ContentType, "application/sdp");
        let body = signalling::sdp(number, self.lanes.local_addr(number), self.codec, te);
        ok.body = body.into_bytes().into();
        let ok = ok.to_bytes();
        self.send(&ok, from);
        self.lanes.start_media(MediaStart {
            call: number,
            remote,
            outbound: Outbound::new(self.codec.pt(), te, ssrc_for(number), None),
        });
        self.counters.answered += 1;
        self.counters.active += 1;
        self.legs.insert(
            number,
            Leg {
                call_id,
                peer: from,
                ok,
                state: LegState::Answered {
                    retransmit_at: now + T1,
                    interval: T1,
                    give_up_at: now + ACK_TIMEOUT,
                },
            },
        );
        self.timers.push(Reverse((now + T1, number)));
        self.timers.push(Reverse((now + ACK_TIMEOUT, number)));
    }

    /// Ends a leg that is answered or up (its media stops); false if it had ended already.
    fn end(&mut self, number: u32, how: &'static str) -> bool {
        let Some(leg) = self.legs.get_mut(&number) else {
            return false;
        };
        if matches!(leg.state, LegState::Done(_)) {
            return false;
        }
        leg.state = LegState::Done(how);
        self.lanes.stop_media(number);
        self.counters.active = self.counters.active.saturating_sub(1);
        true
    }

    fn on_timer(&mut self, number: u32, now: Instant) {
        let Some(leg) = self.legs.get_mut(&number) else {
            return;
        };
        let LegState::Answered {
            retransmit_at,
            interval,
            give_up_at,
        } = &mut leg.state
        else {
            return;
        };
        if *give_up_at <= now {
            if self.end(number, "no_ack") {
                self.counters.no_ack += 1;
            }
            return;
        }
        if *retransmit_at > now {
            return;
        }
        *interval = (*interval * 2).min(T2);
        *retransmit_at = now + *interval;
        let (at, ok, peer) = (*retransmit_at, leg.ok.clone(), leg.peer);
        self.timers.push(Reverse((at, number)));
        self.counters.ok_retransmits += 1;
        self.send(&ok, peer);
    }
}
