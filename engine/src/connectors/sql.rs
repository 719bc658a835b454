//! Kind `sql`: one SQL statement against a SQLite database, through an sqlx pool.
//!
//! A data source runs a `SELECT` and returns its first row as the record (column name →
//! JSON value); an action runs any one statement and returns `{"rows_affected": n}`.
//! Parameters are written `:name` and bound from the step's `params` (see `sql_params`).
//!
//! Checked at start-up, so that a wrong query never meets a caller: the settings, the
//! parameter names, and the statement itself, which is prepared against the database (a
//! missing table or column fails here, with the configuration key). A data source's pool
//! runs with `PRAGMA query_only`, so SQLite itself refuses writes from a lookup.
//!
//! Types. SQLite values carry their own storage class, mapped to JSON as: INTEGER → number,
//! REAL → number, TEXT → string, NULL → null, BLOB → lowercase hex string. SQLite has no
//! boolean, and flows test `contact.vip == true`, so columns named in `booleans` turn 0/1
//! into false/true. Parameters bind by their JSON type: string → TEXT, integer → INTEGER,
//! number → REAL, bool → 0/1, null → NULL; arrays and objects are refused (an error result).
//!
//! PostgreSQL is planned for connectors (a helpdesk's database), but sqlx's `postgres`
//! feature is not built yet: `postgres:` URLs are refused with that explanation.
//! This module and `storage` are the only places naming sqlx (STYLE §9).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Number, Value};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{
    Column, ConnectOptions, Connection, Executor, Row, Sqlite, Statement, TypeInfo, ValueRef,
};

use super::settings::Settings;
use super::sql_params::{self, Rewritten};
use super::{CallFuture, Connector, ConnectorError, ConnectorResult, Role};
use crate::config::ConnectorConfig;

const SETTINGS: &[&str] = &[
    "database",
    "url",
    "query",
    "init_sql",
    "max_connections",
    "booleans",
];

pub(super) struct SqlConnector {
    name: String,
    role: Role,
    pool: SqlitePool,
    query: Rewritten,
    booleans: Vec<String>,
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

impl SqlConnector {
    pub(super) async fn build(
        cfg: &ConnectorConfig,
        role: Role,
    ) -> Result<SqlConnector, ConnectorError> {
        let s = Settings::new(cfg, SETTINGS)?;
        let query =
            sql_params::rewrite(s.required_string("query")?).map_err(|p| s.err("query", p))?;
        if role == Role::DataSource
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
        let max_connections = s.integer("max_connections", 1, 64, 4)? as u32;
        let booleans: Vec<String> = s
            .strings("booleans")?
            .into_iter()
            .map(str::to_string)
            .collect();

        let (options, source_key) = connect_options(&s)?;
        if let Some(script) = s.string("init_sql")? {
            init_database(&s, &options, Path::new(script)).await?;
        } else if let Some(path) = s.string("database")? {
            if !Path::new(path).exists() {
                return Err(s.err(
                    "database",
                    format!("{path} does not exist (give `init_sql` to create it)"),
                ));
            }
        }
        let options = options.busy_timeout(Duration::from_secs(2));
        // A lookup must not write, whatever its text says: SQLite enforces it per connection.
        let options = if role == Role::DataSource {
            options.pragma("query_only", "ON")
        } else {
            options
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(|e| s.err(source_key, format!("cannot open: {e}")))?;

        let statement = (&pool)
            .prepare(&query.sql)
            .await
            .map_err(|e| s.err("query", format!("SQLite refuses it: {e}")))?;
        let columns: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
        if role == Role::DataSource && columns.is_empty() {
            return Err(s.err("query", "returns no columns: a data source needs a SELECT"));
        }
        if let Some(b) = booleans.iter().find(|b| !columns.contains(&b.as_str())) {
            return Err(s.err(
                "booleans",
                format!(
                    "`{b}` is not a column of the query (columns: {})",
                    columns.join(", ")
                ),
            ));
        }
        Ok(SqlConnector {
            name: s.name().to_string(),
            role,
            pool,
            query,
            booleans,
        })
    }

    async fn run(&self, params: &Map<String, Value>) -> ConnectorResult {
        let mut q: Query<'_> = sqlx::query(&self.query.sql);
        for name in &self.query.params {
            let value = params
                .get(name)
                .ok_or_else(|| format!("parameter `{name}` is missing"))?;
            q = bind(q, name, value)?;
        }
        match self.role {
            Role::DataSource => match q.fetch_optional(&self.pool).await.map_err(db_error)? {
                None => Ok(None),
                Some(row) => self.record(&row).map(Some),
            },
            Role::Action => {
                let done = q.execute(&self.pool).await.map_err(db_error)?;
                let mut record = Map::new();
                record.insert("rows_affected".into(), Value::from(done.rows_affected()));
                Ok(Some(record))
            }
        }
    }

    fn record(&self, row: &SqliteRow) -> Result<Map<String, Value>, String> {
        let mut record = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let name = column.name();
            let value = to_json(row, i).map_err(|e| format!("column `{name}`: {e}"))?;
            let value = if self.booleans.iter().any(|b| b == name) {
                match value {
                    Value::Null => Value::Null,
                    Value::Number(n) if n.is_i64() => Value::Bool(n.as_i64() != Some(0)),
                    _ => {
                        return Err(format!(
                            "column `{name}` is listed in `booleans` but is not an integer"
                        ))
                    }
                }
            } else {
                value
            };
            record.insert(name.to_string(), value);
        }
        Ok(record)
    }
}

impl Connector for SqlConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sql"
    }

    fn call<'a>(&'a self, params: &'a Map<String, Value>) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }
}

