//! Behaviour of each step kind, driven through the public interpreter API in virtual time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_scripts::{
    compile, CallInfo, CheckContext, Effect, EffectKind, EndReason, Flow, HangupReason, Input,
    Interpreter, Priority, QueueOutcome, TransferMode, TransferOutcome,
};
use serde_json::{json, Map, Value};

fn flow(yaml: &str) -> Arc<Flow> {
    match compile(yaml, Path::new("test.yaml"), &CheckContext::permissive()) {
        Ok(f) => Arc::new(f),
        Err(d) => panic!(
            "{}",
            d.iter().map(|d| d.render()).collect::<Vec<_>>().join("\n")
        ),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

const T: &str = "2026-03-10T10:00:00+01:00";

/// Starts a call and answers it: returns the first effect after `Answered`.
fn start(f: &Arc<Flow>, caller: &str) -> (Interpreter, Effect) {
    let mut it = Interpreter::new(
        f.clone(),
        CallInfo {
            caller: caller.into(),
            called: "3000".into(),
            call_id: "c1".into(),
            language: None,
        },
    );
    let answer = it.resume(at(T), Input::Start);
    assert_eq!(answer.kind, EffectKind::Answer);
    let first = it.resume(at(T), Input::Answered);
    (it, first)
}

fn digits(d: &str) -> Input {
    Input::Digits { digits: d.into() }
}

fn prompts(e: &Effect) -> Vec<String> {
    match &e.kind {
        EffectKind::Play { prompts, .. }
        | EffectKind::PlayAndCollect { prompts, .. }
        | EffectKind::Record { prompts, .. } => prompts.iter().map(ToString::to_string).collect(),
        other => panic!("no prompts in {other:?}"),
    }
}

fn found(v: Value) -> Result<Option<Map<String, Value>>, String> {
    Ok(v.as_object().cloned())
}

const HANGUP: EffectKind = EffectKind::Hangup {
    reason: HangupReason::Normal,
};

#[test]
fn play_waits_for_playback_and_barge_in_skips_ahead() {
    let f = flow(
        "flow: p\nstart: a\nsteps:\n  a: { play: [one, two], barge_in: true, next: b }\n  b: { play: three, next: end }\n  end: { hangup: }\n",
    );
    let (mut it, e) = start(&f, "1");
    assert_eq!(e.step, "a");
    assert_eq!(
        e.kind,
        EffectKind::Play {
            prompts: vec![
                ivr_scripts::PromptRef::new("en", "one"),
                ivr_scripts::PromptRef::new("en", "two")
            ],
            barge_in: true
        }
    );
    let e = it.resume(at(T), digits("5"));
    assert_eq!(
        (e.step.as_str(), prompts(&e)),
        ("b", vec!["en/three".to_owned()])
    );
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(e.kind, HANGUP);
    assert!(it.is_finished());
    assert_eq!(it.path(), ["a", "b", "end"]);
}

#[test]
fn say_speaks_values_from_fragments() {
    let f = flow(concat!(
        "flow: s\nlanguage: fr\nlanguages: [fr, en]\nstart: n\non_error: oops\nvars: { amount: 71, ticket: '\"42#\"' }\nsteps:\n",
        "  n: { say: amount, as: number, before: vous_avez, after: euros, next: d }\n",
        "  d: { say: ticket, as: digits, next: t }\n",
        "  t: { say: now, as: time, next: en }\n",
        "  en: { language: en, next: date }\n",
        "  date: { say: '\"2026-05-01\"', as: date, next: bad }\n",
        "  bad: { say: '\"abc\"', as: number, next: end }\n",
        "  oops: { play: sorry, next: end }\n",
        "  end: { hangup: }\n",
    ));
    let (mut it, e) = start(&f, "1");
    assert_eq!(prompts(&e), ["fr/vous_avez", "fr/numbers/71", "fr/euros"]);
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(
        prompts(&e),
        ["fr/digits/4", "fr/digits/2", "fr/digits/hash"]
    );
    let e = it.resume(at(T), Input::PlaybackDone);
    // 10:00 in Paris is 09:00 UTC, the flow's zone: "neuf heures".
    assert_eq!(prompts(&e), ["fr/numbers/9", "fr/time/hours"]);
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(
        prompts(&e),
        [
            "en/days/friday",
            "en/months/may",
            "en/ordinals/1",
            "en/numbers/2",
            "en/numbers/thousand",
            "en/numbers/26"
        ]
    );
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(
        (e.step.as_str(), prompts(&e)),
        ("oops", vec!["en/sorry".to_owned()])
    );
    let errors = it.take_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].step.as_str(), errors[0].line), ("bad", 13));
}

