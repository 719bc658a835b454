//! RFC 3264 answerer for an IVR: one G.711 audio stream plus RFC 4733 telephone-event.
//!
//! Choices, each one the conservative reading of the RFCs:
//! - **Stream**: the first `m=audio` with a non-zero port, a transport our SRTP policy accepts
//!   and a codec in common.
//! - **SRTP** ([`super::crypto`]): with a policy other than `off`, the first usable `a=crypto`
//!   of the stream makes it encrypted, under `RTP/SAVP(F)` or, best effort, `RTP/AVP(F)` (the
//!   answer keeps the offer's profile and echoes the line's tag and suite with our key). A
//!   `RTP/SAVP` stream without a usable line is refused; so is a stream without one when the
//!   policy is `required` (the engine answers 488). Every other `m=` line is answered with port 0 and
//!   its offered format list (RFC 3264 §6: same number of m-lines, rejected ones port 0).
//! - **Codec**: the *offerer's* order wins (RFC 3264 §6.1 recommends listing formats in the
//!   offer's order; PBXs put the trunk's preferred codec first and transcode otherwise).
//!   [`LocalMedia::codecs`] is the set we accept and the order of our own offers. Static payload
//!   types 0/8 are recognised without `rtpmap`; any payload type whose `rtpmap` names PCMU/PCMA
//!   at 8000 Hz is accepted under the offerer's number.
//! - **Exactly one codec** in the answer, plus `telephone-event` under the *offerer's* payload
//!   type (RFC 4733 §7.1: the answer uses the offer's number; 101 and 96 are both common), so
//!   the engine never has to follow a mid-call codec switch.
//! - **Direction** mirrors the offer (sendonly ↔ recvonly). An offered `c=0.0.0.0` (RFC 2543
//!   hold, RFC 3264 §8.4) means "send nothing to me": we drop our send side and report no
//!   remote address.
//! - `t=` is copied from the offer (RFC 3264 §6), `a=ptime:20` is always stated.

use std::net::{IpAddr, SocketAddr};

use super::attr::{Direction, RtpMap};
use super::crypto::{CryptoAttr, LocalSrtp, SrtpKeys, SrtpPolicy};
use super::model::{
    Attribute, Connection, MediaDescription, MediaType, Origin, SessionDescription, Timing,
};

/// The audio codecs the engine's media stack implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

/// The codec chosen for a call and the payload type number used for it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NegotiatedCodec {
    pub codec: Codec,
    pub payload_type: u8,
}

/// What we can do, as input to offer/answer. Session id and version are inputs so that the
/// core never reads a clock; [`super::SdpSession`] manages the version across re-INVITEs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalMedia {
    /// Our RTP address, written in `o=` and `c=`.
    pub address: IpAddr,
    pub rtp_port: u16,
    /// Accepted codecs, in the order our own offers list them.
    pub codecs: Vec<Codec>,
    /// RFC 4733 support; the number is the payload type our *offers* use (answers reuse the
    /// offerer's). `None`: DTMF is not negotiated (in-band or SIP INFO only).
    pub telephone_event: Option<u8>,
    pub session_id: u64,
    pub session_version: u64,
    /// SRTP policy and our key; `None` is the `off` policy.
    pub srtp: Option<LocalSrtp>,
}

/// The outcome of an offer/answer exchange: everything the media layer needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Negotiated {
    /// Index of the chosen `m=` line.
    pub media_index: usize,
    pub codec: NegotiatedCodec,
    /// Payload type of telephone-event in both directions, if negotiated.
    pub telephone_event: Option<u8>,
    /// *Our* direction: whether we may send and whether we should expect to receive.
    pub direction: Direction,
    /// Where to send RTP; `None` when the peer gave `0.0.0.0`/`::` (hold: send nothing).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP: `a=rtcp` (RFC 3605) if given, else RTP port + 1. We never accept
    /// `a=rtcp-mux`, so RTCP is not multiplexed.
    pub remote_rtcp: Option<SocketAddr>,
    /// The peer's `a=ptime`, informational (we always send 20 ms).
    pub remote_ptime: Option<u32>,
    /// The keys when the stream is encrypted (SRTP with SDES).
    pub srtp: Option<SrtpKeys>,
}

