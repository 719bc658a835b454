//! Issue 16, acceptance 2, 3 and 4: live calls through `svi run` (sipp callers) against the
//! reference servers: the access-control API over HTTPS (`svi_tests::acs`) and the helpdesk
//! database (the SQLite fixture `samples/data/helpdesk.sql`). Secrets in the configuration
//! are encrypted with `svi secret encrypt` in the engine's own data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use engine::audit::{self, Outcome};
use engine::storage::Storage;
use svi_tests::acs::{self, AcsServer, Fault};
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

/// The length of a French sample prompt.
fn fr_prompt(name: &str) -> Duration {
    let path = svi_tests::repo_root().join(format!("samples/prompts/fr/{name}.wav"));
    let r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Duration::from_secs_f64(r.duration() as f64 / r.spec().sample_rate as f64)
}

/// `svi secret encrypt --data-dir DATA` of `secret`.
fn encrypt(data: &Path, secret: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(svi_bin())
        .args(["secret", "encrypt", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("svi secret encrypt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{secret}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        text.starts_with("enc:v1:") && !text.contains(secret),
        "{text}"
    );
    text
}

struct Site {
    engine: EngineProc,
    acs: AcsServer,
    dir: tempfile::TempDir,
    data: PathBuf,
}

/// The sample flows (service desk starting at `welcome`, whatever the time), the sample
/// connectors pointed at the reference servers, and routes 3100 (service desk), 3200
/// (reception), 3400 (door).
async fn site(acs_fault: Fault) -> Site {
    site_with(acs_fault, "").await
}

/// [`site`] with `more` configuration (the alarm-callout flow is always loaded).
async fn site_with(acs_fault: Fault, more: &str) -> Site {
    let acs = AcsServer::start(true, Duration::from_secs(300)).await;
    acs.set_fault(acs_fault);
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
    std::fs::copy(
        svi_tests::repo_root().join("samples/data/helpdesk.sql"),
        dir.path().join("db/helpdesk.sql"),
    )
    .expect("fixture");
    let sample =
        std::fs::read_to_string(svi_tests::repo_root().join("samples/svi.toml")).expect("sample");
    let connectors = &sample[sample.find("[[connections]]").expect("connections")
        ..sample.find("# Agents.").expect("agents")];
    let connectors = connectors
        .replace("\"data/helpdesk.db\"", "\"db/helpdesk.db\"")
        .replace("\"data/helpdesk.sql\"", "\"db/helpdesk.sql\"")
        .replace(
            "url = \"http://127.0.0.1:8090/api/v1\"",
            &format!(
                "url = \"{}\"\nca = \"{}\"\napi_key = \"{}\"\nlogin = \"/auth/token\"\nusername = \"{}\"\npassword = \"{}\"\nproxy = \"none\"",
                acs.base_url(),
                acs.ca_file.as_ref().expect("ca").display(),
                encrypt(&data, acs::API_KEY),
                acs::USERNAME,
                encrypt(&data, acs::PASSWORD),
            ),
        );
    let service_desk = svi_tests::config::sample_flow("service-desk")
        .replace("start: opening_hours", "start: welcome");
    let extra = format!(
        "[[queues]]\nid = \"vip\"\n[[queues]]\nid = \"hw\"\n[[queues]]\nid = \"sw\"\n[[queues]]\nid = \"apps\"\n\
         [[queues]]\nid = \"reception\"\n[[queues]]\nid = \"security\"\n\
         [[routes]]\nnumber = \"3100\"\nflow = \"service-desk\"\n[[routes]]\nnumber = \"3200\"\nflow = \"reception\"\n\
         [[routes]]\nnumber = \"3400\"\nflow = \"door\"\n{connectors}\n{more}"
    );
    let config = svi_tests::config::write(
        dir.path(),
        &[
            ("service-desk", &service_desk),
            ("reception", &svi_tests::config::sample_flow("reception")),
            ("door", &svi_tests::config::sample_flow("door")),
            (
                "alarm-callout",
                &svi_tests::config::sample_flow("alarm-callout"),
            ),
        ],
        &extra,
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        data_dir: Some(data.clone()),
        ..EngineOptions::default()
    });
    Site {
        engine,
        acs,
        dir,
        data,
    }
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
    let visitor = || {
        let mut c = digits(Caller::new(Codec::Pcma), Duration::from_millis(1000), "1");
        c = digits(c, Duration::from_millis(800), "4321#");
        c.hangup_after = Some(Duration::from_secs(9));
        c
    };
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
}

/// Acceptance 4: an alarm raised on the access-control server makes the engine call the
/// on-duty numbers (test phones registered as agents 2001 and 2002). The first rings and
/// does not answer: after the ring timeout the engine cancels it and calls the second,
/// which hears the alarm, keys 1, and the server records the acknowledgement. The audit
/// log has every step.
#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_calls_the_on_duty_numbers_until_one_acknowledges_it() {
    use svi_tests::phone::{deadline, AnswerMode, Ended, Phone, PhoneConfig};
    let more = "[[agents]]\nid = \"2001\"\npassword = \"duty-2001\"\n\
        [[agents]]\nid = \"2002\"\npassword = \"duty-2002\"\n\
        [alarm_callout]\nsource = \"current_alarm\"\nflow = \"alarm-callout\"\n\
        numbers = [\"2001\", \"2002\"]\ncaller_id = \"svi-alarm\"\nring_timeout = \"3s\"\n\
        poll_every = \"500ms\"\nrounds = 1\n";
    let site = site_with(Fault::None, more).await;
    let first = PhoneConfig::new("2001")
        .password("duty-2001")
        .answer(AnswerMode::Manual);
    let mut first = Phone::start(first).await.expect("phone 2001");
    first
        .register(site.engine.sip, deadline(5))
        .await
        .expect("2001 registers");
    let second = PhoneConfig::new("2002")
        .password("duty-2002")
        .answer(AnswerMode::Auto {
            ring: Duration::from_millis(200),
        });
    let mut second = Phone::start(second).await.expect("phone 2002");
    second
        .register(site.engine.sip, deadline(5))
        .await
        .expect("2002 registers");
    // Polled with no alarm open: nobody is called.
    assert!(site
        .engine
        .wait_log("alarm call-out on", Duration::from_secs(5))
        .is_some());

    let alarm = site.acs.raise_alarm("12", "forced");
    let from = first
        .wait_incoming(deadline(10))
        .await
        .unwrap_or_else(|e| panic!("2001 never rang: {e}\n{}", site.engine.log_text()));
    assert!(from.contains("svi-alarm"), "{from}");
    // 2001 does not answer: cancelled after the ring timeout.
    assert_eq!(
        first.wait_ended(deadline(10)).await.expect("2001 ends"),
        Ended::RemoteCancel
    );
    second
        .wait_answered(deadline(10))
        .await
        .unwrap_or_else(|e| panic!("2002 never answered: {e}\n{}", site.engine.log_text()));
    // 2002 hears the alarm (speech, well above silence)...
    second
        .wait_frames(50, deadline(5))
        .await
        .expect("audio from the engine");
    // ...and keys 1 until the menu takes it (digits during the announcement are not
    // collected: a person presses again, about once a second).
    let until = deadline(30);
    while site.acs.alarms()[0].acked_by.is_none() {
        assert!(
            std::time::Instant::now() < until,
            "never acknowledged:\n{}",
            site.engine.log_text()
        );
        second.send_dtmf("1").expect("dtmf");
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    assert!(
        second.level_dbfs(Duration::from_secs(5)) > -45.0,
        "the alarm was heard"
    );
    let alarms = site.acs.alarms();
    assert_eq!(alarms[0].id, alarm);
    assert_eq!(
        alarms[0].acked_by.as_deref(),
        Some("2002"),
        "by who answered"
    );
    assert_eq!(
        second.wait_ended(deadline(15)).await.expect("2002 ends"),
        Ended::RemoteBye,
        "the engine hangs up after thanking"
    );
    let engine = &site.engine;
    tokio::task::block_in_place(|| {
        engine.wait_log("alarm call-out: acknowledged", Duration::from_secs(10))
    })
    .unwrap_or_else(|| panic!("not seen acknowledged:\n{}", engine.log_text()));

    let calls = engine.wait_calls(2, Duration::from_secs(10));
    let reasons: Vec<&str> = calls
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["end_reason"].as_str().unwrap_or_default())
        .collect();
    assert!(reasons.contains(&"no_answer"), "{calls:#}");
    let storage = Storage::open_read_only(&site.data)
        .await
        .expect("engine database");
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let entries = audit::read(&storage, since, 20).await.expect("audit");
    let steps: Vec<(&str, &str, Outcome)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.outcome))
        .collect();
    let target = format!("alarm:{alarm}");
    assert_eq!(
        steps,
        [
            ("alarm.callout", target.as_str(), Outcome::Requested),
            ("alarm.call", target.as_str(), Outcome::Failed),
            ("alarm.call", target.as_str(), Outcome::Done),
            ("alarm.acknowledged", target.as_str(), Outcome::Done),
        ],
        "{entries:#?}"
    );
    assert!(entries.iter().all(|e| e.actor == "system:alarm-callout"));
}