const MENU: &str = r#"
flow: m
start: menu
steps:
  menu:
    menu: [main_menu]
    options: { "1": one, "22": two, "*": star }
    timeout: 4s
    attempts: 3
    invalid: invalid
    exhausted: bye
  invalid: { play: invalid, next: menu }
  one: { play: one, next: bye }
  two: { play: two, next: bye }
  star: { play: star, next: bye }
  bye: { hangup: }
"#;

#[test]
fn menu_collects_up_to_its_longest_option() {
    let f = flow(MENU);
    let (mut it, e) = start(&f, "1");
    match e.kind {
        EffectKind::PlayAndCollect {
            min_digits,
            max_digits,
            terminator,
            first_digit_timeout,
            barge_in,
            ..
        } => {
            assert_eq!(
                (min_digits, max_digits, terminator, barge_in),
                (1, 2, None, true)
            );
            assert_eq!(first_digit_timeout, Duration::from_secs(4));
        }
        other => panic!("{other:?}"),
    }
    let e = it.resume(at(T), digits("22"));
    assert_eq!(e.step, "two");
}

#[test]
fn menu_invalid_then_retry_then_exhausted() {
    let f = flow(MENU);
    let (mut it, _) = start(&f, "1");
    let e = it.resume(at(T), digits("9"));
    assert_eq!(e.step, "invalid");
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(e.step, "menu");
    // No `no_input` branch: the menu is presented again.
    let e = it.resume(at(T), Input::Timeout);
    assert_eq!(e.step, "menu");
    // Third failed attempt: exhausted.
    let e = it.resume(at(T), digits("8"));
    assert_eq!(e.kind, HANGUP);
    assert_eq!(it.path(), ["menu", "invalid", "menu", "menu", "bye"]);
}

#[test]
fn a_valid_choice_resets_the_attempts() {
    let f = flow(
        "flow: m\nstart: menu\nsteps:\n  menu: { menu: m, options: { '1': again }, attempts: 2, exhausted: bye }\n  again: { play: x, next: menu }\n  bye: { hangup: }\n",
    );
    let (mut it, _) = start(&f, "1");
    assert_eq!(it.resume(at(T), Input::Timeout).step, "menu"); // 1 failure
    assert_eq!(it.resume(at(T), digits("1")).step, "again"); // reset
    assert_eq!(it.resume(at(T), Input::PlaybackDone).step, "menu");
    assert_eq!(it.resume(at(T), Input::Timeout).step, "menu"); // 1 failure again, not 2
    assert_eq!(it.resume(at(T), Input::Timeout).kind, HANGUP);
}

#[test]
fn menu_no_input_branch() {
    let f = flow(
        "flow: m\nstart: menu\nsteps:\n  menu: { menu: m, options: { '1': bye }, no_input: hello, exhausted: bye }\n  hello: { play: are_you_there, next: menu }\n  bye: { hangup: }\n",
    );
    let (mut it, _) = start(&f, "1");
    assert_eq!(it.resume(at(T), Input::Timeout).step, "hello");
    assert_eq!(it.resume(at(T), Input::PlaybackDone).step, "menu");
    assert_eq!(it.resume(at(T), digits("")).step, "hello"); // empty digits count as no input
}

