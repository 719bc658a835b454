//! The caller's INVITE and dialog: what refuses a call before it starts (no flow, a bad or
//! unacceptable offer, no media), our 200 with the SDP answer (or our offer, when the INVITE
//! had none and the answer comes in the ACK), and the requests the caller sends in the
//! dialog: BYE, INFO digits, re-INVITE/UPDATE (hold, resume, new address or codec),
//! NOTIFYs of a transfer, OPTIONS.

use std::sync::Arc;
use std::time::Instant;

use ivr_scripts::{Input, Interpreter, TransferOutcome};
use sip::dialog::Dialog;
use sip::endpoint::{new_tag, Peer, ServerTxId};
use sip::message::{HeaderName, Method, Request, Response};
use sip::sdp::{Direction, LocalMedia, Negotiated, SdpSession, SessionDescription};

use super::env::{media_codec, CallEnv};
use super::io::{MediaOut, Output, SipOut, StreamOpened};
use super::phase::{Caller, CallerLeg, Offer, Phase, Step};
use super::{CallCore, Facts, FlowRun, Refused, CALLER_STREAM};
use crate::acd::Timeline;
use crate::call::signalling::{contact, finish_request, next_hop};
use crate::call::transfer::sipfrag_status;
use crate::flows::LoadedFlow;
use crate::storage::EndReason;

/// Checks a new call before its core exists.
pub(super) struct Setup<'a> {
    pub env: &'a CallEnv,
    pub facts: &'a Facts,
    pub clock: &'a Timeline,
    pub now: Instant,
}

/// A final answer other than 2xx, with a Warning (RFC 3261 §20.43) when there is a reason.
fn refusal(invite: &Request, status: u16, warning: Option<(u16, String)>) -> Response {
    let mut r = Response::for_request(invite, status).with_to_tag(&new_tag());
    if let Some((code, w)) = warning {
        r.headers.push(
            HeaderName::Warning,
            format!("{code} svi \"{}\"", w.replace('"', "'")),
        );
    }
    r
}

impl Setup<'_> {
    /// The flow and the caller's side of a call that can start, or its refusal.
    pub fn accept(
        &self,
        flow: Option<Arc<LoadedFlow>>,
        invite: Request,
        from: Peer,
        media: StreamOpened,
    ) -> Result<(FlowRun, Caller), Refused> {
        let id = &self.facts.id;
        let refuse = |flow: Option<&LoadedFlow>, status, warning| {
            let response = refusal(&invite, status, warning);
            let record = super::end::record_of(self, flow, EndReason::Rejected);
            Refused {
                response,
                record: Box::new(record),
            }
        };
        let flow_name = self.env.config.flow_for(self.facts.called.reveal());
        let Some(flow) = flow else {
            tracing::error!(call = %id, flow = %flow_name, "no such flow loaded; answering 480");
            let why = format!("flow {flow_name} is not loaded");
            return Err(refuse(None, 480, Some((399, why))));
        };
        let offer = if invite.body.is_empty() {
            None
        } else {
            match SessionDescription::parse_bytes(&invite.body) {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    tracing::warn!(call = %id, error = %e, "unreadable SDP offer; answering 488");
                    return Err(refuse(
                        Some(&flow),
                        488,
                        Some((399, format!("bad SDP: {e}"))),
                    ));
                }
            }
        };
        let local = match media {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(call = %id, error = %e, "no media stream; answering 503");
                let why = "no media port available".to_string();
                return Err(refuse(Some(&flow), 503, Some((399, why))));
            }
        };
        let media = LocalMedia::new(
            self.env.rtp_ip(),
            local.port(),
            rand::random::<u32>() as u64,
        )
        .with_srtp(
            self.env.config.srtp_for_peer(from.addr.ip()),
            crate::media::srtp::new_master_key(),
        );
        let mut sdp = SdpSession::new(media);
        let offer = match offer {
            Some(offer) => match sdp.answer(&offer) {
                Ok(answer) => Offer::Answer(Box::new(answer.sdp)),
                Err(e) => {
                    tracing::info!(call = %id, error = %e, "offer not acceptable; answering 488");
                    // 305: incompatible media format (RFC 3261 §20.43).
                    return Err(refuse(Some(&flow), 488, Some((305, e.to_string()))));
                }
            },
            None => Offer::Late,
        };
        let interp = Interpreter::new(flow.flow.clone(), self.facts.call_info());
        tracing::info!(call = %id, caller = %self.facts.caller, called = %self.facts.called, flow = %flow_name, version = %flow.version, "call started");
        let caller = Caller {
            peer: from,
            stream: CALLER_STREAM,
            sdp,
            leg: CallerLeg::Offered {
                invite: Box::new(invite),
                offer,
            },
        };
        Ok((
            FlowRun {
                loaded: flow,
                interp,
            },
            caller,
        ))
    }

    pub fn clock(&self) -> &Timeline {
        self.clock
    }
}

