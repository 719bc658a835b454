//! Calls in progress, as operators see them: `svi calls --live` on a running engine, and the
//! same views from the `EngineHandle` of an engine started in the test's own process.

use std::time::{Duration, Instant};

use engine::acd::report::ReportQuery;
use engine::call::live::{CallCommand, CallEvent, CallPhase, CommandOutcome};
use engine::handle::{AgentCommand, CallInProgress, HandleError, Missing};
use serde_json::Value;
use svi_tests::config::{prompt_len, sample_flow};
use svi_tests::contact::{queued_caller, svi, svi_ok};
use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::ports::{free_sip_port, rtp_range};
use svi_tests::proc::{EngineOptions, EngineProc};

/// `svi calls --live --json`, polled until `want` holds (a deadline, not a sleep).
fn wait_live(engine: &EngineProc, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, text) = svi(engine, &["calls", "--live", "--json"]);
        assert_eq!(code, 0, "{text}");
        let calls: Vec<Value> = serde_json::from_str(&text).expect("JSON list");
        if want(&calls) {
            return calls;
        }
        assert!(Instant::now() < end, "never seen: {text}");
    }
}

fn by_caller<'a>(calls: &'a [Value], caller: &str) -> Option<&'a Value> {
    calls.iter().find(|c| c["caller"] == caller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svi_calls_live_shows_a_call_in_the_menu_and_a_queued_call() {
    let engine = EngineProc::start(EngineOptions::default());
    // A staffed queue whose only agent is paused: the queued caller waits.
    svi_ok(&engine, &["agent", "login", "1001"]);
    svi_ok(&engine, &["agent", "pause", "1001", "--reason", "break"]);

    let mut alice = Phone::start(PhoneConfig::new("alice"))
        .await
        .expect("phone");
    alice
        .call(&format!("sip:service@{}", engine.sip))
        .await
        .expect("call");
    alice.wait_answered(deadline(5)).await.expect("answered");
    let bob = queued_caller(&engine, "bob", 1).await;

    let calls = wait_live(&engine, |calls| {
        let in_menu = by_caller(calls, "alice").is_some_and(|c| c["step"] == "main_menu");
        let queued = by_caller(calls, "bob").is_some_and(|c| c["position"] == 1);
        in_menu && queued
    });
    let a = by_caller(&calls, "alice").expect("alice");
    assert_eq!(a["flow"], "demo", "{a:#}");
    assert_eq!(a["phase"], "flow", "{a:#}");
    assert!(
        a["duration_ms"]
            .as_u64()
            .is_some_and(|d| d >= prompt_len("welcome").as_millis() as u64),
        "in the menu after the welcome: {a:#}"
    );
    let b = by_caller(&calls, "bob").expect("bob");
    assert_eq!(
        (&b["queue"], &b["phase"], &b["step"], &b["flow"]),
        (
            &Value::from("support"),
            &Value::from("queued"),
            &Value::from("support"),
            &Value::from("demo")
        ),
        "{b:#}"
    );
    assert!(b["duration_ms"].as_u64().is_some_and(|d| d > 0), "{b:#}");

    // The table for people: one line per call, with the step and the queue.
    let (code, text) = svi(&engine, &["calls", "--live"]);
    assert_eq!(code, 0, "{text}");
    println!("svi calls --live:\n{text}");
    println!("svi calls --live --json:\n{:#}", Value::from(calls.clone()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two calls: {text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("main_menu") && l.contains("alice")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("queued") && l.contains("support") && l.contains("bob")),
        "{text}"
    );
    drop(bob);
    drop(alice);
}

/// `svi calls --live` without an engine says so and fails.
#[test]
fn svi_calls_live_without_an_engine_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(svi_tests::proc::svi_bin())
        .args(["calls", "--live", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("svi");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the engine"), "{err}");
}

/// Waits for a call event matching `want` (an event with a deadline).
async fn wait_event(
    events: &mut engine::handle::EngineEvents,
    what: &str,
    want: impl Fn(&CallEvent) -> bool,
) -> CallEvent {
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(end, events.next()).await {
            Ok(Ok(Some(engine::handle::EngineEvent::Call(e)))) if want(&e) => return e,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => panic!("the engine stopped before {what}"),
            Ok(Err(missed)) => panic!("{missed} events missed before {what}"),
            Err(_) => panic!("no event for {what}"),
        }
    }
}

fn step_is(e: &CallEvent, step: &str) -> bool {
    matches!(e, CallEvent::Changed(v) if v.step.as_deref() == Some(step))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_handle_lists_calls_commands_them_and_streams_their_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let extra = "[[agents]]\nid = \"1001\"\nname = \"Ann\"\ncontact = \"sip:1001@127.0.0.1:9\"\n";
    let file = svi_tests::config::write(dir.path(), &[("demo", &sample_flow("demo"))], extra);
    let mut config = engine::config::EngineConfig::load(&file).expect("config");
    config.data_dir = dir.path().join("data");
    config.sip.listen = format!("127.0.0.1:{}", free_sip_port())
        .parse()
        .expect("addr");
    let (low, high) = rtp_range(100);
    (config.rtp.port_low, config.rtp.port_high) = (low, high);
    let running = engine::Engine::start(config).await.expect("engine");
    let handle = running.handle();
    let sip = handle.sip_addr().expect("a full engine");
    let mut events = handle.events().expect("events");
    let mut acd = handle.watch_acd().expect("watch");

    let mut alice = Phone::start(PhoneConfig::new("alice"))
        .await
        .expect("phone");
    alice
        .call(&format!("sip:service@{sip}"))
        .await
        .expect("call");
    alice.wait_answered(deadline(5)).await.expect("answered");
    wait_event(&mut events, "alice in the menu", |e| {
        step_is(e, "main_menu")
    })
    .await;

    let mut bob = Phone::start(PhoneConfig::new("bob")).await.expect("phone");
    bob.call(&format!("sip:service@{sip}")).await.expect("call");
    bob.wait_answered(deadline(5)).await.expect("answered");
    // The welcome takes no digits: key 2 until the call reaches the queue.
    let end = Instant::now() + prompt_len("welcome") + Duration::from_secs(10);
    let queued = loop {
        bob.send_dtmf("2").expect("dtmf");
        let got = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match events.next().await {
                    Ok(Some(engine::handle::EngineEvent::Call(CallEvent::Changed(v))))
                        if v.phase == CallPhase::Queued =>
                    {
                        return v
                    }
                    Ok(Some(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
        })
        .await;
        if let Ok(v) = got {
            break v;
        }
        assert!(Instant::now() < end, "bob never queued");
    };
    assert_eq!(queued.queue.as_deref(), Some("support"));

    let calls: Vec<CallInProgress> = handle.calls().await.expect("calls");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let a = calls
        .iter()
        .find(|c| c.call.caller.reveal() == "alice")
        .expect("alice");
    assert_eq!(
        (a.call.flow.as_deref(), a.call.step.as_deref(), a.call.phase),
        (Some("demo"), Some("main_menu"), CallPhase::Flow)
    );
    assert!(a.call.answered_at.is_some());
    assert!(a.duration_ms > 0);
    let b = calls
        .iter()
        .find(|c| c.call.caller.reveal() == "bob")
        .expect("bob");
    assert_eq!(
        (b.call.queue.as_deref(), b.call.position, b.call.phase),
        (Some("support"), Some(1), CallPhase::Queued),
        "{b:#?}"
    );
    assert_eq!(
        handle.call(&b.call.id).await.expect("one call").call.id,
        b.call.id
    );

    // The watched ACD snapshot shows the waiting call too.
    let snapshot = tokio::time::timeout(
        Duration::from_secs(10),
        acd.wait_for(|s| {
            s.queues
                .iter()
                .any(|q| q.id.as_str() == "support" && q.waiting == 1)
        }),
    )
    .await
    .expect("in time")
    .expect("the ACD runs")
    .clone();
    assert_eq!(snapshot.calls.len(), 1);
    assert_eq!(snapshot.calls[0].call.as_str(), b.call.id);

    // Typed refusals and errors.
    assert_eq!(
        handle
            .call_command(&a.call.id, CallCommand::Recording { pause: true })
            .await,
        Err(HandleError::CallRefused {
            call: a.call.id.clone(),
            refusal: engine::call::live::CommandError::NotRecorded
        })
    );
    assert_eq!(
        handle.call_command("nobody", CallCommand::Hangup).await,
        Err(HandleError::NotFound {
            what: Missing::AgentCall,
            id: "nobody".into()
        })
    );
    assert_eq!(
        handle.agent("9999", AgentCommand::Login).await,
        Err(HandleError::NotFound {
            what: Missing::Agent,
            id: "9999".into()
        })
    );
    handle
        .agent("1001", AgentCommand::Login)
        .await
        .expect("login");
    assert!(matches!(
        handle.agent("1001", AgentCommand::Login).await,
        Err(HandleError::Refused { .. })
    ));
    assert!(matches!(
        handle.ha_status().await,
        Err(HandleError::Unavailable { .. })
    ));

    // An operator hangs bob up: the phone gets a BYE, the registry announces the end.
    let answer = handle
        .call_command(&b.call.id, CallCommand::Hangup)
        .await
        .expect("hung up");
    assert_eq!(answer.outcome, CommandOutcome::HangingUp);
    assert_eq!(
        bob.wait_ended(deadline(5)).await.expect("ended"),
        Ended::RemoteBye
    );
    let ended = wait_event(
        &mut events,
        "bob's end",
        |e| matches!(e, CallEvent::Ended { call, .. } if *call == b.call.id),
    )
    .await;
    assert_eq!(
        ended,
        CallEvent::Ended {
            call: b.call.id.clone(),
            reason: Some(engine::storage::EndReason::OperatorHangup)
        }
    );
    assert_eq!(handle.calls().await.expect("calls").len(), 1);

    // Reports come from the persisted ACD events (written in batches): bob was offered to
    // support and left it unanswered.
    let now = chrono::Utc::now();
    let query = ReportQuery {
        queue: Some("support".into()),
        since: now - chrono::Duration::hours(1),
        until: now + chrono::Duration::minutes(1),
        interval: None,
        threshold: None,
    };
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = handle.statistics(&query).await.expect("statistics");
        if rows
            .first()
            .is_some_and(|r| r.offered == 1 && r.abandoned == 1)
        {
            break;
        }
        assert!(Instant::now() < end, "never reported: {rows:?}");
        tokio::task::yield_now().await;
    }
    let backwards = ReportQuery {
        until: query.since,
        ..query
    };
    assert!(matches!(
        handle.statistics(&backwards).await,
        Err(HandleError::BadRequest { .. })
    ));
    assert_eq!(handle.recordings(10).await.expect("index"), Vec::new());
    assert_eq!(handle.flow_names().expect("flows"), ["demo"]);
    running.shutdown().await;
}
