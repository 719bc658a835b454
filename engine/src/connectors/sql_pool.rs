//! An SQL connection of connectors: SQLite (a file) or PostgreSQL (a server), through sqlx.
//!
//! Reached by `database` (a SQLite file), `url` (`sqlite:` or `postgres://`), or `dsn`, an
//! ODBC-style connection string as helpdesk products document them
//! (`Driver=PostgreSQL;Server=db;Port=5432;Database=helpdesk;Uid=svi`), with `password` as
//! a secret setting. Each connection has two pools, opened when first needed: a read-only
//! one for data sources (SQLite's `query_only`, PostgreSQL's
//! `default_transaction_read_only`), so that a lookup cannot write whatever its text says,
//! and a read-write one for actions.
//!
//! Values. SQLite values carry their own storage class: INTEGER and REAL → number, TEXT →
//! text, NULL → null, BLOB → lowercase hex. PostgreSQL columns map by type: integers,
//! floats, booleans, text types, dates and times (ISO 8601 text), JSON. Other types (NUMERIC,
//! UUID...) must be cast in the query (`::text`). Parameters bind by their JSON type; for
//! PostgreSQL, by the type the server infers for each parameter when the statement is
//! prepared at start-up, so a ticket number keyed as digits compares with an integer column.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Number, Value};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{
    Column, ConnectOptions, Connection, Either, Executor, Row, Statement, TypeInfo, ValueRef,
};
use tokio::sync::OnceCell;

use super::kinds::Secrets;
use super::settings::Settings;
use super::sql_params::{Numbered, Rewritten};
use super::{CallError, Record, Role};

/// The connection settings of a SQL connection (inline in kind `sql`, or `[[connections]]`).
pub(super) const CONNECTION_SETTINGS: &[&str] = &[
    "database",
    "url",
    "dsn",
    "password",
    "init_sql",
    "max_connections",
];

enum Options {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(super) struct SqlConnection {
    options: Options,
    max_connections: u32,
    read: OnceCell<Pool>,
    write: OnceCell<Pool>,
}

/// A statement prepared at start-up: its text and, for PostgreSQL, each parameter's type.
pub(super) struct Prepared {
    pub query: Rewritten,
    pub columns: Vec<String>,
    param_types: Vec<String>,
}

impl SqlConnection {
    /// From the connection settings of `s`; `init_sql` runs here (SQLite only).
    pub(super) async fn build(
        s: &Settings<'_>,
        secrets: &Secrets<'_>,
    ) -> Result<SqlConnection, ConnectorError> {
        let max_connections = s.integer("max_connections", 1, 64, 4)? as u32;
        let password = secrets.get(s, "password")?;
        let options =
            match (s.string("database")?, s.string("url")?, s.string("dsn")?) {
                (Some(path), None, None) => {
                    let options = SqliteConnectOptions::new().filename(path);
                    if s.string("init_sql")?.is_none() && !Path::new(path).exists() {
                        return Err(s.err(
                            "database",
                            format!("{path} does not exist (give `init_sql` to create it)"),
                        ));
                    }
                    Options::Sqlite(options)
                }
                (None, Some(url), None) if url.starts_with("sqlite:") => {
                    if url.contains(":memory:") || url.contains("mode=memory") {
                        return Err(s.err(
                        "url",
                        "an in-memory database would be empty on every pool connection: use a file",
                    ));
                    }
                    Options::Sqlite(
                        SqliteConnectOptions::from_str(url)
                            .map_err(|e| s.err("url", format!("is not a SQLite URL: {e}")))?,
                    )
                }
                (None, Some(url), None)
                    if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
                {
                    let mut o = PgConnectOptions::from_str(url)
                        .map_err(|_| s.err("url", "is not a PostgreSQL URL"))?;
                    if let Some(p) = &password {
                        o = o.password(p.expose());
                    }
                    Options::Postgres(o)
                }
                (None, Some(_), None) => return Err(s.err(
                    "url",
                    "must be a `sqlite:` or `postgres://` URL (or use `database = \"file.db\"`)",
                )),
                (None, None, Some(dsn)) => Options::Postgres(
                    from_dsn(dsn, password.as_ref()).map_err(|p| s.err("dsn", p))?,
                ),
                (None, None, None) => {
                    return Err(s.err(
                        "database",
                        "is required (the path of a SQLite file), or give `url` or `dsn`",
                    ))
                }
                _ => return Err(s.err("url", "give one of `database`, `url` and `dsn`")),
            };
        let options = match options {
            Options::Sqlite(o) => {
                if let Some(script) = s.string("init_sql")? {
                    init_sqlite(s, &o, Path::new(script)).await?;
                }
                Options::Sqlite(o.busy_timeout(Duration::from_secs(2)))
            }
            Options::Postgres(o) => {
                if s.get("init_sql").is_some() {
                    return Err(s.err("init_sql", "creates SQLite demo databases only"));
                }
                // The password is a secret: never in a log line (sqlx logs statements).
                Options::Postgres(o.application_name("svi").disable_statement_logging())
            }
        };
        Ok(SqlConnection {
            options,
            max_connections,
            read: OnceCell::new(),
            write: OnceCell::new(),
        })
    }

