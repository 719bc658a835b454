//! `/metrics` against a real `svi run` (issue 14, acceptance 5): the calls-active gauge
//! follows a sipp call; new calls started and refused by reason (`sip.max_calls_per_second`
//! here), RTP packets both ways from a real sipp call with media, and failed logins and API
//! keys are counted; every scrape passes Debian's `promtool check metrics`. Also the call
//! record search (paged, audited) on the record that call left.

use std::time::Duration;

use svi_tests::admin::{create_key, engine_with, promtool, sample, Api, Auth};
use svi_tests::config::{sample_flow, write};
use svi_tests::pcap::write_rtp_pcap;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

/// Scrapes until `ready` accepts the exposition (the figures are read at scrape time, and
/// a stream's RTP counts are published every 500 ms), within `within`.
async fn scrape_until(
    api: &Api,
    key: &str,
    within: Duration,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let a = api.get("/metrics", Auth::Key(key)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if ready(&a.text) {
            promtool(&a.text);
            return a.text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the metrics never got there:\n{}",
            a.text
        );
    }
}

fn value(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or_else(|| panic!("no sample {name}:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_calls_refusals_rtp_and_auth_failures() {
    let dir = tempfile::tempdir().expect("tmp");
    let agent = "[[agents]]\nid = \"1001\"\nname = \"A\"\npassword = \"pw-1001-secret\"\n";
    let config = write(dir.path(), &[("demo", &sample_flow("demo"))], agent);
    // One new call a second at most, so that a burst is refused.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen("[sip]\n", "[sip]\nmax_calls_per_second = 1\n", 1),
    )
    .expect("config");
    let data = dir.path().join("data");
    let key = create_key(&data, Some(&config), "metrics", "prometheus");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        data_dir: Some(data),
        ..EngineOptions::default()
    });
    let api = Api::new(&engine);
    let idle = scrape_until(&api, &key, Duration::from_secs(5), |_| true).await;
    assert_eq!(value(&idle, "svi_calls_total"), 0.0);
    for reason in ["standby", "overloaded", "rate_limit", "draining"] {
        let name = format!("svi_calls_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&idle, &name), 0.0, "{name}");
    }

    // One call whose caller sends a second of audio (50 packets), then hangs up.
    let pcap = dir.path().join("silence.pcap");
    write_rtp_pcap(&pcap, &[0i16; 8000], 8).expect("pcap");
    let mut caller =
        Caller::new(Codec::Pcma).dtmf(Duration::from_millis(200), Dtmf::InbandPcap(pcap));
    caller.hangup_after = Some(Duration::from_secs(2));
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let sent = "svi_rtp_packets_total{direction=\"sent\"}";
    let received = "svi_rtp_packets_total{direction=\"received\"}";
    let after_call = scrape_until(&api, &key, Duration::from_secs(10), |t| {
        sample(t, "svi_rtp_streams") == Some(0.0) && sample(t, received) > Some(0.0)
    })
    .await;
    assert_eq!(value(&after_call, "svi_calls_total"), 1.0);
    assert!(value(&after_call, sent) > 0.0, "{after_call}");
    // sipp played 50 packets: the engine counts no more than that.
    assert!(value(&after_call, received) <= 50.0, "{after_call}");
    assert_eq!(
        value(
            &after_call,
            "svi_rtp_packets_refused_total{reason=\"unexpected_source\"}"
        ),
        0.0
    );

    // A burst of four new calls within a few milliseconds: the rate lets at most one by.
    let mut quick = Caller::new(Codec::Pcma);
    quick.hangup_after = Some(Duration::from_millis(300));
    let burst = Sipp::new(quick.xml())
        .calls(4)
        .arg("-r")
        .arg("200")
        .run(dir.path(), Some(engine.sip));
    let refused = "svi_calls_refused_total{reason=\"rate_limit\"}";
    let after_burst = scrape_until(&api, &key, Duration::from_secs(10), |t| {
        sample(t, "svi_calls_total").unwrap_or(0.0) + sample(t, refused).unwrap_or(0.0) == 5.0
    })
    .await;
    assert!(
        value(&after_burst, refused) >= 1.0,
        "{after_burst}\n{}",
        burst.report()
    );

    // Failed authentications of the API: a wrong password, a malformed and an unknown key.
    assert!(api
        .login("nobody", "not the password at all")
        .await
        .is_none());
    let unknown = format!("svi_{}_{}", "0".repeat(12), "0".repeat(64));
    for bad in ["nonsense", unknown.as_str()] {
        let a = api.get("/api/v1/queues", Auth::Key(bad)).await;
        assert_eq!(a.status, 401, "{}", a.text);
    }
    let after_auth = scrape_until(&api, &key, Duration::from_secs(5), |_| true).await;
    assert_eq!(
        value(&after_auth, "svi_api_auth_failures_total{kind=\"login\"}"),
        1.0
    );
    assert_eq!(
        value(&after_auth, "svi_api_auth_failures_total{kind=\"api_key\"}"),
        2.0
    );

    // SIP: the calls' INVITEs and answers by code, an agent phone's REGISTER challenged
    // (401); the edge's digest and ban counters are rendered (their counting is the SIP
    // edge's own test).
    let port = svi_tests::ports::free_sip_port();
    let _ = Sipp::new(svi_tests::sipp::agent_register_xml(
        "1001",
        "not-the-password",
        port,
    ))
    .calls(1)
    .run(dir.path(), Some(engine.sip));
    let challenged = "svi_sip_responses_total{direction=\"sent\",code=\"401\"}";
    let after_sip = scrape_until(&api, &key, Duration::from_secs(10), |t| {
        sample(t, challenged) >= Some(1.0)
    })
    .await;
    assert!(value(&after_sip, "svi_sip_requests_total{method=\"INVITE\"}") >= 5.0);
    assert!(value(&after_sip, "svi_sip_requests_total{method=\"REGISTER\"}") >= 1.0);
    for code in ["100", "200", "503"] {
        let name = format!("svi_sip_responses_total{{direction=\"sent\",code=\"{code}\"}}");
        assert!(value(&after_sip, &name) >= 1.0, "{name}:\n{after_sip}");
    }
    assert_eq!(
        value(
            &after_sip,
            "svi_sip_responses_total{direction=\"sent\",code=\"503\"}"
        ),
        value(&after_sip, refused)
    );
    for family in [
        "svi_sip_auth_failures_total",
        "svi_sip_edge_refused_total",
        "svi_sip_banned",
    ] {
        assert!(after_sip.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

/// Scrapes until `svi_calls_active` is `want` (the gauge is read at scrape time), within
/// `within`; returns the last exposition.
async fn scrape_active(api: &Api, key: &str, want: f64, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let a = api.get("/metrics", Auth::Key(key)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if sample(&a.text, "svi_calls_active") == Some(want) {
            return a.text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "svi_calls_active never {want}:\n{}",
            a.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_and_the_calls_active_gauge_follows_a_call() {
    use svi_tests::sipp::{Caller, Codec, Sipp};
    let (mut key, mut sup, mut admin) = (String::new(), String::new(), String::new());
    let (dir, engine) = engine_with("", |data, config| {
        key = create_key(data, Some(config), "metrics", "prometheus");
        sup = create_key(data, Some(config), "supervisor", "records");
        admin = create_key(data, Some(config), "admin", "audit");
    });
    let api = Api::new(&engine);
    let idle = scrape_active(&api, &key, 0.0, Duration::from_secs(5)).await;
    promtool(&idle);
    for family in [
        "svi_raft_term",
        "svi_ha_role",
        "svi_recording_disk_free_bytes",
        "svi_queue_calls_waiting",
        "svi_queue_longest_wait_seconds",
        "svi_agents",
    ] {
        assert!(
            idle.contains(&format!("# TYPE {family} ")),
            "{family}:\n{idle}"
        );
    }
    assert!(
        idle.contains("svi_queue_calls_waiting{queue=\"support\"} 0"),
        "{idle}"
    );
    // The metrics key reaches nothing else.
    assert_eq!(api.get("/api/v1/ha", Auth::Key(&key)).await.status, 403);

    // One call that stays in the demo flow for 3 s, then hangs up.
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(Duration::from_secs(3));
    let (work, sip) = (dir.path().to_path_buf(), engine.sip);
    let call = std::thread::spawn(move || Sipp::new(caller.xml()).calls(1).run(&work, Some(sip)));
    let during = scrape_active(&api, &key, 1.0, Duration::from_secs(20)).await;
    promtool(&during);
    let run = call.join().expect("sipp thread");
    assert!(run.success(), "{}", run.report());
    let after = scrape_active(&api, &key, 0.0, Duration::from_secs(20)).await;
    promtool(&after);

    // The call's record, written through the replicated log as the call ends, then found
    // again by its called number (the harness's sipp dials its default `[service]`).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let all = loop {
        every.tick().await;
        let all = api.get("/api/v1/records", Auth::Key(&sup)).await;
        assert_eq!(all.status, 200, "{}", all.text);
        let n = all.json["records"].as_array().map_or(0, Vec::len);
        if n > 0 || tokio::time::Instant::now() > deadline {
            break all;
        }
    };
    let records = all.json["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{}", all.text);
    assert_eq!(records[0]["flow"], "demo", "{}", all.text);
    assert_eq!(records[0]["end_reason"], "caller_hangup", "{}", all.text);
    let called = records[0]["called"].as_str().expect("called").to_string();
    let by_number = api
        .get(
            &format!("/api/v1/records?number={called}&per_page=10"),
            Auth::Key(&sup),
        )
        .await;
    assert_eq!(by_number.json["records"], all.json["records"]);
    let none = api
        .get(
            &format!("/api/v1/records?number={called}&outcome=answered"),
            Auth::Key(&sup),
        )
        .await;
    assert_eq!(
        none.json["records"].as_array().map(Vec::len),
        Some(0),
        "{}",
        none.text
    );
    let bad = api
        .get("/api/v1/records?outcome=maybe", Auth::Key(&sup))
        .await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (400, Some("outcome")),
        "{}",
        bad.text
    );
    // Each search is in the audit log, with who made it (the entries are queued for the
    // replicated log as each answer leaves, so they are awaited).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let audit = loop {
        every.tick().await;
        let audit = api.get("/api/v1/audit?format=csv", Auth::Key(&admin)).await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        let n = audit.text.matches("GET /api/v1/records").count();
        if n >= 4 || tokio::time::Instant::now() > deadline {
            break audit;
        }
    };
    let searches = audit
        .text
        .lines()
        .filter(|l| l.contains("GET /api/v1/records"))
        .collect::<Vec<_>>();
    assert!(searches.len() >= 4, "{}", audit.text);
    assert!(
        searches.iter().all(|l| l.contains("key:")),
        "{}",
        audit.text
    );
}
