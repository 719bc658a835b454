//! Contact-center scenarios with test phones: a caller queued through the demo flow, an
//! agent's phone registered with the engine, and the `svi` commands that act on a running
//! engine.

use std::time::{Duration, Instant};

use crate::config::prompt_len;
use crate::phone::{deadline, AnswerMode, Phone, PhoneConfig, TONE_1700_HZ, TONE_500_HZ};
use crate::ports::free_sip_port;
use crate::proc::{svi_bin, EngineProc};
use crate::sipp::{agent_phone_xml, agent_register_xml, Sipp, SippRun};

/// `svi ARGS --data-dir DIR` against the engine: exit code and output (stdout + stderr).
pub fn svi(engine: &EngineProc, args: &[&str]) -> (i32, String) {
    svi_at(args, &engine.data_dir())
}

/// `svi ARGS --data-dir DIR` (a running engine's, or a stopped node's): exit code and
/// output (stdout + stderr).
pub fn svi_at(args: &[&str], data_dir: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(svi_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("svi");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `svi ARGS`, which must succeed.
pub fn svi_ok(engine: &EngineProc, args: &[&str]) {
    let (code, text) = svi(engine, args);
    assert_eq!(code, 0, "svi {args:?}: {text}");
}

/// An agent's state object (`{"state": "not_ready", "reason": ...}`) from `svi agent list`.
pub fn agent_state(engine: &EngineProc, agent: &str) -> serde_json::Value {
    let (_, text) = svi(engine, &["agent", "list", "--json"]);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.as_array()
                .and_then(|a| a.iter().find(|x| x["id"] == agent).cloned())
        })
        .map(|a| a["state"].clone())
        .unwrap_or(serde_json::Value::Null)
}

/// Polls the agent's state until `want` holds (a deadline, not a sleep).
pub fn wait_agent(
    engine: &EngineProc,
    agent: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let s = agent_state(engine, agent);
        if want(&s) {
            return s;
        }
        assert!(Instant::now() < end, "agent {agent} stayed {s}");
    }
}

/// Answers at once (the test phone's default).
pub const AUTO_ANSWER: AnswerMode = AnswerMode::Auto {
    ring: Duration::ZERO,
};

/// An agent's phone, registered with the engine.
pub async fn agent_phone(
    engine: &EngineProc,
    agent: &str,
    password: &str,
    mode: AnswerMode,
) -> Phone {
    let phone = Phone::start(PhoneConfig::new(agent).password(password).answer(mode))
        .await
        .expect("agent phone");
    phone
        .register(engine.sip, deadline(5))
        .await
        .expect("the agent registers");
    phone
}

/// A caller (`user`) in the demo flow's support queue: it calls, and keys 2 until the
/// engine says the `nth` call is queued (the welcome prompt takes no digits).
pub async fn queued_caller(engine: &EngineProc, user: &str, nth: usize) -> Phone {
    let mut caller = call_service(engine, user).await;
    caller.wait_answered(deadline(5)).await.expect("answered");
    let end = Instant::now() + prompt_len("welcome") + Duration::from_secs(10);
    loop {
        caller.send_dtmf("2").expect("dtmf");
        if engine
            .wait_log_count("call queued", nth, Duration::from_millis(500))
            .is_some()
        {
            return caller;
        }
        assert!(Instant::now() < end, "never queued: {}", engine.log_text());
    }
}

/// How long a tone is listened to before judging it.
pub const TONE_WINDOW: Duration = Duration::from_millis(400);

/// `caller` sends 500 Hz, `callee` 1700 Hz; returns once each hears the other's tone
/// through the engine.
pub async fn hear_each_other(caller: &mut Phone, callee: &mut Phone) {
    caller.set_tone(TONE_500_HZ, -12.0);
    callee.set_tone(TONE_1700_HZ, -12.0);
    callee
        .wait_hears(TONE_500_HZ, TONE_WINDOW, deadline(5))
        .await
        .expect("the called party hears the caller");
    caller
        .wait_hears(TONE_1700_HZ, TONE_WINDOW, deadline(5))
        .await
        .expect("the caller hears the called party");
}