    pub(super) fn numbering(&self) -> Numbered {
        match self.options {
            Options::Sqlite(_) => Numbered::Question,
            Options::Postgres(_) => Numbered::Dollar,
        }
    }

    /// The pool for `role`: read-only for data sources.
    pub(super) async fn pool(&self, role: Role) -> Result<Pool, sqlx::Error> {
        let cell = match role {
            Role::DataSource => &self.read,
            Role::Action => &self.write,
        };
        let read_only = role == Role::DataSource;
        cell.get_or_try_init(|| async {
            Ok(match &self.options {
                Options::Sqlite(o) => {
                    let o = if read_only {
                        o.clone().pragma("query_only", "ON")
                    } else {
                        o.clone()
                    };
                    Pool::Sqlite(
                        SqlitePoolOptions::new()
                            .max_connections(self.max_connections)
                            .connect_with(o)
                            .await?,
                    )
                }
                Options::Postgres(o) => {
                    let o = if read_only {
                        o.clone().options([("default_transaction_read_only", "on")])
                    } else {
                        o.clone()
                    };
                    Pool::Postgres(
                        PgPoolOptions::new()
                            .max_connections(self.max_connections)
                            .acquire_timeout(Duration::from_secs(5))
                            .connect_with(o)
                            .await?,
                    )
                }
            })
        })
        .await
        .cloned()
    }

    /// Prepares `query` on the `role` pool: a missing table or column fails here.
    pub(super) async fn prepare(
        &self,
        role: Role,
        query: Rewritten,
    ) -> Result<Prepared, sqlx::Error> {
        let (columns, param_types) = describe(self.pool(role).await?, query.sql.clone()).await?;
        Ok(Prepared {
            query,
            columns,
            param_types,
        })
    }

