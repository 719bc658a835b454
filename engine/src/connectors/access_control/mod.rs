//! Kind `access_control`: badge holders, visitors, doors and alarms of an access-control
//! system's REST API (a `[[connections]]` entry of kind `rest`: base URL, site CA, API key,
//! token session).
//!
//! Each `[[data_sources]]` / `[[actions]]` entry is one `operation` of the table below,
//! with the request of the generic API (`docs/integrations.md`) unless the entry overrides
//! `method`, `path`, `body`, `fields` or `not_found_status`. Records are checked against
//! the operation's output contract (`typed`): a field of the wrong type is an error.
//!
//! `open_door` and `block_badge` act for a person, so they authenticate the caller's PIN
//! themselves in the same call (the `pin_*` request, by default the `holder_by_pin`
//! request) rather than trust that the flow did: the action is refused without a valid PIN,
//! whatever the flow says. Both are rate limited per caller and target, and every attempt
//! is written to the audit log before anything is opened (see `guarded`).

mod guarded;

use std::sync::Arc;

use super::kinds::{BuildContext, BuildFuture, ConnectorKind};
use super::rest::RestClient;
use super::rest_op::{self, Default as RestDefault, RestOp};
use super::settings::Settings;
use super::typed::{self, opt, req, Field, FieldType::*};
use super::{CallFuture, CallResult, Connector, ConnectorError, Record, Role};
use crate::config::ConnectorConfig;

/// One operation: its role, the generic API's request, and the record's contract.
pub struct Operation {
    pub name: &'static str,
    pub role: Role,
    request: RestDefault,
    pub output: &'static [Field],
    /// Acts for a person: PIN authentication, rate limit, audit.
    pin: bool,
}

const HOLDER: &[Field] = &[req("id", Id), req("name", Text), opt("badge", Id)];

/// The operations, as documented in `docs/integrations.md`.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "holder_by_pin",
        role: Role::DataSource,
        request: RestDefault {
            method: "POST",
            path: "/holders/search",
            body: Some(r#"{"pin": "{pin}"}"#),
            fields: &[("id", "/id"), ("name", "/name"), ("badge", "/badge")],
        },
        output: HOLDER,
        pin: false,
    },
    Operation {
        name: "holder_by_badge",
        role: Role::DataSource,
        request: RestDefault {
            method: "GET",
            path: "/badges/{badge}/holder",
            body: None,
            fields: &[
                ("id", "/id"),
                ("name", "/name"),
                ("badge", "/badge"),
                ("blocked", "/blocked"),
            ],
        },
        output: &[
            req("id", Id),
            req("name", Text),
            opt("badge", Id),
            opt("blocked", Bool),
        ],
        pin: false,
    },
    Operation {
        name: "appointments_today",
        role: Role::DataSource,
        request: RestDefault {
            method: "GET",
            path: "/appointments?host={host}&date={date}",
            body: None,
            fields: &[
                ("visit", "/0/id"),
                ("visitor", "/0/visitor"),
                ("time", "/0/time"),
                ("confirmed", "/0/confirmed"),
            ],
        },
        output: &[
            req("visit", Id),
            req("visitor", Text),
            opt("time", Text),
            req("confirmed", Bool),
        ],
        pin: false,
    },
    Operation {
        name: "recent_alarms",
        role: Role::DataSource,
        request: RestDefault {
            method: "GET",
            path: "/alarms?since={since}",
            body: None,
            fields: &[
                ("alarm", "/0/id"),
                ("door", "/0/door"),
                ("time", "/0/time"),
                ("kind", "/0/kind"),
            ],
        },
        output: &[
            req("alarm", Id),
            req("door", Id),
            req("time", Text),
            opt("kind", Text),
        ],
        pin: false,
    },
    Operation {
        name: "create_visit",
        role: Role::Action,
        request: RestDefault {
            method: "POST",
            path: "/visits",
            body: Some(r#"{"visitor": "{visitor}", "host": "{host}", "time": "{time}"}"#),
            fields: &[("visit", "/id")],
        },
        output: &[req("visit", Id)],
        pin: false,
    },
    Operation {
        name: "confirm_visit",
        role: Role::Action,
        request: RestDefault {
            method: "POST",
            path: "/visits/{visit}/confirm",
            body: None,
            fields: &[],
        },
        output: &[],
        pin: false,
    },
    Operation {
        name: "block_badge",
        role: Role::Action,
        request: RestDefault {
            method: "POST",
            path: "/badges/{badge}/block",
            body: Some(r#"{"by": "{holder}"}"#),
            fields: &[],
        },
        output: &[],
        pin: true,
    },
    Operation {
        name: "open_door",
        role: Role::Action,
        request: RestDefault {
            method: "POST",
            path: "/doors/{door}/open",
            body: Some(r#"{"holder": "{holder}"}"#),
            fields: &[],
        },
        output: &[],
        pin: true,
    },
    Operation {
        name: "ack_alarm",
        role: Role::Action,
        request: RestDefault {
            method: "POST",
            path: "/alarms/{alarm}/ack",
            body: Some(r#"{"by": "{by}"}"#),
            fields: &[],
        },
        output: &[],
        pin: false,
    },
];

const HOLDER_BY_PIN: usize = 0;

const OWN_SETTINGS: &[&str] = &["connection", "operation", "rate_max", "rate_per"];

pub(super) struct AccessControlKind;

impl ConnectorKind for AccessControlKind {
    fn name(&self) -> &'static str {
        "access_control"
    }

    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, cx: &'a BuildContext<'a>) -> BuildFuture<'a> {
        Box::pin(async move { build(cfg, cx) })
    }
}

