//! The legs the engine places as a B2BUA (an agent the ACD picked, a bridged-transfer
//! target, a supervisor's phone, the caller called back): each opens its own media stream,
//! then sends its INVITE; once answered it is bridged through the engine's media workers.
//!
//! [`Leg`]'s methods are the signalling of one outbound INVITE dialog, whatever the leg is
//! for: the INVITE with our SDP offer, provisional answers, the first 2xx (dialog, ACK, the
//! SDP answer) and its retransmissions (ACKed again), digest challenges from the PBX,
//! failures, BYE or CANCEL to hang up, and the requests the called party sends in the
//! dialog. What an answer or a failure *means* depends on the leg's purpose and is decided
//! by the phase that holds it (`queue`, `transfer`, `bridge`).

use std::net::SocketAddr;

use sip::auth::{parse_challenges, random_cnonce, ChallengeKind, DigestRequest};
use sip::dialog::Dialog;
use sip::endpoint::{new_call_id, new_tag, ServerTxId};
use sip::message::{HeaderName, Method, NameAddr, Request, Response, SipMessage};
use sip::sdp::{Direction, LocalMedia, Negotiated, SdpSession, SessionDescription};

use super::answer::answer_reoffer;
use super::env::CallEnv;
use super::io::{MediaOut, Output, ReqId, SipOut};
use super::phase::{Leg, LegPurpose, LegState};
use super::target::LegTarget;
use super::Outbox;
use crate::call::signalling::{contact, finish_request, via};

/// Challenges answered per leg before giving up (a second one for the same realm means the
/// password is wrong).
const MAX_CHALLENGES: u8 = 2;

/// What a response to a leg's INVITE means.
#[derive(Debug)]
pub(super) enum LegEvent {
    /// Nothing to act on: 100, a retransmitted 2xx (ACKed again), a challenge answered.
    Nothing,
    /// 180 or 183: the called party is alerted.
    Ringing,
    /// The first 2xx: the dialog is up; what the SDP answer negotiated, if usable.
    Answered(Option<Negotiated>),
    /// A final failure (the stream is closed): the status (408 for no answer, 487 when it
    /// answers our CANCEL) and why, for logs and flows.
    Failed { status: u16, why: String },
}

