//! The admin web console in a real browser (issue 15): Debian's headless Chromium, over
//! WebDriver, against a real `svi run` with an agent's phone (sipp) and a sipp caller. A
//! supervisor logs in, pauses the agent from the agents page and sees the state change, sees
//! the caller appear on the wallboard and in the calls in progress within 1 s of the
//! engine's own timestamp for the queue join, makes the agent ready and sees the call move
//! to the agent within 1 s of the answer; then the pages in French; an agent's account is
//! refused the supervisor's pages (`admin_web_admin.rs` tests the agent desk). Every page
//! is photographed in both languages (`target/web-screenshots/`). Waits are DOM
//! observations in the page with deadlines.

use std::time::Duration;

use svi_tests::admin::{add_user, console_engine, create_key, Api, Auth, SseEvent};
use svi_tests::browser::{installed, screenshots, Browser};
use svi_tests::config::prompt_len;
use svi_tests::contact::register_phone;
use svi_tests::sipp::{Caller, Codec, Dtmf};

const PASSWORD: &str = "wall screens for everyone";
const SECOND: Duration = Duration::from_secs(1);

fn acd<'a>(kind: &'a str) -> impl Fn(&SseEvent) -> bool + 'a {
    move |e| e.name == "acd" && e.data["event"] == kind
}

