//! The confirmed dialog: requests from the peer (BYE, re-INVITE/UPDATE offers, INFO,
//! NOTIFY...), the answers to them, and our BYE.
//!
//! The client checks a request against the dialog (tags, CSeq order, offers crossing) and
//! tells the TU what it is; the TU answers through its server transaction, with
//! [`Uac::respond`] or, for offers, [`Uac::answer_offer`], which answers from the leg's SDP
//! session. The leg's life (`Ended`, `MediaUpdated`) comes as events, as for everything else.

use std::time::Instant;

use rand::Rng;

use crate::dialog::DialogError;
use crate::message::{HeaderName, Method, NameAddr, Request, Response};
use crate::sdp::SessionDescription;

use super::{EndCause, MediaError, Reason, Uac, UacEvent, UacState, MAX_CHALLENGES};

/// What a request from the peer is, once the dialog accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDialogRequest {
    /// The peer hangs up: answer 200 ([`Uac::respond`]); `Ended` follows as an event.
    Bye,
    /// A re-INVITE or UPDATE: answer it with [`Uac::answer_offer`].
    Offer,
    /// An ACK (to our answer of their re-INVITE, or a stray one): nothing to answer.
    Ack,
    /// INFO, NOTIFY, OPTIONS or another method: the TU answers ([`Uac::respond`]).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// Not in this leg's confirmed dialog (wrong tags, not answered yet, or over): 481.
    NoDialog,
    /// A CSeq lower than the peer's last one (RFC 3261 §12.2.2): 500.
    OutOfOrder,
    /// Headers the dialog cannot read: 400.
    Malformed,
    /// Their offer while our re-INVITE is pending (glare, §14.2): 491.
    Glare,
    /// Their offer while their previous one is not answered yet (§14.2): 500 Retry-After.
    OfferInProgress,
}

impl RefusalReason {
    pub fn status(self) -> u16 {
        match self {
            RefusalReason::NoDialog => 481,
            RefusalReason::OutOfOrder | RefusalReason::OfferInProgress => 500,
            RefusalReason::Malformed => 400,
            RefusalReason::Glare => 491,
        }
    }
}

/// A request the dialog refuses, with the answer to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("in-dialog request refused ({reason:?}, {})", .response.status)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub response: Response,
}

impl Uac {
    /// A request from the peer with the leg's Call-ID. ACKs are never refused (they get no
    /// answer); anything else outside the confirmed dialog is refused with 481.
    pub fn handle_request(
        &mut self,
        _now: Instant,
        request: &Request,
    ) -> Result<InDialogRequest, Refusal> {
        if request.method == Method::Ack {
            self.ack_received(request);
            return Ok(InDialogRequest::Ack);
        }
        let open = match self.d.state {
            UacState::Confirmed => true,
            // Their BYE crossing ours.
            UacState::Terminating { .. } => request.method == Method::Bye,
            _ => false,
        };
        let Some(dialog) = self.d.dialog.as_mut().filter(|_| open) else {
            return Err(self.refuse(request, RefusalReason::NoDialog));
        };
        let target = dialog.remote_target.clone();
        if let Err(e) = dialog.handle_request(request) {
            let reason = match e {
                DialogError::NotInDialog => RefusalReason::NoDialog,
                DialogError::CSeqOutOfOrder { .. } => RefusalReason::OutOfOrder,
                _ => RefusalReason::Malformed,
            };
            return Err(self.refuse(request, reason));
        }
        match request.method {
            Method::Bye => {
                if let UacState::Terminating { bye } = self.d.state {
                    self.d.loose_byes.push(bye);
                }
                self.finish(UacEvent::Ended {
                    cause: EndCause::RemoteBye,
                });
                Ok(InDialogRequest::Bye)
            }
            Method::Invite | Method::Update => {
                let refused = if self.d.reoffer.as_ref().is_some_and(|r| r.seq.is_some()) {
                    Some(RefusalReason::Glare)
                } else if self.d.remote_offer.is_some() {
                    Some(RefusalReason::OfferInProgress)
                } else {
                    None
                };
                if let Some(reason) = refused {
                    // A refused target refresh refreshes nothing (§12.2.2: only a 2xx does).
                    if let Some(d) = self.d.dialog.as_mut() {
                        d.remote_target = target;
                    }
                    return Err(self.refuse(request, reason));
                }
                self.d.remote_offer = request.headers.cseq().ok().map(|c| c.seq);
                Ok(InDialogRequest::Offer)
            }
            _ => Ok(InDialogRequest::Other),
        }
    }

    /// An answer to a request of the peer in this dialog: our tag, and our Contact on a 2xx
    /// to a target refresh (re-INVITE, UPDATE).
    pub fn respond(&self, request: &Request, status: u16) -> Response {
        let mut r = Response::for_request(request, status).with_to_tag(&self.d.local_tag);
        if (200..300).contains(&status) && matches!(request.method, Method::Invite | Method::Update)
        {
            r.headers.push(
                HeaderName::Contact,
                NameAddr::new(self.d.config.contact.clone()).to_string(),
            );
        }
        r
    }

