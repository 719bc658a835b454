//! URIs: `sip:`/`sips:` parsed into parts (RFC 3261 §19.1, §25.1, RFC 5118 for IPv6),
//! `tel:` (RFC 3966) kept with its number, any other scheme kept opaque so that the UAS
//! core can answer 416 rather than the parser answering 400 (RFC 4475 §3.3.2).

use std::fmt;

use super::scan::Scanner;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// `tel:` number with its parameters, as written after the colon.
    Tel(String),
    /// Any other absolute URI: scheme (lower-cased) and the rest as written.
    Other {
        scheme: String,
        rest: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// User part as written (escapes kept); may contain `;` (RFC 4475 §3.1.1.9).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host as written; IPv6 references keep their brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// `?headers` part as written, without the `?`. Never applied by the engine.
    pub headers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URI `{uri}`: {reason}")]
pub struct UriError {
    pub uri: String,
    pub reason: &'static str,
}

fn err(uri: &str, reason: &'static str) -> UriError {
    UriError {
        uri: uri.chars().take(200).collect(),
        reason,
    }
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/".contains(c)
}

fn is_password_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,".contains(c)
}

fn is_param_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%[]/:&+$".contains(c)
}

fn is_header_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%[]/?:+$=&".contains(c)
}

/// Validates a host: a domain name, an IPv4 address, or a bracketed IPv6 reference.
pub fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return false;
        };
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('-')
        && !host.starts_with('.')
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 reference.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    if !valid_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let colon = s.find(':').ok_or_else(|| err(s, "no scheme"))?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(err(s, "bad scheme"));
        }
        if rest.is_empty()
            || rest
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
        {
            return Err(err(
                s,
                "empty, or contains whitespace, quotes or angle brackets",
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "sip" => SipUri::parse_rest(s, rest, false).map(Uri::Sip),
            "sips" => SipUri::parse_rest(s, rest, true).map(Uri::Sip),
            "tel" => Ok(Uri::Tel(rest.to_string())),
            other => Ok(Uri::Other {
                scheme: other.to_string(),
                rest: rest.to_string(),
            }),
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The user part (SIP) or number (tel), which selects the call flow.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip(u) => u.user.as_deref(),
            Uri::Tel(t) => Some(t.split(';').next().unwrap_or(t)),
            Uri::Other { .. } => None,
        }
    }
}

impl SipUri {
    fn parse_rest(whole: &str, rest: &str, secure: bool) -> Result<SipUri, UriError> {
        // '@' is never allowed unescaped in host, parameters or headers, so the first one
        // ends the userinfo.
        let (userinfo, hostpart) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !u.chars().all(is_user_char) {
                    return Err(err(whole, "bad user part"));
                }
                if let Some(p) = p {
                    if !p.chars().all(is_password_char) {
                        return Err(err(whole, "bad password"));
                    }
                }
                (Some(u.to_string()), p.map(str::to_string))
            }
        };
        let (hostport, tail) = match hostpart.find([';', '?']) {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) =
            split_host_port(hostport).ok_or_else(|| err(whole, "bad host or port"))?;
        let (param_str, headers) = match tail.find('?') {
            Some(i) => (&tail[..i], Some(&tail[i + 1..])),
            None => (tail, None),
        };
        let mut params = Vec::new();
        for p in param_str.split(';').skip(1) {
            let (name, value) = match p.find('=') {
                Some(i) => (&p[..i], Some(&p[i + 1..])),
                None => (p, None),
            };
            if name.is_empty() || !name.chars().all(is_param_char) {
                return Err(err(whole, "bad URI parameter"));
            }
            if let Some(v) = value {
                if v.is_empty() || !v.chars().all(is_param_char) {
                    return Err(err(whole, "bad URI parameter value"));
                }
            }
            params.push((name.to_string(), value.map(str::to_string)));
        }
        if let Some(h) = headers {
            if h.is_empty() || !h.chars().all(is_header_char) {
                return Err(err(whole, "bad URI headers"));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host: host.to_string(),
            port,
            params,
            headers: headers.map(str::to_string),
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.param("transport")
            .flatten()
            .map(|t| t.to_ascii_lowercase())
    }

    /// Host without IPv6 brackets, for socket-address resolution.
    pub fn host_unbracketed(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => write!(f, "tel:{t}"),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

/// Reads a URI from a scanner up to the first character that ends it in a header context.
/// Inside `<>` it reads to the `>`; bare (addr-spec), it stops at `;`, `,` or whitespace
/// because RFC 3261 §20.10 hands those to the header's own parameters.
pub(crate) fn scan_uri(s: &mut Scanner<'_>, bracketed: bool) -> Result<Uri, UriError> {
    let raw = if bracketed {
        s.take_while(|c| c != '>')
    } else {
        s.take_while(|c| !matches!(c, ';' | ',' | ' ' | '\t' | '?'))
    };
    Uri::parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn user_with_semicolon_and_escape() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
    }

    #[test]
    fn ipv6_and_ports() {
        let u = sip("sip:[2001:db8::10]:5070");
        assert_eq!((u.host.as_str(), u.port), ("[2001:db8::10]", Some(5070)));
        assert!(Uri::parse("sip:[2001:db8::10:5070").is_err());
        let u = sip("sip:user@[2001:db8::9:255]");
        assert_eq!(u.port, None);
        assert!(Uri::parse("sip:host:99999").is_err());
    }

    #[test]
    fn params_headers_and_roundtrip() {
        let s = "sip:services.example.com;lr;unknownwith=value;unknown-no-value";
        let u = sip(s);
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.to_string(), s);
        let u = sip("sip:user@example.com?Route=%3Csip:example.com%3E");
        assert_eq!(u.headers.as_deref(), Some("Route=%3Csip:example.com%3E"));
    }

    #[test]
    fn other_schemes_are_kept() {
        assert!(matches!(
            Uri::parse("tel:+358-555-1234567;postd=pp22"),
            Ok(Uri::Tel(_))
        ));
        let u = Uri::parse("nobodyknowsthisscheme:totallyopaquecontent").expect("opaque");
        assert!(matches!(u, Uri::Other { .. }));
        assert!(Uri::parse("<sip:user@example.com>").is_err());
        assert!(Uri::parse("sip:user@example.com; lr").is_err());
    }
}