/// Our answer to an offer: the negotiated result and the SDP to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub negotiated: Negotiated,
    pub sdp: SessionDescription,
}

/// Why no media session could be agreed. The engine answers an offer with 488 Not Acceptable
/// Here on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no active audio stream (audio m= line with a non-zero port)")]
    NoAudio,
    #[error("audio stream {media_index} uses transport `{proto}`; RTP/AVP(F) is supported, and RTP/SAVP(F) with SDES keys where SRTP is allowed")]
    UnsupportedTransport { media_index: usize, proto: String },
    #[error("audio stream {media_index} offers no usable SDES key (a=crypto with AES_CM_128_HMAC_SHA1_80 or _32, one inline key, no MKI)")]
    NoUsableCrypto { media_index: usize },
    #[error("audio stream {media_index} is plain RTP, and SRTP is required for this peer")]
    SrtpRequired { media_index: usize },
    #[error("the answer refused SRTP, which our offer required")]
    AnswerWithoutSrtp,
    #[error("audio stream {media_index} has no codec in common (offered: {offered:?})")]
    NoCommonCodec {
        media_index: usize,
        offered: Vec<String>,
    },
    #[error("audio stream {media_index} has no c= line, neither its own nor session-level")]
    NoConnection { media_index: usize },
    #[error("audio stream {media_index} connection address `{address}` is not a usable IP literal for our address family")]
    UnusableAddress { media_index: usize, address: String },
    #[error("answer has {answer} m= lines but the offer had {offer} (RFC 3264 §6)")]
    MediaCountMismatch { offer: usize, answer: usize },
    #[error("the answer rejected every audio stream we offered")]
    AnswerRejected,
    #[error("no offer is pending, so there is nothing to match this answer against")]
    NoPendingOffer,
}

/// `a=ptime` we always use: 20 ms, 160 G.711 samples.
pub(crate) const PTIME_MS: u32 = 20;
/// Events we receive: DTMF 0-9, *, #, A-D (RFC 4733 §3.2).
pub(crate) const EVENTS: &str = "0-15";

impl Codec {
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Recognise an `rtpmap` (or static assignment) as one of our codecs: name, 8000 Hz, mono.
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        if map.channels.is_some_and(|c| c != 1) {
            return None;
        }
        [Codec::Pcma, Codec::Pcmu]
            .into_iter()
            .find(|c| map.is(c.encoding_name(), 8000))
    }
}

impl LocalMedia {
    /// Defaults for an IVR: PCMA then PCMU, telephone-event 101, version 0.
    pub fn new(address: IpAddr, rtp_port: u16, session_id: u64) -> Self {
        LocalMedia {
            address,
            rtp_port,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            telephone_event: Some(101),
            session_id,
            session_version: 0,
            srtp: None,
        }
    }

    /// The same with SRTP `policy` and our `key` (`off` keeps no key).
    pub fn with_srtp(mut self, policy: SrtpPolicy, key: super::crypto::MasterKey) -> Self {
        self.srtp = (policy != SrtpPolicy::Off).then_some(LocalSrtp { policy, key });
        self
    }

    /// Our `a=crypto` lines for an offer: every suite, tag 1 first, all with our key.
    pub(crate) fn offered_crypto(&self) -> Vec<CryptoAttr> {
        let Some(srtp) = &self.srtp else {
            return Vec::new();
        };
        super::crypto::CryptoSuite::ALL
            .into_iter()
            .zip(1..)
            .map(|(suite, tag)| CryptoAttr {
                tag,
                suite,
                key: srtp.key.clone(),
            })
            .collect()
    }

    pub(crate) fn origin(&self) -> Origin {
        let c = Connection::from_ip(self.address);
        Origin {
            username: "svi".to_owned(),
            session_id: self.session_id.to_string(),
            session_version: self.session_version,
            net_type: c.net_type,
            addr_type: c.addr_type,
            address: c.address,
        }
    }
}

