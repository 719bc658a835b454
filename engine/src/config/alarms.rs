//! `[alarms]` and `[alarms.mail]`: where alarms go, how often, and the thresholds of the
//! HA pair's alarms (see `alarm`).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Ctx};
use crate::alarm::{AlarmsConfig, MailConfig, MailTls};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarms {
    webhook: Option<String>,
    min_interval_secs: Option<u64>,
    replication_lag: Option<u64>,
    peer_down_secs: Option<u64>,
    #[serde(default)]
    certificates: Vec<String>,
    certificate_warning_days: Option<u32>,
    mail: Option<RawMail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    server: String,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    from: String,
    to: Vec<String>,
    ca_file: Option<String>,
    timeout_secs: Option<u64>,
}

pub(super) fn parse(cx: &Ctx<'_>, raw: RawAlarms) -> Result<AlarmsConfig, ConfigError> {
    let d = AlarmsConfig::default();
    if let Some(url) = &raw.webhook {
        crate::alarm::Webhook::check_url(url)
            .map_err(|e| cx.err("alarms.webhook", e.to_string()))?;
    }
    let secs = |key: &str, v: Option<u64>, default: Duration, max: u64| match v {
        Some(0) => Err(cx.err(key, "must be at least 1")),
        Some(n) if n > max => Err(cx.err(key, format!("at most {max}"))),
        Some(n) => Ok(Duration::from_secs(n)),
        None => Ok(default),
    };
    Ok(AlarmsConfig {
        webhook: raw.webhook,
        mail: raw.mail.map(|m| mail(cx, m)).transpose()?,
        min_interval: secs(
            "alarms.min_interval_secs",
            raw.min_interval_secs,
            d.min_interval,
            86_400,
        )?,
        replication_lag: match raw.replication_lag {
            Some(0) => return Err(cx.err("alarms.replication_lag", "must be at least 1 entry")),
            Some(n) => n,
            None => d.replication_lag,
        },
        peer_down_after: secs(
            "alarms.peer_down_secs",
            raw.peer_down_secs,
            d.peer_down_after,
            3600,
        )?,
        certificates: raw.certificates.iter().map(|c| cx.path(c)).collect(),
        certificate_warning_days: match raw.certificate_warning_days {
            Some(0) => return Err(cx.err("alarms.certificate_warning_days", "must be at least 1")),
            Some(n) => n,
            None => d.certificate_warning_days,
        },
    })
}

fn is_loopback(server: &str) -> bool {
    server == "localhost"
        || server
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn mail(cx: &Ctx<'_>, m: RawMail) -> Result<MailConfig, ConfigError> {
    let tls = match m.tls.as_deref().unwrap_or("starttls") {
        "starttls" => MailTls::StartTls,
        "tls" => MailTls::Tls,
        "none" => MailTls::None,
        other => {
            return Err(cx.err(
                "alarms.mail.tls",
                format!("`{other}` is not \"starttls\", \"tls\" or \"none\""),
            ))
        }
    };
    if m.server.trim().is_empty() {
        return Err(cx.err("alarms.mail.server", "empty"));
    }
    let has_password = m.password.is_some() || m.password_env.is_some();
    if tls == MailTls::None {
        if !is_loopback(&m.server) {
            return Err(cx.err(
                "alarms.mail.tls",
                "\"none\" only for a relay on the loopback address: use \"starttls\" or \"tls\"",
            ));
        }
        if has_password {
            return Err(cx.err(
                "alarms.mail.tls",
                "a password is never sent without encryption: use \"starttls\" or \"tls\"",
            ));
        }
    }
    if m.password.is_some() && m.password_env.is_some() {
        return Err(cx.err(
            "alarms.mail",
            "give at most one of `password` and `password_env`",
        ));
    }
    if has_password != m.username.is_some() {
        return Err(cx.err("alarms.mail", "`username` and a password go together"));
    }
    crate::alarm::mail::check_address(&m.from)
        .map_err(|e| cx.err("alarms.mail.from", e.to_string()))?;
    if m.to.is_empty() {
        return Err(cx.err("alarms.mail.to", "at least one recipient"));
    }
    for (i, a) in m.to.iter().enumerate() {
        crate::alarm::mail::check_address(a)
            .map_err(|e| cx.err(&format!("alarms.mail.to[{i}]"), e.to_string()))?;
    }
    Ok(MailConfig {
        port: m.port.unwrap_or(match tls {
            MailTls::Tls => 465,
            MailTls::StartTls => 587,
            MailTls::None => 25,
        }),
        server: m.server,
        tls,
        username: m.username,
        password: m.password,
        password_env: m.password_env,
        from: m.from,
        to: m.to,
        ca_file: m.ca_file.map(|c| cx.path(&c)),
        timeout: Duration::from_secs(m.timeout_secs.unwrap_or(20).clamp(1, 300)),
    })
}