    /// Runs a prepared statement: the first row as a record (or `None`), or, when the
    /// statement returns no columns, `{"rows_affected": n}`.
    pub(super) async fn run(
        &self,
        role: Role,
        st: &Prepared,
        params: &Record,
    ) -> Result<Option<Record>, CallError> {
        let values = st
            .query
            .params
            .iter()
            .map(|name| {
                params
                    .get(name)
                    .ok_or_else(|| CallError::MissingParam(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let returns_rows = !st.columns.is_empty();
        match self.pool(role).await.map_err(db_error)? {
            Pool::Sqlite(pool) => {
                let mut q = sqlx::query::<sqlx::Sqlite>(&st.query.sql);
                for (name, v) in st.query.params.iter().zip(values) {
                    q = bind_sqlite(q, name, v)?;
                }
                if returns_rows {
                    let row = q.fetch_optional(&pool).await.map_err(db_error)?;
                    row.map(|r| sqlite_record(&r)).transpose()
                } else {
                    let done = q.execute(&pool).await.map_err(db_error)?;
                    Ok(Some(affected(done.rows_affected())))
                }
            }
            Pool::Postgres(pool) => {
                let mut q = sqlx::query::<sqlx::Postgres>(&st.query.sql);
                for (i, (name, v)) in st.query.params.iter().zip(values).enumerate() {
                    let ty = st.param_types.get(i).map(String::as_str).unwrap_or("TEXT");
                    q = bind_pg(q, name, v, ty)?;
                }
                if returns_rows {
                    let row = q.fetch_optional(&pool).await.map_err(db_error)?;
                    row.map(|r| pg_record(&r)).transpose()
                } else {
                    let done = q.execute(&pool).await.map_err(db_error)?;
                    Ok(Some(affected(done.rows_affected())))
                }
            }
        }
    }

    /// `SELECT 1`: the circuit breaker's probe.
    pub(super) async fn ping(&self, role: Role) -> Result<(), CallError> {
        match self.pool(role).await.map_err(db_error)? {
            Pool::Sqlite(p) => sqlx::query("SELECT 1")
                .execute(&p)
                .await
                .map(drop)
                .map_err(db_error),
            Pool::Postgres(p) => sqlx::query("SELECT 1")
                .execute(&p)
                .await
                .map(drop)
                .map_err(db_error),
        }
    }
}

use super::ConnectorError;

/// The boxed future of a statement's description. Boxed as `Send` here, where its lifetimes
/// are concrete: inside the kinds' boxed build futures, the compiler cannot prove sqlx's
/// `&mut Connection` executors `Send` for every lifetime (rust-lang/rust#102211).
type Describe =
    Pin<Box<dyn Future<Output = Result<(Vec<String>, Vec<String>), sqlx::Error>> + Send>>;

/// The columns of `sql` and, for PostgreSQL, its parameters' types.
fn describe(pool: Pool, sql: String) -> Describe {
    Box::pin(async move {
        match pool {
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                let st = (&mut *conn).prepare(&sql).await?;
                let columns = st.columns().iter().map(|c| c.name().to_string()).collect();
                Ok((columns, Vec::new()))
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                let st = (&mut *conn).prepare(&sql).await?;
                let columns = st.columns().iter().map(|c| c.name().to_string()).collect();
                let types = match st.parameters() {
                    Some(Either::Left(types)) => {
                        types.iter().map(|t| t.name().to_string()).collect()
                    }
                    _ => Vec::new(),
                };
                Ok((columns, types))
            }
        }
    })
}

fn affected(n: u64) -> Record {
    let mut record = Map::new();
    record.insert("rows_affected".into(), Value::from(n));
    record
}

/// `Driver=...;Server=host;Port=5432;Database=db;Uid=user;Pwd=...` (keys case-insensitive;
/// `Host`, `User`, `Username`, `Dbname` accepted). A `Pwd` in the string is refused: the
/// password is the `password` secret setting.
fn from_dsn(
    dsn: &str,
    password: Option<&crate::secrets::Secret>,
) -> Result<PgConnectOptions, String> {
    let mut o = PgConnectOptions::new_without_pgpass();
    let mut driver = None;
    for part in dsn.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not KEY=VALUE"))?;
        let v = v.trim().trim_matches(|c| c == '{' || c == '}');
        match k.trim().to_ascii_lowercase().as_str() {
            "driver" => driver = Some(v.to_ascii_lowercase()),
            "server" | "host" | "servername" => o = o.host(v),
            "port" => o = o.port(v.parse().map_err(|_| format!("port `{v}` is not a number"))?),
            "database" | "dbname" => o = o.database(v),
            "uid" | "user" | "username" => o = o.username(v),
            "pwd" | "password" => {
                return Err("holds the password: give it as the `password` secret setting".into())
            }
            "sslmode" => {
                o = o.ssl_mode(v.parse().map_err(|_| format!("sslmode `{v}` is not known"))?)
            }
            other => return Err(format!("`{other}` is not a key this DSN reader knows (driver, server, port, database, uid, sslmode)")),
        }
    }
    match driver.as_deref() {
        Some(d) if d.contains("postgres") => {}
        Some(d) => {
            return Err(format!(
                "driver `{d}`: only PostgreSQL DSNs are supported (SQLite: use `database`)"
            ))
        }
        None => return Err("has no `Driver=` (e.g. `Driver=PostgreSQL`)".into()),
    }
    if let Some(p) = password {
        o = o.password(p.expose());
    }
    Ok(o)
}

/// Runs the `init_sql` script once, when the database has no table yet (demos, tests), in
/// one transaction: a failing script leaves no half-built database behind.
async fn init_sqlite(
    s: &Settings<'_>,
    options: &SqliteConnectOptions,
    script: &Path,
) -> Result<(), ConnectorError> {
    let text = std::fs::read_to_string(script)
        .map_err(|e| s.err("init_sql", format!("cannot read {}: {e}", script.display())))?;
    run_init(options.clone(), text)
        .await
        .map_err(|e| s.err("init_sql", format!("{}: {e}", script.display())))
}

/// Runs the script on a blocking thread of its own: sqlx's `raw_sql` on a transaction makes
/// a future the compiler cannot prove `Send` for every lifetime (rust-lang/rust#102211),
/// and this runs once at start-up.
async fn run_init(options: SqliteConnectOptions, text: String) -> Result<(), sqlx::Error> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let mut conn = options.create_if_missing(true).connect().await?;
            let tables: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
                    .fetch_one(&mut conn)
                    .await?;
            if tables == 0 {
                let mut tx = conn.begin().await?;
                sqlx::raw_sql(&text).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            conn.close().await
        })
    })
    .await
    .map_err(|e| sqlx::Error::Io(std::io::Error::other(e.to_string())))?
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

fn list_or_map(name: &str) -> CallError {
    CallError::BadParam {
        name: name.to_string(),
        problem: "is a list or a map: SQL takes a text, a number or a boolean".into(),
    }
}

