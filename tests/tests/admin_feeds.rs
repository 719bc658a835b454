//! Who may hold what, live, against a real `svi run` over HTTPS (issue 14): a revoked API
//! key or a disabled user loses its open event feeds at once, whether the change came
//! through the API or through `svi user`/`svi apikey`; an agent's account sets its own
//! state (ready, pause with a reason) and no other agent's.

use std::time::Duration;

use serde_json::json;
use svi_tests::admin::{create_key, svi_cli, Api, Auth};
use svi_tests::proc::{EngineOptions, EngineProc};

const PASSWORD: &str = "correct horse battery staple";

/// How long a revocation may take to end a feed: "at once", with room for a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(3);

fn add_user(data: &std::path::Path, name: &str, role: &str, agent: Option<&str>) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    if let Some(a) = agent {
        args.extend(["--agent", a]);
    }
    let (code, out, err) = svi_cli(data, None, &args, &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "svi user add {name}: {out}{err}");
}

/// The embedded default configuration (agents 1001 and 1002), with accounts made offline.
fn engine(accounts: impl FnOnce(&std::path::Path)) -> (tempfile::TempDir, EngineProc) {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    accounts(&data);
    let engine = EngineProc::start(EngineOptions {
        data_dir: Some(data),
        ..EngineOptions::default()
    });
    (dir, engine)
}

