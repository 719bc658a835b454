//! A reference access-control server: the generic REST API of `docs/integrations.md`, for
//! tests and demos, on 127.0.0.1 over HTTP or HTTPS with a self-signed CA of its own.
//!
//! It keeps badge holders (with PINs, badges and the doors they may open), appointments,
//! visits and alarms in memory, requires the API key on every request and a bearer token
//! from `POST /auth/token` on all others; tokens expire after `token_ttl`. A fault mode
//! makes it slow, answer 500, drop connections, answer garbage or fields of the wrong type.
//! What the engine did (doors opened, badges blocked, alarms acknowledged, logins) is
//! recorded for the test to check.
//!
//! The state is behind a `std::sync::Mutex`: the server's connection tasks and the test
//! thread share it, and no lock is held across an `.await`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

pub const API_KEY: &str = "acs-test-key-7f3a";
pub const USERNAME: &str = "svi";
pub const PASSWORD: &str = "acs-test-password-51c9";

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answers after this delay.
    Slow(Duration),
    /// `500 Internal Server Error` to everything.
    Status500,
    /// Reads the request and closes the connection without a word.
    Drop,
    /// `200` with a body that is not JSON.
    Garbage,
    /// Answers with fields of the wrong type (`confirmed: "yes"`, ids as lists).
    WrongType,
}

#[derive(Debug, Clone)]
pub struct Holder {
    pub id: String,
    pub name: String,
    pub pin: String,
    pub badge: String,
    pub doors: Vec<String>,
    pub blocked: bool,
}

#[derive(Debug, Clone)]
pub struct Appointment {
    pub id: String,
    pub host: String,
    pub date: String,
    pub visitor: String,
    pub time: String,
    pub confirmed: bool,
}

#[derive(Debug, Clone)]
pub struct Alarm {
    pub id: String,
    pub door: String,
    pub time: String,
    pub kind: String,
    pub acked_by: Option<String>,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    holders: Vec<Holder>,
    appointments: Vec<Appointment>,
    alarms: Vec<Alarm>,
    tokens: HashMap<String, Instant>,
    token_ttl: Duration,
    logins: usize,
    requests: usize,
    doors_opened: Vec<(String, String)>,
    next_id: u64,
}

pub struct AcsServer {
    pub addr: SocketAddr,
    /// The CA certificate (PEM) that signed the server's certificate, with TLS.
    pub ca_file: Option<PathBuf>,
    tls: bool,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

/// The seed data: two holders, doors 1 and 2.
pub fn seed_holders() -> Vec<Holder> {
    vec![
        Holder {
            id: "h-100".into(),
            name: "Ada Lovelace".into(),
            pin: "4321".into(),
            badge: "B-1001".into(),
            doors: vec!["1".into(), "2".into()],
            blocked: false,
        },
        Holder {
            id: "h-200".into(),
            name: "Bob Martin".into(),
            pin: "9876".into(),
            badge: "B-2002".into(),
            doors: vec!["1".into()],
            blocked: false,
        },
    ]
}

impl AcsServer {
    /// Starts the server with the seed holders; `tls`: HTTPS with a fresh CA.
    pub async fn start(tls: bool, token_ttl: Duration) -> AcsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            holders: seed_holders(),
            token_ttl,
            ..State::default()
        }));
        let (acceptor, ca_file) = if tls {
            let (acceptor, ca_pem) = tls_acceptor();
            let ca_file = dir.path().join("acs-ca.pem");
            std::fs::write(&ca_file, ca_pem).expect("write CA");
            (Some(acceptor), Some(ca_file))
        } else {
            (None, None)
        };
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(socket).await {
                                let _ = serve(tls, state).await;
                            }
                        }
                        None => {
                            let _ = serve(socket, state).await;
                        }
                    }
                });
            }
        });
        AcsServer {
            addr,
            ca_file,
            tls,
            state,
            _dir: dir,
        }
    }

    /// The API's base URL (`https://localhost:PORT/api/v1` with TLS).
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/api/v1", self.addr.port())
        } else {
            format!("http://{}/api/v1", self.addr)
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = Some(fault);
    }

    pub fn add_appointment(
        &self,
        host: &str,
        date: &str,
        visitor: &str,
        confirmed: bool,
    ) -> String {
        let mut s = self.state();
        s.next_id += 1;
        let id = format!("v-{}", s.next_id);
        s.appointments.push(Appointment {
            id: id.clone(),
            host: host.into(),
            date: date.into(),
            visitor: visitor.into(),
            time: "10:00".into(),
            confirmed,
        });
        id
    }

    pub fn appointments(&self) -> Vec<Appointment> {
        self.state().appointments.clone()
    }

    /// Raises an alarm on `door`; returns its id.
    pub fn raise_alarm(&self, door: &str, kind: &str) -> String {
        let mut s = self.state();
        s.next_id += 1;
        let id = format!("a-{}", s.next_id);
        s.alarms.push(Alarm {
            id: id.clone(),
            door: door.into(),
            time: chrono::Utc::now().format("%H:%M").to_string(),
            kind: kind.into(),
            acked_by: None,
        });
        id
    }

    pub fn alarms(&self) -> Vec<Alarm> {
        self.state().alarms.clone()
    }

    pub fn holders(&self) -> Vec<Holder> {
        self.state().holders.clone()
    }

    /// (door, holder id) of every door opened.
    pub fn doors_opened(&self) -> Vec<(String, String)> {
        self.state().doors_opened.clone()
    }

    pub fn logins(&self) -> usize {
        self.state().logins
    }

    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// Forgets every token (a server restart): the next request with one gets 401.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A CA, and a server certificate for `localhost` and 127.0.0.1 signed by it.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "svi test access-control CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server TLS config");
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut socket).await? else {
        return Ok(());
    };
    let fault = {
        let mut s = lock(&state);
        s.requests += 1;
        s.fault.unwrap_or(Fault::None)
    };
    let (status, body) = match fault {
        Fault::Drop => return Ok(()),
        Fault::Status500 => (500, json!({ "error": "internal" }).to_string()),
        Fault::Garbage => (200, "<html>maintenance</html>".to_string()),
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            route(&request, &state, false)
        }
        Fault::WrongType => route(&request, &state, true),
        Fault::None => route(&request, &state, false),
    };
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

