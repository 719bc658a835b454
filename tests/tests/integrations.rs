//! Issue 16, acceptance 2 and 3: live calls through `svi run` (sipp callers) against the
//! reference servers: the access-control API over HTTPS (`svi_tests::acs`) and the helpdesk
//! database (the SQLite fixture `samples/data/helpdesk.sql`), set up by `svi_tests::site`.
//! Acceptance 4 (the alarm call-out) is in `alarm_callout.rs`. The open circuit is also
//! read on `/metrics` (through Debian's `promtool check metrics`), and is an alarm (issue
//! 19): listed by `svi alarms`, posted to the webhook, cleared once the backend answers.

use std::path::Path;
use std::time::Duration;

use engine::audit::{self, Outcome};
use engine::storage::Storage;
use svi_tests::acs::Fault;
use svi_tests::admin::{create_key, promtool, sample, Api, Auth};
use svi_tests::contact::svi;
use svi_tests::ha::AlarmSink;
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};
use svi_tests::site::{fr_prompt, Site};

/// The sample flows and connectors against the reference servers, no call-out.
async fn site(acs_fault: Fault) -> Site {
    Site::start(acs_fault, "").await
}

/// A sipp caller calling `service` as `number`.
fn call(site: &Site, number: &str, caller: Caller, service: &str) -> svi_tests::sipp::SippRun {
    let xml = caller
        .xml()
        .replace("[service]", service)
        .replace("From: sipp <sip:sipp@", &format!("From: <sip:{number}@"));
    Sipp::new(xml)
        .calls(1)
        .run(site.dir.path(), Some(site.engine.sip))
}