fn key_id(key: &str) -> String {
    key.strip_prefix("svi_")
        .and_then(|k| k.split('_').next())
        .expect("svi_<id>_<secret>")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_key_or_disabling_a_user_ends_their_feeds_at_once() {
    let (mut admin, mut doomed, mut cli_doomed, mut kept) =
        (String::new(), String::new(), String::new(), String::new());
    let (_dir, engine) = engine(|data| {
        admin = create_key(data, None, "admin", "console");
        doomed = create_key(data, None, "supervisor", "old wallboard");
        cli_doomed = create_key(data, None, "supervisor", "old crm");
        kept = create_key(data, None, "supervisor", "wallboard");
        add_user(data, "sue", "supervisor", None);
    });
    let api = Api::new(&engine);
    let (cookie, csrf) = api.login("sue", PASSWORD).await.expect("sue logs in");
    let session = Auth::Session {
        cookie: &cookie,
        csrf: &csrf,
    };
    let mut feeds = Vec::new();
    for auth in [
        Auth::Key(&doomed),
        Auth::Key(&cli_doomed),
        session,
        Auth::Key(&kept),
    ] {
        let mut feed = api.events_as("/api/v1/events", auth).await;
        let ready = feed.next(Duration::from_secs(5)).await.expect("ready");
        assert_eq!(ready.name, "ready", "{ready:?}");
        feeds.push(feed);
    }
    let [by_api, by_cli, sues, kept_feed] = &mut feeds[..] else {
        unreachable!()
    };

    // A key revoked through the API.
    let revoked = api
        .send(
            "DELETE",
            &format!("/api/v1/apikeys/{}", key_id(&doomed)),
            Auth::Key(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(
        by_api.ends_within(AT_ONCE).await,
        "the revoked key's feed is still open"
    );

    // A key revoked, and a user disabled, through the running engine's admin socket.
    let data = engine.data_dir();
    let (code, out, err) = svi_cli(&data, None, &["apikey", "revoke", &key_id(&cli_doomed)], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        by_cli.ends_within(AT_ONCE).await,
        "the key revoked by svi apikey still feeds"
    );
    let (code, out, err) = svi_cli(&data, None, &["user", "disable", "sue"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        sues.ends_within(AT_ONCE).await,
        "the disabled user's feed is still open"
    );

    // The others' feed lives on: it delivers the next event (an agent logging in).
    let login = api
        .send(
            "POST",
            "/api/v1/agents/1001/state",
            Auth::Key(&kept),
            Some(&json!({"action": "login"})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let event = kept_feed
        .find(Duration::from_secs(5), |e| e.name == "acd")
        .await;
    assert!(event.is_some(), "the kept key's feed stopped");
    // And the revoked credentials open nothing any more.
    for auth in [Auth::Key(&doomed), Auth::Key(&cli_doomed), session] {
        let a = api.get("/api/v1/events", auth).await;
        assert_eq!(a.status, 401, "{}", a.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_account_sets_its_own_state_and_no_other() {
    let mut supervisor = String::new();
    let mut agent_key = String::new();
    let (_dir, engine) = engine(|data| {
        supervisor = create_key(data, None, "supervisor", "wallboard");
        agent_key = create_key(data, None, "agent", "softphone");
        add_user(data, "ann", "agent", Some("1001"));
    });
    let api = Api::new(&engine);
    let (cookie, csrf) = api.login("ann", PASSWORD).await.expect("ann logs in");
    let ann = Auth::Session {
        cookie: &cookie,
        csrf: &csrf,
    };
    let set = |action: serde_json::Value| {
        let api = &api;
        async move {
            api.send("POST", "/api/v1/me/agent/state", ann, Some(&action))
                .await
        }
    };
    let agent = |id: &'static str| {
        let api = &api;
        let supervisor = &supervisor;
        async move {
            let all = api.get("/api/v1/agents", Auth::Key(supervisor)).await;
            assert_eq!(all.status, 200, "{}", all.text);
            all.json
                .as_array()
                .expect("agents")
                .iter()
                .find(|a| a["id"] == id)
                .cloned()
                .expect("agent")
        }
    };

    let me = api.get("/api/v1/me/agent", ann).await;
    assert_eq!(
        (me.status, &me.json["id"]),
        (200, &json!("1001")),
        "{}",
        me.text
    );
    let logged_in = set(json!({"action": "login"})).await;
    assert_eq!(logged_in.status, 200, "{}", logged_in.text);
    let ready = set(json!({"action": "ready"})).await;
    assert_eq!(
        (ready.status, &ready.json["state"]),
        (200, &json!("ready")),
        "{}",
        ready.text
    );
    let no_reason = set(json!({"action": "pause"})).await;
    assert_eq!(
        (no_reason.status, no_reason.json["field"].as_str()),
        (400, Some("reason")),
        "{}",
        no_reason.text
    );
    let paused = set(json!({"action": "pause", "reason": "lunch"})).await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    // The supervisor's view agrees: 1001 paused for lunch, 1002 untouched.
    let a1001 = agent("1001").await;
    assert_eq!(
        (&a1001["state"], &a1001["pause_reason"]),
        (&json!("not_ready"), &json!("lunch")),
        "{a1001}"
    );
    assert_eq!(agent("1002").await["state"], "logged_out");

    // No other agent: the supervisors' route is refused, and the own route names none.
    let other = api
        .send(
            "POST",
            "/api/v1/agents/1002/state",
            ann,
            Some(&json!({"action": "login"})),
        )
        .await;
    assert_eq!(other.status, 403, "{}", other.text);
    let smuggled = set(json!({"action": "login", "agent": "1002"})).await;
    assert_eq!(smuggled.status, 400, "{}", smuggled.text);
    assert_eq!(agent("1002").await["state"], "logged_out");
    // A session write needs its CSRF token.
    let forged = api
        .send(
            "POST",
            "/api/v1/me/agent/state",
            Auth::Session {
                cookie: &cookie,
                csrf: "0000",
            },
            Some(&json!({"action": "ready"})),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    // An API key with the agent role is no agent's account; a supervisor has no own agent.
    let keyed = api.get("/api/v1/me/agent", Auth::Key(&agent_key)).await;
    assert_eq!(keyed.status, 404, "{}", keyed.text);
    let sup = api.get("/api/v1/me/agent", Auth::Key(&supervisor)).await;
    assert_eq!(sup.status, 403, "{}", sup.text);
}
