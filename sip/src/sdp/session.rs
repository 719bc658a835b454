//! One call's side of repeated offer/answer exchanges (initial INVITE, re-INVITEs, hold).
//!
//! RFC 3264 §8 rules kept here so callers cannot get them wrong:
//! - the `o=` session id never changes, and the version increments by exactly one whenever the
//!   SDP we send differs from the previous one (and stays put when it does not, e.g. a session
//!   refresh re-INVITE);
//! - a re-offer keeps every m-line of the previous exchange, in place: refused streams stay
//!   at port 0, our audio stays at its index;
//! - payload type numbers stay bound to what was negotiated (§8.3.2), so a re-offer lists the
//!   negotiated codec first and reuses the negotiated telephone-event number;
//! - an encrypted stream is re-offered with the agreed suite and our same SDES key, a plain
//!   one without `a=crypto`.
//!
//! Hold is a re-offer with `sendonly` ([`SdpSession::hold`]), resume one with `sendrecv`.

use super::attr::Direction;
use super::crypto::CryptoAttr;
use super::model::SessionDescription;
use super::negotiate::{
    audio_media, negotiate, rejected, Answer, LocalMedia, Negotiated, NegotiatedCodec,
    NegotiationError,
};
use super::offer::{build_offer, process_answer};

/// Offer/answer state for one call.
/// Serialisable, so a call's media state can be saved and rebuilt on another node; the SDP
/// bodies are kept in their text form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SdpSession {
    local: LocalMedia,
    /// The last SDP we sent, offer or answer: base for the version rule and the m-line layout.
    last_sent: Option<SessionDescription>,
    /// Our offer awaiting an answer.
    pending_offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
}

impl SdpSession {
    /// `local.session_version` is the version of the first SDP this session sends.
    pub fn new(local: LocalMedia) -> Self {
        SdpSession {
            local,
            last_sent: None,
            pending_offer: None,
            negotiated: None,
        }
    }

    pub fn local_media(&self) -> &LocalMedia {
        &self.local
    }

    /// The media currently agreed, if any exchange has completed.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Answer an offer from the peer (initial INVITE or re-INVITE). On error nothing changes:
    /// the engine answers 488 and the previous media stay in force (RFC 3261 §14.2).
    pub fn answer(&mut self, offer: &SessionDescription) -> Result<Answer, NegotiationError> {
        let mut answer = negotiate(offer, &self.local)?;
        self.stamp(&mut answer.sdp);
        self.last_sent = Some(answer.sdp.clone());
        self.pending_offer = None;
        self.negotiated = Some(answer.negotiated.clone());
        Ok(answer)
    }

    /// Our offer (initial or re-offer) with `direction` for our audio stream.
    pub fn offer(&mut self, direction: Direction) -> SessionDescription {
        let mut offer = match (&self.last_sent, &self.negotiated) {
            (Some(last), Some(n)) => self.re_offer(last, n, direction),
            _ => build_offer(&self.local, direction),
        };
        self.stamp(&mut offer);
        self.last_sent = Some(offer.clone());
        self.pending_offer = Some(offer.clone());
        offer
    }

    /// Re-offer putting the peer on hold (we `sendonly`, RFC 3264 §8.4).
    pub fn hold(&mut self) -> SessionDescription {
        self.offer(Direction::SendOnly)
    }

    /// Re-offer taking the peer off hold.
    pub fn resume(&mut self) -> SessionDescription {
        self.offer(Direction::SendRecv)
    }

    /// The peer's answer to our pending offer.
    pub fn process_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<Negotiated, NegotiationError> {
        let negotiated = self.preview_answer(answer)?;
        self.pending_offer = None;
        self.negotiated = Some(negotiated.clone());
        Ok(negotiated)
    }

    /// What the peer's `answer` to our pending offer would negotiate, without taking it as
    /// the answer: the SDP of an unreliable provisional response (183 Session Progress, early
    /// media), which RFC 3261 §13.2.1 does not make the answer; the 2xx carries that.
    pub fn preview_answer(
        &self,
        answer: &SessionDescription,
    ) -> Result<Negotiated, NegotiationError> {
        let offer = self
            .pending_offer
            .as_ref()
            .ok_or(NegotiationError::NoPendingOffer)?;
        process_answer(offer, answer)
    }

    /// Our offer was refused (488, 491, timeout): forget it, the previous media stay in force.
    /// The refused offer still counts as the last SDP sent for the version rule: the peer has
    /// seen that version, so a different SDP increments past it.
    pub fn offer_failed(&mut self) {
        self.pending_offer = None;
    }

    fn re_offer(
        &self,
        last: &SessionDescription,
        negotiated: &Negotiated,
        direction: Direction,
    ) -> SessionDescription {
        let mut codecs = vec![negotiated.codec];
        codecs.extend(
            self.local
                .codecs
                .iter()
                .filter(|c| **c != negotiated.codec.codec)
                .map(|&codec| NegotiatedCodec {
                    codec,
                    payload_type: codec.static_payload_type(),
                }),
        );
        let telephone_event = self
            .local
            .telephone_event
            .map(|default| negotiated.telephone_event.unwrap_or(default));
        // An encrypted stream stays encrypted with the agreed suite and our same key (so the
        // peer's rollover counter for our packets carries on, RFC 4568 section 7.1.4); a
        // plain one stays plain.
        let crypto: Vec<CryptoAttr> = negotiated
            .srtp
            .as_ref()
            .map(|keys| CryptoAttr {
                tag: 1,
                suite: keys.suite,
                key: keys.local.clone(),
            })
            .into_iter()
            .collect();
        let media = last
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == negotiated.media_index {
                    audio_media(
                        m.proto.clone(),
                        self.local.rtp_port,
                        &codecs,
                        telephone_event,
                        direction,
                        &crypto,
                    )
                } else {
                    rejected(m)
                }
            })
            .collect();
        SessionDescription {
            media,
            ..build_offer(&self.local, direction)
        }
    }

    /// Apply the §8 version rule to an SDP we are about to send.
    fn stamp(&self, sdp: &mut SessionDescription) {
        let Some(last) = &self.last_sent else {
            return;
        };
        sdp.origin.session_id.clone_from(&last.origin.session_id);
        sdp.origin.session_version = last.origin.session_version;
        if *sdp != *last {
            sdp.origin.session_version = last.origin.session_version.wrapping_add(1);
        }
    }
}
