//! Issue 16, acceptance 4 and the call-out's durability: an alarm raised on the reference
//! access-control server (`svi_tests::acs`) makes `svi run` call the on-duty numbers (test
//! phones registered as agents); a handled alarm is stored in the replicated data and is not
//! called out again after a restart.

use std::time::Duration;

use engine::audit::{self, Outcome};
use engine::storage::Storage;
use svi_tests::acs::Fault;
use svi_tests::phone::{deadline, AnswerMode, Ended, Phone, PhoneConfig};
use svi_tests::site::Site;

/// `[alarm_callout]` on the sample `current_alarm` source, calling `numbers`.
fn callout(numbers: &str, more: &str) -> String {
    format!(
        "[alarm_callout]\nsource = \"current_alarm\"\nflow = \"alarm-callout\"\n\
         numbers = [{numbers}]\ncaller_id = \"svi-alarm\"\nring_timeout = \"3s\"\n\
         rounds = 1\n{more}"
    )
}

const DUTY_AGENTS: &str = "[[agents]]\nid = \"2001\"\npassword = \"duty-2001\"\n\
    [[agents]]\nid = \"2002\"\npassword = \"duty-2002\"\n";

/// The audit log's (action, outcome) for `alarm`, oldest first.
async fn steps(site: &Site, alarm: &str) -> Vec<(String, Outcome)> {
    let storage = Storage::open_read_only(&site.data)
        .await
        .expect("engine database");
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let target = format!("alarm:{alarm}");
    audit::read(&storage, since, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.target == target)
        .map(|e| (e.action, e.outcome))
        .collect()
}

/// Acceptance 4: an alarm raised on the access-control server makes the engine call the
/// on-duty numbers (test phones registered as agents 2001 and 2002). The first rings and
/// does not answer: after the ring timeout the engine cancels it and calls the second,
/// which hears the alarm, keys 1, and the server records the acknowledgement. The audit
/// log has every step.
#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_calls_the_on_duty_numbers_until_one_acknowledges_it() {
    let more = format!(
        "{DUTY_AGENTS}{}",
        callout("\"2001\", \"2002\"", "poll_every = \"500ms\"\n")
    );
    let site = Site::start(Fault::None, &more).await;
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

