//! Access-control actions done for a person (`open_door`, `block_badge`): the caller's PIN
//! is authenticated in the same call, attempts are rate limited per caller and target, and
//! every attempt is audited.
//!
//! One call, in order:
//! 1. the parameters `pin`, `caller` and the target (`door` / `badge`) must be present
//!    (`call`, the call's id, is recorded when given);
//! 2. the rate limit: at most `rate_max` attempts (default 3) per caller and target within
//!    `rate_per` (default 10m), counted whether the PIN was right or not, so a caller
//!    cannot try PINs on a door;
//! 3. the PIN request (`holder_by_pin` by default): an unknown PIN is refused;
//! 4. the audit entry `requested`, written before acting: if the audit log cannot take
//!    it, nothing is opened or blocked (fail closed);
//! 5. the operation's request, for the authenticated holder (`{holder}` in its templates;
//!    `block_badge` blocks the holder's own badge unless the flow gives `badge`);
//! 6. the audit entry of the outcome: `done`, `denied` or `failed`.
//!
//! Refusals are errors (`refused: ...`) so that a flow without a `not_found` branch never
//! tells a caller a door opened when it did not.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::time::Instant;

use super::Operation;
use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::connectors::kinds::BuildContext;
use crate::connectors::rest::RestClient;
use crate::connectors::rest_op::RestOp;
use crate::connectors::settings::Settings;
use crate::connectors::template::param_text;
use crate::connectors::typed::{self};
use crate::connectors::{CallError, CallFuture, CallResult, Connector, ConnectorError, Record};

pub(super) struct PinAction {
    name: String,
    op: &'static Operation,
    client: Arc<RestClient>,
    request: RestOp,
    pin_request: RestOp,
    audit: AuditLog,
    limiter: Mutex<RateLimiter>,
}

impl PinAction {
    pub(super) fn build(
        s: &Settings<'_>,
        cx: &BuildContext<'_>,
        op: &'static Operation,
        client: Arc<RestClient>,
        request: RestOp,
        pin_request: RestOp,
    ) -> Result<PinAction, ConnectorError> {
        let audit = cx.audit.clone().ok_or_else(|| {
            s.err(
                "operation",
                format!("`{}` is audited, and this engine has no audit log", op.name),
            )
        })?;
        let max = s.integer("rate_max", 1, 100, 3)? as usize;
        let per = s.duration("rate_per")?.unwrap_or(Duration::from_secs(600));
        Ok(PinAction {
            name: s.name().to_string(),
            op,
            client,
            request,
            pin_request,
            audit,
            limiter: Mutex::new(RateLimiter::new(max, per)),
        })
    }

