//! What stands between a flow step and a connector: the deadline, retries of idempotent
//! reads, a short-TTL cache of lookups, the circuit breaker, and the counters the health
//! snapshot (and the metrics exporter) reads.
//!
//! Every call of [`Guarded::run`] ends by the earlier of the step's `timeout` and the
//! connector's own `timeout` setting. A data source is a read, so a transient failure
//! (timeout of one attempt, transport error, 5xx) is tried again up to `retries` times
//! while the deadline allows; an action is never retried (it may have happened). Lookups
//! may be cached for `cache_ttl`: records and "not found" are kept, errors never. The
//! breaker ([`super::breaker`]) refuses calls at once while the backend is known dead, and
//! a background probe closes it again when the backend answers.
//!
//! The counters sit behind a `std::sync::Mutex`: they are shared by every call running on
//! the connector, updated in a few instructions, and never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::breaker::{Admit, Breaker, BreakerConfig, CircuitState, Transition};
use super::{CallError, CallResult, Connector, Record, Role};

/// Lookups kept at most per connector; the oldest goes first.
const CACHE_CAPACITY: usize = 4096;

/// The resilience settings of one connector (keys shared by every kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Upper bound of one call, whatever the step says (`None`: the step's timeout).
    pub timeout: Option<Duration>,
    /// Extra attempts of a data source after a transient failure (actions: always 0).
    pub retries: u32,
    /// How long a lookup's answer is reused (`ZERO`: no cache; actions: never cached).
    pub cache_ttl: Duration,
    pub breaker: BreakerConfig,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: None,
            retries: 1,
            cache_ttl: Duration::ZERO,
            breaker: BreakerConfig::default(),
        }
    }
}

/// One connector's health and latency, as the metrics exporter and `svi` read them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectorHealth {
    pub name: String,
    pub kind: &'static str,
    pub role: Role,
    pub circuit: CircuitState,
    /// Backend failures in a row (resets on success).
    pub failures_in_a_row: u32,
    /// Calls made by flows (cache hits and refusals included).
    pub calls: u64,
    pub found: u64,
    pub not_found: u64,
    pub errors: u64,
    /// Errors that were timeouts (step or connector deadline).
    pub timeouts: u64,
    /// Calls refused at once because the circuit was open.
    pub refused_open: u64,
    /// Times the circuit opened since start.
    pub circuit_opened: u64,
    pub retries: u64,
    pub cache_hits: u64,
    /// Sum and count of the durations of the calls that reached the backend, in seconds.
    pub latency_seconds_sum: f64,
    pub latency_count: u64,
    /// Duration of the last call that reached the backend, in milliseconds.
    pub last_latency_ms: u64,
}

/// A connector with its policy, breaker, cache and counters.
pub(super) struct Guarded {
    pub(super) inner: Arc<dyn Connector>,
    role: Role,
    policy: Policy,
    state: Arc<Mutex<Shared>>,
}

struct Shared {
    breaker: Breaker,
    cache: HashMap<String, (Instant, Option<Record>)>,
    health: ConnectorHealth,
}

impl Guarded {
    pub(super) fn new(inner: Arc<dyn Connector>, role: Role, policy: Policy) -> Guarded {
        let health = ConnectorHealth {
            name: inner.name().to_string(),
            kind: inner.kind(),
            role,
            circuit: CircuitState::Closed,
            failures_in_a_row: 0,
            calls: 0,
            found: 0,
            not_found: 0,
            errors: 0,
            timeouts: 0,
            refused_open: 0,
            circuit_opened: 0,
            retries: 0,
            cache_hits: 0,
            latency_seconds_sum: 0.0,
            latency_count: 0,
            last_latency_ms: 0,
        };
        Guarded {
            state: Arc::new(Mutex::new(Shared {
                breaker: Breaker::new(policy.breaker),
                cache: HashMap::new(),
                health,
            })),
            inner,
            role,
            policy,
        }
    }

    pub(super) fn health(&self) -> ConnectorHealth {
        let s = lock(&self.state);
        let mut h = s.health.clone();
        h.circuit = s.breaker.state();
        h.failures_in_a_row = s.breaker.failures_in_a_row();
        h
    }

