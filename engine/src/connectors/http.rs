//! Kind `http`: one JSON request to a REST service (CRM, helpdesk web service, access control).
//!
//! The URL is a template (`https://crm.example.com/api/customers/{number}`) whose
//! placeholders are filled from the step's params and percent-encoded. Placeholders may not
//! appear in the scheme or host: a flow parameter (ultimately, caller input) must never choose
//! which server receives the request and its API key. For the same reason redirects are not
//! followed (a `3xx` is an error): the secret headers go to the configured host only.
//!
//! Secrets stay out of the configuration file: header values may say `${CRM_TOKEN}`, expanded
//! once at start-up from the environment (a missing variable stops the start, naming it).
//!
//! The answer: a status in `not_found_status` (default 404) is "not found"; a 2xx is found, and
//! the record is the JSON object of the body, or the values picked by `fields` (JSON pointers,
//! missing ones as null; an empty body is an empty record); anything else is an error naming
//! the status and host only (`HTTP 503 from crm.example.com`): never the URL's path or query
//! nor the body, which carry personal data.
//!
//! TLS is rustls with the `ring` provider (aws-lc-rs needs cmake and nasm to build) and the
//! operating system's trust store, through reqwest without its default features (HTTP/1.1).
//! A backend with a site CA, a client certificate or a login session is a `[[connections]]`
//! entry of kind `rest` (see `rest`), used by the plug-ins.

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use super::kinds::{BuildContext, BuildFuture, ConnectorKind};
use super::rest::{self, Body, Fields};
use super::settings::Settings;
use super::template::{self, Template};
use super::{CallError, CallFuture, CallResult, Connector, ConnectorError, EnvLookup, Record};
use crate::config::ConnectorConfig;

const SETTINGS: &[&str] = &[
    "url",
    "method",
    "body",
    "headers",
    "fields",
    "not_found_status",
    "proxy",
    "max_response_bytes",
];

pub(super) struct HttpKind;

impl ConnectorKind for HttpKind {
    fn name(&self) -> &'static str {
        "http"
    }

    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, cx: &'a BuildContext<'a>) -> BuildFuture<'a> {
        Box::pin(async move {
            let c = HttpConnector::build(cfg, cx.secrets.env)?;
            Ok(Arc::new(c) as Arc<dyn Connector>)
        })
    }
}

pub(super) struct HttpConnector {
    name: String,
    client: reqwest::Client,
    method: Method,
    url: Template,
    /// `host[:port]`, the only part of the URL errors may show.
    host: String,
    body: Option<Body>,
    fields: Option<Fields>,
    not_found: Vec<u16>,
    max_response_bytes: usize,
}

impl HttpConnector {
    pub(super) fn build(
        cfg: &ConnectorConfig,
        env: EnvLookup<'_>,
    ) -> Result<HttpConnector, ConnectorError> {
        let s = Settings::new(cfg, SETTINGS)?;
        let url = Template::parse(s.required_string("url")?).map_err(|p| s.err("url", p))?;
        let host = check_url(&url).map_err(|p| s.err("url", p))?;
        let method = method_setting(&s)?;
        let body = Body::from_setting(&s, "body")?;
        if body.is_some() && method == Method::GET {
            return Err(s.err("body", "a GET request has no body: set method = \"POST\""));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in s.table("headers")?.into_iter().flatten() {
            let key = format!("headers.{name}");
            let value = value
                .as_str()
                .ok_or_else(|| s.err(&key, "must be a string"))?;
            let value = template::expand_env(value, env).map_err(|p| s.err(&key, p))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| s.err(&key, "is not a header name"))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| s.err(&key, "is not a valid header value"))?;
            value.set_sensitive(true); // kept out of Debug output: it may be a secret
            headers.insert(name, value);
        }
        let fields = rest::fields_setting(&s, "fields")?;
        let not_found = s
            .integers("not_found_status", 100, 599)?
            .unwrap_or_else(|| vec![404])
            .into_iter()
            .filter_map(|n| u16::try_from(n).ok())
            .collect();
        let max_response_bytes = s.integer("max_response_bytes", 1, 64 << 20, 1 << 20)? as usize;
        let client = rest::client_builder(&s)?
            .default_headers(headers)
            .build()
            .map_err(|e| s.err("url", format!("cannot create the HTTP client: {e}")))?;

        Ok(HttpConnector {
            name: s.name().to_string(),
            client,
            method,
            url,
            host,
            body,
            fields,
            not_found,
            max_response_bytes,
        })
    }

    async fn run(&self, params: &Record) -> CallResult {
        let url = self.url.render(params, template::url_encode)?;
        let url = Url::parse(&url).map_err(|_| CallError::BadParam {
            name: self.url.params().next().unwrap_or("url").to_string(),
            problem: format!("makes the URL for {} invalid", self.host),
        })?;
        let mut request = self.client.request(self.method.clone(), url);
        if let Some(body) = &self.body {
            let json = serde_json::to_vec(&body.render(params)?).unwrap_or_default();
            request = request.header(CONTENT_TYPE, "application/json").body(json);
        }
        let response = request
            .send()
            .await
            .map_err(|e| rest::transport_error(&self.host, &e))?;
        let (status, json) =
            rest::read_answer(response, &self.host, self.max_response_bytes).await?;
        if self.not_found.contains(&status) {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(CallError::Status {
                status,
                host: self.host.clone(),
            });
        }
        rest::record(&self.host, self.fields.as_ref(), json).map(Some)
    }
}

impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "http"
    }

    fn call<'a>(&'a self, params: &'a Record) -> CallFuture<'a> {
        Box::pin(self.run(params))
    }
}

/// `method`: GET (the default), POST or PUT.
pub(super) fn method_setting(s: &Settings<'_>) -> Result<Method, ConnectorError> {
    match s
        .string("method")?
        .unwrap_or("GET")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        other => Err(s.err("method", format!("`{other}` is not GET, POST or PUT"))),
    }
}

/// Checks the URL template and returns the host for error messages.
fn check_url(url: &Template) -> Result<String, String> {
    let has_params = url.params().next().is_some();
    let authority_is_literal = url
        .prefix()
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains(['/', '?', '#']));
    if has_params && !authority_is_literal {
        return Err(
            "placeholders may not be in the scheme or host: the host is fixed by configuration"
                .into(),
        );
    }
    let sample: Map<String, Value> = url
        .params()
        .map(|p| (p.to_string(), Value::from("x")))
        .collect();
    let rendered = url
        .render(&sample, template::url_encode)
        .map_err(|e| e.to_string())?;
    let parsed = Url::parse(&rendered).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{}:` is not http or https", parsed.scheme()));
    }
    rest::host_of(&parsed).ok_or_else(|| "has no host".into())
}
