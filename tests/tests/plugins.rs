//! The access-control and helpdesk plug-ins against the reference servers, in process:
//! the access-control REST API over HTTPS with its own CA (`svi_tests::acs`), and the
//! helpdesk fixture in a private PostgreSQL server (`svi_tests::postgres`).
//!
//! Issue 16, "bad input and faults": a backend answering garbage, timing out, refusing TLS,
//! expiring its token mid-call, or returning a field of the wrong type each gives the flow
//! an error (its error branch) and one log line naming the connector and the reason,
//! without a secret or the caller's PIN.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::audit::{self, Outcome};
use engine::config::EngineConfig;
use engine::connectors::{BuildOptions, Connectors, Kinds};
use engine::replication::LocalWriter;
use engine::storage::Storage;
use serde_json::{json, Map, Value};
use svi_tests::acs::{self, AcsServer, Fault};
use tracing::instrument::WithSubscriber;

const LONG: Duration = Duration::from_secs(10);
const PIN: &str = "4321";

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The access-control connection and every operation, as `samples/svi.toml` has them,
/// with the server's CA, API key and login.
fn acs_config(server: &AcsServer, dir: &Path, extra: &str) -> String {
    let key = engine::secrets::SecretKey::load_or_create(dir).expect("key");
    let ca = server
        .ca_file
        .as_ref()
        .map(|p| format!("ca = '{}'\n", p.display()))
        .unwrap_or_default();
    let mut toml = format!(
        "[[connections]]\nname = 'acs'\nkind = 'rest'\nurl = '{url}'\n{ca}api_key = '{api_key}'\nlogin = '/auth/token'\nusername = '{user}'\npassword = '{password}'\nrenew_before = '1s'\nproxy = 'none'\n",
        url = server.base_url(),
        api_key = key.encrypt(acs::API_KEY),
        user = acs::USERNAME,
        password = key.encrypt(acs::PASSWORD),
    );
    for (table, name, op, more) in [
        (
            "data_sources",
            "visitor_appointment",
            "appointments_today",
            "timeout = '2s'\nbreaker_failures = 3\n",
        ),
        ("data_sources", "badge_holder", "holder_by_pin", ""),
        ("data_sources", "holder_by_badge", "holder_by_badge", ""),
        (
            "data_sources",
            "current_alarm",
            "recent_alarms",
            "path = '/alarms?state=open'\n",
        ),
        ("actions", "create_visit", "create_visit", ""),
        ("actions", "confirm_visit", "confirm_visit", ""),
        ("actions", "block_badge", "block_badge", ""),
        ("actions", "open_door", "open_door", "rate_max = 3\n"),
        ("actions", "ack_alarm", "ack_alarm", ""),
    ] {
        toml.push_str(&format!(
            "[[{table}]]\nname = '{name}'\nkind = 'access_control'\nconnection = 'acs'\noperation = '{op}'\n{more}"
        ));
    }
    toml.push_str(extra);
    toml
}

struct Fixture {
    connectors: Connectors,
    storage: Storage,
    _dir: tempfile::TempDir,
}