const COLLECT: &str = r##"
flow: c
start: ask
on_error: oops
steps:
  ask:
    collect: enter_pin
    into: pin
    min_digits: 4
    max_digits: 6
    terminator: "#"
    validate: pin != "0000" && check.len() < 10
    attempts: 2
    invalid: wrong
    exhausted: bye
    next: thanks
  wrong: { play: wrong, next: ask }
  thanks: { play: thanks, next: bye }
  oops: { play: oops, next: bye }
  bye: { hangup: }
vars:
  check: '"ok"'
"##;

#[test]
fn collect_stores_valid_digits_without_terminator() {
    let f = flow(COLLECT);
    let (mut it, e) = start(&f, "1");
    match e.kind {
        EffectKind::PlayAndCollect {
            min_digits,
            max_digits,
            terminator,
            ..
        } => {
            assert_eq!((min_digits, max_digits, terminator), (4, 6, Some('#')));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(it.resume(at(T), digits("123")).step, "wrong"); // too short
    assert_eq!(it.resume(at(T), Input::PlaybackDone).step, "ask");
    assert_eq!(it.resume(at(T), digits("1234#")).step, "thanks");
    assert_eq!(it.state().var("pin"), Some(&json!("1234")));
}

#[test]
fn collect_validation_and_exhaustion() {
    let f = flow(COLLECT);
    let (mut it, _) = start(&f, "1");
    assert_eq!(it.resume(at(T), digits("0000")).step, "wrong"); // validate says no
    assert_eq!(it.resume(at(T), Input::PlaybackDone).step, "ask");
    assert_eq!(it.resume(at(T), digits("1234567")).kind, HANGUP); // too long: 2nd failure
    assert_eq!(it.state().var("pin"), None);
}

#[test]
fn set_and_branch_run_without_effects() {
    let f = flow(
        r#"
flow: b
start: init
on_error: bye
vars: { n: 1 }
steps:
  init: { set: { n: n * 10, label: '"x" + n' }, next: route }
  route:
    branch:
      - if: n > 100
        then: big
      - if: n == 10 && label == "x10"
        then: ten
    else: bye
  big: { play: big, next: bye }
  ten: { play: ten, next: bye }
  bye: { hangup: }
"#,
    );
    let (it, e) = start(&f, "1");
    assert_eq!(e.step, "ten");
    assert_eq!(it.path(), ["init", "route", "ten"]);
    assert_eq!(it.state().var("label"), Some(&json!("x10")));
}

#[test]
fn expression_errors_take_the_error_branch_and_are_reported() {
    let f = flow(
        "flow: e\nstart: compute\nvars: { contact: ~ }\nsteps:\n  compute:\n    set: { level: contact.level }\n    next: bye\n    error: sorry\n  sorry: { play: sorry, next: bye }\n  bye: { hangup: }\n",
    );
    let (mut it, e) = start(&f, "1");
    assert_eq!(e.step, "sorry");
    let errors = it.take_errors();
    assert_eq!(errors.len(), 1);
    let err = &errors[0];
    assert_eq!(
        (err.flow.as_str(), err.step.as_str(), err.line),
        ("e", "compute", 6)
    );
    assert!(err.message.contains("contact.level"), "{err}");
    // Exposed to the flow as `last_error`.
    assert!(it.take_errors().is_empty());
}

#[test]
fn without_any_error_branch_a_failure_hangs_up_with_an_error() {
    let f = flow("flow: e\nstart: c\nsteps:\n  c: { branch: 'caller.no_such_function()', then: b, else: b }\n  b: { hangup: }\n");
    let (mut it, e) = start(&f, "1");
    assert_eq!(
        e.kind,
        EffectKind::Hangup {
            reason: HangupReason::Error
        }
    );
    assert_eq!(it.take_errors().len(), 1);
    assert!(it.is_finished());
}

#[test]
fn a_condition_must_be_true_or_false() {
    let f = flow("flow: e\nstart: c\non_error: b\nsteps:\n  c: { branch: '\"975\" + \"31864\"', then: b, else: b }\n  b: { hangup: }\n");
    let (mut it, _) = start(&f, "1");
    let errors = it.take_errors();
    assert!(
        errors[0]
            .message
            .contains("gave text instead of true or false"),
        "{}",
        errors[0]
    );
    // The message reaches the engine's log: it names the kind of value, never the value
    // (the condition is the sum of two strings: its text is not its value).
    assert!(!errors[0].to_string().contains("97531864"), "{}", errors[0]);
}

const HOURS: &str = r#"
flow: h
timezone: Europe/Paris
start: check
calendars:
  office:
    weekly: { mon-fri: "08:00-18:00" }
    holidays: [2026-05-01]
    closures: [{ from: "2026-08-10 00:00", to: "2026-08-17 00:00" }]
steps:
  check: { hours: office, open: open, closed: closed, holiday: holiday, closure: closure }
  open: { play: open, next: bye }
  closed: { play: closed, next: bye }
  holiday: { play: holiday, next: bye }
  closure: { play: closure, next: bye }
  bye: { hangup: }
"#;

#[test]
fn hours_use_now_in_the_calendar_zone() {
    let f = flow(HOURS);
    let step_at = |time: &str| {
        let mut it = Interpreter::new(f.clone(), CallInfo::default());
        it.resume(at(time), Input::Start);
        it.resume(at(time), Input::Answered).step
    };
    assert_eq!(step_at("2026-03-10T10:00:00+01:00"), "open");
    assert_eq!(step_at("2026-03-10T17:30:00Z"), "closed"); // 18:30 in Paris
    assert_eq!(step_at("2026-03-08T10:00:00+01:00"), "closed"); // Sunday
    assert_eq!(step_at("2026-05-01T10:00:00+02:00"), "holiday");
    assert_eq!(step_at("2026-08-12T10:00:00+02:00"), "closure");
}

const LOOKUP: &str = r#"
flow: l
start: find
steps:
  find:
    lookup: directory
    params: { number: caller, kind: '"mobile"' }
    timeout: 1500ms
    into: contact
    ok: known
    not_found: unknown
    error: failed
  known: { play: known, next: act }
  unknown: { play: unknown, next: act }
  failed: { play: failed, next: act }
  act:
    action: create_ticket
    params: { who: 'if contact == () { "anonymous" } else { contact.name }' }
    into: ticket
    ok: done
    error: failed2
  done: { play: done, next: bye }
  failed2: { play: failed2, next: bye }
  bye: { hangup: }
"#;

#[test]
fn lookup_sends_params_and_stores_the_record() {
    let f = flow(LOOKUP);
    let (mut it, e) = start(&f, "+331");
    assert_eq!(
        e.kind,
        EffectKind::Lookup {
            source: "directory".into(),
            params: json!({"number": "+331", "kind": "mobile"})
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into(),
            timeout: Duration::from_millis(1500),
        }
    );
    let e = it.resume(at(T), Input::LookupResult(found(json!({"name": "Ada"}))));
    assert_eq!(e.step, "known");
    assert_eq!(it.state().var("contact"), Some(&json!({"name": "Ada"})));
    let e = it.resume(at(T), Input::PlaybackDone);
    match &e.kind {
        EffectKind::Action { action, params, .. } => {
            assert_eq!(
                (action.as_str(), params.reveal().get("who")),
                ("create_ticket", Some(&json!("Ada")))
            );
        }
        other => panic!("{other:?}"),
    }
    // An action's `not_found` defaults to `ok`.
    assert_eq!(it.resume(at(T), Input::ActionResult(Ok(None))).step, "done");
}

#[test]
fn lookup_not_found_and_errors() {
    let f = flow(LOOKUP);
    let (mut it, _) = start(&f, "+331");
    assert_eq!(
        it.resume(at(T), Input::LookupResult(Ok(None))).step,
        "unknown"
    );
    assert_eq!(it.state().var("contact"), Some(&Value::Null));
    let e = it.resume(at(T), Input::PlaybackDone);
    match &e.kind {
        EffectKind::Action { params, .. } => {
            assert_eq!(params.reveal().get("who"), Some(&json!("anonymous")))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        it.resume(at(T), Input::ActionResult(Err("timeout".into())))
            .step,
        "failed2"
    );
    let errors = it.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .contains("action `create_ticket` failed: timeout"),
        "{}",
        errors[0]
    );

    let (mut it, _) = start(&f, "+331");
    assert_eq!(
        it.resume(at(T), Input::LookupResult(Err("down".into())))
            .step,
        "failed"
    );
}

#[test]
fn a_queue_step_carries_only_its_desk_values_and_one_that_fails_is_left_out() {
    let f = flow(
        r##"flow: d
start: ask
vars:
  contact: '#{name: "Ada", vip: true, secret: "s"}'
  pin: '"1234"'
  nobody: '()'
steps:
  ask: { collect: main_menu, into: ticket, exhausted: bye, next: q }
  q:
    queue: support
    desk: { name: contact.name, vip: contact.vip, ticket: ticket, missing: nobody.name }
    overflow: bye
  bye: { hangup: }
"##,
    );
    let (mut it, _) = start(&f, "+33612345678");
    let e = it.resume(at(T), digits("4242"));
    let EffectKind::Queue { desk, .. } = &e.kind else {
        panic!("queued: {e:?}")
    };
    let shown: Vec<(String, Value)> = desk
        .reveal()
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            ("name".to_string(), json!("Ada")),
            ("vip".to_string(), json!(true)),
            ("ticket".to_string(), json!("4242")),
        ]
    );
    // The variables not named (the PIN, the contact's other fields) are not carried; the
    // failed value is reported and the call is queued all the same.
    let carried = serde_json::to_string(&e.kind).expect("json");
    assert!(
        !carried.contains("1234") && !carried.contains("secret"),
        "{carried}"
    );
    let errors = it.take_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].step, "q");
    // The effect's debug form (what a log line would show) hides the values.
    assert!(!format!("{e:?}").contains("Ada"));
}

