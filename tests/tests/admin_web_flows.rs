//! The console's call flows, calls and recordings pages in a real browser (issue 15):
//! Debian's headless Chromium over WebDriver against a real `svi run`. An admin opens the
//! demo flow (its drawing), simulates a call with the digit 1 and sees the path marked,
//! uploads a broken version and sees the checker's error at its line and column in the
//! editor, uploads a valid one that becomes live (a sipp call keying 1 takes its new path),
//! rolls back (the next call takes the old path again); then a caller reaches the agent
//! (sipp phone), the admin pauses and resumes the recording from the calls page, has the
//! engine call the supervisor's phone to listen, whisper and stop, and after
//! the call plays the recording in the recordings page (the media element reports a
//! duration and its clock advances) and finds the reads in the audit log. The pages are
//! photographed in both languages (`target/web-screenshots/`).

use std::time::Duration;

use serde_json::json;
use svi_tests::admin::{add_user, console_engine, create_key, Api, Auth};
use svi_tests::browser::{installed, screenshots, Browser};
use svi_tests::config::{prompt_len, two_demo_versions};
use svi_tests::contact::{call_option_1, register_phone};
use svi_tests::path_of;
use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::sipp::{Caller, Codec, Dtmf};

const PASSWORD: &str = "flows drawn for everyone";
const SECOND: Duration = Duration::from_secs(1);

/// Puts `text` in the flow editor as if typed (the gutter follows the input event).
async fn edit(b: &Browser, text: &str) {
    b.eval(
        "const s = document.getElementById('source'); s.value = arguments[0];\
         s.dispatchEvent(new Event('input')); return null;",
        json!([text]),
    )
    .await;
}