fn bind_sqlite<'q>(
    q: SqliteQuery<'q>,
    name: &str,
    value: &Value,
) -> Result<SqliteQuery<'q>, CallError> {
    Ok(match value {
        Value::Null => q.bind(None::<i64>),
        Value::Bool(b) => q.bind(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => q.bind(i),
            (None, Some(f)) if n.is_f64() => q.bind(f),
            _ => {
                return Err(CallError::BadParam {
                    name: name.to_string(),
                    problem: "is an integer too large for SQLite".into(),
                })
            }
        },
        Value::String(s) => q.bind(s.clone()),
        Value::Array(_) | Value::Object(_) => return Err(list_or_map(name)),
    })
}

/// Binds `value` as the type PostgreSQL inferred for the parameter (`ty`), converting
/// digits to integers and numbers to text where the column needs it.
fn bind_pg<'q>(
    q: PgQuery<'q>,
    name: &str,
    value: &Value,
    ty: &str,
) -> Result<PgQuery<'q>, CallError> {
    let bad = |what: &str| CallError::BadParam {
        name: name.to_string(),
        problem: format!("cannot be used as {what}"),
    };
    let text = match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => return Err(list_or_map(name)),
    };
    Ok(match ty {
        "INT2" | "INT4" | "INT8" => {
            let n = text
                .map(|t| t.trim().parse::<i64>().map_err(|_| bad("an integer")))
                .transpose()?;
            match ty {
                "INT2" => q.bind(
                    n.map(|n| i16::try_from(n).map_err(|_| bad("a small integer")))
                        .transpose()?,
                ),
                "INT4" => q.bind(
                    n.map(|n| i32::try_from(n).map_err(|_| bad("an integer")))
                        .transpose()?,
                ),
                _ => q.bind(n),
            }
        }
        "FLOAT4" | "FLOAT8" => q.bind(
            text.map(|t| t.trim().parse::<f64>().map_err(|_| bad("a number")))
                .transpose()?,
        ),
        "BOOL" => q.bind(match value {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            Value::Number(n) => Some(n.as_i64() != Some(0)),
            Value::String(s) if s == "true" || s == "1" => Some(true),
            Value::String(s) if s == "false" || s == "0" => Some(false),
            _ => return Err(bad("a boolean")),
        }),
        _ => q.bind(text),
    })
}

fn db_error(e: sqlx::Error) -> CallError {
    // sqlx's messages carry the database's error text (constraint and table names),
    // never bound values.
    CallError::Database(e.to_string())
}

fn sqlite_record(row: &SqliteRow) -> Result<Record, CallError> {
    let mut record = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = sqlite_value(row, i)
            .map_err(|e| CallError::Database(format!("column `{}`: {e}", column.name())))?;
        record.insert(column.name().to_string(), value);
    }
    Ok(record)
}

/// One column by the storage class of its value (not the declared type, which SQLite does
/// not enforce and expressions do not have).
fn sqlite_value(row: &SqliteRow, i: usize) -> Result<Value, sqlx::Error> {
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

fn pg_record(row: &PgRow) -> Result<Record, CallError> {
    let mut record = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let value =
            pg_value(row, i).map_err(|e| CallError::Database(format!("column `{name}`: {e}")))?;
        record.insert(name.to_string(), value);
    }
    Ok(record)
}

fn pg_value(row: &PgRow, i: usize) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_string();
    let e = |e: sqlx::Error| e.to_string();
    Ok(match ty.as_str() {
        "BOOL" => Value::Bool(row.try_get::<bool, _>(i).map_err(e)?),
        "INT2" => Value::from(row.try_get::<i16, _>(i).map_err(e)?),
        "INT4" => Value::from(row.try_get::<i32, _>(i).map_err(e)?),
        "INT8" => Value::from(row.try_get::<i64, _>(i).map_err(e)?),
        "FLOAT4" => Number::from_f64(f64::from(row.try_get::<f32, _>(i).map_err(e)?))
            .map_or(Value::Null, Value::Number),
        "FLOAT8" => Number::from_f64(row.try_get::<f64, _>(i).map_err(e)?)
            .map_or(Value::Null, Value::Number),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => {
            Value::String(row.try_get::<String, _>(i).map_err(e)?)
        }
        "TIMESTAMPTZ" => Value::String(
            row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                .map_err(e)?
                .to_rfc3339(),
        ),
        "TIMESTAMP" => Value::String(
            row.try_get::<chrono::NaiveDateTime, _>(i)
                .map_err(e)?
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        ),
        "DATE" => Value::String(
            row.try_get::<chrono::NaiveDate, _>(i)
                .map_err(e)?
                .to_string(),
        ),
        "JSON" | "JSONB" => row.try_get::<Value, _>(i).map_err(e)?,
        other => {
            return Err(format!(
                "type {other} has no JSON form here: cast it in the query (`::text`)"
            ))
        }
    })
}