/// An alarm nobody acknowledged is given up and stays open on the access-control system;
/// it is stored as handled in the engine's replicated data, so the engine restarted on the
/// same data finds it open again and does not call it out a second time.
#[tokio::test(flavor = "multi_thread")]
async fn a_given_up_alarm_is_not_called_out_again_after_a_restart() {
    // 2001 is an agent whose phone never registers: the call cannot be placed, and with
    // one number and one round the alarm is given up at once.
    let more = format!(
        "{DUTY_AGENTS}{}",
        callout("\"2001\"", "poll_every = \"500ms\"\n")
    );
    let site = Site::start(Fault::None, &more).await;
    let alarm = site.acs.raise_alarm("7", "forced");
    site.engine
        .wait_log("alarm call-out: unacknowledged", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("not given up:\n{}", site.engine.log_text()));
    let before = steps(&site, &alarm).await;
    assert_eq!(
        before,
        [
            ("alarm.callout".to_string(), Outcome::Requested),
            ("alarm.call".to_string(), Outcome::Failed),
            ("alarm.unacknowledged".to_string(), Outcome::Failed),
        ]
    );

    let site = site.restart();
    assert!(site.acs.alarms()[0].acked_by.is_none(), "still open");
    let seen = site
        .engine
        .wait_log("alarm handled already", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the stored alarm was not read:\n{}", site.engine.log_text()));
    assert!(seen.contains(&alarm) && seen.contains("GivenUp"), "{seen}");
    // The decision is taken at that poll: nothing more for this alarm.
    assert_eq!(steps(&site, &alarm).await, before);
    assert!(
        !site.engine.log_text().contains("alarm call-out: calling"),
        "no call after the restart"
    );
}

/// The same across a failover: node A of an HA pair gives an alarm up; A crashes, B takes
/// over, finds the alarm still open on the access-control server and, reading the handled
/// alarms replicated to it, does not call it out again.
#[tokio::test(flavor = "multi_thread")]
async fn a_given_up_alarm_is_not_called_out_again_by_the_other_node_after_a_failover() {
    use svi_tests::ha::{wait_role, HaSpec};
    let acs = svi_tests::acs::AcsServer::start(true, Duration::from_secs(300)).await;
    let work = tempfile::tempdir().expect("tmp");
    let (data_a, data_b) = (work.path().join("a-data"), work.path().join("b-data"));
    std::fs::create_dir_all(&data_b).expect("b data");
    // Both nodes decrypt the same settings: each holds a copy of the key (docs/integrations.md).
    let connectors = svi_tests::site::alarm_connectors(&acs, &data_a);
    std::fs::copy(data_a.join("secrets.key"), data_b.join("secrets.key")).expect("key copy");
    let engine = svi_tests::config::hold_engine(
        work.path(),
        &format!(
            "{connectors}\n{}",
            callout("\"2001\"", "poll_every = \"500ms\"\n")
        ),
    );
    std::fs::write(
        work.path().join("flows/alarm-callout.yaml"),
        svi_tests::config::sample_flow("alarm-callout"),
    )
    .expect("flow");
    let spec = HaSpec::with_engine(&engine, "");
    let _witness = spec.witness();
    let mut a = spec.node(0, Some(data_a.clone()));
    let b = spec.node(1, Some(data_b.clone()));
    assert!(
        wait_role(&data_a, "active", Duration::from_secs(20)),
        "A active:\n{}",
        a.log_text()
    );
    assert!(
        wait_role(&data_b, "standby", Duration::from_secs(10)),
        "B standby:\n{}",
        b.log_text()
    );

    let alarm = acs.raise_alarm("3", "forced");
    a.wait_log("alarm call-out: unacknowledged", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("A did not give up:\n{}", a.log_text()));
    assert!(
        !b.log_text().contains("alarm call-out: callout"),
        "a standby calls nothing out"
    );
    a.kill9();
    assert!(
        wait_role(&data_b, "active", Duration::from_secs(20)),
        "B takes over:\n{}",
        b.log_text()
    );
    let seen = b
        .wait_log("alarm handled already", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("B did not read the handled alarm:\n{}", b.log_text()));
    assert!(seen.contains(&alarm), "{seen}");
    assert!(acs.alarms()[0].acked_by.is_none(), "still open");
    assert!(
        !b.log_text().contains("alarm call-out: callout"),
        "B calls nothing out:\n{}",
        b.log_text()
    );
}

/// Alarms pushed by the access-control system: with polling every hour, a push signed with
/// the shared secret to the engine's webhook route (`POST /api/v1/hooks/alarms`, HTTPS)
/// makes the engine call the on-duty phone at once; an unsigned or wrongly signed push is
/// refused with 401, is audited when it carried a signature, and calls no one.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_calls_out_at_once_and_a_forged_one_is_refused() {
    const SECRET: &str = "acs-hook-secret-3b7e";
    let more = format!(
        "{DUTY_AGENTS}{}",
        callout(
            "\"2001\"",
            "poll_every = \"1h\"\nwebhook_secret = \"${SVI_TEST_ALARM_HOOK}\"\n"
        )
    );
    let site = Site::start_with_env(Fault::None, &more, &[("SVI_TEST_ALARM_HOOK", SECRET)]).await;
    let phone = PhoneConfig::new("2001")
        .password("duty-2001")
        .answer(AnswerMode::Manual);
    let mut phone = Phone::start(phone).await.expect("phone 2001");
    phone
        .register(site.engine.sip, deadline(5))
        .await
        .expect("2001 registers");
    site.engine
        .wait_log("admin API ready", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no admin API:\n{}", site.engine.log_text()));
    let url = format!(
        "https://localhost:{}/api/v1/hooks/alarms",
        site.engine.http.port()
    );
    let trust = site.data.join("admin-tls.crt");
    let alarm = site.acs.raise_alarm("5", "forced");

    // Forged and unsigned pushes: refused, nobody rings.
    let forged = site
        .acs
        .push_alarm(&alarm, &url, &trust, Some("not-the-secret"))
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    let unsigned = site.acs.push_alarm(&alarm, &url, &trust, None).await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    assert!(
        !site.engine.log_text().contains("alarm pushed"),
        "a refused push wakes nothing"
    );

    let pushed = site
        .acs
        .push_alarm(&alarm, &url, &trust, Some(SECRET))
        .await;
    assert_eq!(pushed.status, 202, "{}", pushed.body);
    assert!(pushed.body.contains(&alarm), "{}", pushed.body);
    let from = phone
        .wait_incoming(deadline(10))
        .await
        .unwrap_or_else(|e| panic!("2001 never rang: {e}\n{}", site.engine.log_text()));
    assert!(from.contains("svi-alarm"), "{from}");

    let storage = Storage::open_read_only(&site.data)
        .await
        .expect("engine database");
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let pushes: Vec<(String, Outcome)> = audit::read(&storage, since, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "alarm.pushed")
        .map(|e| (e.target, e.outcome))
        .collect();
    assert_eq!(
        pushes,
        [
            ("alarm:unknown".to_string(), Outcome::Denied),
            (format!("alarm:{alarm}"), Outcome::Done),
        ]
    );
}
