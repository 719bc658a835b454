//! `[admin]`: the admin REST API's listener, certificate and session timeouts. HTTPS is on
//! by default on loopback; plain HTTP exists only as a redirect, and only when configured.
//! `timezone` is the zone the admin pages show times in and cut days ("today") in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    enabled: Option<bool>,
    listen: Option<String>,
    /// PEM certificate chain and private key; both or neither (then a self-signed pair is
    /// made in the data directory at first start).
    cert: Option<String>,
    key: Option<String>,
    /// A plain-HTTP port that only redirects to HTTPS.
    http_redirect: Option<String>,
    session_idle_minutes: Option<u64>,
    session_max_hours: Option<u64>,
    /// An IANA zone name (`Europe/Paris`), as a flow's `timezone`.
    timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Configured certificate and key files (`None`: self-signed in the data directory).
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub http_redirect: Option<SocketAddr>,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// The zone the admin pages show times in and start their days ("today") at.
    pub timezone: Tz,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// The admin pages' zone when `[admin] timezone` is not set.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Paris;

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: DEFAULT_LISTEN.parse().expect("a constant address"),
            tls_files: None,
            http_redirect: None,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            timezone: DEFAULT_TIMEZONE,
        }
    }
}

pub(super) fn parse(cx: &Ctx<'_>, raw: RawAdmin) -> Result<AdminConfig, ConfigError> {
    let d = AdminConfig::default();
    let addr = |key: &str, v: &str| {
        v.parse::<SocketAddr>()
            .map_err(|_| cx.err(key, format!("`{v}` is not IP:PORT")))
    };
    let listen = match &raw.listen {
        Some(v) => addr("admin.listen", v)?,
        None => d.listen,
    };
    let http_redirect = raw
        .http_redirect
        .as_deref()
        .map(|v| addr("admin.http_redirect", v))
        .transpose()?;
    if http_redirect.is_some_and(|h| h == listen) {
        return Err(cx.err("admin.http_redirect", "must differ from admin.listen"));
    }
    let tls_files = match (&raw.cert, &raw.key) {
        (Some(c), Some(k)) => Some((cx.path(c), cx.path(k))),
        (None, None) => None,
        _ => {
            return Err(cx.err(
                "admin.cert",
                "give both `cert` and `key`, or neither (a self-signed pair is made)",
            ))
        }
    };
    let idle = raw.session_idle_minutes.unwrap_or(30);
    if !(1..=24 * 60).contains(&idle) {
        return Err(cx.err(
            "admin.session_idle_minutes",
            format!("{idle} is outside 1..=1440"),
        ));
    }
    let max = raw.session_max_hours.unwrap_or(12);
    if !(1..=7 * 24).contains(&max) {
        return Err(cx.err(
            "admin.session_max_hours",
            format!("{max} is outside 1..=168"),
        ));
    }
    let timezone = match raw.timezone.as_deref() {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            cx.err(
                "admin.timezone",
                format!("`{name}` is not an IANA time zone name (e.g. \"Europe/Paris\")"),
            )
        })?,
        None => DEFAULT_TIMEZONE,
    };
    Ok(AdminConfig {
        enabled: raw.enabled.unwrap_or(true),
        listen,
        tls_files,
        http_redirect,
        session_idle: Duration::from_secs(idle * 60),
        session_max: Duration::from_secs(max * 3600),
        timezone,
    })
}
