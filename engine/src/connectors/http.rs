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

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{Map, Number, Value};

use super::settings::Settings;
use super::template::{self, Template};
use super::{CallFuture, Connector, ConnectorError, ConnectorResult, EnvLookup};
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

pub(super) struct HttpConnector {
    name: String,
    client: reqwest::Client,
    method: Method,
    url: Template,
    /// `host[:port]`, the only part of the URL errors may show.
    host: String,
    body: Option<Body>,
    /// Output field → JSON pointer into the response.
    fields: Option<Vec<(String, String)>>,
    not_found: Vec<u16>,
    max_response_bytes: usize,
}

/// A JSON body template: strings may hold placeholders; a string that is exactly one
/// placeholder (`"{count}"`) takes the parameter's JSON value, keeping numbers numbers.
enum Body {
    Fixed(Value),
    Text(Template),
    Array(Vec<Body>),
    Object(Vec<(String, Body)>),
}

impl HttpConnector {
    pub(super) fn build(
        cfg: &ConnectorConfig,
        env: EnvLookup<'_>,
    ) -> Result<HttpConnector, ConnectorError> {
        let s = Settings::new(cfg, SETTINGS)?;
        let url = Template::parse(s.required_string("url")?).map_err(|p| s.err("url", p))?;
        let host = check_url(&url).map_err(|p| s.err("url", p))?;

        let method = match s
            .string("method")?
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_str()
        {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            other => return Err(s.err("method", format!("`{other}` is not GET, POST or PUT"))),
        };
        let body = match s.get("body") {
            None => None,
            Some(_) if method == Method::GET => {
                return Err(s.err("body", "a GET request has no body: set method = \"POST\""))
            }
            Some(toml::Value::String(text)) => {
                let json = serde_json::from_str(text)
                    .map_err(|e| s.err("body", format!("is not JSON text: {e}")))?;
                Some(Body::compile(json).map_err(|p| s.err("body", p))?)
            }
            Some(v @ toml::Value::Table(_)) => {
                Some(Body::compile(toml_to_json(v)).map_err(|p| s.err("body", p))?)
            }
            Some(other) => {
                return Err(s.err(
                    "body",
                    format!("must be a table or JSON text, not {}", other.type_str()),
                ))
            }
        };

        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
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

        let fields = match s.table("fields")? {
            None => None,
            Some(t) => Some(
                t.iter()
                    .map(|(out, ptr)| match ptr.as_str() {
                        Some(p) if p.is_empty() || p.starts_with('/') => {
                            Ok((out.clone(), p.to_string()))
                        }
                        _ => Err(s.err(
                            &format!("fields.{out}"),
                            "must be a JSON pointer such as \"/customer/vip\"",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let not_found = s
            .integers("not_found_status", 100, 599)?
            .unwrap_or_else(|| vec![404]);
        let not_found = not_found
            .into_iter()
            .filter_map(|n| u16::try_from(n).ok())
            .collect();
        let max_response_bytes = s.integer("max_response_bytes", 1, 64 << 20, 1 << 20)? as usize;

        // reqwest uses the process-wide rustls provider; install ring unless the
        // application installed one already (then that one is used, and this is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("svi/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .pool_idle_timeout(Duration::from_secs(60));
        builder = match s.string("proxy")?.unwrap_or("env") {
            // HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl reads them.
            "env" => builder,
            "none" => builder.no_proxy(),
            url => builder.proxy(
                reqwest::Proxy::all(url)
                    .map_err(|_| s.err("proxy", "must be \"env\", \"none\" or a proxy URL"))?,
            ),
        };
        let client = builder
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

    async fn run(&self, params: &Map<String, Value>) -> ConnectorResult {
        let url = self.url.render(params, template::url_encode)?;
        let url = Url::parse(&url).map_err(|_| {
            format!(
                "the URL for {} is invalid once parameters are filled in",
                self.host
            )
        })?;
        let mut request = self.client.request(self.method.clone(), url);
        if let Some(body) = &self.body {
            let json = serde_json::to_vec(&body.render(params)?)
                .map_err(|_| "the request body cannot be written".to_string())?;
            request = request.header(CONTENT_TYPE, "application/json").body(json);
        }
        let mut response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if self.not_found.contains(&status.as_u16()) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("HTTP {} from {}", status.as_u16(), self.host));
        }
        let too_large = || {
            format!(
                "the response from {} is larger than {} bytes",
                self.host, self.max_response_bytes
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let json = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new()) // 204 No Content, or an empty 200: done, nothing to report
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| format!("the response from {} is not JSON", self.host))?
        };
        match (&self.fields, json) {
            (Some(fields), json) => Ok(Some(
                fields
                    .iter()
                    .map(|(out, ptr)| {
                        (
                            out.clone(),
                            json.pointer(ptr).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect(),
            )),
            (None, Value::Object(record)) => Ok(Some(record)),
            (None, _) => Err(format!(
                "the response from {} is not a JSON object (pick values with `fields`)",
                self.host
            )),
        }
    }

    /// reqwest's own message includes the URL (personal data in path and query): describe
    /// the failure by its kind and innermost cause (an io or TLS error) instead.
    fn transport_error(&self, e: &reqwest::Error) -> String {
        let what = if e.is_connect() {
            "cannot connect to"
        } else if e.is_timeout() {
            "timed out waiting for"
        } else if e.is_body() || e.is_decode() {
            "bad response from"
        } else {
            "request failed to"
        };
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("{what} {}: {cause}", self.host)
    }
}

impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "http"
    }

    fn call<'a>(&'a self, params: &'a Map<String, Value>) -> CallFuture<'a> {
        Box::pin(self.run(params))
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
    let parsed = Url::parse(&url.render(&sample, template::url_encode)?)
        .map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{}:` is not http or https", parsed.scheme()));
    }
    let host = parsed.host_str().ok_or("has no host")?;
    Ok(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

impl Body {
    fn compile(v: Value) -> Result<Body, String> {
        Ok(match v {
            Value::String(s) => Body::Text(Template::parse(&s)?),
            Value::Array(items) => Body::Array(
                items
                    .into_iter()
                    .map(Body::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Body::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, Body::compile(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            fixed => Body::Fixed(fixed),
        })
    }

    fn render(&self, params: &Map<String, Value>) -> Result<Value, String> {
        Ok(match self {
            Body::Fixed(v) => v.clone(),
            Body::Text(t) => match t.sole_param() {
                Some(name) => template::param(params, name)?.clone(),
                None => Value::String(t.render(params, template::verbatim)?),
            },
            Body::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|b| b.render(params))
                    .collect::<Result<_, _>>()?,
            ),
            Body::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, b)| Ok((k.clone(), b.render(params)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
