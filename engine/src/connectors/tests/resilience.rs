//! The policy around every connector, in virtual time: deadlines, retries of reads only, the
//! lookup cache, the circuit breaker opening after failures in a row and closing by itself
//! once a probe finds the backend back; the health snapshot counts all of it. An open
//! circuit raises the connector's `circuit_open` alarm until it closes; a trial that never
//! puts the backend to the test (bad input, the step's short deadline, a dropped call)
//! neither closes the circuit nor leaves it refusing forever.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};

use super::params;
use crate::alarm::{Alarm, AlarmHandle, AlarmKind, AlarmSnapshot, AlarmsConfig, Severity};
use crate::connectors::{
    circuit_conditions, BreakerConfig, CallError, CallFuture, CircuitState, Connector, Connectors,
    Policy, Role,
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
    fn call<'a>(&'a self, p: &'a Map<String, serde_json::Value>) -> CallFuture<'a> {
        Box::pin(async move {
            if p.contains_key("bad") {
                // Refused on the caller's input before any request.
                return Err(CallError::BadParam {
                    name: "bad".into(),
                    problem: "is not a number".into(),
                });
            }
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
async fn timeouts_take_the_shorter_deadline_and_count_at_the_connectors_own() {
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
    // The flow's shorter budget ran out, not the backend's: counted as a timeout, not as
    // a backend failure.
    let h = &c.health()[0];
    assert_eq!(
        (h.timeouts, h.failures_in_a_row, h.circuit),
        (2, 1, CircuitState::Closed)
    );
    assert!(c.call(Role::DataSource, "backend", &p, STEP).await.is_err());
    let h = &c.health()[0];
    assert_eq!((h.timeouts, h.circuit), (3, CircuitState::Open));
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

/// The alarm board's snapshot once `pred` holds (virtual time: the alarm task runs as soon
/// as the test yields).
async fn alarm_board(
    alarms: &AlarmHandle,
    pred: impl FnMut(&AlarmSnapshot) -> bool,
) -> AlarmSnapshot {
    let mut watch = alarms.watch();
    let snapshot = tokio::time::timeout(Duration::from_secs(1), watch.wait_for(pred))
        .await
        .expect("the alarm board did not change")
        .expect("alarm task")
        .clone();
    snapshot
}

fn circuit_open(s: &AlarmSnapshot) -> Option<&Alarm> {
    s.active
        .iter()
        .find(|a| a.kind == AlarmKind::CircuitOpen && a.subject == "backend")
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_raises_its_alarm_until_a_probe_closes_it() {
    let alarms = crate::alarm::start(&AlarmsConfig::default(), "node-1").expect("alarms");
    let backend = Arc::new(Switch {
        with_probe: true,
        ..Switch::default()
    });
    let mut c = Connectors::default();
    c.report_alarms_to(&alarms);
    c.insert(
        Role::DataSource,
        backend.clone(),
        policy(3, 0, Duration::ZERO),
    )
    .expect("insert");
    let p = Map::new();
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(c.call(Role::DataSource, "backend", &p, STEP).await.is_err());
    }
    tokio::task::yield_now().await;
    assert!(
        circuit_open(&alarms.snapshot()).is_none(),
        "closed: no alarm"
    );
    assert!(c.call(Role::DataSource, "backend", &p, STEP).await.is_err());
    let board = alarm_board(&alarms, |s| circuit_open(s).is_some()).await;
    let alarm = circuit_open(&board).expect("raised");
    assert_eq!(alarm.severity, Severity::Major);
    assert_eq!(alarm.source, "connector data source backend");
    assert_eq!(
        alarm.message,
        "connector `backend` (test data source): 3 backend failures in a row; flows take their error branch at once, the backend is tried again every 10s"
    );
    // A failed probe keeps it raised (one raise only), with the new count.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(backend.probes.load(Ordering::SeqCst), 1);
    let board = alarm_board(&alarms, |s| {
        circuit_open(s).is_some_and(|a| a.message.contains(": 4 backend failures"))
    })
    .await;
    assert_eq!(board.raised_total["circuit_open"], 1);
    // The backend is back: the next probe closes the circuit and clears the alarm.
    backend.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(c.health()[0].circuit, CircuitState::Closed);
    let board = alarm_board(&alarms, |s| circuit_open(s).is_none()).await;
    assert_eq!(board.cleared_total["circuit_open"], 1);
}

#[test]
fn a_closed_circuit_has_no_alarm_and_any_other_state_one() {
    let backend: Arc<dyn Connector> = Arc::new(Switch::default());
    let mut c = Connectors::default();
    c.insert(Role::Action, backend, policy(3, 0, Duration::ZERO))
        .expect("insert");
    let h = c.health().remove(0);
    let ten = Duration::from_secs(10);
    assert!(circuit_conditions(&h, CircuitState::Closed, ten).is_empty());
    for state in [CircuitState::Open, CircuitState::Probing] {
        let raised = circuit_conditions(&h, state, ten);
        assert_eq!(raised.len(), 1, "{state:?}");
        assert_eq!(
            (raised[0].kind, raised[0].subject.as_str()),
            (AlarmKind::CircuitOpen, "backend")
        );
    }
}

/// Opens the circuit of an action `backend` (2 failures, open 10 s, no probe) and waits
/// until it is due for a trial.
async fn open_and_due(backend: &Arc<Switch>) -> Connectors {
    let c = registry(backend.clone(), Role::Action, policy(2, 0, Duration::ZERO));
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        assert!(act(&c, STEP).await.is_err());
    }
    assert_eq!(c.health()[0].circuit, CircuitState::Open);
    tokio::time::sleep(Duration::from_secs(10)).await;
    c
}

/// The action `backend` with no parameters, bounded by `step`.
async fn act(c: &Connectors, step: Duration) -> crate::connectors::CallResult {
    c.call(Role::Action, "backend", &Map::new(), step).await
}

#[tokio::test(start_paused = true)]
async fn a_trial_refused_on_the_callers_input_does_not_close_the_circuit() {
    let backend = Arc::new(Switch::default());
    let c = open_and_due(&backend).await;
    let bad = params(json!({ "bad": "x" }));
    assert!(matches!(
        c.call(Role::Action, "backend", &bad, STEP).await,
        Err(CallError::BadParam { .. })
    ));
    assert_ne!(c.health()[0].circuit, CircuitState::Closed, "no evidence");
    // The next call is the trial; the backend is still down: open again, refusing.
    assert!(matches!(
        act(&c, STEP).await,
        Err(CallError::Transport { .. })
    ));
    assert!(matches!(
        act(&c, STEP).await,
        Err(CallError::CircuitOpen { failures: 3, .. })
    ));
    assert_eq!(backend.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_trial_cut_by_the_steps_short_deadline_neither_closes_nor_counts() {
    let backend = Arc::new(Switch::default());
    let c = open_and_due(&backend).await;
    backend.down.store(false, Ordering::SeqCst);
    backend.hung.store(true, Ordering::SeqCst);
    // 200 ms is the flow's budget, shorter than the connector's own 1 s.
    let e = act(&c, Duration::from_millis(200)).await.expect_err("cut");
    assert_eq!(e.to_string(), "timed out after 200ms");
    let h = &c.health()[0];
    assert_eq!((h.circuit, h.failures_in_a_row), (CircuitState::Open, 2));
    // The backend answers again: the next call is the trial and closes the circuit.
    backend.hung.store(false, Ordering::SeqCst);
    assert!(act(&c, STEP).await.is_ok());
    assert_eq!(c.health()[0].circuit, CircuitState::Closed);
    // Closed, a timeout at the connector's own deadline counts; the step's shorter does not.
    backend.hung.store(true, Ordering::SeqCst);
    assert!(act(&c, STEP).await.is_err());
    assert!(act(&c, Duration::from_millis(200)).await.is_err());
    assert_eq!(c.health()[0].failures_in_a_row, 1);
}

#[tokio::test(start_paused = true)]
async fn a_trial_dropped_with_its_caller_hands_over_to_the_next_call() {
    let backend = Arc::new(Switch::default());
    let c = open_and_due(&backend).await;
    backend.down.store(false, Ordering::SeqCst);
    backend.hung.store(true, Ordering::SeqCst);
    {
        let p = Map::new();
        let trial = c.call(Role::Action, "backend", &p, STEP);
        // The caller hangs up 100 ms into the trial: its future is dropped.
        let dropped = tokio::time::timeout(Duration::from_millis(100), trial).await;
        assert!(dropped.is_err(), "the hung trial is still waiting");
    }
    assert_eq!(
        c.health()[0].circuit,
        CircuitState::Open,
        "not left probing"
    );
    backend.hung.store(false, Ordering::SeqCst);
    assert!(act(&c, STEP).await.is_ok());
    assert_eq!(c.health()[0].circuit, CircuitState::Closed);
}