/// Answer `offer` as UAS. See the module docs for the rules.
pub fn negotiate(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<Answer, NegotiationError> {
    let mut problem = None;
    let mut chosen = None;
    for (index, media) in offer.media.iter().enumerate() {
        if media.media != MediaType::Audio || media.is_rejected() {
            continue;
        }
        match accept_stream(offer, index, media, local) {
            Ok(n) => {
                chosen = Some(n);
                break;
            }
            Err(e) => {
                problem.get_or_insert(e);
            }
        }
    }
    let negotiated = match (chosen, problem) {
        (Some(n), _) => n,
        (None, Some(e)) => return Err(e),
        (None, None) => return Err(NegotiationError::NoAudio),
    };

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == negotiated.media_index {
                answer_media(m, &negotiated, local)
            } else {
                rejected(m)
            }
        })
        .collect();
    let sdp = SessionDescription {
        origin: local.origin(),
        session_name: "-".to_owned(),
        connection: Some(Connection::from_ip(local.address)),
        bandwidths: Vec::new(),
        timings: match offer.timings.is_empty() {
            true => vec![Timing::unbounded()],
            false => offer.timings.clone(),
        },
        attributes: Vec::new(),
        media,
        other: Vec::new(),
    };
    Ok(Answer { negotiated, sdp })
}

