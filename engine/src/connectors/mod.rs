//! Connectors: the data sources (`lookup` steps) and actions (`action` steps) of call flows.
//!
//! The interpreter never does I/O: it emits `EffectKind::Lookup { source, params, timeout }`
//! or `EffectKind::Action { .. }` and waits for a [`ConnectorResult`]. The call actor hands
//! the effect to [`Connectors::lookup`] / [`Connectors::action`], which find the connector by
//! name and bound the call with the step's timeout. The rule behind every choice here:
//! **a slow or failed backend must never drop the caller.** So:
//!
//! - every call ends by the step's deadline (`tokio::time::timeout`); a timeout is the value
//!   `Err("timed out after 2s")`, and the flow takes its `error` branch;
//! - every failure is a value (`Err(message)`), never a panic nor an engine error; messages
//!   name the backend (host, database) but never a parameter or a returned value, because
//!   those are personal data (caller numbers, PINs, names); the same goes for the debug log
//!   line of each call, which records the connector, the duration and the outcome's shape;
//! - everything that can be checked before the first call is checked at start-up, by
//!   [`Connectors::build`]: settings, templates, SQL syntax and tables, secrets in the
//!   environment. A configuration mistake stops the engine with `file: key: problem`; it
//!   does not wait for a caller to find it.
//!
//! Modules: `settings` (typed reading of a connector's TOML table), `sql` (SQLite queries,
//! with `sql_params` rewriting `:name` parameters), `http` (JSON over HTTP(S), with
//! `template` for `{name}` placeholders and `${ENV}` secrets).
//!
//! # Adding a connector (access control, helpdesk, ...)
//!
//! A plug-in is a type implementing [`Connector`]: `call` receives the step's evaluated
//! `params` and returns a boxed future of a [`ConnectorResult`] (`Ok(Some(record))` found,
//! `Ok(None)` not found, `Err(message)` failed). It needs no timeout of its own (the registry
//! applies the step's), but it must be cancel-safe: a timed-out call is dropped mid-flight.
//! Then either
//! 1. register an already built instance with [`Connectors::add_data_source`] /
//!    [`Connectors::add_action`] (what tests and embedders do), or
//! 2. give it a configuration kind: add the kind's name to the list checked in
//!    `config::connectors`, and one arm to `build_one` below that checks its settings with
//!    [`settings::Settings`] (unknown keys refused, errors naming `data_sources[N].key`).
//!
//! A helpdesk that speaks SQL or REST may need no code at all: an `sql` or `http` connector
//! with the right query or URL is often enough. A plug-in earns its place when the backend
//! needs a session (the access-control API's short-lived tokens), several requests per call,
//! or mapping that a JSON pointer cannot express.

mod http;
mod settings;
mod sql;
mod sql_params;
mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use ivr_scripts::ConnectorResult;
use serde_json::{Map, Value};

use crate::config::{ConnectorConfig, EngineConfig};

/// What [`Connector::call`] returns: a boxed future borrowing the connector and the params.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = ConnectorResult> + Send + 'a>>;

/// A data source or an action, shared by every call as `Arc<dyn Connector>`.
pub trait Connector: Send + Sync {
    /// The configured name, as flows write it (`lookup: directory`).
    fn name(&self) -> &str;
    /// The kind (`sql`, `http`, or a plug-in's), for logs.
    fn kind(&self) -> &'static str;
    /// Runs once with the step's parameters. Errors are values without personal data.
    fn call<'a>(&'a self, params: &'a Map<String, Value>) -> CallFuture<'a>;
}

/// Errors found while building the connectors; the engine prefixes the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A setting is missing, malformed, or refused by the backend at start-up.
    #[error("{key}: {problem}")]
    Config { key: String, problem: String },
    /// Two connectors registered under one name in the same role.
    #[error("{role} `{name}` is defined twice")]
    Duplicate { role: Role, name: String },
}

/// Whether a connector answers `lookup` steps or `action` steps. The same kind may behave
/// differently (an SQL data source is read-only; an SQL action reports `rows_affected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    DataSource,
    Action,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::DataSource => "data source",
            Role::Action => "action",
        })
    }
}

/// Where environment variables come from when `${VAR}` is expanded: the process
/// environment in production, a closure in tests (no global state to mutate).
pub type EnvLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The registry of connectors by role and name. Cheap to clone: call actors hold a copy.
#[derive(Clone, Default)]
pub struct Connectors {
    data_sources: Arc<BTreeMap<String, Arc<dyn Connector>>>,
    actions: Arc<BTreeMap<String, Arc<dyn Connector>>>,
}

