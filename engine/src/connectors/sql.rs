//! Kind `sql`: one SQL statement against a SQLite or PostgreSQL database.
//!
//! A data source runs a `SELECT` and returns its first row as the record (column name →
//! JSON value); an action runs any one statement and returns `{"rows_affected": n}`, or its
//! first row when the statement returns rows (`INSERT ... RETURNING id`). Parameters are
//! written `:name` and bound from the step's `params` (see `sql_params`). The database is
//! given inline (`database`, `url`, `dsn`: see `sql_pool`) or as a named
//! `[[connections]]` entry (`connection = "helpdesk_db"`).
//!
//! Checked at start-up, so that a wrong query never meets a caller: the settings, the
//! parameter names, and the statement itself, which is prepared against the database (a
//! missing table or column fails here, with the configuration key).
//!
//! SQLite has no boolean, and flows test `contact.vip == true`, so columns named in
//! `booleans` turn 0/1 into false/true.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::kinds::{BuildContext, BuildFuture, ConnectorKind};
use super::settings::Settings;
use super::sql_params::{self};
use super::sql_pool::{Prepared, SqlConnection, CONNECTION_SETTINGS};
use super::{CallError, CallFuture, CallResult, Connector, ConnectorError, Record, Role};
use crate::config::ConnectorConfig;

const OWN_SETTINGS: &[&str] = &["connection", "query", "booleans"];

pub(super) struct SqlKind;

impl ConnectorKind for SqlKind {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, cx: &'a BuildContext<'a>) -> BuildFuture<'a> {
        Box::pin(async move {
            let known: Vec<&str> = OWN_SETTINGS
                .iter()
                .chain(CONNECTION_SETTINGS)
                .copied()
                .collect();
            let s = Settings::new(cfg, &known)?;
            let c = SqlConnector::build(&s, cx).await?;
            Ok(Arc::new(c) as Arc<dyn Connector>)
        })
    }
}

pub(super) struct SqlConnector {
    name: String,
    role: Role,
    db: Arc<SqlConnection>,
    statement: Prepared,
    booleans: Vec<String>,
}

impl SqlConnector {
    /// Builds from settings that hold `query`, `booleans`, and the database (inline or
    /// `connection`); shared with the helpdesk's SQL backend.
    pub(super) async fn build(
        s: &Settings<'_>,
        cx: &BuildContext<'_>,
    ) -> Result<SqlConnector, ConnectorError> {
        let db = connection(s, cx).await?;
        let query = sql_params::rewrite(s.required_string("query")?, db.numbering())
            .map_err(|p| s.err("query", p))?;
        if cx.role == Role::DataSource
            && !matches!(query.first_keyword.as_str(), "SELECT" | "WITH" | "VALUES")
        {
            return Err(s.err(
                "query",
                format!(
                    "a data source runs a SELECT, not {}: writes belong in [[actions]]",
                    query.first_keyword
                ),
            ));
        }
        let booleans: Vec<String> = s
            .strings("booleans")?
            .into_iter()
            .map(str::to_string)
            .collect();
        let statement = db
            .prepare(cx.role, query)
            .await
            .map_err(|e| s.err("query", format!("the database refuses it: {e}")))?;
        if cx.role == Role::DataSource && statement.columns.is_empty() {
            return Err(s.err("query", "returns no columns: a data source needs a SELECT"));
        }
        if let Some(b) = booleans.iter().find(|b| !statement.columns.contains(b)) {
            return Err(s.err(
                "booleans",
                format!(
                    "`{b}` is not a column of the query (columns: {})",
                    statement.columns.join(", ")
                ),
            ));
        }
        Ok(SqlConnector {
            name: s.name().to_string(),
            role: cx.role,
            db,
            statement,
            booleans,
        })
    }

    pub(super) fn columns(&self) -> &[String] {
        &self.statement.columns
    }

    pub(super) async fn run(&self, params: &Record) -> CallResult {
        match self.db.run(self.role, &self.statement, params).await? {
            None => Ok(None),
            Some(record) => self.booleans(record).map(Some),
        }
    }

    fn booleans(&self, record: Record) -> Result<Record, CallError> {
        let mut out = Map::new();
        for (name, value) in record {
            let value = if self.booleans.contains(&name) {
                match value {
                    Value::Null | Value::Bool(_) => value,
                    Value::Number(n) if n.is_i64() => Value::Bool(n.as_i64() != Some(0)),
                    _ => {
                        return Err(CallError::BadField {
                            source_name: self.name.clone(),
                            field: name,
                            problem: "is listed in `booleans` but is not an integer".into(),
                        })
                    }
                }
            } else {
                value
            };
            out.insert(name, value);
        }
        Ok(out)
    }
}

impl Connector for SqlConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sql"
    }

    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }

    fn probe(&self) -> Option<CallFuture<'_>> {
        Some(Box::pin(async move {
            self.db.ping(self.role).await.map(|()| None)
        }))
    }
}

/// The database of `s`: the named `connection`, or its own inline settings.
async fn connection(
    s: &Settings<'_>,
    cx: &BuildContext<'_>,
) -> Result<Arc<SqlConnection>, ConnectorError> {
    match s.string("connection")? {
        Some(name) => {
            if let Some(k) = CONNECTION_SETTINGS.iter().find(|k| s.get(k).is_some()) {
                return Err(s.err(k, "belongs to the connection: give `connection` or the database settings, not both"));
            }
            cx.connections.sql(name).ok_or_else(|| {
                s.err(
                    "connection",
                    format!("no SQL connection `{name}` in [[connections]]"),
                )
            })
        }
        None => Ok(Arc::new(SqlConnection::build(s, cx.secrets).await?)),
    }
}