async fn read_request<S: AsyncRead + Unpin>(socket: &mut S) -> std::io::Result<Option<Request>> {
    let Some(raw) = engine::test_http::read_request(socket).await? else {
        return Ok(None);
    };
    let target = raw.target;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q),
        None => (target.clone(), ""),
    };
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    Ok(Some(Request {
        method: raw.method,
        path: decode(&path),
        query,
        headers: raw.headers,
        body: serde_json::from_slice(&raw.body).unwrap_or(Value::Null),
    }))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The API itself: (status, JSON body).
fn route(r: &Request, state: &Mutex<State>, wrong_types: bool) -> (u16, String) {
    let mut s = lock(state);
    if r.header("x-api-key") != Some(API_KEY) {
        return (401, json!({ "error": "API key" }).to_string());
    }
    let path = r.path.strip_prefix("/api/v1").unwrap_or("");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if r.method == "POST" && parts == ["auth", "token"] {
        if text(&r.body, "username") != USERNAME || text(&r.body, "password") != PASSWORD {
            return (401, json!({ "error": "credentials" }).to_string());
        }
        s.logins += 1;
        let token = format!("tok-{}-{}", s.logins, rand_suffix());
        let ttl = s.token_ttl;
        s.tokens.insert(token.clone(), Instant::now() + ttl);
        return (
            200,
            json!({ "token": token, "expires_in": ttl.as_secs_f64() }).to_string(),
        );
    }
    let token = r
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if s.tokens.get(token).is_none_or(|exp| Instant::now() >= *exp) {
        return (401, json!({ "error": "token" }).to_string());
    }
    let holder_json = |h: &Holder| {
        if wrong_types {
            json!({ "id": [h.id], "name": h.name, "badge": h.badge, "blocked": "no" })
        } else {
            json!({ "id": h.id, "name": h.name, "badge": h.badge, "blocked": h.blocked })
        }
    };
    match (r.method.as_str(), parts.as_slice()) {
        ("POST", ["holders", "search"]) => {
            let pin = text(&r.body, "pin");
            match s.holders.iter().find(|h| !pin.is_empty() && h.pin == pin) {
                Some(h) => (200, holder_json(h).to_string()),
                None => (404, "{}".into()),
            }
        }
        ("GET", ["badges", badge, "holder"]) => {
            match s.holders.iter().find(|h| h.badge == *badge) {
                Some(h) => (200, holder_json(h).to_string()),
                None => (404, "{}".into()),
            }
        }
        ("GET", ["appointments"]) => {
            let host = r.query.get("host").cloned().unwrap_or_default();
            let date = r.query.get("date").cloned().unwrap_or_default();
            let list: Vec<Value> = s
                .appointments
                .iter()
                .filter(|a| a.host == host && a.date == date)
                .map(|a| {
                    let confirmed = if wrong_types { json!("yes") } else { json!(a.confirmed) };
                    json!({ "id": a.id, "visitor": a.visitor, "time": a.time, "confirmed": confirmed })
                })
                .collect();
            (200, Value::Array(list).to_string())
        }
        ("GET", ["alarms"]) => {
            let list: Vec<Value> = s
                .alarms
                .iter()
                .filter(|a| a.acked_by.is_none())
                .map(|a| json!({ "id": a.id, "door": a.door, "time": a.time, "kind": a.kind }))
                .collect();
            (200, Value::Array(list).to_string())
        }
        ("POST", ["visits"]) => {
            s.next_id += 1;
            let id = format!("v-{}", s.next_id);
            let a = Appointment {
                id: id.clone(),
                host: text(&r.body, "host"),
                date: chrono::Local::now().format("%Y-%m-%d").to_string(),
                visitor: text(&r.body, "visitor"),
                time: text(&r.body, "time"),
                confirmed: false,
            };
            s.appointments.push(a);
            (200, json!({ "id": id }).to_string())
        }
        ("POST", ["visits", id, "confirm"]) => {
            match s.appointments.iter_mut().find(|a| a.id == *id) {
                Some(a) => {
                    a.confirmed = true;
                    (204, String::new())
                }
                None => (404, "{}".into()),
            }
        }
        ("POST", ["badges", badge, "block"]) => {
            match s.holders.iter_mut().find(|h| h.badge == *badge) {
                Some(h) => {
                    h.blocked = true;
                    (204, String::new())
                }
                None => (404, "{}".into()),
            }
        }
        ("POST", ["doors", door, "open"]) => {
            let holder = text(&r.body, "holder");
            if !matches!(*door, "1" | "2" | "3") {
                return (404, "{}".into());
            }
            match s.holders.iter().find(|h| h.id == holder) {
                Some(h) if h.doors.iter().any(|d| d == door) && !h.blocked => {
                    s.doors_opened.push((door.to_string(), holder));
                    (204, String::new())
                }
                _ => (403, json!({ "error": "not allowed" }).to_string()),
            }
        }
        ("POST", ["alarms", id, "ack"]) => {
            let by = text(&r.body, "by");
            match s.alarms.iter_mut().find(|a| a.id == *id) {
                Some(a) => {
                    a.acked_by = Some(by);
                    (204, String::new())
                }
                None => (404, "{}".into()),
            }
        }
        _ => (404, json!({ "error": "no such route" }).to_string()),
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// What the access-control system's push of an alarm got back from the engine.
#[derive(Debug)]
pub struct PushAnswer {
    pub status: u16,
    pub body: String,
}

impl AcsServer {
    /// Pushes alarm `alarm` (as raised here) to the engine's webhook at `url` (HTTPS,
    /// trusting only the certificate in `trust`), signed with `secret` as the engine
    /// expects: `X-Svi-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`. `secret`
    /// None: no signature header.
    pub async fn push_alarm(
        &self,
        alarm: &str,
        url: &str,
        trust: &std::path::Path,
        secret: Option<&str>,
    ) -> PushAnswer {
        use hmac::{Hmac, Mac};
        let a = self
            .alarms()
            .into_iter()
            .find(|a| a.id == alarm)
            .unwrap_or_else(|| panic!("no alarm {alarm} raised here"));
        let body =
            json!({ "id": a.id, "door": a.door, "time": a.time, "kind": a.kind }).to_string();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(trust).unwrap_or_else(|e| panic!("{}: {e}", trust.display()));
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("certificate")])
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(secret) = secret {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
            mac.update(body.as_bytes());
            let hex: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            req = req.header("x-svi-signature", format!("sha256={hex}"));
        }
        let resp = req.send().await.expect("the engine answers the push");
        PushAnswer {
            status: resp.status().as_u16(),
            body: resp.text().await.unwrap_or_default(),
        }
    }
}
