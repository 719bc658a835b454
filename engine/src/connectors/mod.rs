//! Connectors: the data sources (`lookup` steps) and actions (`action` steps) of call flows.
//!
//! The interpreter never does I/O: it emits `EffectKind::Lookup { source, params, timeout }`
//! or `EffectKind::Action { .. }` and waits for a [`ConnectorResult`]. The call hands the
//! effect to [`Connectors::lookup`] / [`Connectors::action`] (one effect in, one result
//! out), which find the connector by name and run it under its [`Policy`]. The rule behind
//! every choice here: **a slow or failed backend must never drop the caller.** So:
//!
//! - every call ends by the step's deadline (or the connector's own `timeout`, if
//!   shorter); a timeout is the error `timed out after 2s`, and the flow takes its `error`
//!   branch;
//! - every failure is a typed value ([`CallError`]), never a panic nor an engine error;
//!   messages name the backend (host, database) but never a parameter or a returned value,
//!   because those are personal data (caller numbers, PINs, names); the same goes for the
//!   debug log line of each call, which records the connector, the duration and the
//!   outcome's shape;
//! - a backend that keeps failing opens the connector's circuit breaker: calls then fail at
//!   once instead of waiting for the timeout, until a probe finds the backend back
//!   (`resilience`, `breaker`); [`Connectors::health`] is the snapshot metrics read, and
//!   an open circuit raises the `circuit_open` alarm ([`Connectors::report_alarms_to`]);
//! - everything that can be checked before the first call is checked at start-up, by
//!   [`Connectors::build`]: settings, templates, SQL statements, secrets. A configuration
//!   mistake stops the engine with `file: key: problem`; it does not wait for a caller.
//!
//! Modules, in reading order: `error` (the two error types), `kinds` (the registry of
//! configuration kinds and what they get to build), `resilience` and `breaker` (policy,
//! health), `settings` (typed reading of an entry's TOML table), `connections` (named
//! `[[connections]]`), the kinds `sql` (with `sql_pool`, `sql_params`) and `http` (with
//! `rest`, `template`), and the plug-ins `access_control` and `helpdesk` (with `typed`,
//! their output contracts).
//!
//! # Adding a connector
//!
//! A plug-in is a type implementing [`Connector`]: `call` receives the step's evaluated
//! `params` and returns a boxed future of a [`CallResult`] (`Ok(Some(record))` found,
//! `Ok(None)` not found, `Err(CallError)` failed). It needs no timeout of its own (the
//! registry applies the step's), but it must be cancel-safe: a timed-out call is dropped
//! mid-flight. Then either register a built instance with [`Connectors::add_data_source`]
//! / [`Connectors::add_action`], or give it a configuration kind: a [`ConnectorKind`]
//! registered in the [`Kinds`] passed to `Engine::start_with_kinds`.

pub mod access_control;
mod breaker;
mod connections;
mod error;
pub mod helpdesk;
mod http;
mod kinds;
mod resilience;
mod rest;
mod rest_op;
mod settings;
mod sql;
mod sql_params;
mod sql_pool;
mod template;
#[cfg(test)]
mod tests;
mod typed;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::{BreakerConfig, CircuitState};
pub use connections::Connections;
pub use error::{CallError, ConnectorError, Role};
pub use ivr_scripts::ConnectorResult;
pub use kinds::{BuildContext, BuildFuture, ConnectorKind, Kinds, Secrets};
pub use resilience::{circuit_conditions, ConnectorHealth, Policy};
use serde_json::{Map, Value};
pub use settings::{parse_duration, Settings};

use crate::alarm::AlarmHandle;
use crate::audit::AuditLog;
use crate::config::{ConnectorConfig, EngineConfig};
use resilience::Guarded;

/// A record: field name → JSON value.
pub type Record = Map<String, Value>;

/// What one connector call gives: a record, nothing found, or why it failed.
pub type CallResult = Result<Option<Record>, CallError>;

/// What [`Connector::call`] returns: a boxed future borrowing the connector and the params.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallResult> + Send + 'a>>;

/// A data source or an action, shared by every call as `Arc<dyn Connector>`.
pub trait Connector: Send + Sync {
    /// The configured name, as flows write it (`lookup: directory`).
    fn name(&self) -> &str;
    /// The kind (`sql`, `http`, or a plug-in's), for logs.
    fn kind(&self) -> &'static str;
    /// Runs once with the step's parameters. Errors are values without personal data.
    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a>;
    /// A cheap request telling whether the backend answers (`SELECT 1`, a login), used to
    /// close an open circuit without a caller's call. `None`: the next call is the trial.
    fn probe(&self) -> Option<CallFuture<'_>> {
        None
    }
}

