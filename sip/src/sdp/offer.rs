//! RFC 3264 offerer: build an offer for calls the engine places, read the answer to it.
//!
//! Our offer is one audio stream listing [`LocalMedia::codecs`] under their static payload
//! types, plus telephone-event under [`LocalMedia::telephone_event`], and with an SRTP policy
//! our `a=crypto` lines (under `RTP/SAVP` when SRTP is required, else `RTP/AVP`: best
//! effort). An answer that echoes one of our tags with the same suite makes the stream
//! encrypted; without one, a required SRTP offer fails. Reading the answer is the
//! mirror of [`super::negotiate()`]: the answer keeps our m-line count (§6), the first codec it
//! lists that we offered and implement wins (§6.1: the answerer's list is its preference), and
//! our direction is what we offered *and* what the answer allows (sendonly ↔ recvonly).
//! `process_answer` takes any offer, not only ours, so it also serves re-offers built by
//! [`super::SdpSession`].

use super::attr::Direction;
use super::crypto::{CryptoAttr, SrtpKeys, SrtpPolicy};
use super::model::{Connection, MediaDescription, MediaType, Proto, SessionDescription, Timing};
use super::negotiate::{
    audio_media, telephone_event, Codec, LocalMedia, Negotiated, NegotiatedCodec, NegotiationError,
    Remote,
};

/// An initial offer: one `m=audio` line with our codecs, telephone-event, `a=ptime:20` and
/// `direction`.
pub fn build_offer(local: &LocalMedia, direction: Direction) -> SessionDescription {
    let codecs: Vec<NegotiatedCodec> = local
        .codecs
        .iter()
        .map(|&codec| NegotiatedCodec {
            codec,
            payload_type: codec.static_payload_type(),
        })
        .collect();
    SessionDescription {
        origin: local.origin(),
        session_name: "-".to_owned(),
        connection: Some(Connection::from_ip(local.address)),
        bandwidths: Vec::new(),
        timings: vec![Timing::unbounded()],
        attributes: Vec::new(),
        media: vec![audio_media(
            offered_proto(local),
            local.rtp_port,
            &codecs,
            local.telephone_event,
            direction,
            &local.offered_crypto(),
        )],
        other: Vec::new(),
    }
}

/// Read the `answer` to `offer` (as UAC, or after a re-offer) into the negotiated media.
pub fn process_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if offer.media.len() != answer.media.len() {
        return Err(NegotiationError::MediaCountMismatch {
            offer: offer.media.len(),
            answer: answer.media.len(),
        });
    }
    let mut problem = None;
    for (index, (ours, theirs)) in offer.media.iter().zip(&answer.media).enumerate() {
        let offered_audio = ours.media == MediaType::Audio
            && !ours.is_rejected()
            && (ours.proto.is_plain_rtp() || ours.proto.is_secure_rtp());
        if !offered_audio {
            continue;
        }
        if theirs.is_rejected() {
            problem.get_or_insert(NegotiationError::AnswerRejected);
            continue;
        }
        let offered_formats: Vec<u8> = ours.payload_types().collect();
        // The answer's payload types mean what the offer said (RFC 3264 §6.1), unless the
        // answer restates them.
        let codec = theirs
            .payload_types()
            .filter(|pt| offered_formats.contains(pt))
            .find_map(|pt| {
                let map = theirs.rtpmap(pt).or_else(|| ours.encoding_of(pt))?;
                Some(NegotiatedCodec {
                    codec: Codec::from_rtpmap(&map)?,
                    payload_type: pt,
                })
            });
        let Some(codec) = codec else {
            problem.get_or_insert(NegotiationError::NoCommonCodec {
                media_index: index,
                offered: theirs.formats.clone(),
            });
            continue;
        };
        let srtp = answered_crypto(ours, theirs)?;
        let remote = Remote::of(answer, index, theirs)?;
        let mut allowed = answer.direction_of(theirs).reversed();
        if remote.rtp.is_none() {
            allowed = allowed.restrict(Direction::RecvOnly);
        }
        return Ok(Negotiated {
            media_index: index,
            codec,
            telephone_event: telephone_event(theirs, Some(ours))
                .filter(|pt| offered_formats.contains(pt)),
            direction: offer.direction_of(ours).restrict(allowed),
            remote_rtp: remote.rtp,
            remote_rtcp: remote.rtcp,
            remote_ptime: theirs.ptime(),
            srtp,
        });
    }
    Err(problem.unwrap_or(NegotiationError::NoAudio))
}

/// `RTP/SAVP` when SRTP is required, else `RTP/AVP`.
pub(crate) fn offered_proto(local: &LocalMedia) -> Proto {
    match &local.srtp {
        Some(srtp) if srtp.policy == SrtpPolicy::Required => Proto::RtpSavp,
        _ => Proto::RtpAvp,
    }
}

/// The keys agreed for a stream we offered: the answer's line that echoes one of our tags
/// with the same suite (RFC 4568 section 5.1.3).
fn answered_crypto(
    ours: &MediaDescription,
    theirs: &MediaDescription,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    let offered: Vec<CryptoAttr> = ours.cryptos().collect();
    if offered.is_empty() {
        return Ok(None);
    }
    let agreed = theirs.cryptos().find_map(|answered| {
        let ours = offered
            .iter()
            .find(|o| o.tag == answered.tag && o.suite == answered.suite)?;
        Some(SrtpKeys {
            suite: answered.suite,
            local: ours.key.clone(),
            remote: answered.key,
        })
    });
    match agreed {
        None if ours.proto.is_secure_rtp() => Err(NegotiationError::AnswerWithoutSrtp),
        agreed => Ok(agreed),
    }
}