#[test]
fn queue_outcomes() {
    let f = flow(
        "flow: q\nstart: q\nsteps:\n  q: { queue: support, priority: high, max_wait: 2m, overflow: full, error: broken }\n  full: { play: full, next: bye }\n  broken: { play: broken, next: bye }\n  bye: { hangup: }\n",
    );
    let (mut it, e) = start(&f, "1");
    assert_eq!(
        e.kind,
        EffectKind::Queue {
            queue: "support".into(),
            priority: Priority::High,
            max_wait: Some(Duration::from_secs(120)),
            desk: Default::default(),
        }
    );
    let done = it.resume(at(T), Input::QueueResult(QueueOutcome::Answered));
    assert_eq!(
        done.kind,
        EffectKind::Finished {
            reason: EndReason::Queued
        }
    );
    assert_eq!(done.step, "q");
    // Once over, the call stays over.
    assert_eq!(
        it.resume(at(T), Input::PlaybackDone).kind,
        EffectKind::Finished {
            reason: EndReason::Queued
        }
    );

    let (mut it, _) = start(&f, "1");
    assert_eq!(
        it.resume(at(T), Input::QueueResult(QueueOutcome::Overflow))
            .step,
        "full"
    );
    let (mut it, _) = start(&f, "1");
    assert_eq!(
        it.resume(
            at(T),
            Input::QueueResult(QueueOutcome::Failed("no queue".into()))
        )
        .step,
        "broken"
    );
}