/// Where environment variables come from when `${VAR}` is expanded: the process
/// environment in production, a closure in tests (no global state to mutate).
pub type EnvLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The keys every kind accepts: the connector's [`Policy`].
const POLICY_SETTINGS: &[&str] = &[
    "timeout",
    "retries",
    "cache_ttl",
    "breaker_failures",
    "breaker_open_for",
];

/// The registry of connectors by role and name. Cheap to clone: calls hold a copy.
#[derive(Clone, Default)]
pub struct Connectors {
    data_sources: Arc<BTreeMap<String, Arc<Guarded>>>,
    actions: Arc<BTreeMap<String, Arc<Guarded>>>,
    /// Where circuit alarms go, for connectors inserted from now on too.
    alarms: Option<AlarmHandle>,
}

/// What [`Connectors::build_with`] needs besides the configuration.
pub struct BuildOptions<'a> {
    pub kinds: &'a Kinds,
    pub env: EnvLookup<'a>,
    /// The data directory holding `secrets.key` (default: the configuration's).
    pub data_dir: Option<PathBuf>,
    pub audit: Option<AuditLog>,
}

impl Connectors {
    /// Builds every `[[connections]]`, `[[data_sources]]` and `[[actions]]` of the
    /// configuration with the built-in kinds, opening pools and checking queries,
    /// templates and secrets.
    pub async fn build(config: &EngineConfig) -> Result<Connectors, ConnectorError> {
        let kinds = Kinds::builtin();
        Connectors::build_with(
            config,
            BuildOptions {
                kinds: &kinds,
                env: &|name: &str| std::env::var(name).ok(),
                data_dir: None,
                audit: None,
            },
        )
        .await
    }

    /// [`Connectors::build`] with the given kinds, environment and audit log.
    pub async fn build_with(
        config: &EngineConfig,
        options: BuildOptions<'_>,
    ) -> Result<Connectors, ConnectorError> {
        let data_dir = options.data_dir.unwrap_or_else(|| config.data_dir.clone());
        let secrets = Secrets::new(options.env, data_dir);
        let connections = Connections::build(&config.connections, &secrets).await?;
        let mut out = Connectors::default();
        for (role, entries) in [
            (Role::DataSource, &config.data_sources),
            (Role::Action, &config.actions),
        ] {
            for cfg in entries {
                let (policy, cfg) = policy(cfg, role)?;
                let kind = options
                    .kinds
                    .get(&cfg.kind)
                    .ok_or_else(|| ConnectorError::Config {
                        key: format!("{}.kind", cfg.key),
                        problem: format!(
                            "`{}` is not a connector kind ({})",
                            cfg.kind,
                            options.kinds.names().collect::<Vec<_>>().join(", ")
                        ),
                    })?;
                let cx = BuildContext {
                    role,
                    connections: &connections,
                    secrets: &secrets,
                    audit: options.audit.clone(),
                };
                let connector = kind.build(&cfg, &cx).await?;
                out.insert(role, connector, policy)?;
            }
        }
        Ok(out)
    }

    /// Registers a data source built elsewhere (a plug-in, a test double), default policy.
    pub fn add_data_source(&mut self, c: Arc<dyn Connector>) -> Result<(), ConnectorError> {
        self.insert(Role::DataSource, c, Policy::default())
    }

    /// Registers an action built elsewhere, default policy.
    pub fn add_action(&mut self, c: Arc<dyn Connector>) -> Result<(), ConnectorError> {
        self.insert(Role::Action, c, Policy::default())
    }

    /// Registers a connector with its policy.
    pub fn insert(
        &mut self,
        role: Role,
        c: Arc<dyn Connector>,
        policy: Policy,
    ) -> Result<(), ConnectorError> {
        let table = match role {
            Role::DataSource => &mut self.data_sources,
            Role::Action => &mut self.actions,
        };
        let map = Arc::make_mut(table);
        if map.contains_key(c.name()) {
            return Err(ConnectorError::Duplicate {
                role,
                name: c.name().to_string(),
            });
        }
        let guarded = Guarded::new(c, role, policy);
        if let Some(alarms) = &self.alarms {
            guarded.report_alarms_to(alarms.clone());
        }
        map.insert(guarded.inner.name().to_string(), Arc::new(guarded));
        Ok(())
    }

    /// Raises each connector's `circuit_open` alarm on `alarms` while its circuit is not
    /// closed, and clears it when the circuit closes.
    pub fn report_alarms_to(&mut self, alarms: &AlarmHandle) {
        for g in self.data_sources.values().chain(self.actions.values()) {
            g.report_alarms_to(alarms.clone());
        }
        self.alarms = Some(alarms.clone());
    }

