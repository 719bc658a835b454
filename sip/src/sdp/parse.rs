//! SDP text to [`SessionDescription`].
//!
//! One pass over the lines, no backtracking, no indexing: a line is split on its first `=`,
//! then dispatched on its type letter to the session or to the current `m=` section. Strict
//! where RFC 8866 §5 is normative and interop does not suffer (`v=0` first, one `o=` and one
//! `s=`, field counts and numbers in `o=`/`c=`/`m=`/`t=`/`b=`); lenient elsewhere: LF or CRLF,
//! blank lines skipped, optional lines in any order, unknown type letters and malformed
//! attributes kept verbatim rather than rejected (RFC 8866 §5 allows ignoring them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::model::{
    AddrType, Address, Attribute, Bandwidth, Connection, MediaDescription, MediaType, Origin,
    Proto, SdpLine, SessionDescription, Timing,
};

/// Why an SDP body was refused. `line` is 1-based in the input; `text` is the offending line,
/// cut to 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("SDP body is empty")]
    Empty,
    #[error("SDP has no `{kind}=` line, which RFC 8866 §5 makes mandatory")]
    Missing { kind: char },
    #[error("SDP line {line} `{text}`: not of the form `<letter>=<value>`")]
    NotTypeValue { line: usize, text: String },
    #[error("SDP line {line} `{text}`: the first line must be `v=0`")]
    BadVersion { line: usize, text: String },
    #[error("SDP line {line} `{text}`: a second `{kind}=` line at session level")]
    Duplicate {
        line: usize,
        text: String,
        kind: char,
    },
    #[error("SDP line {line} `{text}`: `{kind}=` is session-level but appears after an `m=` line")]
    Misplaced {
        line: usize,
        text: String,
        kind: char,
    },
    #[error("SDP line {line} `{text}`: `{kind}=` needs {expected} fields, found {found}")]
    FieldCount {
        line: usize,
        text: String,
        kind: char,
        expected: &'static str,
        found: usize,
    },
    #[error("SDP line {line} `{text}`: bad {field} `{value}`")]
    BadField {
        line: usize,
        text: String,
        field: &'static str,
        value: String,
    },
}

/// A field-level problem, before the line it belongs to is known.
#[derive(Debug)]
pub(crate) struct FieldError {
    field: &'static str,
    value: String,
}

fn field_err(field: &'static str, value: &str) -> FieldError {
    FieldError {
        field,
        value: snippet(value),
    }
}

fn snippet(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The line being parsed, for error reporting.
struct Line<'a> {
    number: usize,
    text: &'a str,
}

impl Line<'_> {
    fn bad(&self, e: FieldError) -> SdpError {
        SdpError::BadField {
            line: self.number,
            text: snippet(self.text),
            field: e.field,
            value: e.value,
        }
    }

    fn count(&self, kind: char, expected: &'static str, found: usize) -> SdpError {
        SdpError::FieldCount {
            line: self.number,
            text: snippet(self.text),
            kind,
            expected,
            found,
        }
    }
}

impl SessionDescription {
    /// Parse an SDP body with CRLF or LF line endings.
    pub fn parse(input: &str) -> Result<Self, SdpError> {
        parse(input)
    }

