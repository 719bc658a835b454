//! A 20-call smoke run of `svi-load`, the capacity benchmark's load generator, against a real
//! engine (the demo flow), so that the tool cannot rot between benchmark runs. The benchmark
//! itself (`scripts/bench.sh`) is not part of the test command: it takes 15 minutes.
//!
//! Each call is answered, plays the welcome prompt and the menu, receives the engine's RTP and
//! sends a tone plus the digit 1 as RFC 4733 events 3.5 s after its answer (during the menu),
//! which takes the demo flow to `option1`; the generator hangs up after its measurement window.
//! The generator's JSON is checked for consistency, and against the engine's call records.
//!
//! A second run covers the relay variant: a few calls bridged by the benchmark's own flow
//! (`bench/flows/relay.yaml`) to the generator's target role (`--answer-on`), recorded, so
//! that the four streams per call, the legs' signalling and the recordings count are checked.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};

const CALLS: u64 = 20;
const BRIDGED: u64 = 4;

/// Runs `svi-load` with `args`, killed if it has not exited after `limit`.
fn run_load(args: &[String], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_svi-load"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start svi-load");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(output)) => output,
        _ => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("svi-load did not finish within {limit:?}");
        }
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a number, found {v}"))
}

#[test]
fn twenty_calls_two_way_rtp_and_a_digit_each() {
    let engine = EngineProc::start(EngineOptions::default());
    let json_path = engine.dir.path().join("load.json");
    let args: Vec<String> = [
        "calls",
        "--target",
        &engine.sip.to_string(),
        "--pid",
        &engine.child.id().to_string(),
        "--calls",
        &CALLS.to_string(),
        "--hold",
        "4s",
        "--settle",
        "200ms",
        "--dtmf-at",
        "3500ms",
        "--digit",
        "1",
        "--per-call",
        // A smoke run checks that calls, legs and packets add up; how late packets are is
        // the benchmark's business (a loaded machine must not fail this test).
        "--max-p99-ms",
        "1000000",
        "--max-loss-pct",
        "100",
        "--json",
        &json_path.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let output = run_load(&args, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "svi-load failed: {}\nengine log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        engine.log_text()
    );
    let text = std::fs::read_to_string(&json_path).expect("svi-load wrote its JSON");
    let r: Value = serde_json::from_str(&text).expect("valid JSON");

    // Signalling: every call set up, none failed, all ended by our BYE.
    let sip = &r["sip"];
    assert_eq!(u(&sip["placed"]), CALLS, "{sip}");
    assert_eq!(u(&sip["answered"]), CALLS, "{sip}");
    assert_eq!(u(&sip["failed"]), 0, "{sip}");
    assert_eq!(u(&sip["ended_by_us"]), CALLS, "{sip}");
    assert_eq!(u(&sip["ended_by_engine"]), 0, "{sip}");
    let step = &r["steps"][0];
    assert_eq!(u(&step["setup"]["ok"]), CALLS);
    assert_eq!(u(&step["setup"]["failed"]), 0);
    assert!(step["setup"]["p99_ms"].as_f64().expect("setup p99") > 0.0);

    // The window: every call heard the engine; the counters add up.
    let rtp = &step["rtp"];
    assert_eq!(u(&rtp["calls_heard"]), CALLS, "{rtp}");
    assert!(u(&rtp["received"]) > 0);
    assert!(
        u(&rtp["received"]) <= u(&rtp["expected"]) + u(&rtp["late"]),
        "{rtp}"
    );
    assert_eq!(
        u(&rtp["lost"]),
        u(&rtp["expected"]).saturating_sub(u(&rtp["received"])),
        "{rtp}"
    );
    assert_eq!(u(&rtp["send_errors"]), 0);
    // About 50 packets per second per call each way over a 4 s window.
    let per_call_window = u(&rtp["sent"]) / CALLS;
    assert!((150..=260).contains(&per_call_window), "{rtp}");
    assert!(u(&rtp["deviation"]["count"]) > 0);
    assert_eq!(
        u(&step["packets_through_target"]),
        u(&rtp["sent"]) + u(&rtp["expected"])
    );
    assert!(
        step["cpu"]["target"]["cpu_secs"].as_f64().is_some(),
        "{step}"
    );
    assert!(u(&step["rss_kib"]) > 0);

    // Totals and per call: one digit each, RTP both ways on each call.
    let totals = &r["totals"];
    assert_eq!(u(&totals["digits"]), CALLS, "{totals}");
    assert_eq!(u(&totals["calls_with_rtp"]), CALLS, "{totals}");
    assert!(u(&totals["received"]) <= u(&totals["expected"]), "{totals}");
    let per_call = r["per_call"].as_array().expect("per-call lines");
    assert_eq!(per_call.len() as u64, CALLS);

    // The engine's call records agree: it heard the digit (the flow went to option1), and
    // its packet counters are consistent with ours (they come from a snapshot taken at most
    // 500 ms before the call ended, so they may be lower, never higher).
    let records = engine.wait_calls(CALLS as usize, Duration::from_secs(15));
    let records = records.as_array().expect("call records");
    for c in per_call {
        assert_eq!(c["outcome"], "ended_by_us", "{c}");
        assert_eq!(u(&c["digits"]), 1, "{c}");
        let (sent, received, expected) = (u(&c["sent"]), u(&c["received"]), u(&c["expected"]));
        assert!(received > 0 && received <= expected, "{c}");
        let record = records
            .iter()
            .find(|x| x["sip_call_id"] == c["call_id"])
            .unwrap_or_else(|| panic!("no call record for {c}"));
        let path: Vec<&str> = record["path"]
            .as_array()
            .expect("path")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(path.contains(&"option1"), "digit not acted on: {record}");
        assert_eq!(record["end_reason"], "caller_hangup", "{record}");
        let engine_received = u(&record["rtp_received"]);
        let engine_sent = u(&record["rtp_sent"]);
        assert!(
            engine_received > 0 && engine_received <= sent,
            "{c} vs {record}"
        );
        assert!(
            engine_sent > 0 && engine_sent <= expected,
            "{c} vs {record}"
        );
    }
    let (status, log) = engine.terminate(Duration::from_secs(10));
    assert!(status.success(), "engine exit {status:?}; log:\n{log}");
}

#[test]
fn a_few_bridged_calls_relayed_and_recorded() {
    let dir = tempfile::tempdir().expect("tmp");
    let flow_path = svi_tests::repo_root().join("bench/flows/relay.yaml");
    let flow = std::fs::read_to_string(&flow_path).expect("the benchmark's relay flow");
    let config = svi_tests::config::write(
        dir.path(),
        &[("relay", flow.as_str())],
        "[recording]\ndefault = \"all\"\n",
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let json_path = engine.dir.path().join("relay.json");
    let answer_port = free_sip_port().to_string();
    let args: Vec<String> = [
        "calls",
        "--target",
        &engine.sip.to_string(),
        "--pid",
        &engine.child.id().to_string(),
        "--calls",
        &BRIDGED.to_string(),
        "--service",
        &answer_port,
        "--answer-on",
        &format!("127.0.0.1:{answer_port}"),
        "--record-percent",
        "100",
        "--recordings-dir",
        &engine.data_dir().join("recordings").display().to_string(),
        "--hold",
        "2s",
        "--settle",
        "300ms",
        "--dtmf-at",
        "1s",
        "--per-call",
        // A smoke run checks that calls, legs and packets add up; how late packets are is
        // the benchmark's business (a loaded machine must not fail this test).
        "--max-p99-ms",
        "1000000",
        "--max-loss-pct",
        "100",
        "--json",
        &json_path.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let output = run_load(&args, Duration::from_secs(20));
    assert!(
        output.status.success(),
        "svi-load failed: {}\nengine log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        engine.log_text()
    );
    let text = std::fs::read_to_string(&json_path).expect("svi-load wrote its JSON");
    let r: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(r["variant"]["relay"], true, "{}", r["variant"]);

    // Signalling: every call answered and bridged; every leg acknowledged, then hung up by
    // the engine after our BYE.
    let sip = &r["sip"];
    assert_eq!(u(&sip["answered"]), BRIDGED, "{sip}");
    assert_eq!(u(&sip["ended_by_us"]), BRIDGED, "{sip}");
    let legs = &r["legs"];
    assert_eq!(u(&legs["invited"]), BRIDGED, "{legs}");
    assert_eq!(u(&legs["acked"]), BRIDGED, "{legs}");
    assert_eq!(u(&legs["ended_by_engine"]), BRIDGED, "{legs}");
    assert_eq!(u(&legs["no_ack"]) + u(&legs["refused"]), 0, "{legs}");
    let step = &r["steps"][0];
    assert_eq!(step["pass"], true, "{step}");
    assert_eq!(u(&step["setup"]["not_bridged"]), 0, "{step}");
    assert_eq!(u(&step["legs_active"]), BRIDGED, "{step}");

    // The window: four streams per call, two of them towards us, all heard.
    let rtp = &step["rtp"];
    assert_eq!(u(&rtp["calls_heard"]), 2 * BRIDGED, "{rtp}");
    let per_stream = u(&rtp["sent"]) / (2 * BRIDGED);
    assert!((70..=140).contains(&per_stream), "{rtp}");
    assert!(
        u(&rtp["received"]) <= u(&rtp["expected"]) + u(&rtp["late"]),
        "{rtp}"
    );

    // Every call recorded: one WAV each, growing during the window.
    let rec = &step["recordings"];
    assert_eq!(u(&rec["files"]), BRIDGED, "{rec}");
    assert!(u(&rec["written_in_window"]) > 0, "{rec}");

    let totals = &r["totals"];
    assert_eq!(u(&totals["calls_with_rtp"]), BRIDGED, "{totals}");
    assert_eq!(u(&totals["legs_with_rtp"]), BRIDGED, "{totals}");
    let per_call = r["per_call"].as_array().expect("per-call lines");
    assert_eq!(per_call.len() as u64, 2 * BRIDGED);
    for c in per_call {
        assert!(u(&c["received"]) > 0, "{c}");
        let expected = if c["role"] == "target" {
            "ended_by_engine"
        } else {
            "ended_by_us"
        };
        assert_eq!(c["outcome"], expected, "{c}");
    }
    let records = engine.wait_calls(BRIDGED as usize, Duration::from_secs(10));
    for record in records.as_array().expect("call records") {
        assert_eq!(record["end_reason"], "caller_hangup", "{record}");
    }
    let (status, log) = engine.terminate(Duration::from_secs(10));
    assert!(status.success(), "engine exit {status:?}; log:\n{log}");
}