#[test]
fn transfer_to_a_computed_target() {
    let f = flow(
        "flow: t\nstart: x\nvars: { ext: '\"12\" + \"34\"' }\non_error: bye\nsteps:\n  x: { transfer: ext, mode: bridged, timeout: 20s, failed: sorry }\n  sorry: { play: sorry, next: bye }\n  bye: { hangup: }\n",
    );
    let (mut it, e) = start(&f, "1");
    assert_eq!(
        e.kind,
        EffectKind::Transfer {
            target: "1234".into(),
            mode: TransferMode::Bridged,
            timeout: Duration::from_secs(20)
        }
    );
    assert_eq!(
        it.resume(
            at(T),
            Input::TransferResult(TransferOutcome::Failed("busy".into()))
        )
        .step,
        "sorry"
    );
    let (mut it, _) = start(&f, "1");
    assert_eq!(
        it.resume(at(T), Input::TransferResult(TransferOutcome::Completed))
            .kind,
        EffectKind::Finished {
            reason: EndReason::Transferred
        }
    );
}

#[test]
fn record_a_message() {
    let f = flow(
        "flow: r\nstart: rec\nsteps:\n  rec: { record: after_beep, max_length: 90s, into: message, next: bye }\n  bye: { hangup: }\n",
    );
    let (mut it, e) = start(&f, "1");
    assert_eq!(
        e.kind,
        EffectKind::Record {
            prompts: vec![ivr_scripts::PromptRef::new("en", "after_beep")],
            beep: true,
            max_length: Duration::from_secs(90),
            terminator: Some('#'),
        }
    );
    let e = it.resume(
        at(T),
        Input::RecordDone {
            path: "r/1.wav".into(),
            duration: Duration::from_millis(12_500),
        },
    );
    assert_eq!(e.kind, HANGUP);
    assert_eq!(
        it.state().var("message"),
        Some(&json!({"path": "r/1.wav", "duration_ms": 12500}))
    );
}