fn digits(mut caller: Caller, first_after: Duration, keys: &str) -> Caller {
    for (i, k) in keys.chars().enumerate() {
        let pause = if i == 0 {
            first_after
        } else {
            Duration::from_millis(300)
        };
        caller = caller.dtmf(pause, Dtmf::Info(k));
    }
    caller
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vip_caller_lands_in_the_priority_queue() {
    let site = site(Fault::None).await;
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(fr_prompt("sd_welcome") + Duration::from_secs(3));
    let run = call(&site, "+33100000001", caller, "3100");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    let queued = site
        .engine
        .wait_log("call queued", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("not queued:\n{}", site.engine.log_text()));
    assert!(queued.contains("queue=vip"), "{queued}");
    assert!(
        !site.engine.log_text().contains("33100000001"),
        "the number stays out of the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_ticket_is_said_back_and_is_in_the_helpdesk_afterwards() {
    let site = site(Fault::None).await;
    // Bob (a standard user): 8 (declare an incident), 2 (software), a description ended by #.
    let caller = Caller::new(Codec::Pcma);
    let caller = digits(
        caller,
        fr_prompt("sd_welcome") + Duration::from_secs(1),
        "8",
    );
    let caller = digits(caller, Duration::from_millis(800), "2");
    let caller = digits(
        caller,
        fr_prompt("sd_describe_problem") + Duration::from_secs(2),
        "#",
    );
    let run = call(&site, "+33100000002", caller, "3100");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    let calls = site.engine.wait_calls(1, Duration::from_secs(10));
    let path = svi_tests::path_of(&calls[0]);
    let tail: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s != "new_ticket")
        .collect();
    assert_eq!(
        tail,
        [
            "new_ticket",
            "category_software",
            "describe_problem",
            "create_ticket",
            "ticket_created",
            "goodbye",
            "end"
        ],
        "{calls:#}"
    );
    // The ticket the caller heard is in the helpdesk database, with the recording's path.
    let db = sqlx_free_read(&site.dir.path().join("db/helpdesk.db"), "4713").await;
    assert_eq!(db.0, "software");
    assert!(db.1.ends_with(".wav"), "{db:?}");
}

/// Category and recording of ticket `number`, read with the helpdesk connector itself.
async fn sqlx_free_read(db: &Path, number: &str) -> (String, String) {
    let dir = db.parent().expect("dir");
    let toml = format!(
        "[[connections]]\nname='hd'\nkind='sql'\ndatabase='{}'\n[[data_sources]]\nname='t'\nkind='sql'\nconnection='hd'\nquery='SELECT category, recording FROM tickets WHERE number = :n'\n",
        db.display()
    );
    let config =
        engine::config::EngineConfig::parse(&toml, Path::new("t.toml"), dir).expect("config");
    let c = engine::connectors::Connectors::build(&config)
        .await
        .expect("build");
    let mut p = serde_json::Map::new();
    p.insert("n".into(), serde_json::Value::from(number));
    let r = c
        .lookup("t", &p, Duration::from_secs(5))
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("ticket {number} is not in the database"));
    (
        r["category"].as_str().unwrap_or_default().to_string(),
        r["recording"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_authenticated_door_opening_reaches_the_server_and_the_audit_log() {
    let site = site(Fault::None).await;
    let caller = Caller::new(Codec::Pcma);
    let caller = digits(
        caller,
        fr_prompt("dr_welcome") + Duration::from_secs(1),
        "4321#",
    );
    let caller = digits(caller, Duration::from_millis(800), "2#");
    let run = call(&site, "+33100000009", caller, "3400");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    assert_eq!(
        site.acs.doors_opened(),
        [("2".to_string(), "h-100".to_string())]
    );
    let calls = site.engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(
        svi_tests::path_of(&calls[0]),
        ["welcome", "ask_pin", "ask_door", "open", "opened", "end"]
    );
    let storage = Storage::open_read_only(&site.data)
        .await
        .expect("engine database");
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let entries = audit::read(&storage, since, 10).await.expect("audit");
    let outcomes: Vec<(&str, &str, &str, Outcome)> = entries
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.target.as_str(),
                e.outcome,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("holder:h-100", "door.open", "door:2", Outcome::Requested),
            ("holder:h-100", "door.open", "door:2", Outcome::Done),
        ]
    );
    assert!(
        entries[0].origin.ends_with("from +33100000009"),
        "{:?}",
        entries[0]
    );
    let log = site.engine.log_text();
    assert!(
        !log.contains("4321") && !log.contains("33100000009"),
        "no PIN, no number in the log"
    );
}

/// A visitor at the reception (3200): 1 (expected), host 4321, hangs up after `hangup_after`.
fn visitor(hangup_after: Duration) -> Caller {
    let mut c = digits(Caller::new(Codec::Pcma), Duration::from_millis(1000), "1");
    c = digits(c, Duration::from_millis(800), "4321#");
    c.hangup_after = Some(hangup_after);
    c
}

/// The tracing timestamp at the start of a log line (RFC 3339).
fn stamp(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let first = line.split_whitespace().next().unwrap_or_default();
    let clean: String = first.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim_start_matches(|c: char| !c.is_ascii_digit());
    let clean = clean.split("\u{1b}").next().unwrap_or(clean);
    chrono::DateTime::parse_from_rfc3339(
        clean.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()),
    )
    .unwrap_or_else(|e| panic!("no timestamp in `{line}`: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_access_control_hanging_visitors_reach_the_reception_queue_and_the_circuit_opens() {
    let site = site(Fault::Slow(Duration::from_secs(60))).await;
    let timeout = Duration::from_secs(2); // visitor_appointment's `timeout` in samples/svi.toml
    let visitor = || visitor(Duration::from_secs(9));
    for n in 1..=3 {
        let run = call(&site, "1001", visitor(), "3200");
        assert!(
            run.success(),
            "call {n}: {}\n{}",
            run.report(),
            site.engine.log_text()
        );
        let failed = site
            .engine
            .wait_log_count("connector call failed", n, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("call {n}: no failure line\n{}", site.engine.log_text()));
        assert!(
            failed.contains("connector=\"visitor_appointment\"")
                && failed.contains("reason=\"timeout\""),
            "{failed}"
        );
        let queued = site
            .engine
            .wait_log_count("call queued", n, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("call {n}: not queued\n{}", site.engine.log_text()));
        assert!(queued.contains("queue=reception"), "{queued}");
        // From the lookup's start (its end less its duration) to the queue.
        let elapsed_ms: i64 = failed
            .split("elapsed_ms=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no elapsed_ms in {failed}"));
        let to_queue = stamp(&queued) - stamp(&failed) + chrono::Duration::milliseconds(elapsed_ms);
        assert!(
            to_queue <= chrono::Duration::from_std(timeout + Duration::from_secs(1)).expect("span"),
            "call {n}: {to_queue} from the lookup to the reception queue"
        );
    }
    let opened = site
        .engine
        .wait_log("connector circuit opened", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the circuit did not open\n{}", site.engine.log_text()));
    assert!(
        opened.contains("connector=\"visitor_appointment\"") && opened.contains("failures=3"),
        "{opened}"
    );
    // The open circuit on /metrics, with its three timeouts.
    let api = Api::new(&site.engine);
    let key = create_key(&site.data, None, "metrics", "prometheus");
    let labels = "{connector=\"visitor_appointment\",kind=\"access_control\"}";
    let open = format!("svi_connector_circuit_open{labels}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let text = loop {
        every.tick().await;
        let a = api.get("/metrics", Auth::Key(&key)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if sample(&a.text, &open) == Some(1.0) {
            break a.text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} never 1:\n{}",
            a.text
        );
    };
    promtool(&text);
    for (family, want) in [
        ("svi_connector_circuit_opened_total", 1.0),
        ("svi_connector_timeouts_total", 3.0),
        ("svi_connector_refused_open_total", 0.0),
    ] {
        assert_eq!(
            sample(&text, &format!("{family}{labels}")),
            Some(want),
            "{family}:\n{text}"
        );
    }
    assert!(
        text.contains("svi_connector_latency_seconds_count{connector=\"visitor_appointment\""),
        "{text}"
    );
    assert!(text.contains("# TYPE svi_alarm_active gauge"), "{text}");
    // A fourth visitor: refused at once by the open circuit, queued without waiting.
    let requests = site.acs.requests();
    let run = call(&site, "1001", visitor(), "3200");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    assert!(site
        .engine
        .wait_log_count("call queued", 4, Duration::from_secs(5))
        .is_some());
    assert_eq!(
        site.acs.requests(),
        requests,
        "no request while the circuit is open"
    );
    let after = api.get("/metrics", Auth::Key(&key)).await.text;
    promtool(&after);
    assert_eq!(
        sample(&after, &format!("svi_connector_refused_open_total{labels}")),
        Some(1.0),
        "{after}"
    );
}

/// The active `circuit_open` alarm of `connector` in `svi alarms --json`, if any.
fn circuit_alarm(site: &Site, connector: &str) -> Option<serde_json::Value> {
    let (code, text) = svi(&site.engine, &["alarms", "--json"]);
    assert_eq!(code, 0, "svi alarms: {text}");
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["active"].as_array().and_then(|a| {
        a.iter()
            .find(|x| x["kind"] == "circuit_open" && x["subject"] == connector)
            .cloned()
    })
}

/// Polls `svi alarms` until the `circuit_open` alarm of `visitor_appointment` is `raised`.
async fn wait_circuit_alarm(site: &Site, raised: bool) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut every = tokio::time::interval(Duration::from_millis(200));
    loop {
        every.tick().await;
        let now = circuit_alarm(site, "visitor_appointment");
        if now.is_some() == raised {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "circuit_open never {}\n{}",
            if raised { "raised" } else { "cleared" },
            site.engine.log_text()
        );
    }
}

fn webhook_change(hook: &AlarmSink, state: &str) -> serde_json::Value {
    hook.wait(Duration::from_secs(10), |v| {
        v["alarms"].as_array().is_some_and(|a| {
            a.iter().any(|c| {
                c["kind"] == "circuit_open"
                    && c["subject"] == "visitor_appointment"
                    && c["state"] == state
            })
        })
    })
    .unwrap_or_else(|| panic!("no webhook post of the {state} circuit_open alarm"))
}

/// A plain test with its own runtime: the webhook sink runs its own, which cannot be
/// started or dropped inside another.
#[test]
fn an_open_circuit_is_an_alarm_until_the_backend_answers_a_trial() {
    let hook = AlarmSink::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let more = format!(
        "[alarms]\nwebhook = \"{}\"\nmin_interval_secs = 1\n",
        hook.url
    );
    // One timeout opens the circuit; the next visitor's lookup (seconds later) is its trial.
    let site = Site::start_editing(
        Fault::Slow(Duration::from_secs(60)),
        &more,
        &[
            ("breaker_failures = 3", "breaker_failures = 1"),
            ("breaker_open_for = \"30s\"", "breaker_open_for = \"1s\""),
        ],
    );
    let site = rt.block_on(site);
    let visitor = || visitor(Duration::from_secs(6));
    assert!(circuit_alarm(&site, "visitor_appointment").is_none());
    let run = call(&site, "1001", visitor(), "3200");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    let alarm = rt
        .block_on(wait_circuit_alarm(&site, true))
        .expect("raised");
    assert_eq!(alarm["severity"], "major", "{alarm:#}");
    let message = alarm["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("connector `visitor_appointment` (access_control data source): 1 backend failures in a row"),
        "{alarm:#}"
    );
    // The same alarm on /metrics and at the webhook.
    let api = Api::new(&site.engine);
    let key = create_key(&site.data, None, "metrics", "prometheus");
    let text = rt.block_on(api.get("/metrics", Auth::Key(&key))).text;
    promtool(&text);
    let active = "svi_alarm_active{kind=\"circuit_open\",subject=\"visitor_appointment\",severity=\"major\"}";
    assert_eq!(sample(&text, active), Some(1.0), "{text}");
    webhook_change(&hook, "raised");
    assert!(site
        .engine
        .log_text()
        .lines()
        .any(|l| l.contains("alarm raised") && l.contains("circuit_open")));

    // The backend answers again: the next visitor's lookup is the trial, which closes it.
    site.acs.set_fault(Fault::None);
    let requests = site.acs.requests();
    let run = call(&site, "1001", visitor(), "3200");
    assert!(
        run.success(),
        "{}\n{}",
        run.report(),
        site.engine.log_text()
    );
    rt.block_on(wait_circuit_alarm(&site, false));
    assert!(
        site.acs.requests() > requests,
        "the trial reached the server"
    );
    assert!(site
        .engine
        .wait_log("connector circuit closed", Duration::from_secs(5))
        .is_some());
    webhook_change(&hook, "cleared");
    let text = rt.block_on(api.get("/metrics", Auth::Key(&key))).text;
    assert_eq!(sample(&text, active), None, "{text}");
}