/// An engine allowing `allowed` (a network) whose flow transfers every call, bridged, to a
/// target phone that answers after `ring` (the directory holds the engine's configuration).
pub async fn bridged_transfer_engine(
    ring: Duration,
    allowed: &str,
) -> (tempfile::TempDir, EngineProc, Phone) {
    let target = Phone::start(PhoneConfig::new("desk").answer(AnswerMode::Auto { ring }))
        .await
        .expect("target phone");
    let dir = tempfile::tempdir().expect("tmp");
    let flow = crate::config::bridged_transfer_flow(&target.uri());
    let config =
        crate::config::write_allowing(dir.path(), &[("bridged", flow.as_str())], allowed, "");
    let engine = EngineProc::start(crate::proc::EngineOptions {
        config: Some(config),
        ..crate::proc::EngineOptions::default()
    });
    (dir, engine, target)
}

/// A caller phone (`user`) calling the engine's service number.
pub async fn call_service(engine: &EngineProc, user: &str) -> Phone {
    let mut caller = Phone::start(PhoneConfig::new(user))
        .await
        .expect("caller phone");
    caller
        .call(&format!("sip:service@{}", engine.sip))
        .await
        .expect("call");
    caller
}

/// The end of a bridged call: the caller's digit 7 is the first the target gets, the caller
/// hangs up, the engine hangs up the target and records `caller_hangup`.
pub async fn digit_then_caller_hangs_up(
    engine: &EngineProc,
    caller: &mut Phone,
    target: &mut Phone,
) {
    caller.send_dtmf("7").expect("dtmf");
    let (digit, _) = target
        .wait_dtmf(deadline(5))
        .await
        .expect("the caller's digit reaches the target");
    assert_eq!(
        digit, '7',
        "the first digit the target gets is the caller's"
    );
    caller.hangup().await.expect("hang up");
    assert_eq!(
        target.wait_ended(deadline(5)).await.expect("BYE"),
        crate::phone::Ended::RemoteBye,
        "the engine hangs up the target after the caller"
    );
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(calls[0]["end_reason"], "caller_hangup", "{:#}", calls[0]);
}

/// Registers `agent`'s phone, sipp answering one call at a free port in its own thread, and
/// waits until the engine has it. sipp's digest knows no SHA-256: the engine must challenge
/// with MD5 only (`config::md5_only`).
pub fn register_phone(
    engine: &EngineProc,
    agent: &str,
    password: &str,
    phone_timeout: Duration,
) -> std::thread::JoinHandle<SippRun> {
    let port = free_sip_port();
    let dir = engine.dir.path().to_path_buf();
    let a = agent.to_string();
    let phone = std::thread::spawn(move || {
        let mut s = Sipp::new(agent_phone_xml(&a))
            .arg("-p")
            .arg(port.to_string())
            .calls(1)
            .with_media();
        s.timeout = phone_timeout;
        s.run(&dir, None)
    });
    let reg = Sipp::new(agent_register_xml(agent, password, port))
        .calls(1)
        .run(engine.dir.path(), Some(engine.sip));
    assert!(reg.success(), "{}\n{}", reg.report(), engine.log_text());
    assert!(
        engine
            .wait_log("agent phone registered", Duration::from_secs(5))
            .is_some(),
        "{}",
        engine.log_text()
    );
    phone
}

/// One call that keys 1 in the demo menu, from sipp in `dir`; returns its record (path,
/// flow version), the `nth` of the engine's records.
pub fn call_option_1(engine: &EngineProc, dir: &std::path::Path, nth: usize) -> serde_json::Value {
    let in_menu = prompt_len("welcome") + Duration::from_secs(1);
    let run = Sipp::new(
        crate::sipp::Caller::new(crate::sipp::Codec::Pcma)
            .dtmf(in_menu, crate::sipp::Dtmf::Info('1'))
            .xml(),
    )
    .calls(1)
    .run(dir, Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(nth, Duration::from_secs(10));
    assert_eq!(calls.as_array().map(Vec::len), Some(nth), "{calls:#}");
    calls[0].clone()
}
