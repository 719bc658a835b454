//! From bytes to a validated message, in two stages:
//!
//! 1. framing: start line, header lines (unfolded, RFC 3261 §7.3.1), body by Content-Length;
//! 2. validation of the start line and the core headers, each rule with its own error.
//!
//! A request that frames but fails validation comes back with its raw headers inside the
//! error, so that the transaction layer can still answer 400 (or 505) with the Via, From, To,
//! Call-ID and CSeq copied as RFC 3261 §8.2.6.2 asks.

use bytes::Bytes;

use super::header::{HeaderName, Headers};
use super::method::Method;
use super::msg::{Request, Response, SipMessage};
use super::typed::{CSeq, HeaderError};
use super::uri::{Uri, UriError};

/// Largest header section accepted (a request line plus headers); bodies are bounded by the
/// datagram or by Content-Length on streams.
pub const MAX_HEAD: usize = 64 * 1024;

/// Longest Call-ID accepted. RFC 3261 sets no limit; real ones are under 100 bytes (the
/// longest in the RFC 4475 corpus, `longreq`, has 142). A cap keeps the tables that are keyed
/// by Call-ID from holding kilobytes per entry for an attacker.
pub const MAX_CALL_ID: usize = 256;

/// Most Via entries accepted: more than Max-Forwards' usual 70 hops means a loop or an
/// attack (`longreq` has 34).
pub const MAX_VIAS: usize = 70;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty message")]
    Empty,
    #[error("no blank line ends the header section")]
    Unterminated,
    #[error("header section is not UTF-8")]
    NotUtf8,
    #[error("header section larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed start line `{0}` (expected `METHOD SP Request-URI SP SIP/2.0`)")]
    BadRequestLine(String),
    #[error("malformed status line `{0}`")]
    BadStatusLine(String),
    #[error("unsupported SIP version `{0}`")]
    BadVersion(String),
    #[error("invalid method `{0}`")]
    BadMethod(String),
    #[error("invalid Request-URI: {0}")]
    BadUri(#[from] UriError),
    #[error("malformed header line {line}: `{text}`")]
    BadHeaderLine { line: usize, text: String },
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} appears more than once but allows a single value")]
    DuplicateHeader(String),
    #[error(transparent)]
    BadHeader(#[from] HeaderError),
    #[error("CSeq method {cseq} differs from the request method {method}")]
    CSeqMismatch { method: String, cseq: String },
    #[error("Content-Length {declared} is larger than the {available} body bytes received")]
    BodyTooShort { declared: usize, available: usize },
    #[error("invalid Call-ID `{0}`")]
    BadCallId(String),
    #[error("Call-ID of {0} bytes is longer than {MAX_CALL_ID}")]
    CallIdTooLong(usize),
    #[error("{0} Via entries are more than {MAX_VIAS}")]
    TooManyVias(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The raw headers when the start line said "request": enough to answer with an error.
    pub request_headers: Option<Headers>,
}

impl ParseError {
    fn bare(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            request_headers: None,
        }
    }

    /// The status code a UAS answers with (505 for a version, 400 for anything else).
    pub fn status(&self) -> u16 {
        match self.kind {
            ParseErrorKind::BadVersion(_) => 505,
            _ => 400,
        }
    }
}

struct Head<'a> {
    start: &'a str,
    headers: Headers,
    body_offset: usize,
}

fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    // CRLF CRLF, or (leniently) LF LF.
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn skip_leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

fn parse_head(buf: &[u8]) -> Result<Head<'_>, ParseError> {
    let (head_end, body_offset) = find_head_end(buf).ok_or_else(|| {
        ParseError::bare(if buf.len() > MAX_HEAD {
            ParseErrorKind::HeadTooLarge
        } else {
            ParseErrorKind::Unterminated
        })
    })?;
    if head_end > MAX_HEAD {
        return Err(ParseError::bare(ParseErrorKind::HeadTooLarge));
    }
    let text = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ParseError::bare(ParseErrorKind::NotUtf8))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or("");
    let mut headers = Headers::new();
    let mut current: Option<(String, String)> = None;
    let mut bad_line = None;
    for (i, line) in lines.enumerate() {
        if line.starts_with([' ', '\t']) {
            match current.as_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => bad_line = bad_line.or(Some((i + 2, line.to_string()))),
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            headers.push(HeaderName::parse(&n), v.trim().to_string());
        }
        let parsed = line.find(':').and_then(|c| {
            let name = line[..c].trim_end_matches([' ', '\t']);
            (!name.is_empty() && name.chars().all(super::scan::is_token_char))
                .then(|| (name.to_string(), line[c + 1..].trim().to_string()))
        });
        match parsed {
            Some(h) => current = Some(h),
            None => bad_line = bad_line.or(Some((i + 2, line.to_string()))),
        }
    }
    if let Some((n, v)) = current.take() {
        headers.push(HeaderName::parse(&n), v.trim().to_string());
    }
    if let Some((line, text)) = bad_line {
        let kind = ParseErrorKind::BadHeaderLine {
            line,
            text: text.chars().take(120).collect(),
        };
        let is_request = !start.starts_with("SIP/");
        return Err(ParseError {
            kind,
            request_headers: is_request.then_some(headers),
        });
    }
    Ok(Head {
        start,
        headers,
        body_offset,
    })
}

fn check_version(v: &str) -> Result<(), ParseErrorKind> {
    let upper = v.to_ascii_uppercase();
    if upper == "SIP/2.0" {
        return Ok(());
    }
    let looks_like_version = upper
        .strip_prefix("SIP/")
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        });
    Err(if looks_like_version {
        ParseErrorKind::BadVersion(v.to_string())
    } else {
        ParseErrorKind::BadRequestLine(v.to_string())
    })
}