async fn build(toml_of: impl Fn(&Path) -> String) -> Result<Fixture, String> {
    let dir = tempfile::tempdir().expect("tmp");
    let toml = toml_of(dir.path());
    let config =
        EngineConfig::parse(&toml, Path::new("t.toml"), dir.path()).map_err(|e| e.to_string())?;
    let storage = Storage::open(&dir.path().join("db"))
        .await
        .expect("storage");
    storage.prepare_raft().await.expect("docs table");
    let audit = audit::AuditLog::new(Arc::new(LocalWriter(storage.clone())), "test-node");
    let connectors = Connectors::build_with(
        &config,
        BuildOptions {
            kinds: &Kinds::builtin(),
            env: &|_: &str| None,
            data_dir: Some(dir.path().to_path_buf()),
            audit: Some(audit),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Fixture {
        connectors,
        storage,
        _dir: dir,
    })
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn access_control_operations_over_tls_with_a_token_session() {
    let server = AcsServer::start(true, Duration::from_secs(300)).await;
    let visit = server.add_appointment("4321", &today(), "Grace Hopper", false);
    let f = build(|dir| acs_config(&server, dir, ""))
        .await
        .expect("build");
    let c = &f.connectors;
    let found = c
        .lookup(
            "visitor_appointment",
            &params(json!({ "host": "4321", "date": today() })),
            LONG,
        )
        .await;
    assert_eq!(
        found,
        Ok(Some(params(json!({
            "visit": visit, "visitor": "Grace Hopper", "time": "10:00", "confirmed": false
        }))))
    );
    assert_eq!(
        c.lookup(
            "visitor_appointment",
            &params(json!({ "host": "4322", "date": today() })),
            LONG
        )
        .await,
        Ok(None),
        "no appointment: an empty list is not found"
    );
    assert_eq!(
        c.action("confirm_visit", &params(json!({ "visit": visit })), LONG)
            .await,
        Ok(Some(Map::new()))
    );
    assert!(server
        .appointments()
        .iter()
        .any(|a| a.id == visit && a.confirmed));
    assert_eq!(
        c.lookup("badge_holder", &params(json!({ "pin": PIN })), LONG)
            .await,
        Ok(Some(params(
            json!({ "id": "h-100", "name": "Ada Lovelace", "badge": "B-1001" })
        )))
    );
    assert_eq!(
        c.lookup("badge_holder", &params(json!({ "pin": "0000" })), LONG)
            .await,
        Ok(None)
    );
    let created = c
        .action(
            "create_visit",
            &params(json!({ "visitor": "Alan Turing", "host": "4322", "time": "14:00" })),
            LONG,
        )
        .await
        .expect("created")
        .expect("record");
    assert!(created["visit"]
        .as_str()
        .is_some_and(|v| v.starts_with("v-")));
    let alarm = server.raise_alarm("12", "forced");
    let current = c
        .lookup("current_alarm", &Map::new(), LONG)
        .await
        .expect("alarm")
        .expect("found");
    assert_eq!(current["alarm"], json!(alarm));
    assert_eq!(current["door"], json!("12"));
    assert_eq!(
        c.action(
            "ack_alarm",
            &params(json!({ "alarm": alarm, "by": "+33600000001" })),
            LONG
        )
        .await,
        Ok(Some(Map::new()))
    );
    assert_eq!(server.alarms()[0].acked_by.as_deref(), Some("+33600000001"));
    assert_eq!(c.lookup("current_alarm", &Map::new(), LONG).await, Ok(None));
    assert_eq!(server.logins(), 1, "one login served every request");
}

#[tokio::test]
async fn the_token_is_renewed_before_expiry_and_after_a_revocation_mid_call() {
    // A 2 s token renewed 3 s before it expires: every call is due for renewal while the
    // server still accepts the old token.
    let server = AcsServer::start(false, Duration::from_secs(2)).await;
    let f = build(|dir| {
        acs_config(&server, dir, "").replace("renew_before = '1s'", "renew_before = '3s'")
    })
    .await
    .expect("build");
    let pin = params(json!({ "pin": PIN }));
    for logins in 1..=2 {
        assert!(matches!(
            f.connectors.lookup("badge_holder", &pin, LONG).await,
            Ok(Some(_))
        ));
        assert_eq!(server.logins(), logins);
    }
    // A long-lived token the server forgets (a restart): the call gets 401, logs in again
    // and succeeds; a login refused is an error naming the host, not the password.
    let server = AcsServer::start(false, Duration::from_secs(300)).await;
    let f = build(|dir| acs_config(&server, dir, ""))
        .await
        .expect("build");
    assert!(matches!(
        f.connectors.lookup("badge_holder", &pin, LONG).await,
        Ok(Some(_))
    ));
    server.revoke_tokens();
    assert!(matches!(
        f.connectors.lookup("badge_holder", &pin, LONG).await,
        Ok(Some(_))
    ));
    assert_eq!(server.logins(), 2);
    let f = build(|dir| {
        let key = engine::secrets::SecretKey::load_or_create(dir).expect("key");
        acs_config(&server, dir, "").replace(
            "password = 'enc:v1:",
            &format!("password = '{}' #", key.encrypt("wrong-password")),
        )
    })
    .await
    .expect("build");
    let e = f
        .connectors
        .lookup("badge_holder", &pin, LONG)
        .await
        .expect_err("bad login");
    assert_eq!(
        e,
        format!(
            "{} refused the credentials (login answered 401)",
            server.addr
        )
    );
    assert!(!e.contains("wrong-password"));
}

#[tokio::test]
async fn each_backend_fault_is_an_error_with_one_clear_log_line_and_no_secret() {
    let server = AcsServer::start(true, Duration::from_secs(300)).await;
    let f = build(|dir| acs_config(&server, dir, ""))
        .await
        .expect("build");
    let c = &f.connectors;
    let pin = params(json!({ "pin": PIN }));
    let appt = params(json!({ "host": "4321", "date": today() }));
    server.add_appointment("4321", &today(), "Grace Hopper", true);
    for (fault, connector, p, expected) in [
        (Fault::Garbage, "badge_holder", &pin, "is not JSON"),
        (
            Fault::Status500,
            "badge_holder",
            &pin,
            "HTTP 500 from localhost",
        ),
        (Fault::Drop, "badge_holder", &pin, "localhost"),
        (
            Fault::WrongType,
            "visitor_appointment",
            &appt,
            "field `confirmed` is not a boolean",
        ),
        (
            Fault::Slow(Duration::from_secs(30)),
            "visitor_appointment",
            &appt,
            "timed out after 2s",
        ),
    ] {
        server.set_fault(fault);
        let capture = engine::test_log::LogCapture::of("");
        let result = c
            .lookup(connector, p, LONG)
            .with_subscriber(capture.clone())
            .await;
        let e = result.expect_err(&format!("{fault:?}"));
        assert!(e.contains(expected), "{fault:?}: {e}");
        let lines = capture.lines();
        let failed: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("connector call failed"))
            .collect();
        assert_eq!(failed.len(), 1, "{fault:?}: {lines:#?}");
        assert!(
            failed[0].starts_with("WARN")
                && failed[0].contains(&format!("connector=\"{connector}\""))
                && failed[0].contains("reason="),
            "{fault:?}: {}",
            failed[0]
        );
        for secret in [PIN, acs::API_KEY, acs::PASSWORD, "tok-"] {
            assert!(
                !lines.iter().any(|l| l.contains(secret)),
                "{fault:?}: `{secret}` leaked: {lines:#?}"
            );
        }
    }
    server.set_fault(Fault::None);
}

#[tokio::test]
async fn tls_is_verified_against_the_configured_ca_only() {
    let server = AcsServer::start(true, Duration::from_secs(300)).await;
    let other = AcsServer::start(true, Duration::from_secs(300)).await;
    // The right host, another CA: refused.
    let f = build(|dir| {
        acs_config(&server, dir, "").replace(
            &server.ca_file.as_ref().expect("ca").display().to_string(),
            &other.ca_file.as_ref().expect("ca").display().to_string(),
        )
    })
    .await
    .expect("build");
    let e = f
        .connectors
        .lookup("badge_holder", &params(json!({ "pin": PIN })), LONG)
        .await
        .expect_err("unknown CA");
    assert!(
        e.starts_with("cannot connect to localhost:")
            || e.starts_with("request failed to localhost:"),
        "{e}"
    );
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert_eq!(server.logins(), 0);
}

#[tokio::test]
async fn a_door_opens_only_for_a_valid_pin_within_the_rate_limit_and_every_attempt_is_audited() {
    let server = AcsServer::start(true, Duration::from_secs(300)).await;
    let f = build(|dir| acs_config(&server, dir, ""))
        .await
        .expect("build");
    let c = &f.connectors;
    let caller = "+33100000009";
    let open = |pin: &str, door: &str| {
        params(json!({ "pin": pin, "door": door, "caller": caller, "call": "c-1" }))
    };
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(
        c.action("open_door", &open(PIN, "2"), LONG).await,
        Ok(Some(Map::new()))
    );
    assert_eq!(
        server.doors_opened(),
        [("2".to_string(), "h-100".to_string())]
    );
    assert_eq!(
        c.action("open_door", &open("0000", "1"), LONG).await,
        Err("refused: the PIN is not recognised".into())
    );
    // Bob may open door 1 only.
    assert_eq!(
        c.action("open_door", &open("9876", "2"), LONG).await,
        Err("refused: the holder may not use this door".into())
    );
    // Three attempts per caller and door: the fourth on door 1 is refused before any request.
    assert!(c.action("open_door", &open(PIN, "1"), LONG).await.is_ok());
    assert!(c.action("open_door", &open(PIN, "1"), LONG).await.is_ok());
    let requests = server.requests();
    assert_eq!(
        c.action("open_door", &open(PIN, "1"), LONG).await,
        Err("refused: too many attempts from this caller".into())
    );
    assert_eq!(
        server.requests(),
        requests,
        "the rate limit answered without the server"
    );
    let missing = c
        .action(
            "open_door",
            &params(json!({ "door": "1", "caller": caller })),
            LONG,
        )
        .await;
    assert_eq!(missing, Err("parameter `pin` is missing".into()));
    // Blocking one's own badge.
    assert_eq!(
        c.action(
            "block_badge",
            &params(json!({ "pin": "9876", "caller": caller })),
            LONG
        )
        .await,
        Ok(Some(Map::new()))
    );
    assert!(server
        .holders()
        .iter()
        .any(|h| h.badge == "B-2002" && h.blocked));

    let entries = audit::read(&f.storage, since, 100).await.expect("audit");
    let doors: Vec<(String, String, Outcome, Option<String>)> = entries
        .iter()
        .filter(|e| e.action == "door.open")
        .map(|e| {
            (
                e.actor.clone(),
                e.target.clone(),
                e.outcome,
                e.detail.clone(),
            )
        })
        .collect();
    let h100 = "holder:h-100".to_string();
    assert_eq!(
        doors,
        vec![
            (h100.clone(), "door:2".into(), Outcome::Requested, None),
            (h100.clone(), "door:2".into(), Outcome::Done, None),
            (
                "unknown".into(),
                "door:1".into(),
                Outcome::Denied,
                Some("the PIN is not recognised".into())
            ),
            (
                "holder:h-200".into(),
                "door:2".into(),
                Outcome::Requested,
                None
            ),
            (
                "holder:h-200".into(),
                "door:2".into(),
                Outcome::Denied,
                Some("the holder may not use this door".into())
            ),
            (h100.clone(), "door:1".into(), Outcome::Requested, None),
            (h100.clone(), "door:1".into(), Outcome::Done, None),
            (h100.clone(), "door:1".into(), Outcome::Requested, None),
            (h100.clone(), "door:1".into(), Outcome::Done, None),
            (
                "unknown".into(),
                "door:1".into(),
                Outcome::Denied,
                Some("too many attempts from this caller".into())
            ),
        ]
    );
    assert!(entries
        .iter()
        .all(|e| e.origin == format!("call c-1 from {caller}") || e.action == "badge.block"));
    let json = serde_json::to_string(&entries).expect("json");
    assert!(
        !json.contains(PIN) || json.matches(PIN).count() == 0,
        "no PIN in the audit log"
    );
    assert!(entries.iter().any(|e| e.action == "badge.block"
        && e.target == "badge:B-2002"
        && e.outcome == Outcome::Done));
}

#[tokio::test]
async fn the_circuit_opens_after_the_configured_failures() {
    let server = AcsServer::start(false, Duration::from_secs(300)).await;
    let f = build(|dir| {
        acs_config(&server, dir, "").replace(
            "breaker_failures = 3\n",
            "breaker_failures = 3\nbreaker_open_for = '1s'\nretries = 0\n",
        )
    })
    .await
    .expect("build");
    let c = &f.connectors;
    let appt = params(json!({ "host": "4321", "date": today() }));
    server.set_fault(Fault::Status500);
    for _ in 0..3 {
        assert_eq!(
            c.lookup("visitor_appointment", &appt, LONG).await,
            Err(format!("HTTP 500 from {}", server.addr))
        );
    }
    let requests = server.requests();
    let e = c
        .lookup("visitor_appointment", &appt, LONG)
        .await
        .expect_err("open");
    assert!(e.contains("circuit open"), "{e}");
    assert_eq!(server.requests(), requests, "refused without a request");
    let health = c.health();
    let h = health
        .iter()
        .find(|h| h.name == "visitor_appointment")
        .expect("health");
    assert_eq!((h.circuit_opened, h.refused_open), (1, 1));
    // Recovery (probe, trial) is shown in virtual time by the engine's resilience tests.
}
