//! The web console's reports, HA, users and keys, audit log and agent desk in a real
//! browser (issue 15): Debian's headless Chromium over WebDriver against a real `svi run`
//! with agent 1001's phone (sipp) and a sipp caller. An agent's account sees only its desk,
//! pauses and becomes ready from it, sees its caller's number while on the call, and sees a
//! pause asked then wait for the call's end; a supervisor gets 403 on the users page; an
//! admin sees today's call in the reports' chart, is refused a weak password, adds a user,
//! revokes a key (refused by the API from then on) and makes one (shown once, accepted by
//! the API), finds the supervisor's refusal in the audit log, is told the node is already
//! active when promoting it, and reads the pages in French, a choice kept with the account.
//! Every page is photographed in both languages (`target/web-screenshots/`). Waits are DOM
//! observations in the page with deadlines.

use std::time::Duration;

use svi_tests::admin::{add_agent_user, add_user, console_engine, create_key, Api, Auth};
use svi_tests::browser::{installed, screenshots, Browser};
use svi_tests::config::prompt_len;
use svi_tests::contact::register_phone;
use svi_tests::sipp::{Caller, Codec, Dtmf};

const PASSWORD: &str = "reports and keys for admins";
const SECOND: Duration = Duration::from_secs(1);

/// The `href`s of the navigation of the page shown.
async fn nav(b: &Browser) -> Vec<String> {
    let v = b
        .eval(
            "return Array.from(document.querySelectorAll('header.top nav a'))\
             .map(a => a.getAttribute('href'));",
            serde_json::json!([]),
        )
        .await;
    serde_json::from_value(v).expect("hrefs")
}

