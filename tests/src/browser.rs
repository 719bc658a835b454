//! Debian's `chromium`, headless, driven over WebDriver (`chromedriver` from the
//! `chromium-driver` package) with plain JSON over HTTP on loopback: the client is reqwest,
//! already in the tree. The flags keep Chromium off the network but for the page under test
//! (its connections to Google are refused in closed networks, many at a time); each browser
//! gets a fresh profile directory. Waits are in the page, on DOM changes, with a deadline
//! (`wait_for`), never sleeps.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The key WebDriver gives an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,900",
    // Media elements may start from a script (the recordings test plays one).
    "--autoplay-policy=no-user-gesture-required",
];

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

/// `which`-like: is `program` on the PATH?
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Where the console's browser tests put their screenshots: `target/web-screenshots/LANG`.
pub fn screenshots(lang: &str) -> PathBuf {
    crate::repo_root().join("target/web-screenshots").join(lang)
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session that
    /// accepts the engine's self-signed certificate.
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver)");
        // chromedriver says on stdout when it listens.
        let out = driver.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("chromedriver did not start");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let answer = read(
            http.post(format!("{base}/session"))
                .header("content-type", "application/json")
                .body(caps.to_string()),
        )
        .await;
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        let b = Browser {
            driver,
            http,
            session,
            base,
            _profile: profile,
        };
        b.ok(
            "POST",
            "timeouts",
            json!({"script": 30_000, "pageLoad": 30_000}),
        )
        .await;
        b
    }

    /// Ends the session (Chromium exits with it).
    pub async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        read(req).await["value"].clone()
    }

    /// The same call, failing the test on a WebDriver error.
    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let v = self.call(method, path, body).await;
        if let Some(e) = v.get("error") {
            panic!("WebDriver {method} {path}: {e} {}", v["message"]);
        }
        v
    }

    pub async fn goto(&self, url: &str) {
        self.ok("POST", "url", json!({ "url": url })).await;
    }

    /// The element matching `css`, now.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .ok(
                "POST",
                "element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Clicks the element matching `css`; found again if a live page replaced it between
    /// the finding and the click.
    pub async fn click(&self, css: &str) {
        for _ in 0..3 {
            let id = self.find(css).await;
            let v = self
                .call("POST", &format!("element/{id}/click"), json!({}))
                .await;
            match v.get("error").and_then(Value::as_str) {
                None => return,
                Some("stale element reference") => continue,
                Some(e) => panic!("click {css}: {e} {}", v["message"]),
            }
        }
        panic!("click {css}: the element was replaced three times");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.ok(
            "POST",
            &format!("element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// The rendered text of the element matching `css` (read in one step in the page, as
    /// live pages replace their elements).
    pub async fn text(&self, css: &str) -> String {
        let v = self
            .eval(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                json!([css]),
            )
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` as given) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.ok(
            "POST",
            "execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Waits until the expression `js` (over `arg`) is truthy in the page, testing it on
    /// every animation frame (state with no DOM change, such as a media element's clock),
    /// and answers its value; `None` after `within` (under the session's 30 s script
    /// timeout).
    pub async fn wait_true(&self, js: &str, arg: Value, within: Duration) -> Option<Value> {
        let script = format!(
            "const [arg, ms, done] = arguments;\
             const test = (arg) => {{ return ({js}); }};\
             const end = Date.now() + ms;\
             const tick = () => {{\
               let v = null; try {{ v = test(arg); }} catch (e) {{ v = null; }}\
               if (v) {{ done(v); return; }}\
               if (Date.now() > end) {{ done(null); return; }}\
               requestAnimationFrame(tick);\
             }};\
             tick();"
        );
        let ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
        let v = self
            .ok(
                "POST",
                "execute/async",
                json!({"script": script, "args": [arg, ms]}),
            )
            .await;
        (!v.is_null()).then_some(v)
    }

    /// Waits in the page until an element matches `css`, watching the DOM's changes, and
    /// answers the page's clock (Unix ms) at that moment; `None` after `within`.
    pub async fn wait_for(&self, css: &str, within: Duration) -> Option<i64> {
        let script = "const [css, ms, done] = arguments;\
            const seen = () => document.querySelector(css);\
            if (seen()) { done(Date.now()); return; }\
            const timer = setTimeout(() => { obs.disconnect(); done(null); }, ms);\
            const obs = new MutationObserver(() => {\
              if (seen()) { obs.disconnect(); clearTimeout(timer); done(Date.now()); }\
            });\
            obs.observe(document, {subtree: true, childList: true, attributes: true});";
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            let v = self
                .call(
                    "POST",
                    "execute/async",
                    json!({"script": script, "args": [css, ms]}),
                )
                .await;
            match v.get("error").and_then(Value::as_str) {
                None => return v.as_i64(),
                // The script's own timer answers null at the deadline, long before the
                // session's 30 s script timeout: this error means a navigation (a form
                // posted, a redirect) replaced the document the script watched. Watch the
                // new one for the time left.
                Some("script timeout") if !left.is_zero() => continue,
                Some(e) => panic!("WebDriver POST execute/async: {e} {}", v["message"]),
            }
        }
    }

    /// Signs in from the console's login page at `base` and waits for the page the account
    /// lands on (`<body data-page>`).
    pub async fn sign_in(&self, base: &str, user: &str, password: &str, lands_on: &str) {
        let within = Duration::from_secs(10);
        self.goto(&format!("{base}/ui/login")).await;
        assert!(
            self.wait_page("login", within).await,
            "{}",
            self.url().await
        );
        self.type_into("#user", user).await;
        self.type_into("#password", password).await;
        self.click("button[type=submit]").await;
        assert!(
            self.wait_page(lands_on, within).await,
            "{user} did not land on {lands_on}: {}",
            self.url().await
        );
    }

    /// Waits for a page whose `<body data-page>` is `page` (after a navigation).
    pub async fn wait_page(&self, page: &str, within: Duration) -> bool {
        self.wait_for(&format!("body[data-page=\"{page}\"]"), within)
            .await
            .is_some()
    }

    pub async fn url(&self) -> String {
        let v = self.ok("GET", "url", json!({})).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// A PNG of the viewport, written to `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let v = self.ok("GET", "screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("PNG");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// A WebDriver answer as JSON.
async fn read(req: reqwest::RequestBuilder) -> Value {
    let text = req
        .send()
        .await
        .expect("WebDriver request")
        .text()
        .await
        .expect("WebDriver answer");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("WebDriver answer {text}: {e}"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After `quit` Chromium is gone; the driver goes now.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
