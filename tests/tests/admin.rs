//! The admin REST API against a real `svi run` over HTTPS (issue 14's acceptance): no
//! credentials 401, `/healthz` open, plain HTTP refused or redirected; every route with
//! every role against the table of docs/admin.md; random JSON on every write route; login
//! throttling, sessions and CSRF; the certificate reloaded on SIGHUP.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use admin::roles::{Access, Role, ROUTES};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use svi_tests::admin::{add_user, create_key, engine_with, Api, Auth};
use svi_tests::ports::free_sip_port;

const PASSWORD: &str = "correct horse battery staple";

/// A path of the table with sample values for its parameters (objects that do not exist,
/// so that an allowed write changes nothing).
fn concrete(path: &str) -> String {
    path.replace("{name}", "nobody")
        .replace("{version}", "000000000000")
        .replace("{id}", "000000000000")
        .replace("{call}", "000000000000")
}

fn is_write(method: &str) -> bool {
    method != "GET" && method != "HEAD"
}

#[tokio::test(flavor = "multi_thread")]
async fn https_only_no_credentials_401_supervisor_key_200_and_403_on_users() {
    let redirect = free_sip_port();
    let mut key = String::new();
    let (_dir, engine) = engine_with(
        &format!("[admin]\nhttp_redirect = \"127.0.0.1:{redirect}\"\n"),
        |data, config| key = create_key(data, Some(config), "supervisor", "wallboard"),
    );
    let api = Api::new(&engine);

    let health = api.get("/healthz", Auth::None).await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json["status"], "ok");
    assert_eq!(health.json["role"], "active");
    assert!(health.json["version"].is_string());

    let anon = api.get("/api/v1/queues", Auth::None).await;
    assert_eq!(anon.status, 401, "{}", anon.text);
    assert!(anon.headers.get("www-authenticate").is_some());
    assert_eq!(anon.json["error"], "unauthenticated");

    let sup = api.get("/api/v1/queues", Auth::Key(&key)).await;
    assert_eq!(sup.status, 200, "{}", sup.text);
    assert_eq!(sup.json[0]["id"], "support", "{}", sup.text);
    let ha = api.get("/api/v1/ha", Auth::Key(&key)).await;
    assert_eq!(ha.status, 200, "{}", ha.text);
    assert_eq!(ha.json["role"], "active");
    let users = api
        .send(
            "POST",
            "/api/v1/users",
            Auth::Key(&key),
            Some(&json!({"name": "eve", "role": "admin", "password": PASSWORD})),
        )
        .await;
    assert_eq!(users.status, 403, "{}", users.text);
    // The same key with its last hex digit changed (never equal to the real one).
    let last = if key.ends_with('0') { '1' } else { '0' };
    let bogus = format!("{}{last}", &key[..key.len() - 1]);
    assert_eq!(api.get("/api/v1/ha", Auth::Key(&bogus)).await.status, 401);
    for header in ["strict-transport-security", "x-content-type-options"] {
        assert!(sup.headers.get(header).is_some(), "{header}");
    }

    // Plain HTTP on the HTTPS port gets no HTTP answer (the TLS handshake fails).
    let mut s = TcpStream::connect(engine.http).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // The configured plain-HTTP port only redirects to HTTPS.
    let mut s = TcpStream::connect(("127.0.0.1", redirect)).expect("connect redirect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /api/v1/ha?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 308"), "{got}");
    let want = format!(
        "location: https://127.0.0.1:{}/api/v1/ha?x=1",
        engine.http.port()
    );
    assert!(got.to_lowercase().contains(&want), "{got}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_with_every_role_and_none_follows_the_table_of_docs_admin_md() {
    let mut keys = Vec::new();
    let (_dir, engine) = engine_with("", |data, config| {
        for role in Role::ALL {
            keys.push((
                role,
                create_key(data, Some(config), role.as_str(), "matrix"),
            ));
            if role.for_users() {
                add_user(
                    data,
                    Some(config),
                    &format!("u-{role}"),
                    role.as_str(),
                    PASSWORD,
                );
            }
        }
    });
    let api = Api::new(&engine);
    let mut checked = 0;
    for rule in ROUTES {
        let path = concrete(rule.path);
        let body = is_write(rule.method).then(|| json!({}));
        // No credentials.
        let a = api
            .send(rule.method, &path, Auth::None, body.as_ref())
            .await;
        if rule.access == Access::Open {
            assert!(
                a.status != 401 && a.status != 403 && a.status < 500,
                "{} {path} open: {}",
                rule.method,
                a.status
            );
        } else {
            assert_eq!(
                a.status, 401,
                "{} {path} without credentials: {}",
                rule.method, a.text
            );
        }
        for (role, key) in &keys {
            let a = api
                .send(rule.method, &path, Auth::Key(key), body.as_ref())
                .await;
            check(
                rule.method,
                &path,
                *role,
                "key",
                rule.access.allows(*role),
                a.status,
                &a.text,
            );
            checked += 1;
            if !role.for_users() {
                continue;
            }
            // The same rights through a browser session (cookie + CSRF token); a fresh
            // session per request, since one of the routes logs out.
            let (cookie, csrf) = api
                .login(&format!("u-{role}"), PASSWORD)
                .await
                .expect("login");
            let auth = Auth::Session {
                cookie: &cookie,
                csrf: &csrf,
            };
            let a = api.send(rule.method, &path, auth, body.as_ref()).await;
            check(
                rule.method,
                &path,
                *role,
                "session",
                rule.access.allows(*role),
                a.status,
                &a.text,
            );
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * (Role::ALL.len() + 4));
    // Refusals are in the audit log, with who and from where.
    let admin = &keys[0].1;
    let audit = api.get("/api/v1/audit?limit=10000", Auth::Key(admin)).await;
    let entries = audit.json.as_array().expect("entries");
    assert!(entries.iter().any(|e| e["outcome"] == "denied"
        && e["actor"].as_str().is_some_and(|a| a.starts_with("key:"))
        && e["action"] == "POST /api/v1/users"
        && e["origin"] == "127.0.0.1"));
}

fn check(method: &str, path: &str, role: Role, via: &str, allowed: bool, status: u16, text: &str) {
    if allowed {
        // Past the rights check, a write may still meet a node that is not serving this
        // instant (a single node's lease lapsing on a loaded machine): a 503 saying so.
        let not_active = status == 503 && text.contains("\"error\":\"not_active\"");
        assert!(
            status != 401 && status != 403 && (status < 500 || not_active),
            "{method} {path} as {role} ({via}) is allowed by the table, got {status}: {text}"
        );
    } else {
        assert_eq!(
            status, 403,
            "{method} {path} as {role} ({via}) must be refused: {text}"
        );
    }
}

/// A random JSON value: nested up to `depth`, with the routes' own field names among the
/// keys so that fields get wrong types and odd values, not only unknown names.
fn random_json(rng: &mut impl Rng, depth: u32) -> Value {
    const FIELDS: &[&str] = &[
        "name", "role", "password", "agent", "source", "activate", "version", "force", "user",
    ];
    let pick = if depth == 0 {
        rng.gen_range(0..6)
    } else {
        rng.gen_range(0..8)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e300),
        4 => {
            let len = [0, 1, 12, 300, 70_000][rng.gen_range(0..5)];
            let s: String = (0..len)
                .map(|_| match rng.gen_range(0..4) {
                    0 => char::from(rng.gen_range(b'a'..=b'z')),
                    1 => ['é', '\u{0}', '"', '\\', '\n', '😀', '{'][rng.gen_range(0..7)],
                    2 => char::from(rng.gen_range(b'0'..=b'9')),
                    _ => ' ',
                })
                .collect();
            json!(s)
        }
        5 => json!(
            ["admin", "supervisor", "agent", "auditor", "metrics", "root"][rng.gen_range(0..6)]
        ),
        6 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..6) {
                let k = if rng.gen_bool(0.8) {
                    FIELDS[rng.gen_range(0..FIELDS.len())].to_string()
                } else {
                    format!("x{}", rng.gen::<u16>())
                };
                m.insert(k, random_json(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_json_on_every_write_route_never_gets_a_500_or_a_panic() {
    let mut key = String::new();
    let (_dir, engine) = engine_with("", |data, config| {
        key = create_key(data, Some(config), "admin", "fuzz");
    });
    let api = Api::new(&engine);
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let writes: Vec<_> = ROUTES.iter().filter(|r| is_write(r.method)).collect();
    assert!(writes.len() >= 10, "{}", writes.len());
    let mut sent = 0;
    for rule in &writes {
        let path = concrete(rule.path);
        for i in 0..40 {
            let body = match i {
                // Not JSON at all, truncated, deeply nested.
                0 => b"\xff\xfe not json".to_vec(),
                1 => b"{\"name\": \"ab".to_vec(),
                2 => format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
                _ => random_json(&mut rng, 3).to_string().into_bytes(),
            };
            let (status, text) = match api
                .raw(rule.method, &path, Auth::Key(&key), body.clone())
                .await
            {
                Ok(s) => s,
                Err(e) => panic!("{} {path} #{i}: {e}\n{}", rule.method, engine.log_text()),
            };
            // A write refused because this node is not serving (a single node's lease
            // lapsing for an instant on a loaded machine) is a 503 that says so; nothing
            // else may be a server error.
            let not_active = status == 503 && text.contains("\"error\":\"not_active\"");
            assert!(
                status < 500 || not_active,
                "{} {path} answered {status} {text} to {}",
                rule.method,
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            sent += 1;
        }
    }
    assert_eq!(sent, writes.len() * 40);
    assert_eq!(api.get("/healthz", Auth::None).await.status, 200);
    assert!(
        !engine.log_text().contains("panicked"),
        "{}",
        engine.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_are_throttled_sessions_need_csrf_and_names_are_not_revealed() {
    let (_dir, engine) = engine_with("", |data, config| {
        add_user(data, Some(config), "ann", "admin", PASSWORD);
        add_user(data, Some(config), "sam", "supervisor", PASSWORD);
    });
    let api = Api::new(&engine);
    let login = |user: &str, password: &str| json!({"user": user, "password": password});

    // A wrong password and an unknown user get the same answer.
    let wrong = api
        .send(
            "POST",
            "/api/v1/session",
            Auth::None,
            Some(&login("ann", "not the password")),
        )
        .await;
    let unknown = api
        .send(
            "POST",
            "/api/v1/session",
            Auth::None,
            Some(&login("nobody", "not the password")),
        )
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.text, unknown.text);

    // A session: reads with the cookie; writes need the CSRF token too.
    let (cookie, _) = api.login("sam", PASSWORD).await.expect("sam logs in");
    let me = api
        .get(
            "/api/v1/session",
            Auth::Session {
                cookie: &cookie,
                csrf: "",
            },
        )
        .await;
    assert_eq!(
        (me.status, me.json["role"].as_str()),
        (200, Some("supervisor")),
        "{}",
        me.text
    );
    let (ann, ann_csrf) = api.login("ann", PASSWORD).await.expect("ann logs in");
    let new_user = json!({"name": "zoe", "role": "auditor", "password": PASSWORD});
    let no_csrf = api
        .send(
            "POST",
            "/api/v1/users",
            Auth::Session {
                cookie: &ann,
                csrf: "wrong",
            },
            Some(&new_user),
        )
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    let made = api
        .send(
            "POST",
            "/api/v1/users",
            Auth::Session {
                cookie: &ann,
                csrf: &ann_csrf,
            },
            Some(&new_user),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let again = api
        .send(
            "POST",
            "/api/v1/users",
            Auth::Session {
                cookie: &ann,
                csrf: &ann_csrf,
            },
            Some(&new_user),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let weak = json!({"name": "yan", "role": "auditor", "password": "password1234"});
    let weak = api
        .send(
            "POST",
            "/api/v1/users",
            Auth::Session {
                cookie: &ann,
                csrf: &ann_csrf,
            },
            Some(&weak),
        )
        .await;
    assert_eq!(
        (weak.status, weak.json["field"].as_str()),
        (400, Some("password")),
        "{}",
        weak.text
    );

    // Disabling a user ends their sessions at once.
    let off = api
        .send(
            "POST",
            "/api/v1/users/sam/disable",
            Auth::Session {
                cookie: &ann,
                csrf: &ann_csrf,
            },
            None,
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let me = api
        .get(
            "/api/v1/session",
            Auth::Session {
                cookie: &cookie,
                csrf: "",
            },
        )
        .await;
    assert_eq!(me.status, 401, "{}", me.text);
    assert!(api.login("sam", PASSWORD).await.is_none());

    // Logging out ends the session.
    let out = api
        .send(
            "DELETE",
            "/api/v1/session",
            Auth::Session {
                cookie: &ann,
                csrf: &ann_csrf,
            },
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    let me = api
        .get(
            "/api/v1/session",
            Auth::Session {
                cookie: &ann,
                csrf: "",
            },
        )
        .await;
    assert_eq!(me.status, 401);

    // Five failures lock the account, even for the right password, and tell nothing more.
    for _ in 0..5 {
        let a = api
            .send(
                "POST",
                "/api/v1/session",
                Auth::None,
                Some(&login("ann", "guess guess guess")),
            )
            .await;
        assert_eq!(a.status, 401);
    }
    let locked = api
        .send(
            "POST",
            "/api/v1/session",
            Auth::None,
            Some(&login("ann", PASSWORD)),
        )
        .await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    assert!(locked.headers.get("retry-after").is_some());
    let (cookie, _) = api
        .login("zoe", PASSWORD)
        .await
        .expect("another account still logs in");
    assert!(cookie.starts_with("__Host-svi_session="));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_files_are_reloaded_on_sighup() {
    let certs = tempfile::tempdir().expect("tmp");
    let names = vec!["localhost".to_string()];
    let first = certs.path().join("first");
    let files = admin::tls::CertFiles::self_signed(&first, &names).expect("cert");
    let live_cert = certs.path().join("admin.crt");
    let live_key = certs.path().join("admin.key");
    std::fs::copy(&files.cert, &live_cert).expect("copy");
    std::fs::copy(&files.key, &live_key).expect("copy");
    let (_dir, engine) = engine_with(
        &format!(
            "[admin]\ncert = \"{}\"\nkey = \"{}\"\n",
            live_cert.display(),
            live_key.display()
        ),
        |_, _| {},
    );
    // A client trusting only the configured certificate (the engine made none of its own).
    assert!(engine
        .wait_log("admin API ready", Duration::from_secs(20))
        .is_some());
    assert!(!engine.data_dir().join("admin-tls.crt").exists());
    let old = Api::trusting(&first.join("admin-tls.crt"), engine.http);
    assert_eq!(old.try_get("/healthz").await, Ok(200));

    let second = certs.path().join("second");
    let files = admin::tls::CertFiles::self_signed(&second, &names).expect("cert");
    std::fs::copy(&files.cert, &live_cert).expect("copy");
    std::fs::copy(&files.key, &live_key).expect("copy");
    engine.send_signal("HUP");
    assert!(
        engine
            .wait_log("certificate reloaded", Duration::from_secs(10))
            .is_some(),
        "{}",
        engine.log_text()
    );
    let new = Api::trusting(&second.join("admin-tls.crt"), engine.http);
    assert_eq!(new.try_get("/healthz").await, Ok(200));
    // A new connection that trusts the old certificate only is refused now.
    let old = Api::trusting(&first.join("admin-tls.crt"), engine.http);
    let refused = old.try_get("/healthz").await;
    assert!(
        refused.is_err(),
        "the old certificate is still served: {refused:?}"
    );
}