impl Connectors {
    /// Builds every `[[data_sources]]` and `[[actions]]` of the configuration, opening
    /// database pools and checking queries, templates and secrets.
    pub async fn build(config: &EngineConfig) -> Result<Connectors, ConnectorError> {
        Connectors::build_with_env(config, &|name: &str| std::env::var(name).ok()).await
    }

    /// [`Connectors::build`] reading `${VAR}` secrets through `env`.
    pub async fn build_with_env(
        config: &EngineConfig,
        env: EnvLookup<'_>,
    ) -> Result<Connectors, ConnectorError> {
        let mut out = Connectors::default();
        for cfg in &config.data_sources {
            out.add_data_source(build_one(cfg, Role::DataSource, env).await?)?;
        }
        for cfg in &config.actions {
            out.add_action(build_one(cfg, Role::Action, env).await?)?;
        }
        Ok(out)
    }

    /// Registers a data source built elsewhere (a plug-in, a test double).
    pub fn add_data_source(&mut self, c: Arc<dyn Connector>) -> Result<(), ConnectorError> {
        insert(&mut self.data_sources, Role::DataSource, c)
    }

    /// Registers an action built elsewhere.
    pub fn add_action(&mut self, c: Arc<dyn Connector>) -> Result<(), ConnectorError> {
        insert(&mut self.actions, Role::Action, c)
    }

    /// Names of the data sources, for checking flows against this engine.
    pub fn data_source_names(&self) -> impl Iterator<Item = &str> {
        self.data_sources.keys().map(String::as_str)
    }

    /// Names of the actions.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    /// Runs the data source `name`, giving up after `timeout`.
    pub async fn lookup(
        &self,
        name: &str,
        params: &Map<String, Value>,
        timeout: Duration,
    ) -> ConnectorResult {
        self.run(Role::DataSource, name, params, timeout).await
    }

    /// Runs the action `name`, giving up after `timeout`.
    pub async fn action(
        &self,
        name: &str,
        params: &Map<String, Value>,
        timeout: Duration,
    ) -> ConnectorResult {
        self.run(Role::Action, name, params, timeout).await
    }

    async fn run(
        &self,
        role: Role,
        name: &str,
        params: &Map<String, Value>,
        timeout: Duration,
    ) -> ConnectorResult {
        let table = match role {
            Role::DataSource => &self.data_sources,
            Role::Action => &self.actions,
        };
        let Some(connector) = table.get(name) else {
            tracing::debug!(connector = name, %role, "no such connector");
            return Err(format!("no {role} `{name}` is configured"));
        };
        let started = tokio::time::Instant::now();
        let result = match tokio::time::timeout(timeout, connector.call(params)).await {
            Ok(result) => result,
            // Dropping the call's future cancels it: the pool connection or HTTP request
            // is released by the connector's own drop logic.
            Err(_) => Err(format!("timed out after {}", human(timeout))),
        };
        tracing::debug!(
            connector = name,
            kind = connector.kind(),
            %role,
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome = %Shape(&result),
            "connector call"
        );
        result
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

/// The one place that knows every configurable kind.
async fn build_one(
    cfg: &ConnectorConfig,
    role: Role,
    env: EnvLookup<'_>,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    match cfg.kind.as_str() {
        "sql" => Ok(Arc::new(sql::SqlConnector::build(cfg, role).await?)),
        "http" => Ok(Arc::new(http::HttpConnector::build(cfg, env)?)),
        other => Err(ConnectorError::Config {
            key: format!("{}.kind", cfg.key),
            problem: format!("`{other}` is not a connector kind (sql, http)"),
        }),
    }
}

fn insert(
    table: &mut Arc<BTreeMap<String, Arc<dyn Connector>>>,
    role: Role,
    c: Arc<dyn Connector>,
) -> Result<(), ConnectorError> {
    let map = Arc::make_mut(table);
    if map.contains_key(c.name()) {
        return Err(ConnectorError::Duplicate {
            role,
            name: c.name().to_string(),
        });
    }
    map.insert(c.name().to_string(), c);
    Ok(())
}

/// `2s`, `1500ms`: how flows write durations.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A result as the logs may show it: the number of fields, never their values. Error
/// messages are built by connectors to carry no personal data (see the module docs).
struct Shape<'a>(&'a ConnectorResult);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(Some(record)) => write!(f, "found ({} fields)", record.len()),
            Ok(None) => f.write_str("not found"),
            Err(e) => write!(f, "error: {e}"),
        }
    }
}