/// A request the called party sent in the leg's dialog (already answered).
#[derive(Debug)]
pub(super) enum LegRequest {
    Bye,
    /// A re-INVITE or UPDATE, and what it negotiated.
    Offer(Option<Negotiated>),
    Other,
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
        let call_id = new_call_id();
        io.push(Output::Media(MediaOut::Open {
            stream,
            route: Some(call_id.clone()),
        }));
        Leg {
            stream,
            purpose,
            call_id,
            target,
            state: LegState::Opening { from_user },
        }
    }

    /// Sends the INVITE with our offer from `local` (the stream's RTP address).
    pub(super) fn invite(&mut self, env: &CallEnv, io: &mut Outbox, local: SocketAddr) {
        let LegState::Opening { from_user } = &self.state else {
            return;
        };
        let mut sdp = SdpSession::new(LocalMedia::new(
            env.rtp_ip(),
            local.port(),
            rand::random::<u32>() as u64,
        ));
        let offer = sdp.offer(Direction::SendRecv);
        let (uri, peer) = (self.target.uri.clone(), self.target.peer);
        let mut invite = Request::new(Method::Invite, uri.clone());
        invite
            .headers
            .push(HeaderName::Via, via(env.local_sip, peer.transport));
        invite.headers.push(HeaderName::MaxForwards, "70");
        let from = format!("<sip:{from_user}@{}>;tag={}", env.local_sip, new_tag());
        invite.headers.push(HeaderName::From, from);
        invite
            .headers
            .push(HeaderName::To, NameAddr::new(uri).to_string());
        invite
            .headers
            .push(HeaderName::CallId, self.call_id.clone());
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(
            HeaderName::Contact,
            NameAddr::new(contact(env.local_sip, peer.transport)).to_string(),
        );
        invite
            .headers
            .push(HeaderName::UserAgent, env.config.sip.user_agent.clone());
        invite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        invite.body = offer.to_string().into_bytes().into();
        let req = io.new_req();
        io.push(Output::Sip(SipOut::Request {
            req,
            request: invite.clone(),
            to: peer,
        }));
        let digest = self
            .target
            .trunk
            .as_deref()
            .and_then(|t| env.trunk_digest(t))
            .map(Box::new);
        self.state = LegState::Inviting {
            sdp: Box::new(sdp),
            invite: Box::new(invite),
            req,
            digest,
            challenges: 0,
        };
    }

    /// Whether `req` is this leg's INVITE.
    pub(super) fn owns(&self, req: ReqId) -> bool {
        match &self.state {
            LegState::Inviting { req: r, .. } | LegState::Answered { req: r, .. } => *r == req,
            _ => false,
        }
    }

    /// A response to the leg's INVITE.
    pub(super) fn on_response(
        &mut self,
        env: &CallEnv,
        io: &mut Outbox,
        response: &Response,
    ) -> LegEvent {
        match response.status {
            100..=199 if matches!(response.status, 180 | 183) => LegEvent::Ringing,
            100..=199 => LegEvent::Nothing,
            200..=299 => self.accept_2xx(env, io, response),
            401 | 407 if self.answer_challenge(env, io, response) => LegEvent::Nothing,
            status => {
                if !matches!(self.state, LegState::Inviting { .. }) {
                    return LegEvent::Nothing;
                }
                self.close(io);
                LegEvent::Failed {
                    status,
                    why: format!("the called party answered {status} {}", response.reason),
                }
            }
        }
    }

    /// The leg's INVITE got no final answer (transaction timeout): true if that ends it.
    pub(super) fn on_timeout(&mut self, io: &mut Outbox, req: ReqId) -> bool {
        match &self.state {
            LegState::Inviting { req: r, .. } if *r == req => {
                self.close(io);
                true
            }
            _ => false,
        }
    }

    /// Every 2xx: the dialog on the first, an ACK for each (retransmissions included: our
    /// ACK may have been lost), the SDP answer processed on the first.
    fn accept_2xx(&mut self, env: &CallEnv, io: &mut Outbox, response: &Response) -> LegEvent {
        let first = match &self.state {
            LegState::Inviting { invite, .. } => match Dialog::new_uac(invite, response) {
                Ok(d) => Some(d),
                Err(_) => return LegEvent::Nothing,
            },
            LegState::Answered { .. } => None,
            _ => return LegEvent::Nothing,
        };
        let state = std::mem::replace(&mut self.state, LegState::Ended);
        let (sdp, dialog, req, negotiated) = match (state, first) {
            (LegState::Inviting { mut sdp, req, .. }, Some(dialog)) => {
                let answer = SessionDescription::parse_bytes(&response.body).ok();
                let n = answer.and_then(|a| sdp.process_answer(&a).ok());
                (sdp, Box::new(dialog), req, Some(n))
            }
            (LegState::Answered { sdp, dialog, req }, _) => (sdp, dialog, req, None),
            (other, _) => {
                self.state = other;
                return LegEvent::Nothing;
            }
        };
        let mut ack = dialog.create_ack(response);
        finish_request(
            &mut ack,
            env.local_sip,
            self.target.peer.transport,
            &env.config.sip.user_agent,
        );
        io.push(Output::Sip(SipOut::Stateless {
            message: SipMessage::Request(ack),
            to: self.target.peer,
        }));
        self.state = LegState::Answered { sdp, dialog, req };
        match negotiated {
            Some(n) => LegEvent::Answered(n),
            None => LegEvent::Nothing,
        }
    }

    /// The PBX challenged the INVITE (401/407): the same INVITE again, with credentials, in a
    /// new transaction. False when there is nothing (more) to answer with.
    fn answer_challenge(&mut self, env: &CallEnv, io: &mut Outbox, response: &Response) -> bool {
        let LegState::Inviting {
            invite,
            req,
            digest: Some(digest),
            challenges,
            ..
        } = &mut self.state
        else {
            return false;
        };
        *challenges += 1;
        if *challenges > MAX_CHALLENGES {
            return false;
        }
        let (kind, header) = if response.status == 407 {
            (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
        } else {
            (ChallengeKind::Www, HeaderName::WwwAuthenticate)
        };
        let offered: Vec<_> = response
            .headers
            .get_all(&header)
            .filter_map(|v| parse_challenges(v).ok())
            .flatten()
            .collect();
        if let Err(e) = digest.on_challenge(kind, &offered) {
            tracing::warn!(error = %e, "the PBX's challenge cannot be answered");
            return false;
        }
        let mut again = (**invite).clone();
        let seq = again.headers.cseq().map(|c| c.seq + 1).unwrap_or(2);
        again.headers.set(HeaderName::CSeq, format!("{seq} INVITE"));
        again.headers.remove(&HeaderName::Via);
        again.headers.remove(&HeaderName::Authorization);
        again.headers.remove(&HeaderName::ProxyAuthorization);
        again.headers.push(
            HeaderName::Via,
            via(env.local_sip, self.target.peer.transport),
        );
        let uri = again.uri.to_string();
        let request = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: Some(&again.body),
        };
        match digest.authorize(&request, &random_cnonce()) {
            Ok(auths) => {
                for a in auths {
                    let name = match a.kind {
                        ChallengeKind::Www => HeaderName::Authorization,
                        ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
                    };
                    again.headers.push(name, a.header_value());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot compute digest credentials");
                return false;
            }
        }
        *req = io.new_req();
        io.push(Output::Sip(SipOut::Request {
            req: *req,
            request: again.clone(),
            to: self.target.peer,
        }));
        **invite = again;
        true
    }

    /// Ends the leg: BYE when answered, CANCEL while ringing; its stream closes.
    pub(super) fn hang_up(&mut self, env: &CallEnv, io: &mut Outbox) {
        match &mut self.state {
            LegState::Answered { dialog, .. } => {
                let mut bye = dialog.create_request(Method::Bye);
                finish_request(
                    &mut bye,
                    env.local_sip,
                    self.target.peer.transport,
                    &env.config.sip.user_agent,
                );
                let req = io.new_req();
                io.push(Output::Sip(SipOut::Request {
                    req,
                    request: bye,
                    to: self.target.peer,
                }));
            }
            LegState::Inviting { req, .. } => io.push(Output::Sip(SipOut::Cancel { req: *req })),
            LegState::Opening { .. } | LegState::Ended => {}
        }
        self.close(io);
    }

    fn close(&mut self, io: &mut Outbox) {
        if !matches!(self.state, LegState::Ended) {
            io.push(Output::Media(MediaOut::Close {
                stream: self.stream,
            }));
            self.state = LegState::Ended;
        }
    }

    /// A request from the called party: answered here (BYE 200 and the leg ends,
    /// re-INVITEs and UPDATEs from the leg's SDP session, the rest 200; 481 without a
    /// dialog). None for an ACK.
    pub(super) fn on_request(
        &mut self,
        env: &CallEnv,
        io: &mut Outbox,
        tx: Option<ServerTxId>,
        req: &Request,
    ) -> Option<LegRequest> {
        if req.method == Method::Ack {
            return None;
        }
        let transport = self.target.peer.transport;
        let LegState::Answered { sdp, dialog, .. } = &mut self.state else {
            respond(io, tx, Response::for_request(req, 481));
            return Some(LegRequest::Other);
        };
        let tag = dialog.id.local_tag.clone();
        let tagged = |status| Response::for_request(req, status).with_to_tag(&tag);
        if dialog.handle_request(req).is_err() {
            respond(io, tx, tagged(500));
            return Some(LegRequest::Other);
        }
        match req.method {
            Method::Bye => {
                respond(io, tx, tagged(200));
                self.close(io);
                Some(LegRequest::Bye)
            }
            Method::Invite | Method::Update => {
                let reply = answer_reoffer(sdp, req);
                let mut r = Response::for_request(req, if reply.is_ok() { 200 } else { 488 });
                dialog.prepare_response(&mut r);
                r.headers.remove(&HeaderName::RecordRoute);
                let negotiated = match reply {
                    Ok((negotiated, answer)) => {
                        r.headers.push(
                            HeaderName::Contact,
                            NameAddr::new(contact(env.local_sip, transport)).to_string(),
                        );
                        r.headers.push(HeaderName::ContentType, "application/sdp");
                        r.body = answer.to_string().into_bytes().into();
                        negotiated
                    }
                    Err(e) => {
                        r.headers.push(
                            HeaderName::Warning,
                            format!("305 svi \"{}\"", e.replace('"', "'")),
                        );
                        None
                    }
                };
                respond(io, tx, r);
                Some(LegRequest::Offer(negotiated))
            }
            _ => {
                respond(io, tx, tagged(200));
                Some(LegRequest::Other)
            }
        }
    }
}

fn respond(io: &mut Outbox, tx: Option<ServerTxId>, response: Response) {
    if let Some(tx) = tx {
        io.push(Output::Sip(SipOut::Respond { tx, response }));
    }
}
