//! A call's state survives serialisation at any point: resuming from the JSON of a state
//! (as a standby node would, after compiling the same flow file) gives the same effects and
//! path as the uninterrupted call.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{sample, samples_context};
use ivr_scripts::{
    compile, CallInfo, CallState, Effect, Flow, Input, InterpError, Interpreter, QueueOutcome,
};
use serde_json::json;

fn load(name: &str) -> Arc<Flow> {
    let path = sample(name);
    let source = std::fs::read_to_string(&path).expect("sample");
    Arc::new(compile(&source, &path, &samples_context()).expect("loads"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn call() -> CallInfo {
    CallInfo {
        caller: "+33612345678".into(),
        called: "3100".into(),
        call_id: "abc".into(),
        language: None,
    }
}

/// Runs `inputs`, and at step `cut` serialises the state, restores it on a freshly compiled
/// flow and continues there. Returns the effects and the final path.
fn run(name: &str, inputs: &[Input], cut: Option<usize>) -> (Vec<Effect>, Vec<String>) {
    let now = at("2026-03-10T10:00:00+01:00");
    let mut it = Interpreter::new(load(name), call());
    let mut effects = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if cut == Some(i) {
            let json = serde_json::to_string(it.state()).expect("serialise");
            let state: CallState = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(&state, it.state());
            it = Interpreter::from_state(load(name), state).expect("resumable");
        }
        effects.push(it.resume(now, input.clone()));
    }
    (effects, it.path().to_vec())
}

#[test]
fn resuming_anywhere_gives_the_same_call() {
    let directory = Ok(json!({"name": "Bob", "vip": false}).as_object().cloned());
    let scenarios: Vec<(&str, Vec<Input>)> = vec![
        (
            "demo.yaml",
            vec![
                Input::Start,
                Input::Answered,
                Input::PlaybackDone,
                Input::Timeout,
                Input::Digits { digits: "7".into() },
                Input::PlaybackDone,
                Input::Digits { digits: "2".into() },
                Input::QueueResult(QueueOutcome::Overflow),
                Input::PlaybackDone,
            ],
        ),
        (
            "service-desk.yaml",
            vec![
                Input::Start,
                Input::Answered,
                Input::PlaybackDone,
                Input::LookupResult(directory),
                Input::Digits { digits: "2".into() },
            ],
        ),
        (
            "reception.yaml",
            vec![
                Input::Start,
                Input::Answered,
                Input::Digits { digits: "2".into() },
                Input::Digits {
                    digits: "4321#".into(),
                },
                Input::PlaybackDone,
                Input::LookupResult(Ok(None)),
                Input::PlaybackDone,
            ],
        ),
    ];
    for (name, inputs) in scenarios {
        let reference = run(name, &inputs, None);
        for cut in 0..inputs.len() {
            assert_eq!(
                run(name, &inputs, Some(cut)),
                reference,
                "{name}, cut before input {cut}"
            );
        }
    }
}

#[test]
fn state_is_plain_readable_data() {
    let mut it = Interpreter::new(load("reception.yaml"), call());
    let now = at("2026-03-10T10:00:00+01:00");
    for input in [
        Input::Start,
        Input::Answered,
        Input::Digits { digits: "2".into() },
    ] {
        it.resume(now, input);
    }
    let value = serde_json::to_value(it.state()).expect("serialise");
    assert_eq!(value["flow"], "reception");
    assert_eq!(value["language"], "en");
    assert_eq!(
        value["position"],
        json!({"at": "step", "step": "ask_extension"})
    );
    assert_eq!(
        value["path"],
        json!(["choose_language", "english", "ask_extension"])
    );
    assert_eq!(value["globals"]["vars"]["reception_extension"], "2000");
}

#[test]
fn a_state_from_another_flow_is_refused() {
    let mut it = Interpreter::new(load("demo.yaml"), call());
    let now = at("2026-03-10T10:00:00+01:00");
    it.resume(now, Input::Start);
    it.resume(now, Input::Answered);
    let state = it.into_state();
    let err =
        Interpreter::from_state(load("reception.yaml"), state.clone()).expect_err("wrong flow");
    assert!(matches!(err, InterpError::WrongFlow { .. }));

    let mut value = serde_json::to_value(&state).expect("serialise");
    value["position"]["step"] = json!("removed_step");
    let edited: CallState = serde_json::from_value(value).expect("deserialise");
    let err = Interpreter::from_state(load("demo.yaml"), edited).expect_err("missing step");
    assert_eq!(err, InterpError::MissingStep("removed_step".into()));
}