#[test]
fn goto_and_language() {
    let f = flow(
        "flow: g\nlanguage: en\nlanguages: [en, fr]\nstart: a\nsteps:\n  a: { goto: b }\n  b: { language: fr, next: c }\n  c: { play: hello, next: bye }\n  bye: { hangup: }\n",
    );
    let (it, e) = start(&f, "1");
    assert_eq!(prompts(&e), ["fr/hello"]);
    assert_eq!(it.path(), ["a", "b", "c"]);
    assert_eq!(it.state().language(), "fr");
}

#[test]
fn call_language_is_used_when_the_flow_speaks_it() {
    let f = flow("flow: g\nlanguage: en\nlanguages: [en, fr]\nstart: c\nsteps:\n  c: { play: hello, next: bye }\n  bye: { hangup: }\n");
    let mut it = Interpreter::new(
        f.clone(),
        CallInfo {
            language: Some("fr".into()),
            ..Default::default()
        },
    );
    it.resume(at(T), Input::Start);
    assert_eq!(prompts(&it.resume(at(T), Input::Answered)), ["fr/hello"]);
    let mut it = Interpreter::new(
        f,
        CallInfo {
            language: Some("de".into()),
            ..Default::default()
        },
    );
    it.resume(at(T), Input::Start);
    assert_eq!(prompts(&it.resume(at(T), Input::Answered)), ["en/hello"]);
}

const SUBFLOW: &str = r#"
flow: s
start: who
steps:
  who:
    subflow: identify
    args: { number: caller }
    into: identity
    next: route
    error: sorry
  route:
    branch: identity.vip
    then: vip
    else: bye
  vip: { play: vip, next: bye }
  sorry: { play: sorry, next: bye }
  bye: { hangup: }
subflows:
  identify:
    params: { number: ~, prefix: '"+33"' }
    start: ask
    steps:
      ask: { play: checking, next: decide }
      decide:
        branch: number.starts_with(prefix)
        then: yes
        else: no
      yes: { return: { vip: "true", number: number } }
      no: { return: { vip: "1 / 0 == 1" } }
"#;

