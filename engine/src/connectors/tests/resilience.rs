//! The policy around every connector, in virtual time: deadlines, retries of reads only, the
//! lookup cache, the circuit breaker opening after failures in a row and closing by itself
//! once a probe finds the backend back; the health snapshot counts all of it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};

use super::params;
use crate::connectors::{
    BreakerConfig, CallError, CallFuture, CircuitState, Connector, Connectors, Policy, Role,
};

/// A backend whose health the test switches: up answers `{"n": calls}`, down fails with a
/// transport error, hung never answers.
#[derive(Default)]
struct Switch {
    down: AtomicBool,
    hung: AtomicBool,
    calls: AtomicU32,
    probes: AtomicU32,
    with_probe: bool,
}

impl Connector for Switch {
    fn name(&self) -> &str {
        "backend"
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn call<'a>(&'a self, _: &'a Map<String, serde_json::Value>) -> CallFuture<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.hung.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(CallError::Transport {
                    what: "cannot connect to",
                    host: "backend.example.com".into(),
                    cause: "Connection refused".into(),
                });
            }
            Ok(Some(params(json!({ "n": n }))))
        })
    }
    fn probe(&self) -> Option<CallFuture<'_>> {
        if !self.with_probe {
            return None;
        }
        Some(Box::pin(async move {
            self.probes.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(CallError::Database("down".into()))
            } else {
                Ok(None)
            }
        }))
    }
}

fn policy(failures: u32, retries: u32, cache_ttl: Duration) -> Policy {
    Policy {
        timeout: Some(Duration::from_secs(1)),
        retries,
        cache_ttl,
        breaker: BreakerConfig {
            failures,
            open_for: Duration::from_secs(10),
        },
    }
}

fn registry(backend: Arc<Switch>, role: Role, p: Policy) -> Connectors {
    let mut c = Connectors::default();
    c.insert(role, backend, p).expect("insert");
    c
}

const STEP: Duration = Duration::from_secs(3);