async fn forbidden(b: &Browser, url: &str) -> bool {
    b.goto(url).await;
    b.wait_for("main h1", 10 * SECOND).await.is_some() && b.text("main h1").await == "403"
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_supervisors_and_agents_use_their_pages_in_a_real_browser() {
    assert!(
        installed("chromedriver") && installed("chromium"),
        "Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let (mut old_key, mut supervisor_key) = (String::new(), String::new());
    let engine = console_engine(dir.path(), |data| {
        add_user(data, None, "ada", "admin", PASSWORD);
        add_user(data, None, "sofia", "supervisor", PASSWORD);
        add_agent_user(data, "marc", "1001", PASSWORD);
        old_key = create_key(data, None, "supervisor", "crm");
        supervisor_key = create_key(data, None, "supervisor", "tests");
    });
    let api = Api::new(&engine);
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(120));
    let b = Browser::start().await;
    let base = api.base.clone();
    let (en, fr) = (screenshots("en"), screenshots("fr"));

    // The agent: the desk only; pause for lunch, then ready, from the desk's buttons.
    b.sign_in(&base, "marc", PASSWORD, "desk").await;
    assert_eq!(nav(&b).await, ["/ui/desk"]);
    let desk = "dl.desk-state[data-agent=\"1001\"]";
    assert!(b.wait_for(desk, 10 * SECOND).await.is_some());
    if b.wait_for("button[data-desk-action=\"login\"]", SECOND)
        .await
        .is_some()
    {
        b.click("button[data-desk-action=\"login\"]").await;
    }
    assert!(b
        .wait_for("button[data-desk-action=\"pause\"]", 10 * SECOND)
        .await
        .is_some());
    b.click("#desk-reason option[value=\"lunch\"]").await;
    b.click("button[data-desk-action=\"pause\"]").await;
    let paused = "dl.desk-state[data-state=\"not_ready\"]";
    assert!(b.wait_for(paused, 10 * SECOND).await.is_some());
    let text = b.text(paused).await;
    assert!(text.contains("Paused") && text.contains("Lunch"), "{text}");
    let me = api
        .get("/api/v1/agents", Auth::Key(&supervisor_key))
        .await
        .json;
    let a1001 = me
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "1001"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&a1001["state"], &a1001["pause_reason"]),
        (&"not_ready".into(), &"lunch".into())
    );
    b.click("button[data-desk-action=\"ready\"]").await;
    assert!(b
        .wait_for("dl.desk-state[data-state=\"ready\"]", 10 * SECOND)
        .await
        .is_some());
    assert!(b.wait_for("#desk-no-call", SECOND).await.is_some());

    // A caller keys 2 for support; the desk shows the caller while 1001 is on the call.
    let mut caller = Caller::new(Codec::Pcma).dtmf(prompt_len("welcome") + SECOND, Dtmf::Info('2'));
    // The caller stays until the supervisor's key hangs it up below.
    caller.bye_timeout = Duration::from_secs(90);
    let call = caller.spawn_call(engine.dir.path(), engine.sip);
    let on_call = "dl.desk-call[data-call]";
    assert!(
        b.wait_for(on_call, 30 * SECOND).await.is_some(),
        "no caller on the desk\n{}",
        engine.log_text()
    );
    let text = b.text(on_call).await;
    assert!(text.contains("sipp") && text.contains("support"), "{text}");
    let call_id = b
        .eval(
            "return document.querySelector(arguments[0]).dataset.call;",
            serde_json::json!([on_call]),
        )
        .await;
    let call_id = call_id.as_str().expect("call id").to_string();
    // A pause asked on the call waits for the call's end, and the desk says so.
    b.click("#desk-reason option[value=\"break\"]").await;
    b.click("button[data-desk-action=\"pause\"]").await;
    let pending = "dl.desk-state[data-state=\"talking\"] small.pending";
    assert!(b.wait_for(pending, 10 * SECOND).await.is_some());
    assert_eq!(b.text(pending).await, "(then Paused)");
    b.screenshot(&en, "desk").await;
    b.click("button[data-lang=\"fr\"]").await;
    assert!(b.wait_for("html[lang=\"fr\"]", 10 * SECOND).await.is_some());
    assert!(b.wait_for(on_call, 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Poste de l'agent");
    assert!(b.text(on_call).await.contains("Numéro"));
    b.screenshot(&fr, "desk").await;
    b.click("button[data-lang=\"en\"]").await;
    assert!(b.wait_for("html[lang=\"en\"]", 10 * SECOND).await.is_some());
    assert!(forbidden(&b, &format!("{base}/ui/users")).await);
    assert!(forbidden(&b, &format!("{base}/ui/reports")).await);
    let hangup = api
        .send(
            "POST",
            &format!("/api/v1/calls/{call_id}/hangup"),
            Auth::Key(&supervisor_key),
            None,
        )
        .await;
    assert_eq!(hangup.status, 200, "{}", hangup.text);
    let run = call.join().expect("caller");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());

    // The supervisor: no users page.
    b.goto(&format!("{base}/ui/desk")).await;
    b.click("#logout").await;
    assert!(b.wait_page("login", 10 * SECOND).await);
    b.sign_in(&base, "sofia", PASSWORD, "wallboard").await;
    assert!(!nav(&b).await.contains(&"/ui/users".to_string()));
    assert!(forbidden(&b, &format!("{base}/ui/users")).await);
    b.goto(&format!("{base}/ui/wallboard")).await;
    b.click("#logout").await;
    assert!(b.wait_page("login", 10 * SECOND).await);

    // The admin: today's call in the reports' chart and table.
    b.sign_in(&base, "ada", PASSWORD, "wallboard").await;
    b.goto(&format!("{base}/ui/reports?queue=support&interval=hour"))
        .await;
    assert!(b.wait_page("reports", 10 * SECOND).await);
    let bar = "svg.chart g.bucket[data-offered=\"1\"][data-answered=\"1\"]";
    assert!(
        b.wait_for(bar, 5 * SECOND).await.is_some(),
        "{}",
        b.text("main").await
    );
    assert!(b
        .wait_for("svg.chart[data-offered-total=\"1\"] rect", SECOND)
        .await
        .is_some());
    let row = b
        .text("tr[data-queue=\"support\"][data-offered=\"1\"]")
        .await;
    assert!(row.contains("support"), "{row}");
    let csv = b
        .eval(
            "return document.getElementById('rep-csv').getAttribute('href');",
            serde_json::json!([]),
        )
        .await;
    let csv = api
        .get(csv.as_str().expect("csv link"), Auth::Key(&supervisor_key))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(
        csv.text.starts_with("queue,from,to,offered")
            && csv
                .text
                .lines()
                .any(|l| l.starts_with("support,") && l.contains(",1,1,")),
        "{}",
        csv.text
    );
    b.screenshot(&en, "reports").await;

    // Users: a weak password is refused with the policy's message; a good one is taken.
    b.goto(&format!("{base}/ui/users")).await;
    assert!(b.wait_page("users", 10 * SECOND).await);
    b.type_into("#user-name", "nina").await;
    b.click("#user-role option[value=\"supervisor\"]").await;
    b.type_into("#user-password", "nina-nina-nina").await;
    b.click("#user-add button[type=submit]").await;
    assert!(b
        .wait_for("#user-error:not(:empty)", 10 * SECOND)
        .await
        .is_some());
    let refusal = b.text("#user-error").await;
    assert!(refusal.contains("password"), "{refusal}");
    assert!(b.wait_for("tr[data-user=\"nina\"]", SECOND).await.is_none());
    b.eval(
        "document.getElementById('user-password').value = ''",
        serde_json::json!([]),
    )
    .await;
    b.type_into("#user-password", "a quiet harbour at dawn")
        .await;
    b.click("#user-add button[type=submit]").await;
    assert!(b
        .wait_for(
            "tr[data-user=\"nina\"][data-disabled=\"false\"]",
            10 * SECOND
        )
        .await
        .is_some());
    assert!(api.login("nina", "a quiet harbour at dawn").await.is_some());

    // Keys: the crm key revoked (the API refuses it from then on), a new one shown once.
    let old_id = old_key.split('_').nth(1).expect("key id").to_string();
    assert_eq!(
        api.get("/api/v1/queues", Auth::Key(&old_key)).await.status,
        200
    );
    b.click(&format!("button[data-key-revoke=\"{old_id}\"]"))
        .await;
    assert!(b
        .wait_for(
            &format!("tr[data-key=\"{old_id}\"][data-revoked=\"true\"]"),
            10 * SECOND
        )
        .await
        .is_some());
    assert_eq!(
        api.get("/api/v1/queues", Auth::Key(&old_key)).await.status,
        401
    );
    b.type_into("#key-name", "wallboard").await;
    b.click("#key-role option[value=\"supervisor\"]").await;
    b.click("#key-add button[type=submit]").await;
    assert!(b
        .wait_for("#new-key:not([hidden])", 10 * SECOND)
        .await
        .is_some());
    let new_key = b.text("#new-key-value").await;
    assert!(new_key.starts_with("svi_"), "{new_key}");
    assert_eq!(
        api.get("/api/v1/queues", Auth::Key(&new_key)).await.status,
        200
    );
    b.screenshot(&en, "users").await;
    b.goto(&format!("{base}/ui/users")).await;
    assert!(b.wait_page("users", 10 * SECOND).await);
    assert!(
        !b.text("main").await.contains(&new_key),
        "the key is shown once"
    );

    // The audit log: the supervisor's refusal and the admin's writes, filtered.
    b.goto(&format!("{base}/ui/audit?actor=sofia&outcome=denied"))
        .await;
    assert!(b.wait_page("audit", 10 * SECOND).await);
    let denied = b.text("table.list tbody").await;
    assert!(denied.contains("GET /ui/users"), "{denied}");
    assert!(!denied.contains("user:ada"), "{denied}");
    b.goto(&format!("{base}/ui/audit?actor=ada&action=apikeys"))
        .await;
    assert!(b.wait_page("audit", 10 * SECOND).await);
    let writes = b.text("table.list tbody").await;
    assert!(
        writes.contains("DELETE /api/v1/apikeys") && writes.contains("POST /api/v1/apikeys"),
        "{writes}"
    );
    b.screenshot(&en, "audit").await;

    // HA: this single node is the active one; promoting it needs the box ticked and is
    // refused with the API's reason.
    b.goto(&format!("{base}/ui/ha")).await;
    assert!(b.wait_page("ha", 10 * SECOND).await);
    assert!(b
        .wait_for("dl.ha-summary[data-role=\"active\"]", SECOND)
        .await
        .is_some());
    assert!(b
        .wait_for("#promote-button[disabled]", SECOND)
        .await
        .is_some());
    b.click("#promote-confirm").await;
    assert!(b
        .wait_for("#promote-button:not([disabled])", SECOND)
        .await
        .is_some());
    b.click("#promote-button").await;
    assert!(b
        .wait_for("#promote-result:not(:empty)", 10 * SECOND)
        .await
        .is_some());
    let refusal = b.text("#promote-result").await;
    assert!(refusal.contains("already the active one"), "{refusal}");
    b.screenshot(&en, "ha").await;

    // In French.
    b.click("button[data-lang=\"fr\"]").await;
    assert!(b.wait_for("html[lang=\"fr\"]", 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Haute disponibilité");
    assert!(b.text("dl.ha-summary").await.contains("Actif"));
    b.screenshot(&fr, "ha").await;
    b.goto(&format!("{base}/ui/reports?queue=support&interval=hour"))
        .await;
    assert!(b.wait_for(bar, 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Rapports");
    assert!(b.text("table.list thead").await.contains("Présentés"));
    b.screenshot(&fr, "reports").await;
    b.goto(&format!("{base}/ui/users")).await;
    assert!(b.wait_page("users", 10 * SECOND).await);
    assert_eq!(b.text("main h1").await, "Utilisateurs et clés d'API");
    assert!(b
        .text(&format!("tr[data-key=\"{old_id}\"]"))
        .await
        .contains("Révoquée le"));
    b.screenshot(&fr, "users").await;
    b.goto(&format!("{base}/ui/audit?actor=ada")).await;
    assert!(b.wait_page("audit", 10 * SECOND).await);
    assert_eq!(b.text("main h1").await, "Journal d'audit");
    b.screenshot(&fr, "audit").await;

    // The choice is the account's: without the cookie, in a browser that asks for English,
    // signing in again brings French back.
    b.click("#logout").await;
    assert!(b.wait_page("login", 10 * SECOND).await);
    b.eval(
        "document.cookie = 'svi_lang=; Path=/; Max-Age=0; SameSite=Strict; Secure'",
        serde_json::json!([]),
    )
    .await;
    b.goto(&format!("{base}/ui/login")).await;
    assert!(b.wait_for("html[lang=\"en\"]", 10 * SECOND).await.is_some());
    b.sign_in(&base, "ada", PASSWORD, "wallboard").await;
    assert!(b.wait_for("html[lang=\"fr\"]", SECOND).await.is_some());
    let bad = serde_json::json!({"language": "de"});
    let refused = api
        .send(
            "PUT",
            "/api/v1/me/language",
            Auth::Key(&new_key),
            Some(&bad),
        )
        .await;
    assert_eq!(
        (refused.status, refused.json["field"].as_str()),
        (400, Some("language"))
    );
    let keyed = serde_json::json!({"language": "fr"});
    let keyed = api
        .send(
            "PUT",
            "/api/v1/me/language",
            Auth::Key(&new_key),
            Some(&keyed),
        )
        .await;
    assert_eq!(keyed.status, 404, "{}", keyed.text);
    b.quit().await;

    let phone = phone.join().expect("phone");
    assert!(phone.success(), "{}\n{}", phone.report(), engine.log_text());
}
