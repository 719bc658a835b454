//! `[alarm_callout]`: which access-control alarms make the engine call the on-duty numbers,
//! and how. Without this section no call is ever placed for an alarm (fail closed).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, ConnectorConfig, Ctx};
use crate::connectors::parse_duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarmCallout {
    source: String,
    flow: String,
    numbers: Vec<String>,
    caller_id: Option<String>,
    ring_timeout: Option<String>,
    poll_every: Option<String>,
    rounds: Option<u32>,
    retry_after: Option<String>,
    webhook_secret: Option<String>,
}

/// The alarm call-out (see `crate::callout`).
#[derive(Clone, PartialEq, Eq)]
pub struct AlarmCalloutConfig {
    /// The data source polled for the oldest open alarm (its record's `alarm` is the id).
    pub source: String,
    /// The flow the answered call runs.
    pub flow: String,
    /// The on-duty numbers, called in this order until one acknowledges.
    pub numbers: Vec<String>,
    /// Our identity in the calls' From.
    pub caller_id: String,
    pub ring_timeout: Duration,
    pub poll_every: Duration,
    /// How many times the whole list is called for one alarm.
    pub rounds: u32,
    /// The pause between two rounds.
    pub retry_after: Duration,
    /// The secret shared with the access-control system for pushed alarms, as written
    /// (`enc:v1:...` or `${VARIABLE}`; resolved at start). None: no webhook (fail closed).
    pub webhook_secret: Option<String>,
}

/// Never prints the numbers (personal data).
impl std::fmt::Debug for AlarmCalloutConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmCalloutConfig")
            .field("source", &self.source)
            .field("flow", &self.flow)
            .field("numbers", &self.numbers.len())
            .field("caller_id", &self.caller_id)
            .field("ring_timeout", &self.ring_timeout)
            .field("poll_every", &self.poll_every)
            .field("rounds", &self.rounds)
            .field("retry_after", &self.retry_after)
            .field("webhook", &self.webhook_secret.is_some())
            .finish()
    }
}

pub(super) fn parse(
    cx: &Ctx<'_>,
    raw: Option<RawAlarmCallout>,
    data_sources: &[ConnectorConfig],
) -> Result<Option<AlarmCalloutConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let key = |k: &str| format!("alarm_callout.{k}");
    if !data_sources.iter().any(|d| d.name == raw.source) {
        return Err(cx.err(
            &key("source"),
            format!("`{}` is not a [[data_sources]] name", raw.source),
        ));
    }
    if raw.flow.is_empty() {
        return Err(cx.err(&key("flow"), "a flow name is required"));
    }
    if raw.numbers.is_empty() || raw.numbers.iter().any(|n| n.trim().is_empty()) {
        return Err(cx.err(&key("numbers"), "at least one number, none empty"));
    }
    let duration = |k: &str, text: Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(t) => parse_duration(&t)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| cx.err(&key(k), format!("`{t}` is not a duration (500ms, 20s, 5m)"))),
    };
    let caller_id = raw.caller_id.unwrap_or_else(|| "svi".into());
    let usable = |c: char| c.is_ascii_alphanumeric() || "+-._".contains(c);
    if caller_id.is_empty() || !caller_id.chars().all(usable) {
        return Err(cx.err(
            &key("caller_id"),
            format!("`{caller_id}`: letters, digits and `+-._` only"),
        ));
    }
    if let Some(text) = &raw.webhook_secret {
        let env = text.starts_with("${") && text.ends_with('}') && text.len() > 3;
        if !env && !crate::secrets::is_encrypted(text) {
            return Err(cx.err(
                &key("webhook_secret"),
                "is a secret: write it encrypted (`svi secret encrypt`, an `enc:v1:` value) or as `${VARIABLE}`, not in clear",
            ));
        }
    }
    let rounds = raw.rounds.unwrap_or(1);
    if rounds == 0 {
        return Err(cx.err(&key("rounds"), "at least 1"));
    }
    Ok(Some(AlarmCalloutConfig {
        source: raw.source,
        flow: raw.flow,
        numbers: raw.numbers,
        caller_id,
        ring_timeout: duration("ring_timeout", raw.ring_timeout, Duration::from_secs(30))?,
        poll_every: duration("poll_every", raw.poll_every, Duration::from_secs(10))?,
        rounds,
        retry_after: duration("retry_after", raw.retry_after, Duration::from_secs(60))?,
        webhook_secret: raw.webhook_secret,
    }))
}
