//! The legs the engine places as a B2BUA (an agent the ACD picked, a bridged-transfer
//! target, a supervisor's phone, the caller called back): each opens its own media stream,
//! then its INVITE goes, signalled by `sip::uac` (digest challenges, provisional answers,
//! the 2xx and its ACK, CANCEL and the 200 that crosses it, BYE either way, re-INVITEs from
//! the called party). Once answered it is bridged through the engine's media workers.
//!
//! [`Leg`] only translates between the client and the core's outputs; what an answer or a
//! failure *means* depends on where the leg sits in the phase (`routing`).

use std::net::SocketAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sip::endpoint::ServerTxId;
use sip::message::{CSeq, NameAddr, Request, Response, SipMessage, Uri};
use sip::sdp::{LocalMedia, Negotiated, SdpSession};
use sip::uac::{
    Credentials, EndCause, InDialogRequest, Uac, UacConfig, UacEvent, UacOutput, UacSnapshot,
    UacState,
};

use super::env::CallEnv;
use super::io::{MediaOut, Output, ReqId, SipOut, StreamId};
use super::phase::LegPurpose;
use super::target::LegTarget;
use super::Outbox;
use crate::call::signalling::{contact, finish_request};

/// What happened on a leg, for the phase that holds it.
#[derive(Debug)]
pub(super) enum LegEvent {
    /// 180 or 183: the called party is alerted.
    Ringing,
    /// The call is answered (dialog up, ACKed): what the SDP negotiated, if usable.
    Answered(Option<Negotiated>),
    /// The call was not set up: the status (408 for no answer, 487 after our CANCEL) and why.
    Failed { status: u16, why: String },
    /// The called party changed the media (its re-INVITE or UPDATE).
    MediaUpdated(Negotiated),
    /// The called party hung up.
    Bye,
}

/// A call the engine places.
#[derive(Debug)]
pub(crate) struct Leg {
    pub stream: StreamId,
    pub purpose: LegPurpose,
    pub target: LegTarget,
    pub state: LegState,
    /// Requests of the client in flight: our id and the client's name for it (its CSeq).
    pub sent: Vec<(ReqId, CSeq)>,
}

#[derive(Debug)]
pub(crate) enum LegState {
    /// Its media stream opens; the INVITE goes once the port is known.
    Opening {
        from_user: String,
    },
    Signalling(Box<Uac>),
}

/// A leg as data (its client's timers as time left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedLeg {
    pub stream: StreamId,
    pub purpose: LegPurpose,
    pub target: LegTarget,
    pub state: SavedLegState,
    pub sent: Vec<(ReqId, CSeq)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SavedLegState {
    Opening { from_user: String },
    Signalling(Box<UacSnapshot>),
}

fn credentials(env: &CallEnv, target: &LegTarget) -> Option<Credentials> {
    let trunk = target.trunk.as_deref()?;
    env.config
        .trunks
        .iter()
        .find(|t| t.name == trunk)
        .map(|t| Credentials {
            username: t.auth_username.clone(),
            password: t.password.clone(),
        })
}

impl Leg {
    /// A leg whose stream opens now; the INVITE goes once it is open.
    pub(super) fn open(
        io: &mut Outbox,
        target: LegTarget,
        purpose: LegPurpose,
        from_user: String,
    ) -> Leg {
        let stream = io.new_stream();
        io.push(Output::Media(MediaOut::Open { stream }));
        Leg {
            stream,
            purpose,
            target,
            state: LegState::Opening { from_user },
            sent: Vec::new(),
        }
    }

    fn uac(&self) -> Option<&Uac> {
        match &self.state {
            LegState::Signalling(uac) => Some(uac),
            LegState::Opening { .. } => None,
        }
    }

    /// The leg's SIP Call-ID, once its INVITE went.
    pub(super) fn call_id(&self) -> Option<&str> {
        self.uac().map(Uac::call_id)
    }

