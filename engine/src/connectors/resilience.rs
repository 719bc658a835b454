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
//! a background probe closes it again when the backend answers. While a circuit is not
//! closed, the connector's `circuit_open` alarm is raised (see [`circuit_conditions`]);
//! it clears when the circuit closes.
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
use crate::alarm::{AlarmHandle, AlarmKind, Condition, Severity};

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
    /// Where the circuit's alarm goes (none in tools and most tests).
    alarms: Option<AlarmHandle>,
}

/// What the breaker learns from one call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The backend answered (a record, nothing found, a 4xx, a field of the wrong type).
    Answered,
    /// The backend is unwell (see [`CallError::is_backend_failure`]).
    Failed,
    /// The call never put the backend to the test: refused before it on the caller's
    /// input, or cut short by a step deadline shorter than the connector's own `timeout`
    /// (the flow's budget, not the backend's fault).
    Inconclusive,
}

fn verdict(result: &CallResult, cut_by_the_step: bool) -> Verdict {
    match result {
        Ok(_) => Verdict::Answered,
        Err(CallError::Timeout(_)) if cut_by_the_step => Verdict::Inconclusive,
        Err(e) if e.is_before_backend() => Verdict::Inconclusive,
        Err(e) if e.is_backend_failure() => Verdict::Failed,
        Err(_) => Verdict::Answered,
    }
}

/// The `circuit_open` alarm of a connector whose circuit is in `state`: raised (major,
/// subject the connector's name) unless the circuit is closed. Reported under the source
/// `connector ROLE NAME`, so each connector clears only its own.
pub fn circuit_conditions(
    health: &ConnectorHealth,
    state: CircuitState,
    open_for: Duration,
) -> Vec<Condition> {
    if state == CircuitState::Closed {
        return Vec::new();
    }
    vec![Condition {
        kind: AlarmKind::CircuitOpen,
        subject: health.name.clone(),
        severity: Severity::Major,
        message: format!(
            "connector `{}` ({} {}): {} backend failures in a row; flows take their error branch at once, the backend is tried again every {}",
            health.name,
            health.kind,
            health.role,
            health.failures_in_a_row,
            super::error::human(open_for)
        ),
    }]
}

/// Puts a trial back in the breaker's hands if its call is dropped before a verdict (the
/// caller hung up, the call's task ended): without it the circuit would stay `Probing`,
/// refusing every call with no trial left to decide.
struct TrialGuard<'a> {
    guarded: &'a Guarded,
    armed: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut s = lock(&self.guarded.state);
            s.breaker.on_inconclusive(Instant::now().into_std());
            self.guarded.report_circuit(&s);
        }
    }
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
                alarms: None,
            })),
            inner,
            role,
            policy,
        }
    }

    pub(super) fn health(&self) -> ConnectorHealth {
        health_of(&lock(&self.state))
    }

    /// Reports the circuit's alarm to `alarms` from now on (and its state now).
    pub(super) fn report_alarms_to(&self, alarms: AlarmHandle) {
        let mut s = lock(&self.state);
        s.alarms = Some(alarms);
        self.report_circuit(&s);
    }

    /// The circuit's alarm as the breaker stands (called under the lock, so reports are
    /// sent in the order of the transitions).
    fn report_circuit(&self, s: &Shared) {
        report_circuit(s, self.role, self.policy.breaker.open_for);
    }

    /// One call of the connector for a flow step, bounded by `step_timeout`.
    pub(super) async fn run(&self, params: &Record, step_timeout: Duration) -> CallResult {
        let started = Instant::now();
        let (limit, deadline) = match self.policy.timeout {
            Some(t) if t < step_timeout => (t, started + t),
            _ => (step_timeout, started + step_timeout),
        };
        let cut_by_the_step = self.policy.timeout.is_some_and(|t| step_timeout < t);
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
        let mut trial_guard = TrialGuard {
            guarded: self,
            armed: trial,
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
            let now = Instant::now().into_std();
            let transition = match verdict(&result, cut_by_the_step) {
                Verdict::Failed => s.breaker.on_failure(now),
                Verdict::Answered => s.breaker.on_success(),
                Verdict::Inconclusive => {
                    s.breaker.on_inconclusive(now);
                    None
                }
            };
            trial_guard.armed = false;
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
            if transition.is_some() || trial {
                self.report_circuit(&s);
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
        let open_for = self.policy.breaker.open_for;
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
                    report_circuit(&s, role, open_for);
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
                report_circuit(&s, role, open_for);
                drop(s);
                tracing::debug!(
                    connector = inner.name(),
                    "connector probe failed; circuit stays open"
                );
            }
        });
    }
}

fn health_of(s: &Shared) -> ConnectorHealth {
    let mut h = s.health.clone();
    h.circuit = s.breaker.state();
    h.failures_in_a_row = s.breaker.failures_in_a_row();
    h
}

fn report_circuit(s: &Shared, role: Role, open_for: Duration) {
    if let Some(alarms) = &s.alarms {
        let h = health_of(s);
        alarms.report(
            format!("connector {role} {}", h.name),
            circuit_conditions(&h, h.circuit, open_for),
        );
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