    /// Names of the data sources, for checking flows against this engine.
    pub fn data_source_names(&self) -> impl Iterator<Item = &str> {
        self.data_sources.keys().map(String::as_str)
    }

    /// Names of the actions.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// Health and latency of every connector: what the metrics exporter reads.
    pub fn health(&self) -> Vec<ConnectorHealth> {
        self.data_sources
            .values()
            .chain(self.actions.values())
            .map(|g| g.health())
            .collect()
    }

    /// Runs the data source `name`, giving up after `timeout`.
    pub async fn lookup(&self, name: &str, params: &Record, timeout: Duration) -> ConnectorResult {
        self.run(Role::DataSource, name, params, timeout).await
    }

    /// Runs the action `name`, giving up after `timeout`.
    pub async fn action(&self, name: &str, params: &Record, timeout: Duration) -> ConnectorResult {
        self.run(Role::Action, name, params, timeout).await
    }

    /// [`Connectors::lookup`] / [`Connectors::action`] with the typed error.
    pub async fn call(
        &self,
        role: Role,
        name: &str,
        params: &Record,
        timeout: Duration,
    ) -> CallResult {
        let table = match role {
            Role::DataSource => &self.data_sources,
            Role::Action => &self.actions,
        };
        let Some(connector) = table.get(name) else {
            tracing::debug!(connector = name, %role, "no such connector");
            return Err(CallError::NotConfigured {
                role,
                name: name.to_string(),
            });
        };
        let started = tokio::time::Instant::now();
        let result = connector.run(params, timeout).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            // The circuit's opening was logged once; each refusal is routine.
            Err(e @ CallError::CircuitOpen { .. }) => tracing::debug!(
                connector = name,
                kind = connector.inner.kind(),
                %role,
                reason = e.reason(),
                "connector call refused: circuit open"
            ),
            // A failure the flow works around (its error branch), worth a line for whoever
            // watches the backend: which connector, why; never a parameter or a value.
            Err(e) => tracing::warn!(
                connector = name,
                kind = connector.inner.kind(),
                %role,
                elapsed_ms,
                reason = e.reason(),
                error = %e,
                "connector call failed; the flow takes its error branch"
            ),
            Ok(_) => tracing::debug!(
                connector = name,
                kind = connector.inner.kind(),
                %role,
                elapsed_ms,
                outcome = %Shape(&result),
                "connector call"
            ),
        }
        result
    }

    async fn run(
        &self,
        role: Role,
        name: &str,
        params: &Record,
        timeout: Duration,
    ) -> ConnectorResult {
        self.call(role, name, params, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectors")
            .field(
                "data_sources",
                &self.data_sources.keys().collect::<Vec<_>>(),
            )
            .field("actions", &self.actions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The entry's [`Policy`] and the entry without the policy keys (for its kind to read).
fn policy(cfg: &ConnectorConfig, role: Role) -> Result<(Policy, ConnectorConfig), ConnectorError> {
    let mut policy = Policy::default();
    let mut own = cfg.clone();
    own.settings.retain(|k, _| !POLICY_SETTINGS.contains(&k));
    let mut only = cfg.clone();
    only.settings.retain(|k, _| POLICY_SETTINGS.contains(&k));
    let s = Settings::new(&only, POLICY_SETTINGS)?;
    policy.timeout = s.duration("timeout")?;
    if policy.timeout == Some(Duration::ZERO) {
        return Err(s.err("timeout", "must be above zero"));
    }
    policy.retries = s.integer("retries", 0, 5, i64::from(policy.retries))? as u32;
    policy.cache_ttl = s.duration("cache_ttl")?.unwrap_or(Duration::ZERO);
    if role == Role::Action {
        if s.get("retries").is_some() && policy.retries > 0 {
            return Err(s.err(
                "retries",
                "an action is never retried: it may have happened",
            ));
        }
        if !policy.cache_ttl.is_zero() {
            return Err(s.err("cache_ttl", "an action is never cached"));
        }
        policy.retries = 0;
    }
    policy.breaker.failures = s.integer(
        "breaker_failures",
        0,
        1000,
        i64::from(policy.breaker.failures),
    )? as u32;
    if let Some(d) = s.duration("breaker_open_for")? {
        policy.breaker.open_for = d;
    }
    Ok((policy, own))
}

/// A result as the logs may show it: the number of fields, never their values. Error
/// messages are built by connectors to carry no personal data (see the module docs).
struct Shape<'a>(&'a CallResult);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(Some(record)) => write!(f, "found ({} fields)", record.len()),
            Ok(None) => f.write_str("not found"),
            Err(e) => write!(f, "error: {e}"),
        }
    }
}
