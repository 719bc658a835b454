//! The admin API from outside, as `curl` would use it: HTTPS to a real `svi run`, trusting
//! only the certificate the engine made in its data directory; accounts made with the
//! `svi user` / `svi apikey` commands.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::proc::{svi_bin, EngineProc};

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Key(&'a str),
    /// A browser session: its cookie and CSRF token.
    Session {
        cookie: &'a str,
        csrf: &'a str,
    },
}

/// An answer: status, body as JSON (Null if not JSON) and as text, headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

pub struct Api {
    client: reqwest::Client,
    pub base: String,
}

fn provider() {
    // reqwest is built without a default crypto provider (ring only, as the engine).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Api {
    /// A client of `engine`'s admin API that trusts its self-signed certificate only.
    /// Waits until the engine logs that the API is ready (it starts after the SIP side
    /// that `EngineProc::start` waits for).
    pub fn new(engine: &EngineProc) -> Api {
        assert!(
            engine
                .wait_log("admin API ready", std::time::Duration::from_secs(20))
                .is_some(),
            "the admin API did not start:\n{}",
            engine.log_text()
        );
        Api::trusting(&engine.data_dir().join("admin-tls.crt"), engine.http)
    }

    /// A client of the API at `http` that trusts the certificate in `cert` only.
    pub fn trusting(cert: &Path, http: std::net::SocketAddr) -> Api {
        provider();
        let pem = std::fs::read(cert).unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
        let cert = reqwest::Certificate::from_pem(&pem).expect("certificate");
        let client = reqwest::Client::builder()
            .tls_certs_only([cert])
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        Api {
            client,
            base: format!("https://localhost:{}", http.port()),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Key(k) => req = req.header("authorization", format!("Bearer {k}")),
            Auth::Session { cookie, csrf } => {
                req = req.header("cookie", cookie).header("x-csrf-token", csrf)
            }
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("admin API answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        // An event stream never ends: its answer is the status and headers.
        let text = if is_event_stream(&headers) {
            String::new()
        } else {
            resp.text().await.unwrap_or_default()
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            json,
            text,
            headers,
        }
    }

    /// A GET with an API key and an optional `Range` header: status, headers, body bytes.
    pub async fn get_bytes(
        &self,
        path: &str,
        key: &str,
        range: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let resp = req.send().await.expect("admin API answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        (status, headers, body)
    }

    /// Subscribes to the server-sent events of `path` (`/api/v1/events`) with an API key.
    pub async fn events(&self, path: &str, key: &str) -> Events {
        self.events_as(path, Auth::Key(key)).await
    }

    /// Subscribes to the server-sent events of `path` as `auth`.
    pub async fn events_as(&self, path: &str, auth: Auth<'_>) -> Events {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(std::time::Duration::from_secs(3600));
        match auth {
            Auth::None => {}
            Auth::Key(k) => req = req.header("authorization", format!("Bearer {k}")),
            Auth::Session { cookie, .. } => req = req.header("cookie", cookie),
        }
        let resp = req.send().await.expect("admin API answers");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert!(is_event_stream(resp.headers()), "{:?}", resp.headers());
        Events {
            resp,
            buffer: String::new(),
        }
    }

    /// A GET that may fail (e.g. a certificate this client does not trust).
    pub async fn try_get(&self, path: &str) -> Result<u16, String> {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"))
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Answer {
        self.send("GET", path, auth, None).await
    }

    /// Sends raw bytes as a JSON body (fuzzing).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Vec<u8>,
    ) -> Result<(u16, String), String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Auth::Key(k) = auth {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }

    /// Logs in; returns the cookie header value and the CSRF token.
    pub async fn login(&self, user: &str, password: &str) -> Option<(String, String)> {
        let a = self
            .send(
                "POST",
                "/api/v1/session",
                Auth::None,
                Some(&serde_json::json!({"user": user, "password": password})),
            )
            .await;
        if a.status != 200 {
            return None;
        }
        let set = a.headers.get("set-cookie")?.to_str().ok()?;
        let cookie = set.split(';').next()?.to_string();
        Some((cookie, a.json["csrf_token"].as_str()?.to_string()))
    }
}

fn is_event_stream(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// One server-sent event: its name, its data as JSON, and when this client read it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub name: String,
    pub data: Value,
    pub received: std::time::SystemTime,
}

/// A subscription to a server-sent event stream.
pub struct Events {
    resp: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (keep-alive comments skipped); `None` when the stream ends or
    /// nothing comes within `within`.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent {
                    name,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    received: std::time::SystemTime::now(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Whether the server ends the stream within `within` (events on the way are skipped);
    /// false when it is still open at the deadline.
    pub async fn ends_within(&mut self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => return true,
                Ok(Err(e)) => panic!("the event stream failed instead of ending: {e:?}"),
                Err(_) => return false,
            }
        }
    }

    /// The next event that `want` accepts, skipping others; `None` past `within`.
    pub async fn find(
        &mut self,
        within: std::time::Duration,
        want: impl Fn(&SseEvent) -> bool,
    ) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await?;
            if want(&e) {
                return Some(e);
            }
        }
    }
}