fn accept_stream(
    offer: &SessionDescription,
    index: usize,
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<Negotiated, NegotiationError> {
    let srtp = accept_crypto(index, media, local)?;
    let codec = media
        .payload_types()
        .find_map(|pt| {
            let codec = Codec::from_rtpmap(&media.encoding_of(pt)?)?;
            local.codecs.contains(&codec).then_some(NegotiatedCodec {
                codec,
                payload_type: pt,
            })
        })
        .ok_or_else(|| NegotiationError::NoCommonCodec {
            media_index: index,
            offered: offered_encodings(media),
        })?;
    let remote = Remote::of(offer, index, media)?;
    if remote.ip.is_ipv4() != local.address.is_ipv4() {
        return Err(NegotiationError::UnusableAddress {
            media_index: index,
            address: remote.ip.to_string(),
        });
    }
    let mut offered = offer.direction_of(media);
    if remote.rtp.is_none() {
        offered = offered.restrict(Direction::SendOnly);
    }
    Ok(Negotiated {
        media_index: index,
        codec,
        telephone_event: local.telephone_event.and(telephone_event(media, None)),
        direction: offered.reversed(),
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        remote_ptime: media.ptime(),
        srtp,
    })
}

/// The SRTP keys of an offered stream under our policy (see the module docs).
fn accept_crypto(
    index: usize,
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    let secure = media.proto.is_secure_rtp();
    if !secure && !media.proto.is_plain_rtp() || secure && local.srtp.is_none() {
        return Err(NegotiationError::UnsupportedTransport {
            media_index: index,
            proto: media.proto.to_string(),
        });
    }
    let Some(ours) = &local.srtp else {
        return Ok(None);
    };
    match media.cryptos().next() {
        Some(theirs) => Ok(Some(SrtpKeys {
            suite: theirs.suite,
            local: ours.key.clone(),
            remote: theirs.key,
        })),
        None if secure => Err(NegotiationError::NoUsableCrypto { media_index: index }),
        None if ours.policy == SrtpPolicy::Required => {
            Err(NegotiationError::SrtpRequired { media_index: index })
        }
        None => Ok(None),
    }
}

/// The peer's transport addresses for one stream.
pub(crate) struct Remote {
    pub ip: IpAddr,
    /// `None` for an unspecified (hold) address.
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
}

impl Remote {
    pub(crate) fn of(
        sdp: &SessionDescription,
        index: usize,
        media: &MediaDescription,
    ) -> Result<Self, NegotiationError> {
        let conn = sdp
            .connection_of(media)
            .ok_or(NegotiationError::NoConnection { media_index: index })?;
        let ip = conn.ip().ok_or_else(|| NegotiationError::UnusableAddress {
            media_index: index,
            address: conn.address.to_string(),
        })?;
        if ip.is_unspecified() {
            return Ok(Remote {
                ip,
                rtp: None,
                rtcp: None,
            });
        }
        let rtcp = match media.rtcp() {
            Some(attr) => {
                let rtcp_ip = attr.connection.and_then(|c| c.ip()).unwrap_or(ip);
                Some(SocketAddr::new(rtcp_ip, attr.port))
            }
            None => media.port.checked_add(1).map(|p| SocketAddr::new(ip, p)),
        };
        Ok(Remote {
            ip,
            rtp: Some(SocketAddr::new(ip, media.port)),
            rtcp,
        })
    }
}

/// The payload type of `telephone-event/8000` in `media`, looking up numbers without an
/// `rtpmap` in `fallback` (the offer, when reading an answer).
pub(crate) fn telephone_event(
    media: &MediaDescription,
    fallback: Option<&MediaDescription>,
) -> Option<u8> {
    media.payload_types().find(|pt| {
        media
            .rtpmap(*pt)
            .or_else(|| fallback.and_then(|f| f.rtpmap(*pt)))
            .is_some_and(|m| m.is("telephone-event", 8000))
    })
}

fn offered_encodings(media: &MediaDescription) -> Vec<String> {
    media
        .formats
        .iter()
        .map(|f| {
            f.parse()
                .ok()
                .and_then(|pt| media.encoding_of(pt))
                .map_or_else(|| f.clone(), |m| m.encoding)
        })
        .collect()
}

/// Our accepted audio line: one codec, telephone-event, ptime, direction.
fn answer_media(
    offered: &MediaDescription,
    negotiated: &Negotiated,
    local: &LocalMedia,
) -> MediaDescription {
    // Echo the tag of the line we took, with our key (RFC 4568 section 5.1.2).
    let crypto: Vec<CryptoAttr> = negotiated
        .srtp
        .as_ref()
        .and_then(|keys| {
            let tag = offered.cryptos().next()?.tag;
            Some(CryptoAttr {
                tag,
                suite: keys.suite,
                key: keys.local.clone(),
            })
        })
        .into_iter()
        .collect();
    audio_media(
        offered.proto.clone(),
        local.rtp_port,
        &[negotiated.codec],
        negotiated.telephone_event,
        negotiated.direction,
        &crypto,
    )
}

/// An audio `m=` section as we write it, in offers and answers alike.
pub(crate) fn audio_media(
    proto: super::model::Proto,
    port: u16,
    codecs: &[NegotiatedCodec],
    telephone_event: Option<u8>,
    direction: Direction,
    crypto: &[CryptoAttr],
) -> MediaDescription {
    let mut formats: Vec<String> = codecs.iter().map(|c| c.payload_type.to_string()).collect();
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|c| {
            let map = RtpMap {
                payload_type: c.payload_type,
                encoding: c.codec.encoding_name().to_owned(),
                clock_rate: 8000,
                channels: None,
            };
            Attribute::value("rtpmap", map.to_string())
        })
        .collect();
    if let Some(pt) = telephone_event {
        formats.push(pt.to_string());
        attributes.push(Attribute::value(
            "rtpmap",
            format!("{pt} telephone-event/8000"),
        ));
        attributes.push(Attribute::value("fmtp", format!("{pt} {EVENTS}")));
    }
    attributes.push(Attribute::value("ptime", PTIME_MS.to_string()));
    attributes.push(Attribute::flag(direction.as_str()));
    attributes.extend(crypto.iter().map(CryptoAttr::attribute));
    MediaDescription {
        media: MediaType::Audio,
        port,
        port_count: None,
        proto,
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes,
        other: Vec::new(),
    }
}

/// A refused stream: port 0, same media, proto and format list (RFC 3264 §6).
pub(crate) fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: offered.media.clone(),
        port: 0,
        port_count: None,
        proto: offered.proto.clone(),
        formats: offered.formats.clone(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    }
}
