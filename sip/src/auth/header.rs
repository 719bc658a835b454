//! Typed Digest challenges and credentials, parsed from and written to header values.
//!
//! Parsing takes every Digest item of a value and ignores other schemes. Parameters are
//! matched case-insensitively, appear at most once (RFC 3261 §7.3.1), and those the model
//! does not know are kept in `other`. `algorithm` defaults to MD5 when absent (RFC 7616 §3.3);
//! an algorithm or qop we cannot compute is kept as `Other` so the client can skip that
//! challenge instead of failing the whole header.

use std::fmt;

use super::scan::{items, quote, Item, Param};
use super::AuthError;

/// The `algorithm` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    /// E.g. `SHA-512-256`: parsed, never computed.
    Other(String),
}

/// One `qop` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
    AuthInt,
    Other(String),
}

/// A `Digest` challenge (`WWW-Authenticate` / `Proxy-Authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Offered qops; empty means RFC 2069 mode (no qop, no cnonce, no nc).
    pub qop: Vec<Qop>,
    pub stale: bool,
    pub domain: Option<String>,
    pub other: Vec<Param>,
}

/// `Digest` credentials (`Authorization` / `Proxy-Authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lowercase hex, as sent.
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Qop>,
    /// Nonce count; present exactly when `qop` is.
    pub nc: Option<u32>,
    pub other: Vec<Param>,
}

/// All Digest challenges in one header value; other schemes are ignored.
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, AuthError> {
    digest_items(value)?
        .iter()
        .map(Challenge::from_item)
        .collect()
}

/// All Digest credentials in one header value; other schemes are ignored (RFC 4475 §3.3.7).
pub fn parse_credentials(value: &str) -> Result<Vec<Credentials>, AuthError> {
    digest_items(value)?
        .iter()
        .map(Credentials::from_item)
        .collect()
}

fn digest_items(value: &str) -> Result<Vec<Item>, AuthError> {
    Ok(items(value)?.into_iter().filter(Item::is_digest).collect())
}

/// The parameters of one item, checked for duplicates, consumed by name.
struct Params(Vec<Param>);

impl Params {
    fn of(item: &Item) -> Result<Self, AuthError> {
        for (i, p) in item.params.iter().enumerate() {
            if item.params.iter().skip(i + 1).any(|q| q.name == p.name) {
                return Err(AuthError::DuplicateParam {
                    param: p.name.clone(),
                });
            }
        }
        Ok(Params(item.params.clone()))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|p| p.name == name)?;
        Some(self.0.remove(at).value)
    }

    fn require(&mut self, name: &'static str) -> Result<String, AuthError> {
        self.take(name)
            .ok_or(AuthError::MissingParam { param: name })
    }
}

impl Challenge {
    fn from_item(item: &Item) -> Result<Self, AuthError> {
        let mut p = Params::of(item)?;
        Ok(Challenge {
            realm: p.require("realm")?,
            nonce: p.require("nonce")?,
            opaque: p.take("opaque"),
            algorithm: p
                .take("algorithm")
                .map_or(Algorithm::Md5, |a| Algorithm::parse(&a)),
            qop: p
                .take("qop")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|q| !q.is_empty())
                        .map(Qop::parse)
                        .collect()
                })
                .unwrap_or_default(),
            stale: p
                .take("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: p.take("domain"),
            other: p.0,
        })
    }
}

impl Credentials {
    fn from_item(item: &Item) -> Result<Self, AuthError> {
        let mut p = Params::of(item)?;
        let username = p.require("username")?;
        let realm = p.require("realm")?;
        let nonce = p.require("nonce")?;
        let uri = p.require("uri")?;
        let response = p.require("response")?;
        let algorithm = p
            .take("algorithm")
            .map_or(Algorithm::Md5, |a| Algorithm::parse(&a));
        let qop = p.take("qop").map(|q| Qop::parse(q.trim()));
        let cnonce = p.take("cnonce");
        let nc = match p.take("nc") {
            Some(nc) => Some(parse_nc(&nc)?),
            None => None,
        };
        // RFC 7616 §3.4: with a qop, cnonce and nc are mandatory.
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(AuthError::MissingParam { param: "cnonce" });
            }
            if nc.is_none() {
                return Err(AuthError::MissingParam { param: "nc" });
            }
        }
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            opaque: p.take("opaque"),
            qop,
            nc,
            other: p.0,
        })
    }
}

/// `nc` is exactly 8 hex digits (RFC 7616 §3.4).
fn parse_nc(value: &str) -> Result<u32, AuthError> {
    let invalid = || AuthError::InvalidParam {
        param: "nc",
        value: value.chars().take(16).collect(),
    };
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u32::from_str_radix(value, 16).map_err(|_| invalid())
}

impl Algorithm {
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
        .unwrap_or_else(|| Algorithm::Other(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Other(s) => s,
        }
    }

    /// Whether HA1 is re-keyed with nonce and cnonce (RFC 7616 §3.4.2).
    pub fn is_session(&self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

impl Qop {
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("auth") {
            Qop::Auth
        } else if s.eq_ignore_ascii_case("auth-int") {
            Qop::AuthInt
        } else {
            Qop::Other(s.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
            Qop::Other(s) => s,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header value, e.g. `Digest realm="x", nonce="y", algorithm=SHA-256, qop="auth"`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        )?;
        if let Some(d) = &self.domain {
            write!(f, ", domain={}", quote(d))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        write!(f, ", algorithm={}", bare_or_quoted(self.algorithm.as_str()))?;
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(Qop::as_str).collect();
            write!(f, ", qop={}", quote(&list.join(",")))?;
        }
        if self.stale {
            write!(f, ", stale=TRUE")?;
        }
        write_other(f, &self.other)
    }
}

/// The header value in RFC 3261 §22.4 order and quoting.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri)
        )?;
        if let Some(q) = &self.qop {
            write!(f, ", qop={}", bare_or_quoted(q.as_str()))?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", quote(c))?;
        }
        write!(f, ", response={}", quote(&self.response))?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        write!(f, ", algorithm={}", bare_or_quoted(self.algorithm.as_str()))?;
        write_other(f, &self.other)
    }
}

/// Known algorithm and qop names are tokens and written bare, as RFC 3261 expects; anything
/// else parsed from a peer is quoted so it cannot break the list.
fn bare_or_quoted(value: &str) -> String {
    let token = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c));
    if token {
        value.to_owned()
    } else {
        quote(value)
    }
}

fn write_other(f: &mut fmt::Formatter<'_>, other: &[Param]) -> fmt::Result {
    for p in other {
        write!(f, ", {}={}", p.name, quote(&p.value))?;
    }
    Ok(())
}
