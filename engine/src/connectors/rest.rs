//! REST plumbing shared by the `http` kind and the plug-ins: request templates (a path or
//! URL with `{name}` placeholders, a JSON body template, output fields by JSON pointer),
//! reading an answer within a size limit, and [`RestClient`], a `[[connections]]` entry of
//! kind `rest`: a base URL with its TLS trust (a site CA, an optional client certificate),
//! an API-key header, and a bearer-token session.
//!
//! The session: when `login` is set, the client POSTs `{"username", "password"}` there
//! (with the API key), reads the token and its lifetime from the answer, and sends
//! `Authorization: Bearer <token>` on every request. The token is renewed `renew_before`
//! its expiry, and once more when the service answers 401 anyway (a token revoked or
//! expired early, mid-call): a second 401 is an error. One login at a time: calls wait on
//! an async mutex rather than log in side by side.
//!
//! Errors name the host, never the path or query (which carry personal data), and never a
//! secret: the API key, password and token are [`Secret`]s and sensitive header values.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{Map, Number, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::kinds::Secrets;
use super::settings::Settings;
use super::template::{self, Template};
use super::{CallError, ConnectorError, Record};
use crate::secrets::Secret;

pub(super) const CONNECTION_SETTINGS: &[&str] = &[
    "url",
    "ca",
    "client_cert",
    "api_key",
    "api_key_header",
    "login",
    "username",
    "password",
    "token_pointer",
    "expires_pointer",
    "token_ttl",
    "renew_before",
    "proxy",
    "max_response_bytes",
];

/// A JSON body template: strings may hold placeholders; a string that is exactly one
/// placeholder (`"{count}"`) takes the parameter's JSON value, keeping numbers numbers.
pub(super) enum Body {
    Fixed(Value),
    Text(Template),
    Array(Vec<Body>),
    Object(Vec<(String, Body)>),
}

impl Body {
    /// The `body` setting of `s` (a TOML table or JSON text).
    pub(super) fn from_setting(
        s: &Settings<'_>,
        key: &str,
    ) -> Result<Option<Body>, ConnectorError> {
        let json = match s.get(key) {
            None => return Ok(None),
            Some(toml::Value::String(text)) => serde_json::from_str(text)
                .map_err(|e| s.err(key, format!("is not JSON text: {e}")))?,
            Some(v @ toml::Value::Table(_)) => toml_to_json(v),
            Some(other) => {
                return Err(s.err(
                    key,
                    format!("must be a table or JSON text, not {}", other.type_str()),
                ))
            }
        };
        Body::compile(json).map(Some).map_err(|p| s.err(key, p))
    }

    pub(super) fn compile(v: Value) -> Result<Body, String> {
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

    pub(super) fn render(&self, params: &Record) -> Result<Value, CallError> {
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
                    .collect::<Result<_, CallError>>()?,
            ),
        })
    }
}

/// Output field → JSON pointer into the answer.
pub(super) type Fields = Vec<(String, String)>;