    /// Answers the peer's re-INVITE or UPDATE from the leg's SDP session: 200 with our
    /// answer (`MediaUpdated` follows), 488 when the offer cannot be accepted (the media
    /// stay as they were, §14.2), and for an offerless re-INVITE 200 with our offer, whose
    /// answer comes in the ACK. An UPDATE without SDP only refreshes the target: 200.
    pub fn answer_offer(&mut self, request: &Request) -> Response {
        if request.body.is_empty() {
            if request.method == Method::Invite {
                let offer = self.d.sdp.offer(self.d.direction);
                self.d.offer_in_our_2xx = true;
                return self.with_sdp(self.respond(request, 200), &offer);
            }
            self.d.remote_offer = None;
            return self.respond(request, 200);
        }
        self.d.remote_offer = None;
        let answer = SessionDescription::parse_bytes(&request.body)
            .map_err(MediaError::from)
            .and_then(|offer| self.d.sdp.answer(&offer).map_err(MediaError::from));
        match answer {
            Ok(a) => {
                self.events.push_back(UacEvent::MediaUpdated {
                    media: a.negotiated,
                });
                self.with_sdp(self.respond(request, 200), &a.sdp)
            }
            Err(e) => {
                let mut r = self.respond(request, 488);
                let text: String = e.to_string().chars().filter(|c| *c != '"').collect();
                r.headers
                    .push(HeaderName::Warning, format!("305 svi \"{text}\""));
                r
            }
        }
    }

    /// The endpoint reported `AckTimeout` for our 2xx to the peer's re-INVITE: the dialog
    /// stands but the session should end (RFC 3261 §13.3.1.4), so we send BYE.
    pub fn handle_ack_timeout(&mut self, _now: Instant) {
        if self.d.remote_offer.take().is_some() && self.d.offer_in_our_2xx {
            self.d.offer_in_our_2xx = false;
            self.d.sdp.offer_failed();
        }
        if self.d.state == UacState::Confirmed {
            self.send_bye(None);
        }
    }

    fn with_sdp(&self, mut response: Response, sdp: &SessionDescription) -> Response {
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = sdp.to_string().into_bytes().into();
        response
    }

    /// The ACK of our 2xx to an offerless re-INVITE carries the answer to our offer.
    fn ack_received(&mut self, ack: &Request) {
        let seq = ack.headers.cseq().ok().map(|c| c.seq);
        let ours = self.d.dialog.as_ref().is_some_and(|d| d.matches(ack));
        if !ours || !self.d.offer_in_our_2xx || seq != self.d.remote_offer {
            return;
        }
        self.d.remote_offer = None;
        self.d.offer_in_our_2xx = false;
        match self.complete_offer(&ack.body) {
            Ok(media) => self.events.push_back(UacEvent::MediaUpdated { media }),
            // The media stay as they were; the TU's RTP watch decides if they still work.
            Err(e) => {
                tracing::warn!(call_id = %self.d.call_id, error = %e, "the ACK has no usable answer to our offer");
            }
        }
    }

    fn refuse(&self, request: &Request, reason: RefusalReason) -> Refusal {
        let mut response = self.respond(request, reason.status());
        if reason == RefusalReason::OfferInProgress {
            // §14.2: "a randomly chosen value of between 0 and 10 seconds".
            let after = rand::thread_rng().gen_range(0..=10u64);
            response
                .headers
                .push(HeaderName::RetryAfter, after.to_string());
        }
        Refusal { reason, response }
    }

    /// Our BYE; the leg is `Terminating` until it is answered or times out.
    pub(super) fn send_bye(&mut self, reason: Option<Reason>) {
        let Some(mut dialog) = self.d.dialog.take() else {
            return;
        };
        let mut bye = self.request_in(&mut dialog, Method::Bye);
        self.d.dialog = Some(dialog);
        if let Some(r) = &reason {
            bye.headers.push(HeaderName::Reason, r.to_string());
        }
        self.d.bye_reason = reason;
        self.d.state = UacState::Terminating { bye: self.d.cseq };
        self.timers.clear();
        if let Some(r) = self.d.reoffer.take() {
            if r.seq.is_some() {
                self.d.sdp.offer_failed();
            }
        }
        self.push_request(bye);
    }

    /// A final answer to one of our BYEs. A 401/407 to the leg's own BYE is answered with
    /// credentials once per realm, as for the INVITE.
    pub(super) fn bye_response(&mut self, seq: u32, response: &Response) {
        let ours = self.d.state == UacState::Terminating { bye: seq };
        if ours && matches!(response.status, 401 | 407) {
            if let Some(digest) = self.digest.as_mut() {
                let answered = self
                    .d
                    .dialog_challenges
                    .answer(digest, response, MAX_CHALLENGES);
                if answered.is_ok() {
                    let reason = self.d.bye_reason.take();
                    self.d.state = UacState::Confirmed;
                    return self.send_bye(reason);
                }
            }
        }
        self.bye_finished(seq, Some(response.status));
    }

    /// One of our BYEs is over: answered with `status`, or timed out (`None`).
    pub(super) fn bye_finished(&mut self, seq: u32, status: Option<u16>) {
        if let Some(i) = self.d.loose_byes.iter().position(|s| *s == seq) {
            self.d.loose_byes.swap_remove(i);
            return;
        }
        if self.d.state == (UacState::Terminating { bye: seq }) {
            self.finish(UacEvent::Ended {
                cause: EndCause::LocalBye { status },
            });
        }
    }
}