fn check_common(headers: &Headers) -> Result<CSeq, ParseErrorKind> {
    for h in headers.iter() {
        if h.name.is_single_valued() && headers.count(&h.name) > 1 {
            return Err(ParseErrorKind::DuplicateHeader(h.name.to_string()));
        }
    }
    let call_id = headers
        .call_id()
        .ok_or(ParseErrorKind::MissingHeader("Call-ID"))?;
    if call_id.len() > MAX_CALL_ID {
        return Err(ParseErrorKind::CallIdTooLong(call_id.len()));
    }
    if call_id.is_empty() || call_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ParseErrorKind::BadCallId(call_id.to_string()));
    }
    if headers.get(&HeaderName::Via).is_none() {
        return Err(ParseErrorKind::MissingHeader("Via"));
    }
    let vias = headers.vias()?.len();
    if vias > MAX_VIAS {
        return Err(ParseErrorKind::TooManyVias(vias));
    }
    if headers.get(&HeaderName::From).is_none() {
        return Err(ParseErrorKind::MissingHeader("From"));
    }
    headers.from_addr()?;
    if headers.get(&HeaderName::To).is_none() {
        return Err(ParseErrorKind::MissingHeader("To"));
    }
    headers.to_addr()?;
    if headers.get(&HeaderName::CSeq).is_none() {
        return Err(ParseErrorKind::MissingHeader("CSeq"));
    }
    let cseq = headers.cseq()?;
    headers.content_length()?;
    headers.max_forwards()?;
    headers.expires()?;
    headers.contacts()?;
    for name in [HeaderName::Route, HeaderName::RecordRoute] {
        headers.name_addrs(&name)?;
    }
    Ok(cseq)
}

fn body_of(buf: &[u8], body_offset: usize, headers: &Headers) -> Result<Bytes, ParseErrorKind> {
    let available = buf.len().saturating_sub(body_offset);
    let declared = headers.content_length()?.unwrap_or(available);
    if declared > available {
        return Err(ParseErrorKind::BodyTooShort {
            declared,
            available,
        });
    }
    // Octets past Content-Length are ignored (RFC 4475 §3.1.1.8).
    Ok(Bytes::copy_from_slice(
        &buf[body_offset..body_offset + declared],
    ))
}

fn build_request(
    start: &str,
    headers: Headers,
    buf: &[u8],
    body_offset: usize,
) -> Result<Request, ParseErrorKind> {
    let parts: Vec<&str> = start.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(ParseErrorKind::BadRequestLine(
            start.chars().take(120).collect(),
        ));
    };
    check_version(version)?;
    let method =
        Method::parse(method).ok_or_else(|| ParseErrorKind::BadMethod(method.to_string()))?;
    let uri = Uri::parse(uri)?;
    let cseq = check_common(&headers)?;
    if cseq.method != method {
        return Err(ParseErrorKind::CSeqMismatch {
            method: method.to_string(),
            cseq: cseq.method.to_string(),
        });
    }
    let body = body_of(buf, body_offset, &headers)?;
    Ok(Request {
        method,
        uri,
        headers,
        body,
    })
}

fn build_response(
    start: &str,
    headers: Headers,
    buf: &[u8],
    body_offset: usize,
) -> Result<Response, ParseErrorKind> {
    let bad = || ParseErrorKind::BadStatusLine(start.chars().take(120).collect());
    let mut parts = start.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    check_version(version).map_err(|_| bad())?;
    let code = parts.next().unwrap_or("");
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=699).contains(&status) {
        return Err(bad());
    }
    let reason = parts.next().unwrap_or("").to_string();
    check_common(&headers)?;
    let body = body_of(buf, body_offset, &headers)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// Parses one message from a UDP datagram. Without Content-Length, the rest of the datagram
/// is the body; with it, the body is that long and trailing octets are ignored.
pub fn parse_datagram(buf: &[u8]) -> Result<SipMessage, ParseError> {
    let buf = &buf[skip_leading_crlf(buf)..];
    if buf.is_empty() {
        return Err(ParseError::bare(ParseErrorKind::Empty));
    }
    let head = parse_head(buf)?;
    if head.start.starts_with("SIP/") {
        build_response(head.start, head.headers, buf, head.body_offset)
            .map(SipMessage::Response)
            .map_err(ParseError::bare)
    } else {
        let start = head.start;
        let headers = head.headers.clone();
        build_request(start, head.headers, buf, head.body_offset)
            .map(SipMessage::Request)
            .map_err(|kind| ParseError {
                kind,
                request_headers: Some(headers),
            })
    }
}

/// For stream transports: the length of the first complete message in `buf` (leading CRLF
/// keep-alives included), or `None` when more bytes are needed. Content-Length is mandatory
/// on streams (RFC 3261 §18.3); its absence counts as zero.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    Ok(stream_message_len(buf)?.filter(|total| buf.len() >= *total))
}

/// For stream transports: the length the first message in `buf` will have (leading CRLF
/// keep-alives included) as soon as its head is complete, whether or not its body has
/// arrived; `None` while the head is incomplete.
pub fn stream_message_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let skip = skip_leading_crlf(buf);
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok(None);
    }
    let Some((_, body_offset)) = find_head_end(rest) else {
        return if rest.len() > MAX_HEAD {
            Err(ParseError::bare(ParseErrorKind::HeadTooLarge))
        } else {
            Ok(None)
        };
    };
    let head = parse_head(rest)?;
    let len = head
        .headers
        .content_length()
        .map_err(|e| ParseError::bare(e.into()))?
        .unwrap_or(0);
    Ok(Some(skip + body_offset + len))
}