/// The `fields` setting of `s`: a table of JSON pointers.
pub(super) fn fields_setting(
    s: &Settings<'_>,
    key: &str,
) -> Result<Option<Fields>, ConnectorError> {
    let Some(t) = s.table(key)? else {
        return Ok(None);
    };
    t.iter()
        .map(|(out, ptr)| match ptr.as_str() {
            Some(p) if p.is_empty() || p.starts_with('/') => Ok((out.clone(), p.to_string())),
            _ => Err(s.err(
                &format!("{key}.{out}"),
                "must be a JSON pointer such as \"/customer/vip\"",
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The record of a 2xx answer: the picked fields, or the JSON object itself.
pub(super) fn record(
    host: &str,
    fields: Option<&Fields>,
    json: Value,
) -> Result<Record, CallError> {
    match (fields, json) {
        (Some(fields), json) => Ok(fields
            .iter()
            .map(|(out, ptr)| {
                (
                    out.clone(),
                    json.pointer(ptr).cloned().unwrap_or(Value::Null),
                )
            })
            .collect()),
        (None, Value::Object(record)) => Ok(record),
        (None, _) => Err(CallError::BadResponse {
            host: host.to_string(),
            problem: "is not a JSON object (pick values with `fields`)".into(),
        }),
    }
}

/// Reads a whole answer: its status and its JSON body (`Null` when empty), refusing more
/// than `max` bytes and bodies that are not JSON.
pub(super) async fn read_answer(
    mut response: reqwest::Response,
    host: &str,
    max: usize,
) -> Result<(u16, Value), CallError> {
    let status = response.status().as_u16();
    let too_large = || CallError::BadResponse {
        host: host.to_string(),
        problem: format!("is larger than {max} bytes"),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(host, &e))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    if !(200..300).contains(&status) {
        return Ok((status, Value::Null));
    }
    let json = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new()) // 204 No Content, or an empty 200: done, nothing to report
    } else {
        serde_json::from_slice(&bytes).map_err(|_| CallError::BadResponse {
            host: host.to_string(),
            problem: "is not JSON".into(),
        })?
    };
    Ok((status, json))
}

/// reqwest's own message includes the URL (personal data in path and query): describe the
/// failure by its kind and innermost cause (an io or TLS error) instead.
pub(super) fn transport_error(host: &str, e: &reqwest::Error) -> CallError {
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
    CallError::Transport {
        what,
        host: host.to_string(),
        cause: cause.to_string(),
    }
}

/// A reqwest client builder with the project's defaults: no redirects (secret headers go
/// to the configured host only), our user agent, `Accept: application/json`, the proxy
/// setting of `s`.
pub(super) fn client_builder(s: &Settings<'_>) -> Result<reqwest::ClientBuilder, ConnectorError> {
    // reqwest uses the process-wide rustls provider; install ring unless the application
    // installed one already (then that one is used, and this is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("svi/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .pool_idle_timeout(Duration::from_secs(60));
    Ok(match s.string("proxy")?.unwrap_or("env") {
        // HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl reads them.
        "env" => builder,
        "none" => builder.no_proxy(),
        url => builder.proxy(
            reqwest::Proxy::all(url)
                .map_err(|_| s.err("proxy", "must be \"env\", \"none\" or a proxy URL"))?,
        ),
    })
}

/// `host[:port]` of a URL, the only part errors may show.
pub(super) fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

pub(super) fn toml_to_json(v: &toml::Value) -> Value {
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

/// A REST API with a session (`[[connections]]` kind `rest`).
pub(super) struct RestClient {
    /// The base URL, without a trailing `/`; request paths are appended to it.
    base: String,
    host: String,
    client: reqwest::Client,
    api_key: Option<(HeaderName, HeaderValue)>,
    login: Option<Login>,
    /// The current token. An async mutex, held across the login request on purpose: the
    /// calls that find the token expiring wait for one login instead of each making one.
    token: Mutex<Option<Token>>,
    max_response_bytes: usize,
}

struct Login {
    path: String,
    username: String,
    password: Secret,
    token_pointer: String,
    expires_pointer: String,
    /// Lifetime when the answer gives none.
    default_ttl: Duration,
    renew_before: Duration,
}

struct Token {
    value: HeaderValue,
    renew_at: Instant,
}

/// A REST answer: the status and the JSON body (`Null` for an error status).
pub(super) struct Answer {
    pub status: u16,
    pub json: Value,
}

impl RestClient {
    pub(super) fn build(
        s: &Settings<'_>,
        secrets: &Secrets<'_>,
    ) -> Result<RestClient, ConnectorError> {
        let url = s.required_string("url")?;
        let parsed = Url::parse(url).map_err(|e| s.err("url", format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(s.err(
                "url",
                format!("`{}:` is not http or https", parsed.scheme()),
            ));
        }
        let host = host_of(&parsed).ok_or_else(|| s.err("url", "has no host"))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(s.err("url", "is a base URL: no query or fragment"));
        }
        let mut builder = client_builder(s)?;
        if let Some(ca) = s.string("ca")? {
            let pem =
                std::fs::read(ca).map_err(|e| s.err("ca", format!("cannot read {ca}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| s.err("ca", format!("{ca} is not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(s.err("ca", format!("{ca} holds no certificate")));
            }
            // Trust this CA only: the site's own authority, not the public ones.
            builder = builder.tls_certs_only(certs);
        }
        if let Some(path) = s.string("client_cert")? {
            let pem = std::fs::read(path)
                .map_err(|e| s.err("client_cert", format!("cannot read {path}: {e}")))?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                s.err(
                    "client_cert",
                    format!("{path} must hold a PEM certificate and its private key: {e}"),
                )
            })?;
            builder = builder.identity(identity);
        }
        let api_key = match secrets.get(s, "api_key")? {
            None => None,
            Some(key) => {
                let name = s.string("api_key_header")?.unwrap_or("X-Api-Key");
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| s.err("api_key_header", "is not a header name"))?;
                let mut value = HeaderValue::from_str(key.expose())
                    .map_err(|_| s.err("api_key", "is not a valid header value"))?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let login = match s.string("login")? {
            None => None,
            Some(path) => Some(Login {
                path: path.to_string(),
                username: s.required_string("username")?.to_string(),
                password: secrets
                    .get(s, "password")?
                    .ok_or_else(|| s.err("password", "is required with `login`"))?,
                token_pointer: s.string("token_pointer")?.unwrap_or("/token").to_string(),
                expires_pointer: s
                    .string("expires_pointer")?
                    .unwrap_or("/expires_in")
                    .to_string(),
                default_ttl: s.duration("token_ttl")?.unwrap_or(Duration::from_secs(300)),
                renew_before: s
                    .duration("renew_before")?
                    .unwrap_or(Duration::from_secs(30)),
            }),
        };
        let max_response_bytes = s.integer("max_response_bytes", 1, 64 << 20, 1 << 20)? as usize;
        let client = builder
            .build()
            .map_err(|e| s.err("url", format!("cannot create the HTTP client: {e}")))?;
        Ok(RestClient {
            base: url.trim_end_matches('/').to_string(),
            host,
            client,
            api_key,
            login,
            token: Mutex::new(None),
            max_response_bytes,
        })
    }

    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// Sends `method path` (path and query, already percent-encoded) with `body`.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let answer = self.send_once(method.clone(), path, body, false).await?;
        if answer.status == 401 && self.login.is_some() {
            // The token was refused before its time (revoked, server restarted): log in
            // again and try once more.
            let again = self.send_once(method, path, body, true).await?;
            if again.status == 401 {
                return Err(CallError::Auth {
                    host: self.host.clone(),
                    detail: "a fresh token was refused (401)".into(),
                });
            }
            return Ok(again);
        }
        Ok(answer)
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        fresh_token: bool,
    ) -> Result<Answer, CallError> {
        let url = format!("{}{}", self.base, path);
        let url = Url::parse(&url).map_err(|_| CallError::BadParam {
            name: "path".into(),
            problem: format!("makes an invalid URL for {}", self.host),
        })?;
        let mut request = self.client.request(method, url);
        if let Some((name, value)) = &self.api_key {
            request = request.header(name, value);
        }
        if self.login.is_some() {
            request = request.header(AUTHORIZATION, self.token(fresh_token).await?);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.host, &e))?;
        let (status, json) = read_answer(response, &self.host, self.max_response_bytes).await?;
        Ok(Answer { status, json })
    }

    /// `Bearer <token>`, logging in first when there is none, it is due for renewal, or
    /// `fresh` asks for a new one.
    async fn token(&self, fresh: bool) -> Result<HeaderValue, CallError> {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        if let Some(t) = slot.as_ref() {
            if !fresh && now < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let token = self.login().await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    async fn login(&self) -> Result<Token, CallError> {
        let Some(login) = &self.login else {
            return Err(CallError::Auth {
                host: self.host.clone(),
                detail: "no login configured".into(),
            });
        };
        let url =
            Url::parse(&format!("{}{}", self.base, login.path)).map_err(|_| CallError::Auth {
                host: self.host.clone(),
                detail: "the login path makes an invalid URL".into(),
            })?;
        let body =
            serde_json::json!({ "username": login.username, "password": login.password.expose() });
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json");
        if let Some((name, value)) = &self.api_key {
            request = request.header(name, value);
        }
        let response = request
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| transport_error(&self.host, &e))?;
        let (status, json) = read_answer(response, &self.host, self.max_response_bytes).await?;
        if status == 401 || status == 403 {
            return Err(CallError::Auth {
                host: self.host.clone(),
                detail: format!("login answered {status}"),
            });
        }
        if !(200..300).contains(&status) {
            return Err(CallError::Status {
                status,
                host: self.host.clone(),
            });
        }
        let token = json
            .pointer(&login.token_pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| CallError::BadResponse {
                host: self.host.clone(),
                problem: format!("to the login has no text at `{}`", login.token_pointer),
            })?;
        let ttl = match json.pointer(&login.expires_pointer) {
            None | Some(Value::Null) => login.default_ttl,
            Some(v) => v
                .as_f64()
                .filter(|s| *s > 0.0 && *s < 1e7)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| CallError::BadResponse {
                    host: self.host.clone(),
                    problem: format!(
                        "to the login has no positive number of seconds at `{}`",
                        login.expires_pointer
                    ),
                })?,
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CallError::BadResponse {
                host: self.host.clone(),
                problem: "to the login holds an unusable token".into(),
            }
        })?;
        value.set_sensitive(true);
        Ok(Token {
            value,
            renew_at: Instant::now() + ttl.saturating_sub(login.renew_before),
        })
    }
}