/// How long after the engine's event the page showed it (both clocks are this host's).
fn late(shown_at: Option<i64>, event: &SseEvent, what: &str) -> i64 {
    let shown = shown_at.unwrap_or_else(|| panic!("the page never showed {what}"));
    shown - event.data["at"].as_i64().expect("the event's `at`")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supervisor_watches_the_wallboard_and_pauses_an_agent_in_a_real_browser() {
    assert!(
        installed("chromedriver") && installed("chromium"),
        "Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut key = String::new();
    let engine = console_engine(dir.path(), |data| {
        add_user(data, None, "sofia", "supervisor", PASSWORD);
        add_user(data, None, "marc", "agent", PASSWORD);
        key = create_key(data, None, "supervisor", "feed");
    });
    let api = Api::new(&engine);
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(120));
    let mut feed = api.events("/api/v1/events", &key).await;
    assert_eq!(
        feed.next(5 * SECOND).await.map(|e| e.name).as_deref(),
        Some("ready")
    );

    // The pages carry the strict CSP; without a session a page sends to the login.
    let login = api.get("/ui/login", Auth::None).await;
    assert_eq!(login.status, 200);
    let csp = login.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let anonymous = api.get("/ui/wallboard", Auth::None).await;
    assert_eq!(
        (
            anonymous.status,
            anonymous.headers["location"].to_str().ok()
        ),
        (303, Some("/ui/login"))
    );

    let b = Browser::start().await;
    let base = api.base.clone();
    let (en, fr) = (screenshots("en"), screenshots("fr"));
    b.goto(&format!("{base}/ui/wallboard")).await;
    assert!(b.wait_page("login", 10 * SECOND).await, "{}", b.url().await);
    b.screenshot(&en, "login").await;
    b.type_into("#user", "sofia").await;
    b.type_into("#password", "not the password").await;
    b.click("button[type=submit]").await;
    let refused = b.wait_for("#login-error:not(:empty)", 10 * SECOND).await;
    assert!(refused.is_some());
    assert_eq!(b.text("#login-error").await, "Wrong user name or password.");
    b.eval(
        "document.getElementById('password').value = ''",
        serde_json::json!([]),
    )
    .await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    assert!(
        b.wait_page("wallboard", 10 * SECOND).await,
        "{}",
        b.url().await
    );

    // The agents page: pause 1001 for lunch; the row changes from the feed's event.
    b.goto(&format!("{base}/ui/agents")).await;
    let row = "tr[data-agent=\"1001\"]";
    assert!(b.wait_for(row, 10 * SECOND).await.is_some());
    assert!(b
        .wait_for("body[data-rendered-at]", 10 * SECOND)
        .await
        .is_some());
    b.click("select[data-reason-for=\"1001\"] option[value=\"lunch\"]")
        .await;
    b.click("button[data-agent=\"1001\"][data-action=\"pause\"]")
        .await;
    let paused = feed
        .find(10 * SECOND, |e| {
            acd("agent_state_changed")(e)
                && e.data["agent"] == "1001"
                && e.data["state"].to_string().contains("not_ready")
        })
        .await
        .expect("the pause reached the feed");
    let shown = b
        .wait_for(
            "tr[data-agent=\"1001\"][data-state=\"not_ready\"]",
            10 * SECOND,
        )
        .await;
    let pause_delay = late(shown, &paused, "the pause");
    assert!(
        pause_delay <= 1000,
        "the pause shown {pause_delay} ms after the event"
    );
    let text = b.text(row).await;
    assert!(text.contains("Paused") && text.contains("Lunch"), "{text}");
    b.screenshot(&en, "agents").await;

    // The wallboard, live, then a caller who keys 2 and waits in support.
    b.goto(&format!("{base}/ui/wallboard")).await;
    assert!(b
        .wait_for("body[data-rendered-at]", 10 * SECOND)
        .await
        .is_some());
    let mut caller = Caller::new(Codec::Pcma).dtmf(prompt_len("welcome") + SECOND, Dtmf::Info('2'));
    // The caller stays until the supervisor hangs it up from the API at the end.
    caller.bye_timeout = Duration::from_secs(90);
    let call = caller.spawn_call(engine.dir.path(), engine.sip);
    let queued = feed
        .find(20 * SECOND, acd("call_queued"))
        .await
        .unwrap_or_else(|| panic!("no call_queued\n{}", engine.log_text()));
    let support = "section[data-queue=\"support\"][data-waiting=\"1\"]";
    let join_delay = late(b.wait_for(support, 10 * SECOND).await, &queued, "the join");
    assert!(
        join_delay <= 1000,
        "the join shown {join_delay} ms after the event"
    );
    let alert = "section.queue.alert[data-queue=\"support\"]";
    assert!(
        b.wait_for(alert, SECOND).await.is_some(),
        "no agent ready: framed in red"
    );
    let card = b.text("section[data-queue=\"support\"]").await;
    assert!(
        card.contains("Calls waiting") && card.contains("Paused"),
        "{card}"
    );
    b.screenshot(&en, "wallboard").await;
    b.goto(&format!("{base}/ui/wallboard?mode=wall")).await;
    assert!(b.wait_page("wall", 10 * SECOND).await);
    assert!(b.wait_for(support, 5 * SECOND).await.is_some());
    b.screenshot(&en, "wallboard-wall").await;
    b.goto(&format!("{base}/ui/calls")).await;
    let waiting = "tr[data-phase=\"queued\"]";
    assert!(b.wait_for(waiting, 10 * SECOND).await.is_some());
    let text = b.text(waiting).await;
    assert!(
        text.contains("support") && text.contains("Waiting in queue"),
        "{text}"
    );
    b.screenshot(&en, "calls-queued").await;

    // Ready from the agents page: the phone rings and answers; the call moves to 1001.
    b.goto(&format!("{base}/ui/agents")).await;
    assert!(b
        .wait_for("body[data-rendered-at]", 10 * SECOND)
        .await
        .is_some());
    b.click("button[data-agent=\"1001\"][data-action=\"ready\"]")
        .await;
    let answered = feed
        .find(20 * SECOND, acd("call_answered"))
        .await
        .unwrap_or_else(|| panic!("no call_answered\n{}", engine.log_text()));
    let talking = "tr[data-agent=\"1001\"][data-state=\"talking\"]";
    let answer_delay = late(
        b.wait_for(talking, 10 * SECOND).await,
        &answered,
        "the answer",
    );
    assert!(
        answer_delay <= 1000,
        "the answer shown {answer_delay} ms after the event"
    );
    eprintln!(
        "shown after the engine's event: pause {pause_delay} ms, join {join_delay} ms, \
         answer {answer_delay} ms"
    );
    b.goto(&format!("{base}/ui/calls")).await;
    let bridged = "tr[data-phase=\"bridged\"][data-agent=\"1001\"]";
    assert!(b.wait_for(bridged, 10 * SECOND).await.is_some());
    b.screenshot(&en, "calls").await;
    b.goto(&format!("{base}/ui/wallboard")).await;
    let on_call = "section[data-queue=\"support\"][data-talking=\"1\"]";
    assert!(b.wait_for(on_call, 10 * SECOND).await.is_some());
    b.screenshot(&en, "wallboard-talking").await;

    // In French: the switch sets the language for every page.
    b.click("button[data-lang=\"fr\"]").await;
    assert!(b.wait_for("html[lang=\"fr\"]", 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Mur d'appels");
    assert!(b
        .text("section[data-queue=\"support\"]")
        .await
        .contains("En conversation"));
    b.screenshot(&fr, "wallboard").await;
    b.goto(&format!("{base}/ui/wallboard?mode=wall")).await;
    assert!(b.wait_page("wall", 10 * SECOND).await);
    b.screenshot(&fr, "wallboard-wall").await;
    b.goto(&format!("{base}/ui/calls")).await;
    assert!(b.wait_for(bridged, 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Appels en cours");
    assert!(b.text(bridged).await.contains("Avec un agent"));
    b.screenshot(&fr, "calls").await;
    b.goto(&format!("{base}/ui/agents")).await;
    assert!(b.wait_for(talking, 10 * SECOND).await.is_some());
    assert!(b.text(talking).await.contains("En conversation"));
    b.screenshot(&fr, "agents").await;
    let call_id = queued.data["call"].as_str().expect("call id");
    let hangup = api
        .send(
            "POST",
            &format!("/api/v1/calls/{call_id}/hangup"),
            Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(hangup.status, 200, "{}", hangup.text);
    b.click("#logout").await;
    assert!(b.wait_page("login", 10 * SECOND).await);
    assert_eq!(b.text("main h1").await, "Connexion");
    b.screenshot(&fr, "login").await;

    // An agent's account: the agent desk (bound to no configured agent here), none of the
    // supervisor's pages.
    b.sign_in(&base, "marc", PASSWORD, "desk").await;
    assert!(b.text("#desk-none").await.contains("aucun agent"));
    b.goto(&format!("{base}/ui/wallboard")).await;
    assert!(b.wait_for("main h1", 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "403");
    b.quit().await;

    let run = call.join().expect("caller");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let phone = phone.join().expect("phone");
    assert!(phone.success(), "{}\n{}", phone.report(), engine.log_text());
}
