//! Kind `http` against a real HTTP server on 127.0.0.1 (`server`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::server::{self, Server};
use super::{build, params, LONG};

/// One `http` data source named `crm` on `srv`, with the given extra settings.
fn crm(srv: &Server, url_path: &str, extra: &str) -> String {
    format!("[[data_sources]]\nname = 'crm'\nkind = 'http'\nproxy = 'none'\nurl = 'http://{}{url_path}'\n{extra}\n", srv.addr)
}

/// Answers with the status named by the path's first segment (`/404/...`), body `{"ok":1}`.
async fn status_server() -> Server {
    server::serve(|r| {
        let status = r
            .target
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        Some((status, r#"{"ok":1,"detail":"personal"}"#.into()))
    })
    .await
}

#[tokio::test]
async fn get_fills_the_url_sends_the_secret_and_picks_fields() {
    let mut srv = server::serve(|_| {
        Some((
            200,
            r#"{"customer":{"vip":true,"name":"Ada","tags":["a"]},"total":3}"#.into(),
        ))
    })
    .await;
    let extra = "[data_sources.headers]\nAuthorization = 'Bearer ${SVI_TEST_TOKEN}'\n\
                 [data_sources.fields]\nvip = '/customer/vip'\nname = '/customer/name'\nfirst_tag = '/customer/tags/0'\nmissing = '/nope'\n";
    let toml = crm(&srv, "/api/customers/{number}?lang={lang}&n={n}", extra);
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build(&toml, dir.path(), &[("SVI_TEST_TOKEN", "s3cret")])
        .await
        .expect("build");
    let p = params(json!({ "number": "+33 1/2&x", "lang": "fr", "n": 7 }));
    assert_eq!(
        c.lookup("crm", &p, LONG).await,
        Ok(Some(params(
            json!({ "vip": true, "name": "Ada", "first_tag": "a", "missing": null })
        )))
    );
    let r = srv.next_request().await;
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/api/customers/%2B33%201%2F2%26x?lang=fr&n=7")
    );
    assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(r.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn post_sends_the_json_body_and_returns_the_whole_object() {
    let mut srv =
        server::serve(|_| Some((201, r#"{"ticket":"INC-42","queued":true}"#.into()))).await;
    let extra = "method = 'post'\n[data_sources.body]\ncaller = '{number}'\ncount = '{n}'\nnote = 'call from {number} ({n})'\n\
                 fixed = 3\nlist = ['{n}', 'x']\nnested = { who = '{number}' }\n";
    let toml = crm(&srv, "/api/tickets", extra);
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build(&toml, dir.path(), &[]).await.expect("build");
    let p = params(json!({ "number": "+33100000001", "n": 2 }));
    assert_eq!(
        c.lookup("crm", &p, LONG).await,
        Ok(Some(params(json!({ "ticket": "INC-42", "queued": true }))))
    );
    let r = srv.next_request().await;
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/api/tickets")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    let expected = json!({ "caller": "+33100000001", "count": 2, "note": "call from +33100000001 (2)",
                           "fixed": 3, "list": [2, "x"], "nested": { "who": "+33100000001" } });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn statuses_map_to_found_not_found_and_errors_without_personal_data() {
    let srv = status_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = crm(
        &srv,
        "/{status}/c?number={number}",
        "not_found_status = [404, 410]",
    );
    let c = build(&toml, dir.path(), &[]).await.expect("build");
    let c = &c;
    let call = |status: u16| async move { c.lookup("crm", &params_with(status), LONG).await };
    assert!(matches!(call(200).await, Ok(Some(_))));
    assert_eq!(call(404).await, Ok(None));
    assert_eq!(call(410).await, Ok(None));
    assert_eq!(call(500).await, Err(format!("HTTP 500 from {}", srv.addr)));
    assert_eq!(
        call(302).await,
        Err(format!("HTTP 302 from {}", srv.addr)),
        "redirects are not followed"
    );
}

fn params_with(status: u16) -> Map<String, Value> {
    params(json!({ "status": status, "number": "+33100000001" }))
}

#[tokio::test]
async fn bodies_that_are_not_records_are_errors_or_empty_records() {
    let srv = server::serve(|r| {
        Some(match r.target.as_str() {
            "/empty" => (200, String::new()),
            "/list" => (200, "[1,2]".into()),
            "/big" => (200, format!("{{\"x\":\"{}\"}}", "a".repeat(100))),
            _ => (200, "not json".into()),
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build(
        &crm(&srv, "/{what}", "max_response_bytes = 64"),
        dir.path(),
        &[],
    )
    .await
    .expect("build");
    let c = &c;
    let call = |what: &str| {
        let p = params(json!({ "what": what }));
        async move { c.lookup("crm", &p, LONG).await }
    };
    assert_eq!(call("empty").await, Ok(Some(Map::new())));
    let host = srv.addr;
    assert_eq!(
        call("list").await,
        Err(format!(
            "the response from {host} is not a JSON object (pick values with `fields`)"
        ))
    );
    assert_eq!(
        call("text").await,
        Err(format!("the response from {host} is not JSON"))
    );
    assert_eq!(
        call("big").await,
        Err(format!("the response from {host} is larger than 64 bytes"))
    );
}

#[tokio::test]
async fn a_backend_that_never_answers_times_out_by_the_deadline() {
    let mut srv = server::serve(|_| None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build(&crm(&srv, "/slow/{number}", ""), dir.path(), &[])
        .await
        .expect("build");
    let started = std::time::Instant::now();
    let result = c
        .lookup(
            "crm",
            &params(json!({ "number": "1" })),
            Duration::from_millis(300),
        )
        .await;
    assert_eq!(result, Err("timed out after 300ms".into()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        srv.next_request().await.target,
        "/slow/1",
        "the request did reach the backend"
    );
}

#[tokio::test]
async fn an_unreachable_backend_is_an_error_naming_the_host_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener); // nothing listens there now: connection refused
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!("[[actions]]\nname = 'x'\nkind = 'http'\nproxy = 'none'\nmethod = 'PUT'\nurl = 'http://{addr}/a?n={{n}}'\n");
    let c = build(&toml, dir.path(), &[]).await.expect("build");
    let e = c
        .action("x", &params(json!({ "n": "+33100000001" })), LONG)
        .await
        .expect_err("refused");
    assert!(
        e.starts_with(&format!("cannot connect to {addr}: ")) && !e.contains("3310000"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_at_build_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = "[[actions]]\nname = 'x'\nkind = 'http'\n";
    for (rest, expected) in [
        (
            "url = 'http://h/'\n[actions.headers]\nX-Key = '${SVI_MISSING_VAR}'",
            "actions[0].headers.X-Key: environment variable `SVI_MISSING_VAR` is not set",
        ),
        (
            "url = 'http://{host}/a'",
            "actions[0].url: placeholders may not be in the scheme or host",
        ),
        (
            "url = 'http://h.example{tld}/a'",
            "actions[0].url: placeholders may not be in the scheme or host",
        ),
        (
            "url = 'ftp://h/a'",
            "actions[0].url: `ftp:` is not http or https",
        ),
        (
            "url = 'http://h/{bad name}'",
            "actions[0].url: `{bad name` is not a placeholder",
        ),
        (
            "url = 'http://h/'\nmethod = 'DELETE'",
            "actions[0].method: `DELETE` is not GET, POST or PUT",
        ),
        (
            "url = 'http://h/'\nbody = { a = 1 }",
            "actions[0].body: a GET request has no body",
        ),
        (
            "url = 'http://h/'\nmethod = 'POST'\nbody = '{not json'",
            "actions[0].body: is not JSON text",
        ),
        (
            "url = 'http://h/'\nfields = { vip = 'customer.vip' }",
            "actions[0].fields.vip: must be a JSON pointer",
        ),
        (
            "url = 'http://h/'\nnot_found_status = [404, 99]",
            "actions[0].not_found_status[1]: 99 is outside 100..=599",
        ),
        (
            "url = 'http://h/'\ntimout = '2s'",
            "actions[0].timout: not a setting of kind `http`",
        ),
        ("method = 'GET'", "actions[0].url: is required"),
    ] {
        let e = build(&format!("{head}{rest}\n"), dir.path(), &[])
            .await
            .expect_err(rest)
            .to_string();
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
}
