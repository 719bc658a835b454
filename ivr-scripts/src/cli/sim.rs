//! Running a flow in virtual time, without telephony: the engine's part played by a script.
//!
//! The simulator answers each effect the way the engine would: `Answered` for `Answer`,
//! `PlaybackDone` for prompts, the next input token for a collect (a timeout when the token is
//! `-` or the list is used up), canned results from [`Stubs`] for connectors, queues and
//! transfers. Virtual time starts at `at` and advances by the collect's first-digit timeout
//! whenever the caller keys nothing. The interpreter is the engine's own, so the path shown is
//! the path a live call takes with the same inputs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::stubs::Stubs;
use crate::flow::Flow;
use crate::interp::{CallInfo, Effect, EffectKind, FlowError, Input, Interpreter};

/// Most effects one simulation produces before it is declared endless.
pub const MAX_EFFECTS: usize = 500;

/// Splits `"1 2 #"` into tokens, one per menu or collect; `-` is a timeout (no digit keyed).
/// With commas, tokens are comma-separated and an empty one is a timeout too: `"1,,4321#"`.
pub fn parse_inputs(text: &str) -> Vec<Option<String>> {
    let token = |t: &str| {
        let t = t.trim();
        (!t.is_empty() && t != "-").then(|| t.to_owned())
    };
    if text.contains(',') {
        text.split(',').map(token).collect()
    } else {
        text.split_whitespace().map(token).collect()
    }
}

/// One effect and what the simulated engine answered.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub effect: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// How a simulation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The flow hung up or the call finished.
    Finished,
    /// The call went to a queue or a transfer without a stubbed outcome: the routing decision.
    Routed,
    /// Too many effects: the flow loops.
    Endless,
}

/// A whole simulated call: each effect with its answer, the steps visited, how it ended.
#[derive(Debug, Serialize)]
pub struct Transcript {
    pub events: Vec<Event>,
    pub path: Vec<String>,
    #[serde(skip)]
    pub errors: Vec<FlowError>,
    pub ending: Ending,
}

impl Transcript {
    pub fn last_effect(&self) -> Option<&Effect> {
        self.events.last().map(|e| &e.effect)
    }
}

/// Runs `flow` for `call` from `at`, keying `inputs` at its menus and collects, with the
/// canned outcomes of `stubs` (`svi simulate` and the admin API's simulate route).
pub fn run(
    flow: Arc<Flow>,
    call: CallInfo,
    at: DateTime<Utc>,
    inputs: &[Option<String>],
    stubs: &Stubs,
) -> Transcript {
    let mut it = Interpreter::new(flow, call);
    let mut now = at;
    let mut tokens = inputs.iter();
    let mut events: Vec<Event> = Vec::new();
    let mut all_errors = Vec::new();
    let mut effect = it.resume(now, Input::Start);
    let ending = loop {
        let errors = it.take_errors();
        let messages = errors.iter().map(ToString::to_string).collect();
        all_errors.extend(errors);
        if events.len() >= MAX_EFFECTS {
            break Ending::Endless;
        }
        let input = match &effect.kind {
            EffectKind::Answer => Some(Input::Answered),
            EffectKind::Play { .. } => Some(Input::PlaybackDone),
            EffectKind::PlayAndCollect {
                first_digit_timeout,
                ..
            } => match tokens.next() {
                Some(Some(digits)) => Some(Input::Digits {
                    digits: digits.as_str().into(),
                }),
                _ => {
                    let wait = chrono::Duration::from_std(*first_digit_timeout).unwrap_or_default();
                    now = now.checked_add_signed(wait).unwrap_or(now);
                    Some(Input::Timeout)
                }
            },
            EffectKind::Lookup { source, params, .. } => {
                Some(Input::LookupResult(stubs.lookup(source, params.reveal())))
            }
            EffectKind::Action { action, params, .. } => {
                Some(Input::ActionResult(stubs.action(action, params.reveal())))
            }
            EffectKind::Queue { queue, .. } => stubs.queue(queue).map(Input::QueueResult),
            EffectKind::Transfer { target, .. } => {
                stubs.transfer(target).map(Input::TransferResult)
            }
            EffectKind::Record { max_length, .. } => Some(Input::RecordDone {
                path: format!("recordings/{}-{}.wav", effect.flow, events.len()),
                duration: (*max_length).min(Duration::from_secs(10)),
            }),
            EffectKind::Hangup { .. } | EffectKind::Finished { .. } => None,
        };
        let done = input.is_none();
        events.push(Event {
            effect: effect.clone(),
            input: input.clone(),
            errors: messages,
        });
        match input {
            Some(input) => effect = it.resume(now, input),
            None if done && effect.kind.is_final() => break Ending::Finished,
            None => break Ending::Routed,
        }
    };
    Transcript {
        events,
        path: it.path().to_vec(),
        errors: all_errors,
        ending,
    }
}