    /// The agent a leg rings, for an agent leg.
    pub(crate) fn agent(&self) -> Option<&crate::acd::AgentId> {
        match &self.purpose {
            LegPurpose::Agent(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn is_answered(&self) -> bool {
        self.uac()
            .is_some_and(|u| *u.state() == UacState::Confirmed)
    }

    /// Nothing more will happen on the leg (its signalling is over).
    pub(super) fn is_done(&self) -> bool {
        self.uac().is_none_or(Uac::is_done)
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.uac().and_then(Uac::poll_timeout)
    }

    /// The dialog and media session of an answered leg (a caller called back).
    pub(super) fn answered_parts(&self) -> Option<(sip::dialog::Dialog, SdpSession)> {
        let uac = self.uac().filter(|_| self.is_answered())?;
        Some((uac.dialog()?.clone(), uac.sdp().clone()))
    }

    /// Sends the INVITE with our offer from `local` (the stream's RTP address); its
    /// Call-ID is routed to the call from now on.
    pub(super) fn invite(
        &mut self,
        now: Instant,
        env: &CallEnv,
        io: &mut Outbox,
        local: SocketAddr,
    ) {
        let LegState::Opening { from_user } = &self.state else {
            return;
        };
        let srtp = match &self.purpose {
            LegPurpose::Agent(agent) => env.config.srtp_for_agent(agent.as_str()),
            _ => env.config.srtp_for_peer(self.target.peer.addr.ip()),
        };
        let sdp = SdpSession::new(
            LocalMedia::new(env.rtp_ip(), local.port(), rand::random::<u32>() as u64)
                .with_srtp(srtp, crate::media::srtp::new_master_key()),
        );
        let from = Uri::parse(&format!("sip:{from_user}@{}", env.local_sip))
            .or_else(|_| Uri::parse(&format!("sip:svi@{}", env.local_sip)));
        let Ok(from) = from else {
            return;
        };
        let peer = self.target.peer;
        let mut config = UacConfig::new(
            self.target.uri.clone(),
            NameAddr::new(from),
            contact(env.local_sip, peer.transport),
            peer,
        );
        config.user_agent = env.config.sip.user_agent.clone();
        config.t1 = env.config.sip.t1;
        let uac = Uac::new(now, config, sdp, credentials(env, &self.target));
        io.push(Output::Sip(SipOut::Route {
            call_id: uac.call_id().to_string(),
        }));
        self.state = LegState::Signalling(Box::new(uac));
        self.pump(env, io);
    }

    /// Whether `req` is one of the leg's requests in flight.
    pub(super) fn owns(&self, req: ReqId) -> bool {
        self.sent.iter().any(|(r, _)| *r == req)
    }

    /// A response of the leg's Call-ID.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        env: &CallEnv,
        io: &mut Outbox,
        response: &Response,
    ) -> Vec<LegEvent> {
        if let LegState::Signalling(uac) = &mut self.state {
            uac.handle_response(now, response);
        }
        self.pump(env, io)
    }

    /// No final answer to `req`.
    pub(super) fn on_timeout(
        &mut self,
        now: Instant,
        env: &CallEnv,
        io: &mut Outbox,
        req: ReqId,
    ) -> Vec<LegEvent> {
        let Some(i) = self.sent.iter().position(|(r, _)| *r == req) else {
            return Vec::new();
        };
        let (_, cseq) = self.sent.swap_remove(i);
        if let LegState::Signalling(uac) = &mut self.state {
            uac.handle_transaction_timeout(now, &cseq);
        }
        self.pump(env, io)
    }

    /// The client's own deadline (CANCEL give-up, glare retry) passed.
    pub(super) fn on_timer(
        &mut self,
        now: Instant,
        env: &CallEnv,
        io: &mut Outbox,
    ) -> Vec<LegEvent> {
        if let LegState::Signalling(uac) = &mut self.state {
            uac.handle_timeout(now);
        }
        self.pump(env, io)
    }

    /// A request from the called party, answered here: BYE and the rest 200, re-INVITEs
    /// and UPDATEs from the leg's SDP session, anything outside the dialog 481.
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        env: &CallEnv,
        io: &mut Outbox,
        tx: Option<ServerTxId>,
        req: &Request,
    ) -> Vec<LegEvent> {
        let LegState::Signalling(uac) = &mut self.state else {
            respond(io, tx, Response::for_request(req, 481));
            return Vec::new();
        };
        let response = match uac.handle_request(now, req) {
            Ok(InDialogRequest::Ack) => None,
            Ok(InDialogRequest::Offer) => Some(uac.answer_offer(req)),
            Ok(InDialogRequest::Bye | InDialogRequest::Other) => Some(uac.respond(req, 200)),
            Err(refusal) => Some(refusal.response),
        };
        if let Some(r) = response {
            respond(io, tx, r);
        }
        self.pump(env, io)
    }

    /// Ends the leg: CANCEL while it rings, BYE once answered (the client finishes on its
    /// own: a 200 crossing the CANCEL is ACKed and ended). Its events are of no interest
    /// any more.
    pub(super) fn hang_up(&mut self, now: Instant, env: &CallEnv, io: &mut Outbox) {
        if let LegState::Signalling(uac) = &mut self.state {
            uac.hang_up(now, None);
        }
        self.pump(env, io);
    }

    /// Performs what the client asks and turns its events into the leg's.
    fn pump(&mut self, env: &CallEnv, io: &mut Outbox) -> Vec<LegEvent> {
        let LegState::Signalling(uac) = &mut self.state else {
            return Vec::new();
        };
        let transport = self.target.peer.transport;
        let finish = |r: &mut Request| {
            finish_request(r, env.local_sip, transport, &env.config.sip.user_agent)
        };
        while let Some(out) = uac.poll_output() {
            match out {
                UacOutput::Request {
                    cseq,
                    mut request,
                    to,
                } => {
                    finish(&mut request);
                    let req = io.new_req();
                    self.sent.push((req, cseq));
                    io.push(Output::Sip(SipOut::Request { req, request, to }));
                }
                UacOutput::Ack { mut request, to } => {
                    finish(&mut request);
                    let message = SipMessage::Request(request);
                    io.push(Output::Sip(SipOut::Stateless { message, to }));
                }
                UacOutput::CancelInvite { invite } => {
                    if let Some((req, _)) = self.sent.iter().find(|(_, c)| *c == invite) {
                        io.push(Output::Sip(SipOut::Cancel { req: *req }));
                    }
                }
            }
        }
        let mut events = Vec::new();
        while let Some(ev) = uac.poll_event() {
            let event = match ev {
                UacEvent::Progress {
                    status: 180 | 183, ..
                } => LegEvent::Ringing,
                UacEvent::Progress { .. } | UacEvent::ReofferFailed { .. } => continue,
                UacEvent::Answered { media } => LegEvent::Answered(media.ok()),
                UacEvent::Failed { status, error } => LegEvent::Failed {
                    status,
                    why: error.to_string(),
                },
                UacEvent::MediaUpdated { media } => LegEvent::MediaUpdated(media),
                UacEvent::Ended {
                    cause: EndCause::RemoteBye | EndCause::Lost { .. },
                } => LegEvent::Bye,
                UacEvent::Ended { .. } => continue,
            };
            events.push(event);
        }
        events
    }

    /// The leg as data.
    pub(super) fn save(&self, now: Instant) -> SavedLeg {
        let state = match &self.state {
            LegState::Opening { from_user } => SavedLegState::Opening {
                from_user: from_user.clone(),
            },
            LegState::Signalling(uac) => SavedLegState::Signalling(Box::new(uac.snapshot(now))),
        };
        SavedLeg {
            stream: self.stream,
            purpose: self.purpose.clone(),
            target: self.target.clone(),
            state,
            sent: self.sent.clone(),
        }
    }

    /// A saved leg again, its client's timers running from `now` (credentials from the
    /// configuration: they are never saved).
    pub(super) fn restore(saved: SavedLeg, env: &CallEnv, now: Instant) -> Leg {
        let state = match saved.state {
            SavedLegState::Opening { from_user } => LegState::Opening { from_user },
            SavedLegState::Signalling(snapshot) => {
                let credentials = credentials(env, &saved.target);
                LegState::Signalling(Box::new(Uac::restore(*snapshot, credentials, now)))
            }
        };
        Leg {
            stream: saved.stream,
            purpose: saved.purpose,
            target: saved.target,
            state,
            sent: saved.sent,
        }
    }
}

fn respond(io: &mut Outbox, tx: Option<ServerTxId>, response: Response) {
    if let Some(tx) = tx {
        io.push(Output::Sip(SipOut::Respond { tx, response }));
    }
}
