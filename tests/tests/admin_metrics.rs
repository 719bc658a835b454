//! `/metrics` counts what happened, against a real `svi run` (issue 14): new calls started
//! and refused by reason (`sip.max_calls_per_second` here), RTP packets both ways from a
//! real sipp call with media, and failed logins and API keys; every scrape passes Debian's
//! `promtool check metrics`.

use std::time::Duration;

use svi_tests::admin::{create_key, promtool, sample, Api, Auth};
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
    let config = write(dir.path(), &[("demo", &sample_flow("demo"))], "");
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
}