#[tokio::test(start_paused = true)]
async fn the_circuit_opens_refuses_at_once_and_a_probe_closes_it() {
    let backend = Arc::new(Switch {
        with_probe: true,
        ..Switch::default()
    });
    let c = registry(
        backend.clone(),
        Role::DataSource,
        policy(3, 0, Duration::ZERO),
    );
    let p = Map::new();
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert!(matches!(
            c.call(Role::DataSource, "backend", &p, STEP).await,
            Err(CallError::Transport { .. })
        ));
    }
    let h = &c.health()[0];
    assert_eq!(
        (h.circuit, h.circuit_opened, h.errors),
        (CircuitState::Open, 1, 3)
    );
    // Open: refused without reaching the backend, and without waiting.
    let started = tokio::time::Instant::now();
    let e = c
        .call(Role::DataSource, "backend", &p, STEP)
        .await
        .expect_err("open");
    assert_eq!(
        e.to_string(),
        "backend is unavailable after 3 failures in a row (circuit open)"
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3);
    // The backend comes back; the probe after the open period closes the circuit.
    backend.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(backend.probes.load(Ordering::SeqCst), 1);
    assert_eq!(c.health()[0].circuit, CircuitState::Closed);
    assert!(c.call(Role::DataSource, "backend", &p, STEP).await.is_ok());
    let h = &c.health()[0];
    assert_eq!((h.refused_open, h.found, h.calls), (1, 1, 5));
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_keeps_it_open_and_without_a_probe_one_call_is_the_trial() {
    let backend = Arc::new(Switch::default());
    let c = registry(backend.clone(), Role::Action, policy(2, 0, Duration::ZERO));
    let p = Map::new();
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(c.call(Role::Action, "backend", &p, STEP).await.is_err());
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The trial fails: open again for another period.
    assert!(matches!(
        c.call(Role::Action, "backend", &p, STEP).await,
        Err(CallError::Transport { .. })
    ));
    assert!(matches!(
        c.call(Role::Action, "backend", &p, STEP).await,
        Err(CallError::CircuitOpen { failures: 3, .. })
    ));
    backend.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(c.call(Role::Action, "backend", &p, STEP).await.is_ok());
    assert_eq!(c.health()[0].circuit, CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn timeouts_take_the_shorter_deadline_and_count_towards_the_breaker() {
    let backend = Arc::new(Switch::default());
    backend.hung.store(true, Ordering::SeqCst);
    let c = registry(
        backend.clone(),
        Role::DataSource,
        policy(2, 0, Duration::ZERO),
    );
    let p = Map::new();
    let started = tokio::time::Instant::now();
    let e = c
        .call(Role::DataSource, "backend", &p, STEP)
        .await
        .expect_err("hung");
    assert_eq!(
        e.to_string(),
        "timed out after 1s",
        "the connector's 1s, not the step's 3s"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let e = c
        .call(Role::DataSource, "backend", &p, Duration::from_millis(200))
        .await
        .expect_err("hung");
    assert_eq!(e.to_string(), "timed out after 200ms");
    let h = &c.health()[0];
    assert_eq!((h.timeouts, h.circuit), (2, CircuitState::Open));
}

/// Down for the first attempt only.
struct Flaky {
    calls: AtomicU32,
}

impl Connector for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn call<'a>(&'a self, _: &'a Map<String, serde_json::Value>) -> CallFuture<'a> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(CallError::Status {
                    status: 503,
                    host: "h".into(),
                })
            } else {
                Ok(None)
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn reads_are_retried_after_a_transient_failure_actions_never() {
    for (role, expect_ok, calls) in [(Role::DataSource, true, 2), (Role::Action, false, 1)] {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
        });
        let mut c = Connectors::default();
        let retries = if role == Role::DataSource { 1 } else { 0 };
        c.insert(role, flaky.clone(), policy(5, retries, Duration::ZERO))
            .expect("insert");
        let r = c.call(role, "flaky", &Map::new(), STEP).await;
        assert_eq!(r.is_ok(), expect_ok, "{role}: {r:?}");
        assert_eq!(flaky.calls.load(Ordering::SeqCst), calls, "{role}");
        assert_eq!(c.health()[0].retries, u64::from(calls - 1));
    }
}

#[tokio::test(start_paused = true)]
async fn lookups_are_cached_for_their_ttl_per_parameters() {
    let backend = Arc::new(Switch::default());
    let c = registry(
        backend.clone(),
        Role::DataSource,
        policy(5, 0, Duration::from_secs(30)),
    );
    let a = params(json!({ "number": "+33100000001" }));
    let b = params(json!({ "number": "+33100000002" }));
    let first = c.call(Role::DataSource, "backend", &a, STEP).await;
    assert_eq!(c.call(Role::DataSource, "backend", &a, STEP).await, first);
    assert_ne!(c.call(Role::DataSource, "backend", &b, STEP).await, first);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_ne!(c.call(Role::DataSource, "backend", &a, STEP).await, first);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3);
    assert_eq!(c.health()[0].cache_hits, 1);
    // Errors are never cached.
    backend.down.store(true, Ordering::SeqCst);
    let c = registry(
        backend.clone(),
        Role::DataSource,
        policy(5, 0, Duration::from_secs(30)),
    );
    assert!(c.call(Role::DataSource, "backend", &a, STEP).await.is_err());
    backend.down.store(false, Ordering::SeqCst);
    assert!(c.call(Role::DataSource, "backend", &a, STEP).await.is_ok());
}

#[tokio::test]
async fn policy_settings_are_read_and_checked_per_role() {
    let dir = super::sql::sample_dir();
    let ok = format!(
        "{}\n[[data_sources]]\nname='x'\nkind='sql'\ndatabase='data/sample.db'\nquery='SELECT 1 AS one'\ntimeout='800ms'\nretries=2\ncache_ttl='5s'\nbreaker_failures=4\nbreaker_open_for='1m'\n",
        super::sql::SAMPLE_BLOCKS
    );
    let c = super::build(&ok, dir.path(), &[])
        .await
        .expect("policy settings");
    assert!(c.health().iter().any(|h| h.name == "x"));
    for (extra, expected) in [
        (
            "timeout='soon'",
            "data_sources[2].timeout: `soon` is not a duration",
        ),
        ("retries=9", "data_sources[2].retries: 9 is outside 0..=5"),
        (
            "breaker_open_for=5",
            "data_sources[2].breaker_open_for: must be a string",
        ),
    ] {
        let toml = format!(
            "{}\n[[data_sources]]\nname='x'\nkind='sql'\ndatabase='data/sample.db'\nquery='SELECT 1'\n{extra}\n",
            super::sql::SAMPLE_BLOCKS
        );
        let e = super::build_error(&toml, dir.path()).await;
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
    for (extra, expected) in [
        (
            "retries=1",
            "actions[0].retries: an action is never retried",
        ),
        (
            "cache_ttl='5s'",
            "actions[0].cache_ttl: an action is never cached",
        ),
    ] {
        let toml = format!(
            "[[actions]]\nname='a'\nkind='sql'\ndatabase='{}'\nquery='DELETE FROM callbacks'\n{extra}\n",
            dir.path().join("data/sample.db").display()
        );
        let e = super::build_error(&toml, dir.path()).await;
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
}