/// Runs `svi ARGS --data-dir DIR [--config FILE]` with `stdin`; (exit code, stdout, stderr).
pub fn svi_cli(
    data_dir: &Path,
    config: Option<&Path>,
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    use std::io::Write as _;
    let mut cmd = Command::new(svi_bin());
    cmd.args(args).arg("--data-dir").arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run svi");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("svi output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `svi user add NAME --role ROLE --password-stdin`, which must succeed.
pub fn add_user(data_dir: &Path, config: Option<&Path>, name: &str, role: &str, password: &str) {
    let (code, out, err) = svi_cli(
        data_dir,
        config,
        &["user", "add", name, "--role", role, "--password-stdin"],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "svi user add {name}: {out}{err}");
}

/// `svi user add NAME --role agent --agent AGENT --password-stdin`: an agent's account bound
/// to the ACD agent `agent`; must succeed.
pub fn add_agent_user(data_dir: &Path, name: &str, agent: &str, password: &str) {
    let (code, out, err) = svi_cli(
        data_dir,
        None,
        &[
            "user",
            "add",
            name,
            "--role",
            "agent",
            "--agent",
            agent,
            "--password-stdin",
        ],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "svi user add {name}: {out}{err}");
}

/// The engine the web console's browser tests drive: `svi run` on the embedded sample with
/// MD5 challenges (sipp's digest knows no SHA-256) and the data directory `DIR/data`, in
/// which `accounts` first makes the accounts and keys it needs (offline, with `svi user` /
/// `svi apikey`).
pub fn console_engine(dir: &Path, accounts: impl FnOnce(&Path)) -> EngineProc {
    let data = dir.join("data");
    accounts(&data);
    let config = crate::config::sample(dir, crate::config::md5_only);
    EngineProc::start(crate::proc::EngineOptions {
        config: Some(config),
        data_dir: Some(data),
        ..crate::proc::EngineOptions::default()
    })
}

/// `svi apikey create --role ROLE --name NAME`: the key it prints.
pub fn create_key(data_dir: &Path, config: Option<&Path>, role: &str, name: &str) -> String {
    let (code, out, err) = svi_cli(
        data_dir,
        config,
        &["apikey", "create", "--role", role, "--name", name],
        "",
    );
    assert_eq!(code, 0, "svi apikey create: {out}{err}");
    let key = out.trim().to_string();
    assert!(key.starts_with("svi_"), "{out}");
    key
}

/// The value of a sample in a Prometheus text exposition: `name` is the metric's name with
/// its labels as written (`svi_calls_total`, `svi_agents{state="ready"}`).
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `promtool check metrics` (Debian's prometheus package) on an exposition.
pub fn promtool(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; the test script installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An engine on a test configuration, with accounts made offline before it starts.
pub fn engine_with(
    extra: &str,
    accounts: impl FnOnce(&Path, &Path),
) -> (tempfile::TempDir, EngineProc) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = crate::config::write(
        dir.path(),
        &[("demo", &crate::config::sample_flow("demo"))],
        extra,
    );
    let data = dir.path().join("data");
    accounts(&data, &config);
    let engine = EngineProc::start(crate::proc::EngineOptions {
        config: Some(config),
        data_dir: Some(data),
        ..crate::proc::EngineOptions::default()
    });
    (dir, engine)
}