/// Scrolls the page so that the element matching `css` is in view (for a screenshot).
async fn scroll_to(b: &Browser, css: &str) {
    b.eval(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'nearest'}); return null;",
        json!([css]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_changes_a_flow_and_plays_a_recording_in_a_real_browser() {
    assert!(
        installed("chromedriver") && installed("chromium"),
        "Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)"
    );
    let (mut auditor, mut supervisor) = (String::new(), String::new());
    let dir = tempfile::tempdir().expect("tmp");
    let engine = console_engine(dir.path(), |data| {
        add_user(data, None, "ada", "admin", PASSWORD);
        auditor = create_key(data, None, "auditor", "audit");
        supervisor = create_key(data, None, "supervisor", "poll");
    });
    let api = Api::new(&engine);
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(240));
    let (v1, v2) = two_demo_versions();

    let b = Browser::start().await;
    let base = api.base.clone();
    let (en, fr) = (screenshots("en"), screenshots("fr"));
    b.goto(&format!("{base}/ui/login")).await;
    b.eval(
        "document.cookie = 'svi_lang=en; Path=/'; return null;",
        json!([]),
    )
    .await;
    b.sign_in(&base, "ada", PASSWORD, "wallboard").await;

    // The list: demo is there with its active version.
    b.goto(&format!("{base}/ui/flows")).await;
    assert!(b
        .wait_for("tr[data-flow=\"demo\"]", 10 * SECOND)
        .await
        .is_some());
    let old = b
        .text("tr[data-flow=\"demo\"] td code")
        .await
        .trim()
        .to_string();
    assert_eq!(old.len(), 12, "a version id: {old}");
    b.screenshot(&en, "flows").await;

    // The flow: its drawing, then a simulated call keying 1 marked on it.
    b.goto(&format!("{base}/ui/flows/demo")).await;
    let menu = "#drawing svg g.step[data-step=\"main_menu\"]";
    assert!(b.wait_for(menu, 10 * SECOND).await.is_some());
    let active_row = format!("tr[data-version=\"{old}\"][data-active=\"true\"]");
    assert!(b.wait_for(&active_row, SECOND).await.is_some());
    b.type_into("#sim-inputs", "1").await;
    b.click("#simulate button[type=submit]").await;
    assert!(b
        .wait_for("#sim-ending[data-ending=\"finished\"]", 10 * SECOND)
        .await
        .is_some());
    assert_eq!(
        b.text("#sim-path")
            .await
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["welcome", "main_menu", "option1", "end"]
    );
    assert!(b
        .wait_for("#drawing g.step.taken[data-step=\"option1\"]", SECOND)
        .await
        .is_some());
    assert!(b
        .wait_for(
            "#drawing g.edge.taken[data-from=\"main_menu\"][data-to=\"option1\"]",
            SECOND
        )
        .await
        .is_some());
    scroll_to(&b, "#drawing-title").await;
    b.screenshot(&en, "flow").await;

    // A broken version: refused, the error at its line and column, the line marked.
    let broken = v1.replacen("next: main_menu\n", "next: nowhere\n", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("nowhere"))
        .expect("line")
        + 1;
    edit(&b, &broken).await;
    b.click("#flow-editor button[type=submit]").await;
    let error = format!("#diagnostics li.error[data-line=\"{line}\"]");
    assert!(b.wait_for(&error, 10 * SECOND).await.is_some());
    let column: usize = b
        .eval(
            "return document.querySelector(arguments[0]).dataset.column;",
            json!([error]),
        )
        .await
        .as_str()
        .and_then(|c| c.parse().ok())
        .expect("a column");
    let text = b.text(&error).await;
    assert!(
        text.starts_with(&format!("line {line}, column {column}")) && text.contains("nowhere"),
        "{text}"
    );
    assert!(b
        .wait_for(&format!("#gutter span.bad[data-line=\"{line}\"]"), SECOND)
        .await
        .is_some());
    assert_eq!(b.text("#gutter span.bad").await, line.to_string());
    scroll_to(&b, "#diagnostics").await;
    b.screenshot(&en, "flow-error").await;

    // A valid version, activated on upload: the page shows it active, and a call keying 1
    // takes its path.
    edit(&b, &v2).await;
    b.click("#activate").await;
    b.click("#flow-editor button[type=submit]").await;
    let new_active =
        format!("tr[data-active=\"true\"][aria-current=\"true\"]:not([data-version=\"{old}\"])");
    assert!(b.wait_for(&new_active, 10 * SECOND).await.is_some());
    let new = b
        .eval(
            "return document.querySelector(arguments[0]).dataset.version;",
            json!([new_active]),
        )
        .await
        .as_str()
        .expect("version")
        .to_string();
    assert_ne!(new, old);
    assert!(b
        .wait_for("#drawing g.step[data-step=\"option_one\"]", SECOND)
        .await
        .is_some());
    let call = call_option_1(&engine, dir.path(), 1);
    assert_eq!(
        path_of(&call),
        ["welcome", "main_menu", "option_one", "end"]
    );
    assert_eq!(call["flow_version"], new.as_str());

    // Rolled back: the old version is active again and the next call takes its path.
    b.click("button[data-flow-action=\"rollback\"]").await;
    assert!(b.wait_for(&active_row, 10 * SECOND).await.is_some());
    let call = call_option_1(&engine, dir.path(), 2);
    assert_eq!(path_of(&call), ["welcome", "main_menu", "option1", "end"]);
    assert_eq!(call["flow_version"], old.as_str());

    // A caller for support reaches 1001 (ready since the phone registered); the sample
    // records the queue's calls. From the calls page: recording paused and resumed; a
    // supervision without the supervisor's phone is refused with the API's reason.
    let mut caller = Caller::new(Codec::Pcma).dtmf(prompt_len("welcome") + SECOND, Dtmf::Info('2'));
    caller.hangup_after = Some(Duration::from_secs(20));
    let talk = caller.spawn_call(engine.dir.path(), engine.sip);
    b.goto(&format!("{base}/ui/calls")).await;
    let bridged = "tr[data-phase=\"bridged\"][data-agent=\"1001\"]";
    assert!(
        b.wait_for(bridged, 30 * SECOND).await.is_some(),
        "{}",
        engine.log_text()
    );
    let id = b
        .eval(
            "return document.querySelector(arguments[0]).dataset.call;",
            json!([bridged]),
        )
        .await
        .as_str()
        .expect("call id")
        .to_string();
    let button = |what: &str| format!("button[data-call=\"{id}\"][{what}]");
    b.click(&button("data-recording=\"pause\"")).await;
    assert!(b
        .wait_for("body[data-call-outcome=\"recording_paused\"]", 5 * SECOND)
        .await
        .is_some());
    b.click(&button("data-recording=\"resume\"")).await;
    assert!(b
        .wait_for("body[data-call-outcome=\"recording_resumed\"]", 5 * SECOND)
        .await
        .is_some());
    b.click(&button("data-supervise=\"listen\"")).await;
    assert!(b.wait_for("body[data-refused]", 5 * SECOND).await.is_some());
    // With the supervisor's own phone given: the engine calls it; whisper; stop hangs it up.
    let mut boss = Phone::start(PhoneConfig::new("boss"))
        .await
        .expect("supervisor phone");
    b.type_into("#supervisor-phone", &boss.uri()).await;
    b.click(&button("data-supervise=\"listen\"")).await;
    assert!(b
        .wait_for("body[data-call-outcome=\"supervisor_called\"]", 5 * SECOND)
        .await
        .is_some());
    boss.wait_answered(deadline(5))
        .await
        .expect("the engine calls the supervisor's phone");
    b.click(&button("data-supervise=\"whisper\"")).await;
    assert!(b
        .wait_for(
            "body[data-call-outcome=\"supervision_changed\"]",
            5 * SECOND
        )
        .await
        .is_some());
    b.click(&button("data-supervise=\"stop\"")).await;
    assert!(b
        .wait_for(
            "body[data-call-outcome=\"supervision_stopped\"]",
            5 * SECOND
        )
        .await
        .is_some());
    assert_eq!(
        boss.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );
    b.screenshot(&en, "calls-supervision").await;
    let run = talk.join().expect("caller");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());

    // The recording: listed (once indexed), played in the page, downloadable.
    let row = format!("tr[data-recording=\"{id}\"]");
    // The index entry is written once the file is closed, after the call's end.
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let list = api.get("/api/v1/recordings", Auth::Key(&supervisor)).await;
        assert_eq!(list.status, 200, "{}", list.text);
        if list.text.contains(&id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording of {id}: {}",
            list.text
        );
    }
    // Of the three calls, only the one with the agent was recorded.
    let ids = |a: &svi_tests::admin::Answer| -> Vec<String> {
        a.json["records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = api.get("/api/v1/records", Auth::Key(&supervisor)).await;
    assert_eq!(ids(&all).len(), 3, "{}", all.text);
    let recorded = api
        .get("/api/v1/records?recorded=true", Auth::Key(&supervisor))
        .await;
    assert_eq!(ids(&recorded), [id.as_str()], "{}", recorded.text);
    b.goto(&format!("{base}/ui/recordings?queue=support")).await;
    assert!(b.wait_for(&row, 10 * SECOND).await.is_some());
    assert!(b.text(&row).await.contains("support"));
    let audio = format!("{row} audio");
    b.eval(
        "document.querySelector(arguments[0]).play(); return null;",
        json!([audio]),
    )
    .await;
    let started = b
        .wait_true(
            "(() => { const a = document.querySelector(arg); \
             return isFinite(a.duration) && a.duration > 1 && a.currentTime > 0 \
             ? [a.duration, a.currentTime] : null; })()",
            json!(audio),
            15 * SECOND,
        )
        .await
        .expect("the recording plays");
    let (length, first) = (
        started[0].as_f64().expect("duration"),
        started[1].as_f64().expect("time"),
    );
    let later = b
        .wait_true(
            "document.querySelector(arg[0]).currentTime > arg[1] + 0.5",
            json!([audio, first]),
            10 * SECOND,
        )
        .await;
    assert!(
        later.is_some(),
        "currentTime stays at {first} of {length} s"
    );
    eprintln!("recording of {length:.2} s playing from {first:.2} s");
    let download = b
        .eval(
            "return document.querySelector(arguments[0]).getAttribute('download');",
            json!([format!("{row} a[download]")]),
        )
        .await;
    assert_eq!(download, json!(format!("{id}.wav")));
    b.screenshot(&en, "recordings").await;

    // Every read of the file and the page's search are in the audit log, by ada.
    let target = format!(",/api/v1/recordings/{id}/audio,");
    let audit = api
        .get("/api/v1/audit?format=csv", Auth::Key(&auditor))
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let reads: Vec<&str> = audit.text.lines().filter(|l| l.contains(&target)).collect();
    assert!(!reads.is_empty(), "{}", audit.text);
    assert!(
        reads
            .iter()
            .all(|l| l.contains("user:ada") && l.contains(",done,")),
        "{reads:#?}"
    );
    assert!(
        audit
            .text
            .lines()
            .any(|l| l.contains(",/ui/recordings,") && l.contains("user:ada")),
        "{}",
        audit.text
    );

    // In French.
    b.click("button[data-lang=\"fr\"]").await;
    assert!(b.wait_for("html[lang=\"fr\"]", 10 * SECOND).await.is_some());
    assert_eq!(b.text("main h1").await, "Enregistrements");
    assert!(b.wait_for(&row, 5 * SECOND).await.is_some());
    b.screenshot(&fr, "recordings").await;
    b.goto(&format!("{base}/ui/flows")).await;
    assert!(b.wait_page("flows", 10 * SECOND).await);
    assert_eq!(b.text("main h1").await, "Scénarios d'appel");
    b.screenshot(&fr, "flows").await;
    b.goto(&format!("{base}/ui/flows/demo")).await;
    assert!(b.wait_for(menu, 10 * SECOND).await.is_some());
    b.type_into("#sim-inputs", "2").await;
    b.click("#simulate button[type=submit]").await;
    assert!(b
        .wait_for("#sim-ending[data-ending=\"routed\"]", 10 * SECOND)
        .await
        .is_some());
    assert!(b.text("#sim-ending").await.contains("acheminé"));
    scroll_to(&b, "#drawing-title").await;
    b.screenshot(&fr, "flow").await;
    edit(&b, &broken).await;
    b.click("#flow-editor button[type=submit]").await;
    assert!(b.wait_for(&error, 10 * SECOND).await.is_some());
    assert!(b
        .text(&error)
        .await
        .starts_with(&format!("ligne {line}, colonne {column}")));
    scroll_to(&b, "#diagnostics").await;
    b.screenshot(&fr, "flow-error").await;
    b.quit().await;

    let phone = phone.join().expect("phone");
    assert!(phone.success(), "{}\n{}", phone.report(), engine.log_text());
}
