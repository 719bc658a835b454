//! Typed views of the core headers: Via, From/To/Contact/Route (name-addr), CSeq, and the
//! numeric ones. Each parser follows RFC 3261 §25.1 with its LWS rules and refuses what the
//! torture tests (RFC 4475 §3.1.2) call invalid, with a reason naming the header.

use std::fmt;

use super::header::{HeaderName, Headers};
use super::method::Method;
use super::scan::{split_commas, Scanner};
use super::uri::{scan_uri, split_host_port, Uri};

/// The RFC 3261 branch prefix that marks a transaction id unique across all time.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {header} header: {reason}")]
pub struct HeaderError {
    pub header: String,
    pub reason: String,
}

fn herr(header: &HeaderName, reason: impl Into<String>) -> HeaderError {
    HeaderError {
        header: header.to_string(),
        reason: reason.into(),
    }
}

pub type Params = Vec<(String, Option<String>)>;

fn find_param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport (`UDP`, `TCP`, `TLS`, or an unknown token, tolerated).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }

    pub fn received(&self) -> Option<&str> {
        find_param(&self.params, "received").flatten()
    }

    /// `Some(None)` for a bare `;rport` (RFC 3581 request), `Some(Some(port))` once filled.
    pub fn rport(&self) -> Option<Option<&str>> {
        find_param(&self.params, "rport")
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }

    /// Parses one header value, which may hold several comma-separated Vias.
    pub fn parse_list(value: &str) -> Result<Vec<Via>, HeaderError> {
        let name = HeaderName::Via;
        let mut out = Vec::new();
        for part in split_commas(value) {
            let mut s = Scanner::new(part);
            let proto = s
                .token()
                .ok_or_else(|| herr(&name, "missing protocol name"))?;
            if !s.eat_sep('/') {
                return Err(herr(&name, "missing '/' after protocol name"));
            }
            let version = s
                .token()
                .ok_or_else(|| herr(&name, "missing protocol version"))?;
            if !s.eat_sep('/') {
                return Err(herr(&name, "missing '/' before transport"));
            }
            let transport = s.token().ok_or_else(|| herr(&name, "missing transport"))?;
            if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
                return Err(herr(
                    &name,
                    format!("unsupported protocol {proto}/{version}"),
                ));
            }
            if !s.skip_ws() {
                return Err(herr(&name, "missing whitespace before sent-by"));
            }
            let sent_by = s.take_while(|c| !matches!(c, ';' | ' ' | '\t'));
            let (host, port) = split_host_port(sent_by)
                .ok_or_else(|| herr(&name, format!("bad sent-by `{sent_by}`")))?;
            let params = s.params().map_err(|r| herr(&name, r))?;
            s.skip_ws();
            if !s.is_empty() {
                return Err(herr(&name, format!("unexpected `{}`", s.rest())));
            }
            out.push(Via {
                transport: transport.to_ascii_uppercase(),
                host: host.to_string(),
                port,
                params,
            });
        }
        Ok(out)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quoted strings keep their quotes).
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    pub fn with_tag(mut self, tag: &str) -> Self {
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        self.params.push(("tag".into(), Some(tag.into())));
        self
    }

    pub fn parse(header: &HeaderName, value: &str) -> Result<NameAddr, HeaderError> {
        let mut s = Scanner::new(value.trim());
        let display = if s.peek() == Some('"') {
            let q = s
                .quoted()
                .ok_or_else(|| herr(header, "unbalanced quotes in display name"))?;
            s.skip_ws();
            Some(format!("\"{q}\""))
        } else {
            // Before a '<', a run of tokens is the display name; without '<' it is an addr-spec.
            let look = s.rest();
            match look.find('<') {
                Some(i) => {
                    let dn = look[..i].trim();
                    if !dn
                        .chars()
                        .all(|c| super::scan::is_token_char(c) || c == ' ' || c == '\t')
                    {
                        return Err(herr(header, format!("display name `{dn}` must be quoted")));
                    }
                    s.take_while(|c| c != '<');
                    (!dn.is_empty()).then(|| dn.to_string())
                }
                None => None,
            }
        };
        let uri = if s.eat('<') {
            let uri = scan_uri(&mut s, true).map_err(|e| herr(header, e.to_string()))?;
            if !s.eat('>') {
                return Err(herr(header, "missing '>'"));
            }
            uri
        } else {
            if display.is_some() {
                return Err(herr(header, "display name without <URI>"));
            }
            scan_uri(&mut s, false).map_err(|e| herr(header, e.to_string()))?
        };
        let params = s.params().map_err(|r| herr(header, r))?;
        s.skip_ws();
        if !s.is_empty() {
            return Err(herr(header, format!("unexpected `{}`", s.rest())));
        }
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// Parses a comma-separated list (Contact, Route, Record-Route).
    pub fn parse_list(header: &HeaderName, value: &str) -> Result<Vec<NameAddr>, HeaderError> {
        split_commas(value)
            .into_iter()
            .map(|v| NameAddr::parse(header, v))
            .collect()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let name = HeaderName::CSeq;
        let mut s = Scanner::new(value.trim());
        let digits = s.take_while(|c| c.is_ascii_digit());
        // RFC 3261 §8.1.1.5: the sequence number must be less than 2**31.
        let seq = digits
            .parse::<u64>()
            .ok()
            .filter(|n| *n < (1 << 31))
            .ok_or_else(|| {
                herr(
                    &name,
                    format!("sequence number `{digits}` is not below 2^31"),
                )
            })?;
        if !s.skip_ws() {
            return Err(herr(&name, "missing method"));
        }
        let method = s
            .token()
            .and_then(Method::parse)
            .ok_or_else(|| herr(&name, "bad method"))?;
        s.skip_ws();
        if !s.is_empty() {
            return Err(herr(&name, "trailing characters"));
        }
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

fn parse_number(header: &HeaderName, value: &str, max: u64) -> Result<u64, HeaderError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 20 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(herr(header, format!("`{v}` is not a number")));
    }
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| herr(header, format!("{v} is larger than {max}")))
}