    /// Parse an SDP body given as bytes (as carried in a SIP message body).
    pub fn parse_bytes(input: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(input).map_err(|e| SdpError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        parse(text)
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, SdpError> {
        parse(s)
    }
}

fn parse(input: &str) -> Result<SessionDescription, SdpError> {
    let mut lines = input
        .split('\n')
        .enumerate()
        .map(|(i, l)| Line {
            number: i + 1,
            text: l.strip_suffix('\r').unwrap_or(l),
        })
        .filter(|l| !l.text.trim().is_empty());

    let first = lines.next().ok_or(SdpError::Empty)?;
    if first.text.trim_end() != "v=0" {
        return Err(SdpError::BadVersion {
            line: first.number,
            text: snippet(first.text),
        });
    }

    let mut origin = None;
    let mut session_name = None;
    let mut session = SessionDescription {
        origin: placeholder_origin(),
        session_name: String::new(),
        connection: None,
        bandwidths: Vec::new(),
        timings: Vec::new(),
        attributes: Vec::new(),
        media: Vec::new(),
        other: Vec::new(),
    };

    for line in lines {
        let (kind, value) = split_line(&line)?;
        // A CR or NUL inside a line would be copied into anything we echo back.
        if line.text.contains(['\r', '\0']) {
            return Err(line.bad(field_err("character (CR or NUL inside a line)", line.text)));
        }
        if kind == 'm' {
            session.media.push(parse_media(&line, value)?);
            continue;
        }
        if let Some(media) = session.media.last_mut() {
            media_line(media, &line, kind, value)?;
            continue;
        }
        let dup = || SdpError::Duplicate {
            line: line.number,
            text: snippet(line.text),
            kind,
        };
        match kind {
            'v' => return Err(dup()),
            'o' if origin.is_some() => return Err(dup()),
            'o' => origin = Some(parse_origin(&line, value)?),
            's' if session_name.is_some() => return Err(dup()),
            's' => session_name = Some(value.to_owned()),
            'c' if session.connection.is_some() => return Err(dup()),
            'c' => session.connection = Some(parse_connection(&line, value)?),
            'b' => session.bandwidths.push(parse_bandwidth(&line, value)?),
            't' => session.timings.push(parse_timing(&line, value)?),
            'r' => match session.timings.last_mut() {
                Some(t) => t.repeats.push(value.to_owned()),
                None => session.other.push(other(kind, value)),
            },
            'a' => session.attributes.push(parse_attribute(&line, value)?),
            _ => session.other.push(other(kind, value)),
        }
    }

    session.origin = origin.ok_or(SdpError::Missing { kind: 'o' })?;
    session.session_name = session_name.ok_or(SdpError::Missing { kind: 's' })?;
    Ok(session)
}

fn placeholder_origin() -> Origin {
    Origin {
        username: String::new(),
        session_id: String::new(),
        session_version: 0,
        net_type: String::new(),
        addr_type: AddrType::Ip4,
        address: Address::Host(String::new()),
    }
}

fn other(kind: char, value: &str) -> SdpLine {
    SdpLine {
        kind,
        value: value.to_owned(),
    }
}

fn split_line<'a>(line: &Line<'a>) -> Result<(char, &'a str), SdpError> {
    let mut chars = line.text.chars();
    match (chars.next(), chars.next()) {
        (Some(kind), Some('=')) if kind.is_ascii_alphabetic() => Ok((kind, chars.as_str())),
        _ => Err(SdpError::NotTypeValue {
            line: line.number,
            text: snippet(line.text),
        }),
    }
}

fn media_line(
    media: &mut MediaDescription,
    line: &Line<'_>,
    kind: char,
    value: &str,
) -> Result<(), SdpError> {
    match kind {
        'v' | 'o' | 's' | 't' => {
            return Err(SdpError::Misplaced {
                line: line.number,
                text: snippet(line.text),
                kind,
            })
        }
        // Several c= lines in one media section are legal for multicast layering; the first
        // is the one unicast telephony uses, the rest are kept verbatim.
        'c' if media.connection.is_none() => {
            media.connection = Some(parse_connection(line, value)?)
        }
        'b' => media.bandwidths.push(parse_bandwidth(line, value)?),
        'a' => media.attributes.push(parse_attribute(line, value)?),
        _ => media.other.push(other(kind, value)),
    }
    Ok(())
}

fn parse_origin(line: &Line<'_>, value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = fields[..] else {
        return Err(line.count('o', "6", fields.len()));
    };
    let session_version = version
        .parse()
        .map_err(|_| line.bad(field_err("o= sess-version", version)))?;
    let addr_type = AddrType::from_token(addr_type);
    let (address, suffix) = parse_address(&addr_type, address).map_err(|e| line.bad(e))?;
    if suffix.is_some() {
        return Err(line.bad(field_err("o= unicast-address", value)));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version,
        net_type: net_type.to_owned(),
        addr_type,
        address,
    })
}

fn parse_connection(line: &Line<'_>, value: &str) -> Result<Connection, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [net_type, addr_type, address] = fields[..] else {
        return Err(line.count('c', "3", fields.len()));
    };
    connection_fields(net_type, addr_type, address).map_err(|e| line.bad(e))
}

