//! Typed views of the attributes telephony reads: direction, `rtpmap`, `fmtp`, `rtcp`.
//!
//! They are computed on demand from the raw [`super::model::Attribute`]s, so a malformed
//! value only makes its accessor return `None`.

use std::fmt;

use super::model::Connection;

/// Media direction attribute (RFC 8866 §6.7). Absent means `sendrecv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=fmtp:<format> <parameters>`, parameters raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    pub params: String,
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    pub port: u16,
    pub connection: Option<Connection>,
}

impl Direction {
    /// The direction an answerer mirrors (RFC 3264 §6.1): sendonly ↔ recvonly.
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Both constraints at once: what is allowed by `self` and by `other`.
    pub fn restrict(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn from_attribute(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl RtpMap {
    /// Parse the value of an `a=rtpmap` attribute.
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.trim().split_once(|c: char| c.is_ascii_whitespace())?;
        let payload_type: u8 = pt.parse().ok().filter(|pt| *pt <= 127)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?.to_owned();
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels,
        })
    }

    /// The RFC 3551 §6 static audio assignments that matter to telephony.
    pub fn static_type(pt: u8) -> Option<Self> {
        let (encoding, clock_rate) = match pt {
            0 => ("PCMU", 8000),
            3 => ("GSM", 8000),
            4 => ("G723", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            13 => ("CN", 8000),
            18 => ("G729", 8000),
            _ => return None,
        };
        Some(RtpMap {
            payload_type: pt,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: None,
        })
    }

    /// Whether this describes `name`/`clock_rate` (encoding names are case-insensitive).
    pub fn is(&self, name: &str, clock_rate: u32) -> bool {
        self.encoding.eq_ignore_ascii_case(name) && self.clock_rate == clock_rate
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        match self.channels {
            Some(c) => write!(f, "/{c}"),
            None => Ok(()),
        }
    }
}

impl Fmtp {
    pub fn parse(value: &str) -> Option<Self> {
        let (format, params) = value.trim().split_once(|c: char| c.is_ascii_whitespace())?;
        Some(Fmtp {
            format: format.to_owned(),
            params: params.trim().to_owned(),
        })
    }
}

impl RtcpAttr {
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split_ascii_whitespace();
        let port = fields.next()?.parse().ok()?;
        let connection = match (fields.next(), fields.next(), fields.next()) {
            (Some(net), Some(addr_type), Some(addr)) => {
                Some(super::parse::connection_fields(net, addr_type, addr).ok()?)
            }
            (None, _, _) => None,
            _ => return None,
        };
        Some(RtcpAttr { port, connection })
    }
}