#[test]
fn subflows_take_arguments_and_return_values() {
    let f = flow(SUBFLOW);
    let (mut it, e) = start(&f, "+33612");
    assert_eq!(e.step, "identify/ask");
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(e.step, "vip");
    assert_eq!(
        it.path(),
        [
            "who",
            "identify/ask",
            "identify/decide",
            "identify/yes",
            "route",
            "vip"
        ]
    );
    assert_eq!(
        it.state().var("identity"),
        Some(&json!({"vip": true, "number": "+33612"}))
    );
    // Subflow variables stay in the subflow.
    assert_eq!(it.state().var("number"), None);
}

#[test]
fn a_failure_in_a_subflow_takes_the_calling_steps_error_branch() {
    let f = flow(SUBFLOW);
    let (mut it, _) = start(&f, "+44");
    let e = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(e.step, "sorry");
    let errors = it.take_errors();
    assert_eq!(errors[0].step, "identify/no");
}

#[test]
fn caller_hangup_ends_the_flow_anywhere() {
    let f = flow(MENU);
    let (mut it, _) = start(&f, "1");
    let e = it.resume(at(T), Input::CallerHangup);
    assert_eq!(
        e.kind,
        EffectKind::Finished {
            reason: EndReason::CallerHangup
        }
    );
    assert!(it.is_finished());
}

#[test]
fn an_unexpected_input_is_reported_and_the_effect_repeated() {
    let f = flow(MENU);
    let (mut it, first) = start(&f, "1");
    let again = it.resume(at(T), Input::PlaybackDone);
    assert_eq!(again, first);
    let errors = it.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("expected Digits or Timeout"),
        "{}",
        errors[0]
    );
    // The call goes on normally.
    assert_eq!(it.resume(at(T), digits("1")).step, "one");

    // An engine that forgets `Start` still gets a properly started call.
    let f = flow("flow: v\nstart: a\nvars: { n: 41 }\nsteps:\n  a: { set: { n: n + 1 }, next: b }\n  b: { play: x, next: c }\n  c: { hangup: }\n");
    let mut it = Interpreter::new(f, CallInfo::default());
    assert_eq!(it.resume(at(T), Input::Answered).kind, EffectKind::Answer);
    assert_eq!(it.take_errors().len(), 1);
    assert_eq!(it.resume(at(T), Input::Answered).step, "b");
    assert_eq!(it.state().var("n"), Some(&json!(42)));
}

#[test]
fn a_long_chain_of_internal_steps_is_bounded() {
    let mut yaml = String::from("flow: long\nstart: s0\non_error: sorry\nsteps:\n");
    let n = ivr_scripts::interp::MAX_STEPS_WITHOUT_INPUT + 5;
    for i in 0..n {
        yaml.push_str(&format!("  s{i}: {{ goto: s{} }}\n", i + 1));
    }
    yaml.push_str(&format!("  s{n}: {{ play: done, next: bye }}\n  sorry: {{ play: sorry, next: bye }}\n  bye: {{ hangup: }}\n"));
    let f = flow(&yaml);
    let (mut it, e) = start(&f, "1");
    assert_eq!(e.step, "sorry");
    assert!(it.take_errors()[0].message.contains("without waiting"));
    assert!(it.path().len() <= ivr_scripts::interp::MAX_PATH);
}

#[test]
fn caller_data_stays_out_of_debug_output() {
    let call = CallInfo {
        caller: "+33612345678".into(),
        called: "3000".into(),
        call_id: "x".into(),
        language: None,
    };
    assert!(!format!("{call:?}").contains("612345678"));
    assert!(!format!("{:?}", digits("4921")).contains("4921"));
    let f = flow(COLLECT);
    let (mut it, _) = start(&f, "+33612345678");
    it.resume(at(T), digits("4921#"));
    let state = format!("{:?}", it.state());
    assert!(
        !state.contains("4921") && !state.contains("612345678"),
        "{state}"
    );
}
