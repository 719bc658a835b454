//! Contact-center scenarios with test phones: a caller queued through the demo flow, an
//! agent's phone registered with the engine, and the `svi` commands that act on a running
//! engine.

use std::time::{Duration, Instant};

use crate::config::prompt_len;
use crate::phone::{deadline, AnswerMode, Phone, PhoneConfig, TONE_1700_HZ, TONE_500_HZ};
use crate::proc::{svi_bin, EngineProc};

/// `svi ARGS --data-dir DIR` against the engine: exit code and output (stdout + stderr).
pub fn svi(engine: &EngineProc, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(svi_bin())
        .args(args)
        .arg("--data-dir")
        .arg(engine.data_dir())
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
    let mut caller = Phone::start(PhoneConfig::new(user))
        .await
        .expect("caller phone");
    caller
        .call(&format!("sip:service@{}", engine.sip))
        .await
        .expect("call");
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
