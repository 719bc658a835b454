//! The typed session description.
//!
//! Fields that the offer/answer logic reads (`o=`, `s=`, `c=`, `b=`, `t=`, `a=`, `m=`) are typed;
//! everything else (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, unknown letters) is kept as an
//! [`SdpLine`] so that a body survives a parse/serialise round trip. Attributes are stored as
//! name + optional raw value and interpreted lazily by accessors: a malformed `a=rtpmap` from a
//! sloppy peer then costs us one unrecognised codec, not the whole call.

use std::net::IpAddr;

use super::attr::{Direction, Fmtp, RtcpAttr, RtpMap};
use super::crypto::CryptoAttr;

/// A parsed SDP body. Only `v=0` exists, so the version is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; may be empty (RFC 8866 wants `s= ` or `s=-`, but empty ones are seen in the wild).
    pub session_name: String,
    /// Session-level `c=`, the default for media without their own.
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines. Empty when the body had none; `t=0 0` is written then.
    pub timings: Vec<Timing>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
    /// Session-level lines kept verbatim (`i=`, `u=`, `e=`, `p=`, `z=`, `k=`, unknown letters).
    pub other: Vec<SdpLine>,
}

/// A line the model does not interpret, kept in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpLine {
    pub kind: char,
    pub value: String,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: it is an opaque identifier and some stacks exceed 64 bits.
    pub session_id: String,
    /// Numeric: RFC 3264 §8 compares and increments it.
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: AddrType,
    pub address: Address,
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: AddrType,
    pub address: Address,
    /// The `ttl[/count]` (IP4) or `count` (IP6) suffix of a multicast address, verbatim.
    pub multicast: Option<String>,
}

/// Address type of `o=` and `c=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrType {
    Ip4,
    Ip6,
    Other(String),
}

/// An address in `o=`/`c=`: a literal IP, or a host name (allowed by the grammar, and common
/// in `o=`; the offer/answer code needs a literal in `c=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Ip(IpAddr),
    Host(String),
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub kind: String,
    pub value: u64,
}

/// `t=<start> <stop>` and the `r=` lines following it, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<String>,
}

impl Timing {
    /// `t=0 0`: a session not bounded in time, the only timing SIP sessions use (RFC 3264
    /// §5). What we build states it, so that it equals what the writer sends and the parser
    /// reads back (a saved SDP session compares equal after a round trip).
    pub fn unbounded() -> Timing {
        Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }
    }
}

/// `a=<name>[:<value>]`; the value is kept raw and interpreted by accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: MediaType,
    /// 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    pub proto: Proto,
    /// Formats as written: RTP payload type numbers for RTP profiles, tokens otherwise.
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub attributes: Vec<Attribute>,
    /// Media-level `i=`, `k=` and unknown lines, verbatim.
    pub other: Vec<SdpLine>,
}

/// The `<media>` field of `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaType {
    Audio,
    Video,
    Text,
    Application,
    Message,
    Image,
    Other(String),
}

/// The `<proto>` field of `m=`. Recognised case-insensitively; others kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proto {
    RtpAvp,
    RtpAvpf,
    RtpSavp,
    RtpSavpf,
    Udptl,
    Other(String),
}

impl SessionDescription {
    /// Session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The direction that applies to `media`: its own attribute, else the session's, else
    /// `sendrecv` (RFC 8866 §6.7).
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The `c=` that applies to `media`: its own, else the session's.
    pub fn connection_of<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// First session-level attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.attributes, name)
    }
}

