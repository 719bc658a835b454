//! The INVITE and its answers: provisional answers, the 2xx that confirms the dialog (and
//! those we do not want), challenges, failures, and CANCEL.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::auth::authorize_request;
use crate::dialog::{Dialog, DialogError, DialogId};
use crate::message::{CSeq, HeaderName, Method, NameAddr, Request, Response};
use crate::sdp::{Negotiated, SessionDescription};

use super::{
    MediaError, Reason, Timer, Uac, UacError, UacEvent, UacOutput, UacState, MAX_CHALLENGES,
};

/// A credentials header of the INVITE in force, repeated in the ACK of its 2xx: "the ACK
/// MUST contain the same credentials as the INVITE" (RFC 3261 §13.2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedCredentials {
    proxy: bool,
    value: String,
}

fn saved_credentials(request: &Request) -> Vec<SavedCredentials> {
    let of = |name: HeaderName, proxy: bool| {
        request
            .headers
            .get_all(&name)
            .map(|value| SavedCredentials {
                proxy,
                value: value.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let mut all = of(HeaderName::Authorization, false);
    all.extend(of(HeaderName::ProxyAuthorization, true));
    all
}

/// A 2xx's remote tag (empty for an RFC 2543 peer), `None` if its tags cannot be read.
pub(super) fn remote_tag(response: &Response) -> Option<String> {
    DialogId::of_incoming_response(response).map(|id| id.remote_tag)
}

impl Uac {
    /// Every response of the leg's Call-ID: to the INVITE, to our re-INVITEs, to our BYEs.
    /// Responses to CANCEL need nothing (the INVITE's own answer follows).
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        if response.headers.call_id() != Some(self.d.call_id.as_str()) {
            return;
        }
        let Ok(cseq) = response.headers.cseq() else {
            return;
        };
        match cseq.method {
            Method::Invite if cseq.seq == self.d.invite_seq => self.invite_response(now, response),
            Method::Invite => self.reoffer_response(now, cseq.seq, response),
            Method::Bye if !response.is_provisional() => self.bye_response(cseq.seq, response),
            _ => {}
        }
    }

    pub(super) fn send_invite(&mut self) {
        let seq = self.next_seq();
        self.d.invite_seq = seq;
        let mut invite = self.invite_request(seq);
        if let Some(digest) = self.digest.as_mut() {
            if let Err(e) = authorize_request(digest, &mut invite) {
                tracing::warn!(call_id = %self.d.call_id, error = %e, "cannot compute digest credentials");
            }
        }
        self.d.invite_auth = saved_credentials(&invite);
        self.push_request(invite);
    }

    /// The INVITE with CSeq `seq`, without Via and credentials (also what the dialog of a
    /// 2xx is made from).
    pub(super) fn invite_request(&self, seq: u32) -> Request {
        let c = &self.d.config;
        let mut req = Request::new(Method::Invite, c.target.clone());
        let h = &mut req.headers;
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            c.from.clone().with_tag(&self.d.local_tag).to_string(),
        );
        h.push(HeaderName::To, c.to.to_string());
        h.push(HeaderName::CallId, self.d.call_id.clone());
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq,
                method: Method::Invite,
            }
            .to_string(),
        );
        h.push(
            HeaderName::Contact,
            NameAddr::new(c.contact.clone()).to_string(),
        );
        if !c.user_agent.is_empty() {
            h.push(HeaderName::UserAgent, c.user_agent.clone());
        }
        if !c.allow.is_empty() {
            h.push(HeaderName::Allow, c.allow.clone());
        }
        if let Some(offer) = &self.d.offer {
            h.push(HeaderName::ContentType, "application/sdp");
            req.body = offer.to_string().into_bytes().into();
        }
        req
    }

    fn invite_response(&mut self, now: Instant, response: &Response) {
        match response.status {
            100..=199 => self.progress(response),
            200..=299 => self.invite_2xx(response),
            401 | 407 if matches!(self.d.state, UacState::Calling { .. }) => {
                self.challenged(response)
            }
            status => self.invite_failed(now, status, response),
        }
    }

    fn progress(&mut self, response: &Response) {
        if !matches!(self.d.state, UacState::Calling { .. }) {
            return;
        }
        self.d.state = UacState::Calling {
            progress: Some(response.status),
        };
        let early_media = self.early_media(response);
        self.events.push_back(UacEvent::Progress {
            status: response.status,
            reason: response.reason.clone(),
            early_media,
        });
    }

    /// What the SDP of a provisional answer would negotiate, kept in case the 2xx has none.
    fn early_media(&mut self, response: &Response) -> Option<Negotiated> {
        if response.body.is_empty() || !self.d.config.offer_in_invite {
            return None;
        }
        let sdp = SessionDescription::parse_bytes(&response.body).ok()?;
        let negotiated = self.d.sdp.preview_answer(&sdp).ok()?;
        self.d.early_answer = Some(sdp);
        Some(negotiated)
    }

    fn challenged(&mut self, response: &Response) {
        let status = response.status;
        let Some(digest) = self.digest.as_mut() else {
            let error = UacError::NoCredentials { status };
            return self.finish(UacEvent::Failed { status, error });
        };
        match self.d.challenges.answer(digest, response, MAX_CHALLENGES) {
            Ok(()) => self.send_invite(),
            Err(e) => self.finish(UacEvent::Failed {
                status,
                error: UacError::Auth(e),
            }),
        }
    }

    fn invite_failed(&mut self, _now: Instant, status: u16, response: &Response) {
        let error = match self.d.state {
            UacState::Calling { .. } => UacError::Rejected {
                status,
                reason: response.reason.clone(),
            },
            UacState::Cancelling { .. } => UacError::Cancelled,
            _ => return,
        };
        self.finish(UacEvent::Failed { status, error });
    }

    pub(super) fn invite_timeout(&mut self) {
        let error = match self.d.state {
            UacState::Calling { .. } => UacError::Timeout,
            UacState::Cancelling { .. } => UacError::Cancelled,
            _ => return,
        };
        self.finish(UacEvent::Failed { status: 408, error });
    }

    /// §9.1: the endpoint sends the CANCEL once a provisional answer came; we stop waiting
    /// for the INVITE's final answer 64*T1 later.
    pub(super) fn cancel(&mut self, now: Instant, reason: Option<Reason>) {
        self.d.state = UacState::Cancelling { reason };
        self.timers
            .set(Timer::CancelGiveUp, now + self.d.config.t1 * 64);
        self.outputs.push_back(UacOutput::CancelInvite {
            invite: CSeq {
                seq: self.d.invite_seq,
                method: Method::Invite,
            },
        });
    }

    pub(super) fn cancel_given_up(&mut self) {
        if matches!(self.d.state, UacState::Cancelling { .. }) {
            self.finish(UacEvent::Failed {
                status: 408,
                error: UacError::Cancelled,
            });
        }
    }

    fn invite_2xx(&mut self, response: &Response) {
        let Some(tag) = remote_tag(response) else {
            return;
        };
        // A retransmission: our ACK may have been lost (§13.2.2.4).
        if let Some(d) = self.d.dialog.as_ref().filter(|d| d.id.remote_tag == tag) {
            let ack = d.create_ack(response);
            let body = self.d.ack_body.clone();
            return self.push_ack(ack, body);
        }
        if let Some(d) = self.d.unwanted.iter().find(|d| d.id.remote_tag == tag) {
            let ack = d.create_ack(response);
            return self.push_ack(ack, None);
        }
        let Some(dialog) = self.dialog_from(response) else {
            return;
        };
        match (&self.d.state, self.d.dialog.is_none()) {
            (UacState::Calling { .. }, true) => self.answered(dialog, response),
            (UacState::Cancelling { reason }, true) => {
                let reason = reason.clone();
                self.end_unwanted(dialog, response, reason);
                self.finish(UacEvent::Failed {
                    status: response.status,
                    error: UacError::Cancelled,
                });
            }
            // Another fork, or a 2xx after we stopped waiting.
            _ => self.end_unwanted(dialog, response, None),
        }
    }

    /// The dialog a 2xx creates. A 2xx without Contact breaks RFC 3261 §13.3.1.4 but still
    /// answers the call: its dialog targets our Request-URI rather than losing the caller.
    fn dialog_from(&self, response: &Response) -> Option<Dialog> {
        let invite = self.invite_request(self.d.invite_seq);
        match Dialog::new_uac(&invite, response) {
            Ok(d) => Some(d),
            Err(DialogError::MissingContact(_)) => {
                let mut patched = response.clone();
                patched.headers.push(
                    HeaderName::Contact,
                    NameAddr::new(self.d.config.target.clone()).to_string(),
                );
                Dialog::new_uac(&invite, &patched).ok()
            }
            // The error may quote From or To, which hold a phone number: not logged.
            Err(_) => {
                tracing::warn!(call_id = %self.d.call_id, "2xx with unreadable dialog headers: ignored");
                None
            }
        }
    }

    fn answered(&mut self, dialog: Dialog, response: &Response) {
        let media = self.answer_media(response);
        let ack = dialog.create_ack(response);
        self.d.dialog = Some(dialog);
        self.d.state = UacState::Confirmed;
        self.d.early_answer = None;
        let body = self.d.ack_body.clone();
        self.push_ack(ack, body);
        self.events.push_back(UacEvent::Answered { media });
    }

    /// Our offer's answer in the 2xx (or the 183 before it), or, offerless, the peer's offer
    /// answered in our ACK.
    fn answer_media(&mut self, response: &Response) -> Result<Negotiated, MediaError> {
        let body = (!response.body.is_empty())
            .then(|| SessionDescription::parse_bytes(&response.body))
            .transpose()?;
        if self.d.config.offer_in_invite {
            let answer = body
                .or_else(|| self.d.early_answer.clone())
                .ok_or(MediaError::NoSdp)?;
            return Ok(self.d.sdp.process_answer(&answer)?);
        }
        let offer = body.ok_or(MediaError::NoSdp)?;
        let answer = self.d.sdp.answer(&offer)?;
        self.d.ack_body = Some(answer.sdp);
        Ok(answer.negotiated)
    }

    /// ACK and BYE a 2xx we do not want: another fork's, or one that crossed our CANCEL.
    fn end_unwanted(&mut self, mut dialog: Dialog, response: &Response, reason: Option<Reason>) {
        let ack = dialog.create_ack(response);
        self.push_ack(ack, None);
        let mut bye = self.request_in(&mut dialog, Method::Bye);
        if let Some(r) = reason {
            bye.headers.push(HeaderName::Reason, r.to_string());
        }
        self.d.loose_byes.push(self.d.cseq);
        self.d.unwanted.push(dialog);
        self.push_request(bye);
    }

    /// A new request in `dialog` with the client's next CSeq, with the credentials in force.
    pub(super) fn request_in(&mut self, dialog: &mut Dialog, method: Method) -> Request {
        dialog.local_cseq = self.d.cseq;
        let mut request = dialog.create_request(method);
        self.d.cseq = dialog.local_cseq;
        if let Some(digest) = self.digest.as_mut() {
            if let Err(e) = authorize_request(digest, &mut request) {
                tracing::warn!(call_id = %self.d.call_id, error = %e, "cannot compute digest credentials");
            }
        }
        request
    }

    pub(super) fn push_ack(&mut self, mut ack: Request, body: Option<SessionDescription>) {
        if ack.headers.cseq().is_ok_and(|c| c.seq == self.d.invite_seq) {
            for c in &self.d.invite_auth {
                let name = match c.proxy {
                    true => HeaderName::ProxyAuthorization,
                    false => HeaderName::Authorization,
                };
                ack.headers.push(name, c.value.clone());
            }
        }
        if let Some(sdp) = body {
            ack.headers.push(HeaderName::ContentType, "application/sdp");
            ack.body = sdp.to_string().into_bytes().into();
        }
        self.outputs.push_back(UacOutput::Ack {
            request: ack,
            to: self.d.config.peer,
        });
    }
}
