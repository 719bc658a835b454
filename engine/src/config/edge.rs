//! The SIP edge's settings in `[sip]`: TLS (`[sip.tls]`), the TCP/TLS connection limits
//! (`tcp_*`), and how agents' phones authenticate (`digest_algorithms`, `auth_*`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sip::auth::{Algorithm, BanPolicy};
use sip::transport::StreamLimits;

use super::{ConfigError, Ctx};
use crate::agents::AgentAuth;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    listen: Option<String>,
    certificate: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    server_ca: Option<String>,
}

/// `[sip.tls]`. Without `certificate` and `key`, a self-signed certificate is made in the
/// data directory at first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Default: the SIP listen address with port 5061.
    pub listen: SocketAddr,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Clients must present a certificate signed by one of these (PEM bundle).
    pub client_ca: Option<PathBuf>,
    /// Trust anchors for servers the engine connects to; default: the system's.
    pub server_ca: Option<PathBuf>,
}

pub(super) fn parse_tls(
    cx: &Ctx<'_>,
    raw: RawTls,
    sip_listen: SocketAddr,
) -> Result<TlsSettings, ConfigError> {
    let listen = match raw.listen.as_deref() {
        None if sip_listen.port() == 0 => SocketAddr::new(sip_listen.ip(), 0),
        None => SocketAddr::new(sip_listen.ip(), 5061),
        Some(s) => s.parse().map_err(|_| {
            cx.err(
                "sip.tls.listen",
                format!("`{s}` is not IP:PORT (e.g. 127.0.0.1:5061)"),
            )
        })?,
    };
    if raw.certificate.is_some() != raw.key.is_some() {
        return Err(cx.err(
            "sip.tls",
            "`certificate` and `key` go together (give both, or neither for a self-signed one)",
        ));
    }
    let path = |p: Option<String>| p.map(|p| cx.path(&p));
    Ok(TlsSettings {
        listen,
        certificate: path(raw.certificate),
        key: path(raw.key),
        client_ca: path(raw.client_ca),
        server_ca: path(raw.server_ca),
    })
}

pub(super) struct RawStreamLimits {
    pub(super) max_connections: Option<usize>,
    pub(super) max_per_source: Option<usize>,
    pub(super) head_timeout_secs: Option<u64>,
    pub(super) idle_timeout_secs: Option<u64>,
}

pub(super) fn parse_stream_limits(
    cx: &Ctx<'_>,
    raw: RawStreamLimits,
) -> Result<StreamLimits, ConfigError> {
    let d = StreamLimits::default();
    let max_connections = raw.max_connections.unwrap_or(d.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(cx.err(
            "sip.tcp_max_connections",
            format!("{max_connections} is outside 1..=1000000"),
        ));
    }
    let max_per_source = raw.max_per_source.unwrap_or(d.max_per_source);
    if !(1..=max_connections).contains(&max_per_source) {
        return Err(cx.err(
            "sip.tcp_max_per_source",
            format!("{max_per_source} is outside 1..=sip.tcp_max_connections ({max_connections})"),
        ));
    }
    let secs =
        |key: &str, v: Option<u64>, default: Duration, range: std::ops::RangeInclusive<u64>| {
            let v = v.unwrap_or(default.as_secs());
            if range.contains(&v) {
                Ok(Duration::from_secs(v))
            } else {
                Err(cx.err(
                    key,
                    format!("{v} is outside {}..={} seconds", range.start(), range.end()),
                ))
            }
        };
    Ok(StreamLimits {
        max_connections,
        max_per_source,
        head_timeout: secs(
            "sip.tcp_head_timeout_secs",
            raw.head_timeout_secs,
            d.head_timeout,
            1..=300,
        )?,
        idle_timeout: secs(
            "sip.tcp_idle_timeout_secs",
            raw.idle_timeout_secs,
            d.idle_timeout,
            10..=86_400,
        )?,
        ..d
    })
}

pub(super) struct RawAgentAuth {
    pub(super) digest_algorithms: Option<Vec<String>>,
    pub(super) max_failures: Option<u32>,
    pub(super) window_secs: Option<u64>,
    pub(super) ban_secs: Option<u64>,
    pub(super) max_ban_secs: Option<u64>,
}

pub(super) fn parse_agent_auth(cx: &Ctx<'_>, raw: RawAgentAuth) -> Result<AgentAuth, ConfigError> {
    let d = AgentAuth::default();
    let algorithms = match raw.digest_algorithms {
        None => d.algorithms,
        Some(names) => {
            let mut algorithms = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let a = match name.to_ascii_uppercase().as_str() {
                    "SHA-256" => Algorithm::Sha256,
                    "MD5" => Algorithm::Md5,
                    _ => {
                        return Err(cx.err(
                            &format!("sip.digest_algorithms[{i}]"),
                            format!("`{name}` is not \"SHA-256\" or \"MD5\""),
                        ))
                    }
                };
                if algorithms.contains(&a) {
                    return Err(cx.err(
                        &format!("sip.digest_algorithms[{i}]"),
                        format!("`{name}` is given twice"),
                    ));
                }
                algorithms.push(a);
            }
            if algorithms.is_empty() {
                return Err(cx.err(
                    "sip.digest_algorithms",
                    "at least one is needed: [\"SHA-256\", \"MD5\"], or [\"MD5\"] for old phones",
                ));
            }
            algorithms
        }
    };
    let b = d.bans;
    let max_failures = raw.max_failures.unwrap_or(b.max_failures);
    if !(1..=1000).contains(&max_failures) {
        return Err(cx.err(
            "sip.auth_max_failures",
            format!("{max_failures} is outside 1..=1000"),
        ));
    }
    let secs = |key: &str, v: Option<u64>, default: Duration| {
        let v = v.unwrap_or(default.as_secs());
        if (1..=7 * 86_400).contains(&v) {
            Ok(Duration::from_secs(v))
        } else {
            Err(cx.err(key, format!("{v} is outside 1..=604800 seconds")))
        }
    };
    let first_ban = secs("sip.auth_ban_secs", raw.ban_secs, b.first_ban)?;
    let max_ban = secs("sip.auth_max_ban_secs", raw.max_ban_secs, b.max_ban)?;
    if max_ban < first_ban {
        return Err(cx.err("sip.auth_max_ban_secs", "is shorter than sip.auth_ban_secs"));
    }
    Ok(AgentAuth {
        algorithms,
        bans: BanPolicy {
            max_failures,
            window: secs("sip.auth_window_secs", raw.window_secs, b.window)?,
            first_ban,
            max_ban,
        },
        trusted_proxies: d.trusted_proxies,
    })
}