    /// One call of the connector for a flow step, bounded by `step_timeout`.
    pub(super) async fn run(&self, params: &Record, step_timeout: Duration) -> CallResult {
        let started = Instant::now();
        let (limit, deadline) = match self.policy.timeout {
            Some(t) if t < step_timeout => (t, started + t),
            _ => (step_timeout, started + step_timeout),
        };
        let cache_key = (self.role == Role::DataSource && !self.policy.cache_ttl.is_zero())
            .then(|| serde_json::to_string(params).unwrap_or_default());
        let trial = {
            let mut s = lock(&self.state);
            s.health.calls += 1;
            if let Some(key) = &cache_key {
                let fresh = s
                    .cache
                    .get(key)
                    .filter(|(at, _)| started.duration_since(*at) < self.policy.cache_ttl)
                    .map(|(_, v)| v.clone());
                if let Some(v) = fresh {
                    s.health.cache_hits += 1;
                    count_outcome(&mut s.health, &Ok(v.clone()));
                    return Ok(v);
                }
            }
            match s.breaker.admit(started.into_std()) {
                Admit::Call => false,
                Admit::Trial => true,
                Admit::Refuse { failures } => {
                    s.health.refused_open += 1;
                    let e = Err(CallError::CircuitOpen {
                        connector: self.inner.name().to_string(),
                        failures,
                    });
                    count_outcome(&mut s.health, &e);
                    return e;
                }
            }
        };
        let attempts = match self.role {
            Role::DataSource if !trial => 1 + self.policy.retries,
            _ => 1,
        };
        let mut result = Err(CallError::Timeout(limit));
        for attempt in 1..=attempts {
            let now = Instant::now();
            if now >= deadline {
                result = Err(CallError::Timeout(limit));
                break;
            }
            // Dropping the call's future cancels it: the pool connection or HTTP request
            // is released by the connector's own drop logic.
            result = match tokio::time::timeout_at(deadline, self.inner.call(params)).await {
                Ok(r) => r,
                Err(_) => Err(CallError::Timeout(limit)),
            };
            match &result {
                Err(e) if e.is_transient() && attempt < attempts && Instant::now() < deadline => {
                    lock(&self.state).health.retries += 1;
                }
                _ => break,
            }
        }
        let elapsed = started.elapsed();
        let transition = {
            let mut s = lock(&self.state);
            s.health.latency_count += 1;
            s.health.latency_seconds_sum += elapsed.as_secs_f64();
            s.health.last_latency_ms = elapsed.as_millis() as u64;
            count_outcome(&mut s.health, &result);
            let transition = match &result {
                Err(e) if e.is_backend_failure() => s.breaker.on_failure(Instant::now().into_std()),
                _ => s.breaker.on_success(),
            };
            if let (Some(key), Ok(v)) = (cache_key, &result) {
                if s.cache.len() >= CACHE_CAPACITY {
                    let ttl = self.policy.cache_ttl;
                    s.cache
                        .retain(|_, (at, _)| started.duration_since(*at) < ttl);
                    if s.cache.len() >= CACHE_CAPACITY {
                        let oldest = s
                            .cache
                            .iter()
                            .min_by_key(|(_, (at, _))| *at)
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            s.cache.remove(&k);
                        }
                    }
                }
                s.cache.insert(key, (started, v.clone()));
            }
            if let Some(Transition::Opened { .. }) = transition {
                s.health.circuit_opened += 1;
            }
            transition
        };
        self.announce(transition, &result);
        if let Some(Transition::Opened { .. } | Transition::Reopened) = transition {
            self.spawn_probe();
        }
        result
    }

    fn announce(&self, transition: Option<Transition>, result: &CallResult) {
        match transition {
            Some(Transition::Opened { failures }) => tracing::warn!(
                connector = self.inner.name(),
                kind = self.inner.kind(),
                role = %self.role,
                failures,
                open_for_ms = self.policy.breaker.open_for.as_millis() as u64,
                reason = result.as_ref().err().map(CallError::reason).unwrap_or("none"),
                "connector circuit opened: calls take their error branch at once until the backend answers a probe"
            ),
            Some(Transition::Closed) => tracing::info!(
                connector = self.inner.name(),
                kind = self.inner.kind(),
                role = %self.role,
                "connector circuit closed: the backend answers again"
            ),
            Some(Transition::Reopened) | None => {}
        }
    }

    /// While the circuit is open, probes the backend each time the open period ends, with
    /// the connector's health request when it has one. Without one the next flow call is
    /// the trial (see [`Breaker::admit`]), and this task ends.
    fn spawn_probe(&self) {
        let Some(_) = self.inner.probe() else { return };
        let inner = self.inner.clone();
        let state = self.state.clone();
        let role = self.role;
        let limit = self
            .policy
            .timeout
            .unwrap_or(Duration::from_secs(5))
            .min(self.policy.breaker.open_for.max(Duration::from_millis(100)));
        tokio::spawn(async move {
            loop {
                let at = match lock(&state).breaker.probe_at() {
                    Some(at) => at,
                    None => return, // closed (or a trial call is deciding)
                };
                tokio::time::sleep_until(Instant::from_std(at)).await;
                if !lock(&state).breaker.start_probe(Instant::now().into_std()) {
                    continue;
                }
                let Some(probe) = inner.probe() else { return };
                let ok = matches!(tokio::time::timeout(limit, probe).await, Ok(Ok(_)));
                let mut s = lock(&state);
                if ok {
                    s.breaker.on_success();
                    drop(s);
                    tracing::info!(
                        connector = inner.name(),
                        kind = inner.kind(),
                        %role,
                        "connector circuit closed: the backend answered a probe"
                    );
                    return;
                }
                s.breaker.on_failure(Instant::now().into_std());
                tracing::debug!(
                    connector = inner.name(),
                    "connector probe failed; circuit stays open"
                );
            }
        });
    }
}

fn count_outcome(h: &mut ConnectorHealth, result: &CallResult) {
    match result {
        Ok(Some(_)) => h.found += 1,
        Ok(None) => h.not_found += 1,
        Err(e) => {
            h.errors += 1;
            if matches!(e, CallError::Timeout(_)) {
                h.timeouts += 1;
            }
        }
    }
}

/// The counters stay usable if a thread panicked while holding the lock: they are plain
/// numbers, never left half-written.
fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