/// Typed accessors over the raw header list. Each returns `Ok(None)` when absent.
impl Headers {
    fn single(&self, name: &HeaderName) -> Option<&str> {
        self.get(name)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.single(&HeaderName::CallId)
    }

    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(
            self.single(&HeaderName::CSeq)
                .ok_or_else(|| herr(&HeaderName::CSeq, "missing"))?,
        )
    }

    pub fn from_addr(&self) -> Result<NameAddr, HeaderError> {
        let n = HeaderName::From;
        NameAddr::parse(&n, self.single(&n).ok_or_else(|| herr(&n, "missing"))?)
    }

    pub fn to_addr(&self) -> Result<NameAddr, HeaderError> {
        let n = HeaderName::To;
        NameAddr::parse(&n, self.single(&n).ok_or_else(|| herr(&n, "missing"))?)
    }

    /// Every Via, top first, across all Via header lines.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all(&HeaderName::Via) {
            out.extend(Via::parse_list(v)?);
        }
        Ok(out)
    }

    pub fn top_via(&self) -> Result<Via, HeaderError> {
        self.vias()?
            .into_iter()
            .next()
            .ok_or_else(|| herr(&HeaderName::Via, "missing"))
    }

    pub fn name_addrs(&self, name: &HeaderName) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            if v.trim() == "*" && *name == HeaderName::Contact {
                continue;
            }
            out.extend(NameAddr::parse_list(name, v)?);
        }
        Ok(out)
    }

    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs(&HeaderName::Contact)
    }

    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        let n = HeaderName::MaxForwards;
        self.single(&n)
            .map(|v| parse_number(&n, v, 255).map(|x| x as u8))
            .transpose()
    }

    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        let n = HeaderName::Expires;
        self.single(&n)
            .map(|v| parse_number(&n, v, u32::MAX as u64).map(|x| x as u32))
            .transpose()
    }

    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        let n = HeaderName::ContentLength;
        self.single(&n)
            .map(|v| parse_number(&n, v, u32::MAX as u64).map(|x| x as usize))
            .transpose()
    }

    /// Media type, lower-cased, without parameters (`application/sdp`).
    pub fn content_type(&self) -> Option<String> {
        self.single(&HeaderName::ContentType).map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Tokens of a comma-list header such as Require, Supported, Allow, Accept.
    pub fn tokens(&self, name: &HeaderName) -> Vec<String> {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_lists() {
        let v = Via::parse_list("SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239".replace('\n', "").as_str()).expect("vias");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport, "TCP");
        assert_eq!(v[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(v[1].host, "192.168.255.111");
        assert_eq!(v[1].branch(), Some("z9hG4bK30239"));
    }

    #[test]
    fn via_rejects_empty_params_and_ipv6_received() {
        assert!(Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        let v = Via::parse_list(
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        )
        .expect("via");
        assert_eq!(v[0].received(), Some("2001:db8::9:255"));
        assert_eq!(v[0].port, None);
    }

    #[test]
    fn name_addr_forms() {
        let n = HeaderName::From;
        let a = NameAddr::parse(
            &n,
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .expect("from");
        assert_eq!(a.tag(), Some("98asjd8"));
        let a = NameAddr::parse(
            &n,
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
        )
        .expect("addr-spec");
        assert_eq!(a.tag(), Some("1918181833n"));
        let a = NameAddr::parse(&n, "Joe User <sip:joe@example.org>;tag=1").expect("tokens");
        assert_eq!(a.display.as_deref(), Some("Joe User"));
        assert!(NameAddr::parse(&n, "Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse(&n, r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        assert!(NameAddr::parse(&n, r#""Mr. J. User <sip:j.user@example.com>"#).is_err());
        assert!(NameAddr::parse(&n, r#""Joe" <sip:joe@example.org>;;;;"#).is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("0009 INVITE").expect("cseq").seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }
}