fn build(
    cfg: &ConnectorConfig,
    cx: &BuildContext<'_>,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    let pin_keys: Vec<String> = rest_op::SETTINGS
        .iter()
        .map(|k| format!("pin_{k}"))
        .collect();
    let known: Vec<&str> = OWN_SETTINGS
        .iter()
        .chain(rest_op::SETTINGS)
        .copied()
        .chain(pin_keys.iter().map(String::as_str))
        .collect();
    let s = Settings::new(cfg, &known)?;
    let op = typed::operation(
        &s,
        "an access-control",
        OPERATIONS,
        |o| o.name,
        |o| o.role,
        cx.role,
    )?;
    let conn = s.required_string("connection")?;
    let client = cx.connections.rest(conn).ok_or_else(|| {
        s.err(
            "connection",
            format!("no REST connection `{conn}` in [[connections]]"),
        )
    })?;
    let request = RestOp::build(&s, "", &op.request)?;
    if !op.pin {
        if let Some(k) = known
            .iter()
            .find(|k| (k.starts_with("pin_") || k.starts_with("rate_")) && s.get(k).is_some())
        {
            return Err(s.err(
                k,
                format!(
                    "only PIN-authenticated operations (open_door, block_badge) take it, not `{}`",
                    op.name
                ),
            ));
        }
        return Ok(Arc::new(AccessControl {
            name: s.name().to_string(),
            op,
            client,
            request,
        }));
    }
    let pin_request = RestOp::build(&s, "pin_", &OPERATIONS[HOLDER_BY_PIN].request)?;
    let guarded = guarded::PinAction::build(&s, cx, op, client, request, pin_request)?;
    Ok(Arc::new(guarded))
}

/// An operation without a person behind it: one request, one checked record.
struct AccessControl {
    name: String,
    op: &'static Operation,
    client: Arc<RestClient>,
    request: RestOp,
}

impl AccessControl {
    async fn run(&self, params: &Record) -> CallResult {
        match self.request.run(&self.client, params).await? {
            None => Ok(None),
            Some(record) => typed::check(&self.name, self.op.output, record).map(Some),
        }
    }
}

impl Connector for AccessControl {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "access_control"
    }

    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }
}