/// The database from `database` (a file) or `url`, and which key named it.
fn connect_options(
    s: &Settings<'_>,
) -> Result<(SqliteConnectOptions, &'static str), ConnectorError> {
    match (s.string("database")?, s.string("url")?) {
        (Some(_), Some(_)) => Err(s.err("url", "give `database` or `url`, not both")),
        (None, None) => Err(s.err(
            "database",
            "is required (the path of a SQLite file), or give `url`",
        )),
        (Some(path), None) => Ok((SqliteConnectOptions::new().filename(path), "database")),
        (None, Some(url)) => {
            if url.starts_with("postgres:") || url.starts_with("postgresql:") {
                return Err(s.err(
                    "url",
                    "PostgreSQL connectors are planned but not built in yet (sqlx's `postgres` feature is off); \
                     use a SQLite database or an `http` connector for now",
                ));
            }
            if !url.starts_with("sqlite:") {
                return Err(s.err(
                    "url",
                    "must be a `sqlite:` URL (or use `database = \"path/to/file.db\"`)",
                ));
            }
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(s.err(
                    "url",
                    "an in-memory database would be empty on every pool connection: use a file",
                ));
            }
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| s.err("url", format!("is not a SQLite URL: {e}")))?;
            Ok((options, "url"))
        }
    }
}

/// Runs the `init_sql` script once, when the database has no table yet (demos, tests), in
/// one transaction: a failing script leaves no half-built database behind.
async fn init_database(
    s: &Settings<'_>,
    options: &SqliteConnectOptions,
    script: &Path,
) -> Result<(), ConnectorError> {
    let text = std::fs::read_to_string(script)
        .map_err(|e| s.err("init_sql", format!("cannot read {}: {e}", script.display())))?;
    let fail = |e: sqlx::Error| s.err("init_sql", format!("{}: {e}", script.display()));
    let mut conn = options
        .clone()
        .create_if_missing(true)
        .connect()
        .await
        .map_err(fail)?;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        .fetch_one(&mut conn)
        .await
        .map_err(fail)?;
    if tables == 0 {
        let mut tx = conn.begin().await.map_err(fail)?;
        sqlx::raw_sql(&text).execute(&mut *tx).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
    }
    conn.close().await.map_err(fail)
}

fn bind<'q>(q: Query<'q>, name: &str, value: &Value) -> Result<Query<'q>, String> {
    Ok(match value {
        Value::Null => q.bind(None::<i64>),
        Value::Bool(b) => q.bind(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => q.bind(i),
            (None, Some(f)) if n.is_f64() => q.bind(f),
            _ => {
                return Err(format!(
                    "parameter `{name}` is an integer too large for SQLite"
                ))
            }
        },
        Value::String(s) => q.bind(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(format!(
                "parameter `{name}` is a list or a map: SQL takes a text, a number or a boolean"
            ));
        }
    })
}

/// One column of a row, by the storage class of its value (not the declared type, which
/// SQLite does not enforce and expressions do not have).
fn to_json(row: &SqliteRow, i: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    Ok(match storage.as_str() {
        "INTEGER" => Value::from(row.try_get_unchecked::<i64, _>(i)?),
        // NaN and infinities have no JSON form: null rather than a failed call.
        "REAL" => {
            Number::from_f64(row.try_get_unchecked::<f64, _>(i)?).map_or(Value::Null, Value::Number)
        }
        "BLOB" => Value::String(hex::encode(row.try_get_unchecked::<Vec<u8>, _>(i)?)),
        _ => Value::String(row.try_get_unchecked::<String, _>(i)?),
    })
}

/// sqlx's messages for SQLite carry the SQLite error text (constraint names, table names),
/// never bound values.
fn db_error(e: sqlx::Error) -> String {
    format!("database: {e}")
}