impl CallCore {
    /// Applies what the INVITE's offer negotiated, then runs the flow's first step.
    pub(super) fn start(&mut self, now: Instant) {
        if let Some(n) = self.caller.sdp.negotiated().cloned() {
            self.apply_negotiated(&n);
        }
        self.resume(now, Input::Start);
    }

    /// The caller's media parameters from an offer/answer exchange.
    pub(super) fn apply_negotiated(&mut self, n: &Negotiated) {
        self.codec = Some(media_codec(n.codec.codec));
        let params = self.env.caller_params(n);
        self.push(Output::Media(MediaOut::Params {
            stream: self.caller.stream,
            params,
        }));
    }

    /// Answers the INVITE with 200 and our SDP, creating the dialog. False when the call
    /// cannot be answered (it was refused with 400).
    pub(super) fn answer(&mut self, now: Instant) -> bool {
        let CallerLeg::Offered { invite, offer } = &self.caller.leg else {
            return self.is_answered();
        };
        let local_contact = contact(self.env.local_sip, self.caller.peer.transport);
        let dialog = match Dialog::new_uas(invite, &new_tag(), local_contact) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call = %self.facts.id, error = %e, "cannot create a dialog from this INVITE");
                self.reject(now, 400, Some(e.to_string()));
                return false;
            }
        };
        let mut r = Response::for_request(invite, 200);
        dialog.prepare_response(&mut r);
        r.headers.push(HeaderName::Allow, crate::uas::ALLOW);
        let (sdp, late) = match offer {
            Offer::Answer(sdp) => ((**sdp).clone(), false),
            Offer::Late => (self.caller.sdp.offer(Direction::SendRecv), true),
        };
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = sdp.to_string().into_bytes().into();
        self.push(Output::Sip(SipOut::AnswerInvite(r)));
        self.caller.leg = CallerLeg::Answered {
            dialog: Box::new(dialog),
            awaiting_ack_sdp: late,
        };
        self.answered_at = Some(self.stamp(now));
        true
    }

    /// Refuses the INVITE (before our 200) with a Warning code 399 (miscellaneous).
    pub(super) fn reject(&mut self, now: Instant, status: u16, warning: Option<String>) {
        self.reject_with(now, status, warning.map(|w| (399, w)));
    }

    fn reject_with(&mut self, _now: Instant, status: u16, warning: Option<(u16, String)>) {
        let CallerLeg::Offered { invite, .. } = &self.caller.leg else {
            return;
        };
        let r = refusal(invite, status, warning);
        self.push(Output::Sip(SipOut::AnswerInvite(r)));
        self.caller.leg = CallerLeg::Closed;
    }

    /// The caller cancelled its INVITE: 487, unless we answered already.
    pub(super) fn cancelled(&mut self, now: Instant) {
        if !self.is_answered() {
            self.reject_with(now, 487, None);
            self.end(now, EndReason::Cancelled);
        }
    }

    /// A response in the server transaction of `req`, with the dialog's To tag.
    pub(super) fn respond_caller(&mut self, tx: Option<ServerTxId>, req: &Request, status: u16) {
        let Some(tx) = tx else { return };
        let response = self.caller_response(req, status);
        self.push(Output::Sip(SipOut::Respond { tx, response }));
    }

    /// Our answer to a request of the caller (in its dialog, our To tag).
    pub(super) fn caller_response(&self, req: &Request, status: u16) -> Response {
        let response = Response::for_request(req, status);
        match &self.caller.leg {
            CallerLeg::Answered { dialog, .. } => response.with_to_tag(&dialog.id.local_tag),
            _ => response,
        }
    }

    /// A request for the call's Call-ID or one of its legs'.
    pub(super) fn request(
        &mut self,
        now: Instant,
        tx: Option<ServerTxId>,
        req: Request,
        _from: Peer,
    ) {
        if req.headers.call_id() != Some(self.caller_call_id()) {
            return self.leg_request(now, tx, req);
        }
        if matches!(self.phase, super::Phase::Ending(_)) {
            // A late INFO...: answer and keep waiting; a BYE is answered once the record
            // is stored.
            match req.method {
                Method::Ack => {}
                Method::Bye => self.caller_bye(now, tx, &req),
                _ => self.respond_caller(tx, &req, 200),
            }
            return;
        }
        if req.method == Method::Ack {
            return self.ack(now, &req);
        }
        match &mut self.caller.leg {
            CallerLeg::Answered { dialog, .. } => {
                if let Err(e) = dialog.handle_request(&req) {
                    tracing::debug!(call = %self.facts.id, error = %e, "in-dialog request refused");
                    return self.respond_caller(tx, &req, 500);
                }
            }
            // Before our 2xx (or after the caller left) there is no dialog to use.
            CallerLeg::Offered { .. } | CallerLeg::Closed if req.method != Method::Invite => {
                return self.respond_caller(tx, &req, 481);
            }
            _ => {}
        }
        match req.method {
            Method::Bye => self.caller_bye(now, tx, &req),
            Method::Info => {
                let digit =
                    sip::info::dtmf_from_info(req.headers.content_type().as_deref(), &req.body);
                let ok = digit.is_some() || req.body.is_empty();
                self.respond_caller(tx, &req, if ok { 200 } else { 415 });
                if let Some(d) = digit {
                    self.digit(now, d);
                }
            }
            Method::Invite | Method::Update => self.reoffer(tx, &req),
            Method::Notify => {
                self.respond_caller(tx, &req, 200);
                self.transfer_notify(now, sipfrag_status(&req.body));
            }
            Method::Options => self.respond_caller(tx, &req, 200),
            _ => self.respond_caller(tx, &req, 405),
        }
    }

    /// A request in the caller's dialog, ready to send (Via, Max-Forwards), and where it
    /// goes; None without a dialog.
    pub(super) fn caller_request(&mut self, method: Method) -> Option<(Request, Peer)> {
        let CallerLeg::Answered { dialog, .. } = &mut self.caller.leg else {
            return None;
        };
        let mut request = dialog.create_request(method);
        let peer = next_hop(
            dialog.target_addr(),
            self.caller.peer,
            &self.env.config.sip.allowed,
        );
        finish_request(
            &mut request,
            self.env.local_sip,
            self.caller.peer.transport,
            &self.env.config.sip.user_agent,
        );
        Some((request, peer))
    }

    /// Sends `request` in a new client transaction; its answers come back as the id.
    pub(super) fn send(&mut self, request: Request, to: Peer) -> super::ReqId {
        let req = self.new_req();
        self.push(Output::Sip(SipOut::Request { req, request, to }));
        req
    }

    /// The Call-ID of the caller's dialog: the INVITE's, or after a callback the one of the
    /// leg the caller answered.
    pub(super) fn caller_call_id(&self) -> &str {
        match &self.caller.leg {
            CallerLeg::Answered { dialog, .. } => &dialog.id.call_id,
            _ => &self.facts.sip_call_id,
        }
    }

    /// The ACK of our 200: it carries the answer to our offer when the INVITE had none.
    fn ack(&mut self, now: Instant, req: &Request) {
        let CallerLeg::Answered {
            awaiting_ack_sdp, ..
        } = &mut self.caller.leg
        else {
            return;
        };
        if !*awaiting_ack_sdp {
            return;
        }
        *awaiting_ack_sdp = false;
        let answer = SessionDescription::parse_bytes(&req.body).ok();
        match answer.and_then(|a| self.caller.sdp.process_answer(&a).ok()) {
            Some(n) => self.apply_negotiated(&n),
            None => {
                tracing::warn!(call = %self.facts.id, "the ACK carried no usable SDP answer to our offer; ending the call");
                self.end(now, EndReason::Error);
            }
        }
    }

    /// A re-INVITE or UPDATE: hold, resume, new address or codec.
    fn reoffer(&mut self, tx: Option<ServerTxId>, req: &Request) {
        let Some(tx) = tx else { return };
        let reply = answer_reoffer(&mut self.caller.sdp, req);
        let local_tag = match &self.caller.leg {
            CallerLeg::Answered { dialog, .. } => Some(dialog.id.local_tag.clone()),
            _ => None,
        };
        let response = match reply {
            Ok((negotiated, sdp)) => {
                if let Some(n) = negotiated {
                    tracing::info!(call = %self.facts.id, direction = ?n.direction, "media renegotiated");
                    self.apply_negotiated(&n);
                }
                let mut r = Response::for_request(req, 200);
                if let CallerLeg::Answered { dialog, .. } = &self.caller.leg {
                    dialog.prepare_response(&mut r);
                    r.headers.remove(&HeaderName::RecordRoute);
                }
                r.headers.push(HeaderName::ContentType, "application/sdp");
                r.body = sdp.to_string().into_bytes().into();
                r
            }
            Err(e) => {
                let mut r = Response::for_request(req, 488);
                r.headers.push(
                    HeaderName::Warning,
                    format!("305 svi \"{}\"", e.replace('"', "'")),
                );
                if let Some(tag) = local_tag {
                    r = r.with_to_tag(&tag);
                }
                r
            }
        };
        self.push(Output::Sip(SipOut::Respond { tx, response }));
    }

    /// A NOTIFY of our REFER: its sipfrag says how the transfer went.
    fn transfer_notify(&mut self, now: Instant, status: Option<u16>) {
        if !matches!(self.phase, Phase::Flow(Step::Referring { .. })) {
            return;
        }
        match status {
            Some(200..=299) => {
                tracing::info!(call = %self.facts.id, "transfer completed");
                self.resume(now, Input::TransferResult(TransferOutcome::Completed));
            }
            Some(s) if s >= 300 => {
                let why = format!("the target answered {s}");
                self.resume(now, Input::TransferResult(TransferOutcome::Failed(why)));
            }
            _ => {}
        }
    }
}

/// Answers a re-INVITE or UPDATE from `session`: our SDP answer (and what it negotiated), or
/// our offer when the request had none (RFC 3264 §8.4 lets either side offer).
fn answer_reoffer(
    session: &mut SdpSession,
    req: &Request,
) -> Result<(Option<Negotiated>, SessionDescription), String> {
    if req.body.is_empty() {
        return Ok((None, session.offer(Direction::SendRecv)));
    }
    SessionDescription::parse_bytes(&req.body)
        .map_err(|e| e.to_string())
        .and_then(|offer| session.answer(&offer).map_err(|e| e.to_string()))
        .map(|a| (Some(a.negotiated), a.sdp))
}
