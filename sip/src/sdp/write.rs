//! [`SessionDescription`] to SDP text: CRLF line endings, RFC 8866 §5 line order.
//!
//! Lines kept verbatim by the parser are placed where the grammar wants their type letter, so
//! the output is valid even if the input had optional lines out of order. A description without
//! `t=` lines gets `t=0 0`, the only timing that makes sense for a SIP session (RFC 3264 §5).

use std::fmt::{self, Display, Formatter};

use super::model::{
    AddrType, Address, Attribute, Bandwidth, Connection, MediaDescription, MediaType, Origin,
    Proto, SdpLine, SessionDescription,
};

/// Session-level letters that come between `s=` and `c=`.
const BEFORE_CONNECTION: [char; 4] = ['i', 'u', 'e', 'p'];
/// Session-level letters that come after the timing lines.
const AFTER_TIMING: [char; 2] = ['z', 'k'];

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        write!(f, "s={}\r\n", self.session_name)?;
        write_other(f, &self.other, |k| BEFORE_CONNECTION.contains(&k))?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if self.timings.is_empty() {
            write!(f, "t=0 0\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        write_other(f, &self.other, |k| AFTER_TIMING.contains(&k))?;
        write_other(f, &self.other, |k| {
            !BEFORE_CONNECTION.contains(&k) && !AFTER_TIMING.contains(&k)
        })?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Display for MediaDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        write!(f, "\r\n")?;
        write_other(f, &self.other, |k| k == 'i')?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        write_other(f, &self.other, |k| k != 'i')?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

fn write_other(
    f: &mut Formatter<'_>,
    lines: &[SdpLine],
    wanted: impl Fn(char) -> bool,
) -> fmt::Result {
    for line in lines.iter().filter(|l| wanted(l.kind)) {
        write!(f, "{}={}\r\n", line.kind, line.value)?;
    }
    Ok(())
}

impl Display for Origin {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)?;
        match &self.multicast {
            Some(m) => write!(f, "/{m}"),
            None => Ok(()),
        }
    }
}

impl Display for AddrType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AddrType::Ip4 => f.write_str("IP4"),
            AddrType::Ip6 => f.write_str("IP6"),
            AddrType::Other(s) => f.write_str(s),
        }
    }
}

impl Display for Address {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Host(h) => f.write_str(h),
        }
    }
}

impl Display for Bandwidth {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

impl Display for MediaType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Text => "text",
            MediaType::Application => "application",
            MediaType::Message => "message",
            MediaType::Image => "image",
            MediaType::Other(s) => s,
        })
    }
}

impl Display for Proto {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::Udptl => "udptl",
            Proto::Other(s) => s,
        })
    }
}
