//! Our re-INVITE: a new offer in the confirmed dialog (hold, resume, a new Contact after
//! the call moved), its ACK, and glare.
//!
//! RFC 3261 §14.1: while it is pending no other offer may start; a non-2xx final answer
//! leaves the session as it was (the SDP session forgets the offer, so the next one keeps
//! the version rule); 491 means both sides offered at once, and the Call-ID owner (always
//! us: we sent the INVITE) tries again after 2.1 to 4 s.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::auth::ChallengeRound;
use crate::message::{HeaderName, Method, Response};
use crate::sdp::Direction;

use super::invite::remote_tag;
use super::{
    EndCause, Reoffer, Timer, Uac, UacError, UacEvent, UacState, MAX_CHALLENGES, MAX_GLARE_RETRIES,
};

/// How long a 491'd re-INVITE waits: 2.1 to 4 s in steps of 10 ms (§14.1, Call-ID owner).
fn glare_delay() -> Duration {
    Duration::from_millis(rand::thread_rng().gen_range(210..=400u64) * 10)
}

impl Uac {
    /// A re-INVITE offering our audio with `direction` (`SendOnly` holds the peer,
    /// `SendRecv` resumes). Its outcome comes as `MediaUpdated` or `ReofferFailed`.
    pub fn reinvite(&mut self, _now: Instant, direction: Direction) -> Result<(), UacError> {
        if self.d.state != UacState::Confirmed {
            return Err(UacError::NotConfirmed);
        }
        if self.d.reoffer.is_some() || self.d.remote_offer.is_some() {
            return Err(UacError::OfferPending);
        }
        self.d.direction = direction;
        self.d.reoffer = Some(Reoffer {
            seq: None,
            direction,
            glare_retries: 0,
        });
        self.d.dialog_challenges = ChallengeRound::default();
        self.send_reinvite();
        Ok(())
    }

    /// Puts the peer on hold (we send only).
    pub fn hold(&mut self, now: Instant) -> Result<(), UacError> {
        self.reinvite(now, Direction::SendOnly)
    }

    /// Takes the peer off hold.
    pub fn resume(&mut self, now: Instant) -> Result<(), UacError> {
        self.reinvite(now, Direction::SendRecv)
    }

    fn send_reinvite(&mut self) {
        let Some(direction) = self.d.reoffer.as_ref().map(|r| r.direction) else {
            return;
        };
        let Some(mut dialog) = self.d.dialog.take() else {
            return;
        };
        let offer = self.d.sdp.offer(direction);
        let mut request = self.request_in(&mut dialog, Method::Invite);
        self.d.dialog = Some(dialog);
        request
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        request.body = offer.to_string().into_bytes().into();
        if let Some(r) = self.d.reoffer.as_mut() {
            r.seq = Some(self.d.cseq);
        }
        self.push_request(request);
    }

    /// A response to an INVITE of ours that is not the initial one.
    pub(super) fn reoffer_response(&mut self, now: Instant, seq: u32, response: &Response) {
        let pending = self.d.reoffer.as_ref().and_then(|r| r.seq) == Some(seq);
        let status = response.status;
        if !pending {
            // A retransmitted 2xx of a re-INVITE already answered: ACK it again.
            let ack = self
                .d
                .dialog
                .as_ref()
                .filter(|d| {
                    (200..300).contains(&status)
                        && remote_tag(response).is_some_and(|t| t == d.id.remote_tag)
                })
                .map(|d| d.create_ack(response));
            if let Some(ack) = ack {
                self.push_ack(ack, None);
            }
            return;
        }
        match status {
            100..=199 => {}
            200..=299 => self.reoffer_accepted(response),
            401 | 407 => self.reoffer_challenged(response),
            491 => self.glare(now, response),
            481 => {
                self.finish(UacEvent::Ended {
                    cause: EndCause::Lost { status },
                });
            }
            _ => self.reoffer_failed(
                status,
                UacError::Rejected {
                    status,
                    reason: response.reason.clone(),
                },
            ),
        }
    }

    fn reoffer_accepted(&mut self, response: &Response) {
        let Some(dialog) = self.d.dialog.as_mut() else {
            return;
        };
        // A target refresh: the 2xx's Contact is the peer's target from now on (§12.2.1.2).
        let _ = dialog.handle_response(response);
        let ack = dialog.create_ack(response);
        self.push_ack(ack, None);
        self.d.reoffer = None;
        match self.complete_offer(&response.body) {
            Ok(media) => self.events.push_back(UacEvent::MediaUpdated { media }),
            Err(error) => self.events.push_back(UacEvent::ReofferFailed {
                status: response.status,
                error: UacError::Media(error),
            }),
        }
    }

    fn reoffer_challenged(&mut self, response: &Response) {
        let status = response.status;
        let Some(digest) = self.digest.as_mut() else {
            return self.reoffer_failed(status, UacError::NoCredentials { status });
        };
        match self
            .d
            .dialog_challenges
            .answer(digest, response, MAX_CHALLENGES)
        {
            Ok(()) => {
                self.d.sdp.offer_failed();
                self.send_reinvite();
            }
            Err(e) => self.reoffer_failed(status, UacError::Auth(e)),
        }
    }

    fn glare(&mut self, now: Instant, response: &Response) {
        self.d.sdp.offer_failed();
        let retries = self.d.reoffer.as_ref().map_or(0, |r| r.glare_retries);
        if retries >= MAX_GLARE_RETRIES {
            let error = UacError::Rejected {
                status: 491,
                reason: response.reason.clone(),
            };
            self.d.reoffer = None;
            self.events
                .push_back(UacEvent::ReofferFailed { status: 491, error });
            return;
        }
        if let Some(r) = self.d.reoffer.as_mut() {
            r.glare_retries += 1;
            r.seq = None;
        }
        self.timers.set(Timer::GlareRetry, now + glare_delay());
    }

    pub(super) fn glare_retry(&mut self, now: Instant) {
        let waiting = self.d.reoffer.as_ref().is_some_and(|r| r.seq.is_none());
        if self.d.state != UacState::Confirmed || !waiting {
            return;
        }
        if self.d.remote_offer.is_some() {
            // Their offer, which won the glare, is still being answered: wait again.
            self.timers.set(Timer::GlareRetry, now + glare_delay());
            return;
        }
        self.d.dialog_challenges = ChallengeRound::default();
        self.send_reinvite();
    }

    pub(super) fn reoffer_timeout(&mut self, _now: Instant, seq: u32) {
        if self.d.reoffer.as_ref().and_then(|r| r.seq) == Some(seq) {
            self.reoffer_failed(408, UacError::Timeout);
        }
    }

    /// The offer is forgotten; dialog and media stay as they were.
    fn reoffer_failed(&mut self, status: u16, error: UacError) {
        self.d.sdp.offer_failed();
        self.d.reoffer = None;
        self.events
            .push_back(UacEvent::ReofferFailed { status, error });
    }
}