/// The three fields of `c=` (also used by `a=rtcp`).
pub(crate) fn connection_fields(
    net_type: &str,
    addr_type: &str,
    address: &str,
) -> Result<Connection, FieldError> {
    let addr_type = AddrType::from_token(addr_type);
    let (address, multicast) = parse_address(&addr_type, address)?;
    Ok(Connection {
        net_type: net_type.to_owned(),
        addr_type,
        address,
        multicast,
    })
}

/// An address with an optional multicast `/ttl[/count]` suffix. The literal must match the
/// declared type (RFC 5118 §4.5 bodies declare IP6 for IPv6 literals, without brackets).
fn parse_address(
    addr_type: &AddrType,
    text: &str,
) -> Result<(Address, Option<String>), FieldError> {
    let (host, suffix) = match text.split_once('/') {
        Some((h, s)) => (h, Some(s.to_owned())),
        None => (text, None),
    };
    let address = match addr_type {
        AddrType::Ip4 => match Ipv4Addr::from_str(host) {
            Ok(ip) => Address::Ip(IpAddr::V4(ip)),
            // All digits and dots but not an IPv4 literal: a typo, not a host name.
            Err(_) if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                return Err(field_err("IP4 address", text))
            }
            Err(_) if is_host_name(host) => Address::Host(host.to_owned()),
            Err(_) => return Err(field_err("IP4 address", text)),
        },
        AddrType::Ip6 => match Ipv6Addr::from_str(host) {
            Ok(ip) => Address::Ip(IpAddr::V6(ip)),
            Err(_) if !host.contains(':') && is_host_name(host) && !is_ipv4ish(host) => {
                Address::Host(host.to_owned())
            }
            Err(_) => return Err(field_err("IP6 address", text)),
        },
        AddrType::Other(_) if !host.is_empty() => Address::Host(host.to_owned()),
        AddrType::Other(_) => return Err(field_err("address", text)),
    };
    Ok((address, suffix))
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

fn is_ipv4ish(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn parse_bandwidth(line: &Line<'_>, value: &str) -> Result<Bandwidth, SdpError> {
    let bad = || line.bad(field_err("b= bandwidth", value));
    let (kind, bw) = value.split_once(':').ok_or_else(bad)?;
    let kind = kind.trim();
    if kind.is_empty() {
        return Err(bad());
    }
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value: bw.trim().parse().map_err(|_| bad())?,
    })
}

fn parse_timing(line: &Line<'_>, value: &str) -> Result<Timing, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [start, stop] = fields[..] else {
        return Err(line.count('t', "2", fields.len()));
    };
    let num = |f: &'static str, v: &str| v.parse().map_err(|_| line.bad(field_err(f, v)));
    Ok(Timing {
        start: num("t= start-time", start)?,
        stop: num("t= stop-time", stop)?,
        repeats: Vec::new(),
    })
}

fn parse_attribute(line: &Line<'_>, value: &str) -> Result<Attribute, SdpError> {
    let (name, value) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (value, None),
    };
    // Names are tokens, but a name with spaces is kept verbatim rather than refused.
    if name.is_empty() {
        return Err(line.bad(field_err("a= attribute name", name)));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(line: &Line<'_>, value: &str) -> Result<MediaDescription, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        let found = value.split_ascii_whitespace().count();
        return Err(line.count('m', "at least 3", found));
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (p, Some(n)),
        None => (port, None),
    };
    let port = port
        .parse()
        .map_err(|_| line.bad(field_err("m= port", port)))?;
    let port_count = match port_count {
        Some(n) => Some(
            n.parse()
                .map_err(|_| line.bad(field_err("m= number of ports", n)))?,
        ),
        None => None,
    };
    Ok(MediaDescription {
        media: MediaType::from_token(media),
        port,
        port_count,
        proto: Proto::from_token(proto),
        // RFC 8866 requires at least one format, but port-0 lines without any are seen in the
        // wild; an empty list simply matches no codec.
        formats: fields.map(str::to_owned).collect(),
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other: Vec::new(),
    })
}
