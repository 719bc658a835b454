//! One operation of a plug-in over a REST connection: a request template relative to the
//! connection's base URL, and the mapping of the answer to a record. Each operation has
//! defaults for the generic API documented in `docs/integrations.md`; a real product is
//! connected by overriding them in the configuration entry (`method`, `path`, `body`,
//! `fields`, `not_found_status`), not by code.

use reqwest::Method;
use serde_json::Value;

use super::http::method_setting;
use super::rest::{self, Body, Fields, RestClient};
use super::settings::Settings;
use super::template::{self, Template};
use super::{CallError, CallResult, ConnectorError, Record};

/// The settings a REST operation reads (each may be prefixed, e.g. `pin_path`).
pub(super) const SETTINGS: &[&str] = &["method", "path", "body", "fields", "not_found_status"];

/// An operation's request for the generic API.
pub(super) struct Default {
    pub method: &'static str,
    /// Path and query relative to the base URL, with `{name}` placeholders.
    pub path: &'static str,
    /// JSON text of the body template, if any.
    pub body: Option<&'static str>,
    /// Output field → JSON pointer.
    pub fields: &'static [(&'static str, &'static str)],
}

pub(super) struct RestOp {
    method: Method,
    path: Template,
    body: Option<Body>,
    fields: Fields,
    not_found: Vec<u16>,
}

impl RestOp {
    /// The operation from the entry's settings (keys prefixed by `prefix`), defaulting to
    /// `d`. Settings given override the defaults one by one.
    pub(super) fn build(
        s: &Settings<'_>,
        prefix: &str,
        d: &Default,
    ) -> Result<RestOp, ConnectorError> {
        let key = |k: &str| format!("{prefix}{k}");
        let method = match s.get(&key("method")) {
            Some(_) if prefix.is_empty() => method_setting(s)?,
            Some(_) => {
                return Err(s.err(&key("method"), "the method of this request is fixed"));
            }
            None => d.method.parse().unwrap_or(Method::GET),
        };
        let path_text = s.string(&key("path"))?.unwrap_or(d.path);
        if !path_text.starts_with('/') {
            return Err(s.err(
                &key("path"),
                "must start with `/` (it follows the connection's URL)",
            ));
        }
        let path = Template::parse(path_text).map_err(|p| s.err(&key("path"), p))?;
        let body = match Body::from_setting(s, &key("body"))? {
            Some(b) => Some(b),
            None => match d.body {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| e.to_string())
                        .and_then(Body::compile)
                        .map_err(|p| s.err(&key("body"), p))?,
                ),
                None => None,
            },
        };
        let fields = match rest::fields_setting(s, &key("fields"))? {
            Some(f) => f,
            None => d
                .fields
                .iter()
                .map(|(o, p)| (o.to_string(), p.to_string()))
                .collect(),
        };
        let not_found = s
            .integers(&key("not_found_status"), 100, 599)?
            .unwrap_or_else(|| vec![404])
            .into_iter()
            .filter_map(|n| u16::try_from(n).ok())
            .collect();
        Ok(RestOp {
            method,
            path,
            body,
            fields,
            not_found,
        })
    }

    /// Sends the request; a status in `not_found_status` or an empty JSON list is *not
    /// found*, another non-2xx an error, a 2xx the record of the mapped fields.
    pub(super) async fn run(&self, client: &RestClient, params: &Record) -> CallResult {
        let path = self.path.render(params, template::url_encode)?;
        let body = self.body.as_ref().map(|b| b.render(params)).transpose()?;
        let answer = client
            .send(self.method.clone(), &path, body.as_ref())
            .await?;
        if self.not_found.contains(&answer.status) {
            return Ok(None);
        }
        if !(200..300).contains(&answer.status) {
            return Err(CallError::Status {
                status: answer.status,
                host: client.host().to_string(),
            });
        }
        if answer.json == Value::Array(Vec::new()) {
            return Ok(None);
        }
        let fields = (!self.fields.is_empty()).then_some(&self.fields);
        let json = match (fields, answer.json) {
            // An operation without mapped fields reports success only (`{}`).
            (None, _) => return Ok(Some(Record::new())),
            (Some(_), json) => json,
        };
        rest::record(client.host(), fields, json).map(Some)
    }
}