    /// `door` for open_door, `badge` for block_badge (which defaults to the holder's own).
    fn target_param(&self) -> &'static str {
        if self.op.name == "open_door" {
            "door"
        } else {
            "badge"
        }
    }

    fn action(&self) -> &'static str {
        if self.op.name == "open_door" {
            "door.open"
        } else {
            "badge.block"
        }
    }

    async fn run(&self, params: &Record) -> CallResult {
        let pin = param_text(params, "pin")?;
        let caller = param_text(params, "caller")?;
        let call = params.get("call").and_then(Value::as_str).unwrap_or("-");
        let target_param = self.target_param();
        let target = match (param_text(params, target_param), target_param) {
            (Ok(t), _) if !t.is_empty() => Some(t),
            (Ok(_) | Err(CallError::MissingParam(_)), "badge") => None,
            (Ok(_), _) => return Err(CallError::MissingParam(target_param.to_string())),
            (Err(e), _) => return Err(e),
        };
        if pin.is_empty() {
            return Err(CallError::MissingParam("pin".into()));
        }
        let origin = format!("call {call} from {caller}");
        let limit_key = format!("{caller}\u{0}{}", target.as_deref().unwrap_or("own badge"));
        let mut entry = AuditEntry {
            at: Utc::now(),
            actor: "unknown".into(),
            action: self.action().into(),
            target: format!("{target_param}:{}", target.as_deref().unwrap_or("own")),
            origin,
            outcome: Outcome::Requested,
            detail: None,
            node: String::new(),
        };
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(Instant::now(), &limit_key);
        if !allowed {
            return self.deny(entry, "too many attempts from this caller").await;
        }
        let mut pin_params = params.clone();
        pin_params.insert("pin".into(), Value::String(pin));
        let holder = match self.pin_request.run(&self.client, &pin_params).await {
            Ok(Some(record)) => typed::check(&self.name, super::HOLDER, record)?,
            Ok(None) => return self.deny(entry, "the PIN is not recognised").await,
            Err(e) => {
                entry.outcome = Outcome::Failed;
                entry.detail = Some(format!("PIN check: {}", e.reason()));
                self.write(entry).await?;
                return Err(e);
            }
        };
        let holder_id = holder
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        entry.actor = format!("holder:{holder_id}");
        let target = match target {
            Some(t) => t,
            None => match holder.get("badge").and_then(Value::as_str) {
                Some(b) => b.to_string(),
                None => return self.deny(entry, "the holder has no badge on record").await,
            },
        };
        entry.target = format!("{target_param}:{target}");
        self.write(entry.clone()).await?;

        let mut op_params = params.clone();
        op_params.insert("holder".into(), Value::String(holder_id));
        op_params.insert(target_param.into(), Value::String(target));
        let result = self.request.run(&self.client, &op_params).await;
        entry.at = Utc::now();
        match result {
            Ok(Some(record)) => {
                entry.outcome = Outcome::Done;
                self.write(entry).await?;
                typed::check(&self.name, self.op.output, record).map(Some)
            }
            Ok(None) => self.deny(entry, &format!("no such {target_param}")).await,
            Err(CallError::Status { status: 403, .. }) => {
                self.deny(
                    entry,
                    &format!("the holder may not use this {target_param}"),
                )
                .await
            }
            Err(e) => {
                entry.outcome = Outcome::Failed;
                entry.detail = Some(e.reason().to_string());
                self.write(entry).await?;
                Err(e)
            }
        }
    }

    async fn deny(&self, mut entry: AuditEntry, why: &str) -> CallResult {
        entry.outcome = Outcome::Denied;
        entry.detail = Some(why.to_string());
        self.write(entry).await?;
        Err(CallError::Refused(why.to_string()))
    }

    async fn write(&self, entry: AuditEntry) -> Result<(), CallError> {
        self.audit
            .append(entry)
            .await
            .map(drop)
            .map_err(|e| CallError::Refused(format!("{e}; nothing was done")))
    }
}

impl Connector for PinAction {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "access_control"
    }

    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }
}

/// At most `max` attempts per key within a sliding window of `per`. Sans-IO: the caller
/// gives the time. Keys with no recent attempt are dropped as the map grows.
pub(super) struct RateLimiter {
    max: usize,
    per: Duration,
    hits: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    pub(super) fn new(max: usize, per: Duration) -> RateLimiter {
        RateLimiter {
            max,
            per,
            hits: HashMap::new(),
        }
    }

    /// Counts an attempt at `now`; `false` when the key already had `max` in the window.
    pub(super) fn allow(&mut self, now: Instant, key: &str) -> bool {
        if self.hits.len() > 10_000 {
            let per = self.per;
            self.hits
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < per));
        }
        let q = self.hits.entry(key.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            return false;
        }
        q.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_per_key_in_a_sliding_window() {
        let mut r = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(r.allow(t0, "a/door1"));
        assert!(r.allow(t0 + Duration::from_secs(10), "a/door1"));
        assert!(!r.allow(t0 + Duration::from_secs(20), "a/door1"));
        assert!(
            r.allow(t0 + Duration::from_secs(20), "a/door2"),
            "another door"
        );
        assert!(
            r.allow(t0 + Duration::from_secs(20), "b/door1"),
            "another caller"
        );
        assert!(
            r.allow(t0 + Duration::from_secs(61), "a/door1"),
            "the first left the window"
        );
        assert!(!r.allow(t0 + Duration::from_secs(62), "a/door1"));
    }
}
