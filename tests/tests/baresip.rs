//! Debian's baresip against the engine: an agent's phone with MD5 digest (issue 13,
//! acceptance 6), and SIP over TLS (`;transport=tls`, the engine's self-signed certificate)
//! for an agent and a caller (the signalling part of acceptance 5). Each test skips with a
//! visible notice where baresip is not installed.

use std::time::Duration;

use svi_tests::baresip::{self, Baresip};
use svi_tests::contact::queued_caller;
use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};

const AGENT: &str = "[[agents]]\nid = \"1001\"\nname = \"A\"\npassword = \"demo-1001\"\n";

/// An engine with `sip` as its `[sip]` keys and agent 1001.
fn engine(dir: &std::path::Path, sip: &str) -> EngineProc {
    let config = svi_tests::config::write_with_sip(
        dir,
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        sip,
        AGENT,
    );
    EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    })
}

/// Agent 1001's baresip (auto-answer) registered with the engine at `registrar`
/// (`host:port;params`); returns once the engine made the agent ready.
fn agent(dir: &std::path::Path, engine: &EngineProc, registrar: &str, extra: &str) -> Baresip {
    let phone = Baresip::start(
        dir,
        &format!("<sip:1001@{registrar}>;auth_pass=demo-1001;answermode=auto;regint=600"),
        extra,
    );
    let ready = engine.wait_log(
        "agent phone registered: agent ready agent=1001",
        Duration::from_secs(10),
    );
    assert!(
        ready.is_some(),
        "baresip did not register:\n{}\nengine:\n{}",
        phone.log_text(),
        engine.log_text()
    );
    phone
}

/// Waits for the call record of a bridged call and checks its agent.
fn assert_bridged_to_1001(engine: &EngineProc) {
    let calls = engine.wait_calls(1, Duration::from_secs(15));
    let call = &calls[0];
    assert_eq!(call["queue"], "support", "{call:#}");
    assert_eq!(call["agent"], "1001", "{call:#}");
    assert!(call["agent_answered_at"].is_string(), "{call:#}");
}

/// Acceptance 6: with `digest_algorithms = ["MD5"]`, Debian's baresip (libre 1.1 gives up
/// on a SHA-256 challenge) registers as agent 1001 and takes a queued call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baresip_registers_as_agent_1001_with_md5_and_takes_a_queued_call() {
    if !baresip::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine(
        dir.path(),
        "allowed_networks = [\"127.0.0.0/8\"]\ndigest_algorithms = [\"MD5\"]\n",
    );
    let phone = agent(
        &dir.path().join("baresip"),
        &engine,
        &engine.sip.to_string(),
        "",
    );
    let caller = queued_caller(&engine, "0612345678", 1).await;
    let established = phone.wait_log("Call established", Duration::from_secs(15));
    assert!(established.is_some(), "{}", phone.log_text());
    caller.hangup().await.expect("hang up");
    assert_bridged_to_1001(&engine);
}

/// SIP over TLS with the engine's self-signed certificate (baresip trusts it as its CA):
/// agent 1001 registers over TLS and takes a queued call on its TLS connection; a caller
/// over TLS reaches the demo flow and its RFC 4733 digit `1` picks the information message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baresip_over_tls_registers_takes_a_call_and_calls_the_demo_flow() {
    if !baresip::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let tls_port = free_sip_port();
    let engine = engine(
        dir.path(),
        &format!(
            "allowed_networks = [\"127.0.0.0/8\"]\ndigest_algorithms = [\"MD5\"]\n\
             transports = [\"udp\", \"tcp\", \"tls\"]\n[sip.tls]\nlisten = \"127.0.0.1:{tls_port}\"\n"
        ),
    );
    let ca = format!(
        "sip_cafile {}",
        engine.data_dir().join("tls/sip-tls.crt").display()
    );
    let registrar = format!("127.0.0.1:{tls_port};transport=tls");
    let phone = agent(&dir.path().join("agent"), &engine, &registrar, &ca);
    assert!(
        phone
            .wait_log("{0/TLS/v4} 200 OK", Duration::from_secs(5))
            .is_some(),
        "{}",
        phone.log_text()
    );
    let caller = queued_caller(&engine, "0612345678", 1).await;
    let established = phone.wait_log("Call established", Duration::from_secs(15));
    assert!(established.is_some(), "{}", phone.log_text());
    caller.hangup().await.expect("hang up");
    assert_bridged_to_1001(&engine);

    // A caller over TLS: the welcome, then `1` during the menu.
    let mut tls_caller = Baresip::start(
        &dir.path().join("caller"),
        &format!("<sip:0612345678@127.0.0.1:{tls_port};transport=tls>;regint=0"),
        &ca,
    );
    tls_caller.keys(&format!(
        "/dial sip:100@127.0.0.1:{tls_port};transport=tls\n"
    ));
    assert!(
        tls_caller
            .wait_log("Call established", Duration::from_secs(15))
            .is_some(),
        "{}",
        tls_caller.log_text()
    );
    // Digits during the welcome are not collected: key `1` until the engine hangs up.
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tls_caller.keys("1");
        if tls_caller
            .wait_log("terminated", Duration::from_millis(500))
            .is_some()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the call never ended: {}",
            engine.log_text()
        );
    }
    let calls = engine.wait_calls(2, Duration::from_secs(30));
    let path = svi_tests::path_of(&calls[0]);
    assert_eq!(
        path,
        ["welcome", "main_menu", "option1", "end"],
        "{:#}",
        calls[0]
    );
}
