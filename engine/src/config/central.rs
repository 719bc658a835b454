//! `[central]`: the export of this pair's call records, ACD events and recording index to a
//! shared PostgreSQL (`crate::central`). Off unless the section is present.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCentral {
    url: Option<String>,
    password: Option<String>,
    pair: Option<String>,
    batch: Option<u32>,
    poll_ms: Option<u64>,
}

/// `[central]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralConfig {
    /// `postgres://user@host:port/database` (a password in the URL is refused: use
    /// `password`).
    pub url: String,
    /// `enc:v1:...` (`svi secret encrypt`) or `${VAR}`, resolved when the export starts.
    pub password: Option<String>,
    /// This pair's name, in every row it exports (both nodes of a pair give the same).
    pub pair: String,
    /// Rows per upsert transaction.
    pub batch: u32,
    /// How often the active node looks for new rows when it has caught up.
    pub poll: Duration,
}

impl CentralConfig {
    pub const DEFAULT_BATCH: u32 = 500;
    pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
}

pub(super) fn parse(
    cx: &Ctx<'_>,
    raw: Option<RawCentral>,
) -> Result<Option<CentralConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let url = raw.url.ok_or_else(|| {
        cx.err(
            "central.url",
            "required (postgres://user@host:port/database)",
        )
    })?;
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(cx.err("central.url", "not a postgres:// URL"));
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(cx.err("central.url", "not a postgres:// URL"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority
        .rsplit_once('@')
        .is_some_and(|(user_info, _)| user_info.contains(':'))
    {
        return Err(cx.err(
            "central.url",
            "holds a password: give it as central.password (enc:v1:... or ${VAR})",
        ));
    }
    if let Some(p) = &raw.password {
        let env = p.starts_with("${") && p.ends_with('}') && p.len() > 3;
        if !crate::secrets::is_encrypted(p) && !env {
            return Err(cx.err(
                "central.password",
                "must be encrypted (svi secret encrypt) or ${VAR}, never in clear",
            ));
        }
    }
    let pair = raw.pair.ok_or_else(|| {
        cx.err(
            "central.pair",
            "required: this pair's name in the central rows",
        )
    })?;
    if pair.is_empty()
        || pair.len() > 64
        || !pair
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(cx.err("central.pair", "1 to 64 letters, digits, '-', '_' or '.'"));
    }
    let batch = match raw.batch {
        None => CentralConfig::DEFAULT_BATCH,
        Some(n @ 1..=10_000) => n,
        Some(_) => return Err(cx.err("central.batch", "from 1 to 10000 rows")),
    };
    let poll = match raw.poll_ms {
        None => CentralConfig::DEFAULT_POLL,
        Some(ms @ 10..=600_000) => Duration::from_millis(ms),
        Some(_) => return Err(cx.err("central.poll_ms", "from 10 to 600000")),
    };
    Ok(Some(CentralConfig {
        url,
        password: raw.password,
        pair,
        batch,
        poll,
    }))
}