impl MediaDescription {
    /// First media-level attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.attributes, name)
    }

    /// Values of every attribute called `name`, in order.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(name))
            .filter_map(|a| a.value.as_deref())
    }

    /// Well-formed `rtpmap` attributes; malformed ones are skipped.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attribute_values("rtpmap").filter_map(RtpMap::parse)
    }

    /// The `rtpmap` for payload type `pt`, if one is given.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == pt)
    }

    /// What payload type `pt` means here: its `rtpmap`, else the RFC 3551 static assignment.
    pub fn encoding_of(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmap(pt).or_else(|| RtpMap::static_type(pt))
    }

    /// Well-formed `fmtp` attributes.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp> + '_ {
        self.attribute_values("fmtp").filter_map(Fmtp::parse)
    }

    /// The `fmtp` parameters for `format`.
    pub fn fmtp(&self, format: &str) -> Option<Fmtp> {
        self.fmtps().find(|f| f.format == format)
    }

    /// `a=ptime` in milliseconds (fractions, allowed by RFC 8866, are truncated).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_values("ptime").find_map(parse_ms)
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute_values("maxptime").find_map(parse_ms)
    }

    /// Media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// `a=rtcp` (RFC 3605), if present and well formed.
    pub fn rtcp(&self) -> Option<RtcpAttr> {
        self.attribute_values("rtcp").find_map(RtcpAttr::parse)
    }

    /// Usable `a=crypto` lines (RFC 4568), in order; others are skipped.
    pub fn cryptos(&self) -> impl Iterator<Item = CryptoAttr> + '_ {
        self.attribute_values("crypto")
            .filter_map(CryptoAttr::parse)
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// Formats that are valid RTP payload type numbers (0..=127), in offer order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    /// Port 0: the stream is rejected (in an answer) or disabled (in an offer).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }
}

fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

fn direction_in(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_attribute(&a.name))
}

fn parse_ms(v: &str) -> Option<u32> {
    let int = v.trim().split('.').next()?;
    int.parse().ok()
}

impl Attribute {
    /// A property attribute such as `a=sendrecv`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute such as `a=ptime:20`.
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

impl Connection {
    /// A unicast `IN IP4`/`IN IP6` connection for `ip`.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_owned(),
            addr_type: AddrType::of(ip),
            address: Address::Ip(ip),
            multicast: None,
        }
    }

    /// The literal IP address, if the address is not a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.address {
            Address::Ip(ip) => Some(ip),
            Address::Host(_) => None,
        }
    }

    /// `0.0.0.0` (RFC 2543 hold, RFC 3264 §8.4: send nothing to the peer) or `::`.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl AddrType {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub(crate) fn from_token(s: &str) -> Self {
        if s.eq_ignore_ascii_case("IP4") {
            AddrType::Ip4
        } else if s.eq_ignore_ascii_case("IP6") {
            AddrType::Ip6
        } else {
            AddrType::Other(s.to_owned())
        }
    }
}

impl MediaType {
    pub(crate) fn from_token(s: &str) -> Self {
        match s {
            "audio" => MediaType::Audio,
            "video" => MediaType::Video,
            "text" => MediaType::Text,
            "application" => MediaType::Application,
            "message" => MediaType::Message,
            "image" => MediaType::Image,
            other => MediaType::Other(other.to_owned()),
        }
    }
}

impl Proto {
    pub(crate) fn from_token(s: &str) -> Self {
        const KNOWN: [(&str, Proto); 5] = [
            ("RTP/AVP", Proto::RtpAvp),
            ("RTP/AVPF", Proto::RtpAvpf),
            ("RTP/SAVP", Proto::RtpSavp),
            ("RTP/SAVPF", Proto::RtpSavpf),
            ("udptl", Proto::Udptl),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map_or_else(|| Proto::Other(s.to_owned()), |(_, p)| p)
    }

    /// Plain (unencrypted) RTP profiles.
    pub fn is_plain_rtp(&self) -> bool {
        matches!(self, Proto::RtpAvp | Proto::RtpAvpf)
    }

    /// Secure RTP profiles (RFC 3711), keyed here with SDES.
    pub fn is_secure_rtp(&self) -> bool {
        matches!(self, Proto::RtpSavp | Proto::RtpSavpf)
    }
}
