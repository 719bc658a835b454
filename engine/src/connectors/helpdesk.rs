//! Kind `helpdesk`: an ITIL service desk (users, incidents and requests) reached over SQL
//! (a `[[connections]]` entry of kind `sql`: PostgreSQL, SQLite, or an ODBC-style DSN) or
//! over its REST web service (kind `rest`). The connection's kind selects the backend.
//!
//! Each `[[data_sources]]` / `[[actions]]` entry is one `operation`. With SQL, the entry's
//! `query` maps the operation onto the customer's schema (parameterised with `:name`; the
//! defaults below fit the generic schema of `docs/integrations.md`), and the columns are
//! named as the operation's fields (`SELECT ... AS vip`). With REST, `method`, `path`,
//! `body` and `fields` do the same. Either way the record is checked against the
//! operation's contract (`typed`): a VIP flag that is not a boolean, or a ticket number
//! that is missing, is an error and the flow takes its error branch.
//!
//! The SQL account should be a profile with only the rights these queries need (read users
//! and tickets, insert tickets): data sources run on a read-only pool anyway.

use std::sync::Arc;

use super::kinds::{BuildContext, BuildFuture, ConnectorKind};
use super::rest::RestClient;
use super::rest_op::{self, Default as RestDefault, RestOp};
use super::settings::Settings;
use super::sql::SqlConnector;
use super::typed::{self, opt, req, Field, FieldType::*};
use super::{CallFuture, CallResult, Connector, Record, Role};
use crate::config::ConnectorConfig;

/// One operation: role, default SQL query and REST request, the record's contract.
pub struct Operation {
    pub name: &'static str,
    pub role: Role,
    pub sql: &'static str,
    rest: RestDefault,
    pub output: &'static [Field],
}

/// The operations, as documented in `docs/integrations.md`.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "user_by_phone",
        role: Role::DataSource,
        sql: "SELECT id, name, site, vip, language FROM users WHERE phone = :number",
        rest: RestDefault {
            method: "GET",
            path: "/users?phone={number}",
            body: None,
            fields: &[
                ("id", "/0/id"),
                ("name", "/0/name"),
                ("site", "/0/site"),
                ("vip", "/0/vip"),
                ("language", "/0/language"),
            ],
        },
        output: &[
            req("id", Id),
            req("name", Text),
            opt("site", Text),
            req("vip", Bool),
            opt("language", Text),
        ],
    },
    Operation {
        name: "ticket_status",
        role: Role::DataSource,
        sql: "SELECT number AS ticket, status, summary FROM tickets WHERE number = :ticket",
        rest: RestDefault {
            method: "GET",
            path: "/tickets/{ticket}",
            body: None,
            fields: &[("ticket", "/number"), ("status", "/status"), ("summary", "/summary")],
        },
        output: &[req("ticket", Id), req("status", Text), opt("summary", Text)],
    },
    Operation {
        name: "open_tickets",
        role: Role::DataSource,
        sql: "SELECT count(*) AS count, max(number) AS latest FROM tickets \
              WHERE user_id = :user AND status <> 'closed'",
        rest: RestDefault {
            method: "GET",
            path: "/users/{user}/tickets?state=open",
            body: None,
            fields: &[("count", "/count"), ("latest", "/items/0/number")],
        },
        output: &[req("count", Integer), opt("latest", Id)],
    },
    Operation {
        name: "create_incident",
        role: Role::Action,
        sql: "INSERT INTO tickets (user_id, phone, category, summary, priority, recording, status, opened_at) \
              VALUES (:user, :number, :category, :summary, :priority, :recording, 'new', CURRENT_TIMESTAMP) \
              RETURNING number AS ticket",
        rest: RestDefault {
            method: "POST",
            path: "/incidents",
            body: Some(
                r#"{"user": "{user}", "phone": "{number}", "category": "{category}", "summary": "{summary}", "priority": "{priority}", "recording": "{recording}"}"#,
            ),
            fields: &[("ticket", "/number")],
        },
        output: &[req("ticket", Id)],
    },
];

const OWN_SETTINGS: &[&str] = &["connection", "operation", "query"];

pub(super) struct HelpdeskKind;

impl ConnectorKind for HelpdeskKind {
    fn name(&self) -> &'static str {
        "helpdesk"
    }

    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, cx: &'a BuildContext<'a>) -> BuildFuture<'a> {
        Box::pin(async move {
            let known: Vec<&str> = OWN_SETTINGS
                .iter()
                .chain(rest_op::SETTINGS)
                .copied()
                .collect();
            let s = Settings::new(cfg, &known)?;
            let op = typed::operation(
                &s,
                "a helpdesk",
                OPERATIONS,
                |o| o.name,
                |o| o.role,
                cx.role,
            )?;
            let conn = s.required_string("connection")?;
            let backend = if cx.connections.sql(conn).is_some() {
                if let Some(k) = rest_op::SETTINGS.iter().find(|k| s.get(k).is_some()) {
                    return Err(s.err(
                        k,
                        "is a REST setting; this connection is SQL (give `query`)",
                    ));
                }
                // The kind `sql` reads `query` (defaulted here) and `connection`.
                let mut sql_cfg = cfg.clone();
                sql_cfg.settings.remove("operation");
                sql_cfg
                    .settings
                    .entry("query")
                    .or_insert_with(|| toml::Value::String(op.sql.to_string()));
                let sql_s = Settings::new(&sql_cfg, &["connection", "query"])?;
                let sql = SqlConnector::build(&sql_s, cx).await?;
                if let Some(f) = op
                    .output
                    .iter()
                    .find(|f| f.required && !sql.columns().iter().any(|c| c == f.name))
                {
                    return Err(s.err(
                        "query",
                        format!(
                            "returns no column `{}` (columns: {}): name it with `AS {}`",
                            f.name,
                            sql.columns().join(", "),
                            f.name
                        ),
                    ));
                }
                Backend::Sql(sql)
            } else if let Some(client) = cx.connections.rest(conn) {
                if s.get("query").is_some() {
                    return Err(s.err("query", "is an SQL setting; this connection is REST"));
                }
                Backend::Rest(client, RestOp::build(&s, "", &op.rest)?)
            } else {
                return Err(s.err(
                    "connection",
                    format!("no connection `{conn}` in [[connections]]"),
                ));
            };
            Ok(Arc::new(Helpdesk {
                name: s.name().to_string(),
                op,
                backend,
            }) as Arc<dyn Connector>)
        })
    }
}

enum Backend {
    Sql(SqlConnector),
    Rest(Arc<RestClient>, RestOp),
}

struct Helpdesk {
    name: String,
    op: &'static Operation,
    backend: Backend,
}

impl Helpdesk {
    async fn run(&self, params: &Record) -> CallResult {
        let record = match &self.backend {
            Backend::Sql(sql) => sql.run(params).await?,
            Backend::Rest(client, request) => request.run(client, params).await?,
        };
        match record {
            None => Ok(None),
            Some(r) => typed::check(&self.name, self.op.output, r).map(Some),
        }
    }
}

impl Connector for Helpdesk {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "helpdesk"
    }

    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }

    fn probe(&self) -> Option<CallFuture<'_>> {
        match &self.backend {
            Backend::Sql(sql) => sql.probe(),
            Backend::Rest(..) => None,
        }
    }
}
