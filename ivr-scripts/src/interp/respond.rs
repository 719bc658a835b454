//! Answering the engine: what the input that answers a waiting step's effect does (a menu
//! choice, collected digits, a connector result, a queue or transfer outcome), including menu
//! and collect retries.

use serde_json::{json, Value};

use super::io::{
    ConnectorResult, Effect, EffectKind, EndReason, Input, QueueOutcome, TransferOutcome,
};
use super::run::{scope, Budget, Next};
use super::state::Position;
use super::Interpreter;
use crate::flow::{Call, Collect, Menu, StepIdx, StepKind};

impl Interpreter {
    /// Handles the input that answers the effect of the step the call waits at.
    pub(super) fn on_input(&mut self, idx: StepIdx, input: Input, budget: &mut Budget) -> Effect {
        let flow = self.flow.clone();
        let step = scope(&flow, &self.state).step(idx);
        match (&step.kind, input) {
            (
                StepKind::Play { next, .. } | StepKind::Say { next, .. },
                Input::PlaybackDone | Input::Digits { .. },
            ) => self.run(*next, budget),
            (StepKind::Menu(menu), Input::Digits { digits }) => {
                self.menu_digits(idx, menu, digits.reveal(), budget)
            }
            (StepKind::Menu(menu), Input::Timeout) => {
                self.retry(idx, menu.attempts, menu.no_input, menu.exhausted, budget)
            }
            (StepKind::Collect(collect), Input::Digits { digits }) => {
                self.collect_digits(idx, collect, digits.into_inner(), budget)
            }
            (StepKind::Collect(c), Input::Timeout) => {
                self.retry(idx, c.attempts, c.no_input, c.exhausted, budget)
            }
            (StepKind::Lookup(call), Input::LookupResult(result)) => {
                self.connector_result(idx, call, "lookup", result, budget)
            }
            (StepKind::Action(call), Input::ActionResult(result)) => {
                self.connector_result(idx, call, "action", result, budget)
            }
            (StepKind::Queue { overflow, .. }, Input::QueueResult(outcome)) => match outcome {
                QueueOutcome::Answered => self.end(EndReason::Queued),
                QueueOutcome::Overflow => self.run(*overflow, budget),
                QueueOutcome::Failed(message) => {
                    self.report(idx, step.pos, format!("queue failed: {message}"));
                    self.run(step.error.unwrap_or(*overflow), budget)
                }
            },
            (StepKind::Transfer { failed, .. }, Input::TransferResult(outcome)) => match outcome {
                TransferOutcome::Completed => self.end(EndReason::Transferred),
                TransferOutcome::Failed(message) => {
                    self.state.last_error = Some(message);
                    self.run(*failed, budget)
                }
            },
            (StepKind::Record { into, next, .. }, Input::RecordDone { path, duration }) => {
                if let Some(into) = into {
                    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
                    self.set_var(into, json!({ "path": path, "duration_ms": ms }));
                }
                self.run(*next, budget)
            }
            (kind, other) => {
                let expected = match kind {
                    StepKind::Play { .. } | StepKind::Say { .. } => "PlaybackDone",
                    StepKind::Menu(_) | StepKind::Collect(_) => "Digits or Timeout",
                    StepKind::Lookup(_) => "LookupResult",
                    StepKind::Action(_) => "ActionResult",
                    StepKind::Queue { .. } => "QueueResult",
                    StepKind::Transfer { .. } => "TransferResult",
                    StepKind::Record { .. } => "RecordDone",
                    _ => "nothing",
                };
                self.unexpected(other, expected, budget)
            }
        }
    }

    /// An input that does not answer the pending effect: an engine bug. Report it and ask
    /// again, so the call carries on.
    pub(super) fn unexpected(
        &mut self,
        input: Input,
        expected: &str,
        budget: &mut Budget,
    ) -> Effect {
        let flow = self.flow.clone();
        let current = scope(&flow, &self.state);
        let (idx, step_name) = match &self.state.position {
            Position::Step { step } => (current.find(step), step.clone()),
            _ => (None, String::new()),
        };
        self.errors.push(super::FlowError {
            flow: flow.name.clone(),
            step: step_name,
            line: 0,
            column: 0,
            message: format!("unexpected input {input:?} (expected {expected})"),
        });
        match (&self.state.position, idx) {
            (Position::NotStarted, _) | (Position::Answering, _) => {
                // Whatever came first, the call starts the way `Start` would have started it.
                if self.state.position == Position::NotStarted {
                    self.init_scope_vars(budget.now);
                }
                self.state.position = Position::Answering;
                Effect {
                    flow: flow.name.clone(),
                    step: flow.main().qualified(flow.main().start),
                    kind: EffectKind::Answer,
                }
            }
            (_, Some(idx)) => match self.enter(idx, budget) {
                Next::Wait(kind) => Effect {
                    flow: flow.name.clone(),
                    step: current.qualified(idx),
                    kind,
                },
                _ => self.end(EndReason::Error),
            },
            _ => self.end(EndReason::Error),
        }
    }

    pub(super) fn menu_effect(&self, menu: &Menu) -> EffectKind {
        EffectKind::PlayAndCollect {
            prompts: self.prompt_refs(&menu.prompts),
            min_digits: 1,
            max_digits: menu.max_digits,
            terminator: None,
            first_digit_timeout: menu.timeout,
            inter_digit_timeout: menu.inter_digit_timeout,
            barge_in: menu.barge_in,
        }
    }

    pub(super) fn collect_effect(&self, c: &Collect) -> EffectKind {
        EffectKind::PlayAndCollect {
            prompts: self.prompt_refs(&c.prompts),
            min_digits: c.min_digits,
            max_digits: c.max_digits,
            terminator: c.terminator,
            first_digit_timeout: c.timeout,
            inter_digit_timeout: c.inter_digit_timeout,
            barge_in: c.barge_in,
        }
    }

    pub(super) fn menu_digits(
        &mut self,
        idx: StepIdx,
        menu: &Menu,
        digits: &str,
        budget: &mut Budget,
    ) -> Effect {
        if digits.is_empty() {
            return self.retry(idx, menu.attempts, menu.no_input, menu.exhausted, budget);
        }
        match menu.options.iter().find(|(key, _)| key == digits) {
            Some((_, target)) => {
                self.reset_attempts(idx);
                self.run(*target, budget)
            }
            None => self.retry(idx, menu.attempts, menu.invalid, menu.exhausted, budget),
        }
    }

    pub(super) fn collect_digits(
        &mut self,
        idx: StepIdx,
        c: &Collect,
        mut digits: String,
        budget: &mut Budget,
    ) -> Effect {
        if let Some(t) = c.terminator {
            if digits.ends_with(t) {
                digits.pop();
            }
        }
        if digits.is_empty() {
            return self.retry(idx, c.attempts, c.no_input, c.exhausted, budget);
        }
        let len = u32::try_from(digits.chars().count()).unwrap_or(u32::MAX);
        let well_formed = digits
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '*' | '#' | 'A'..='D'));
        if !well_formed || len < c.min_digits || len > c.max_digits {
            return self.retry(idx, c.attempts, c.invalid, c.exhausted, budget);
        }
        let value = Value::String(digits);
        if let Some(validate) = &c.validate {
            match self.eval_bool(validate, budget.now, Some((&c.into, &value))) {
                Ok(true) => {}
                Ok(false) => {
                    return self.retry(idx, c.attempts, c.invalid, c.exhausted, budget);
                }
                Err(f) => {
                    return match self.fail(idx, f.pos, f.message) {
                        Some(t) => self.run(t, budget),
                        None => self.end(EndReason::Error),
                    };
                }
            }
        }
        self.set_var(&c.into, value);
        self.reset_attempts(idx);
        self.run(c.next, budget)
    }

    /// One more failed attempt at a menu or collect: give up after `attempts`, else take the
    /// branch (or present the step again).
    pub(super) fn retry(
        &mut self,
        idx: StepIdx,
        attempts: u32,
        branch: Option<StepIdx>,
        exhausted: StepIdx,
        budget: &mut Budget,
    ) -> Effect {
        let flow = self.flow.clone();
        let id = scope(&flow, &self.state).step(idx).id.clone();
        let counter = self.state.scope_state().attempts.entry(id).or_insert(0);
        *counter += 1;
        if *counter >= attempts {
            self.reset_attempts(idx);
            self.run(exhausted, budget)
        } else {
            self.run(branch.unwrap_or(idx), budget)
        }
    }

    pub(super) fn reset_attempts(&mut self, idx: StepIdx) {
        let flow = self.flow.clone();
        let id = &scope(&flow, &self.state).step(idx).id;
        self.state.scope_state().attempts.remove(id);
    }

    pub(super) fn connector_result(
        &mut self,
        idx: StepIdx,
        call: &Call,
        what: &str,
        result: ConnectorResult,
        budget: &mut Budget,
    ) -> Effect {
        match result {
            Ok(found) => {
                let target = if found.is_some() {
                    call.ok
                } else {
                    call.not_found
                };
                if let Some(into) = &call.into {
                    self.set_var(into, found.map_or(Value::Null, Value::Object));
                }
                self.run(target, budget)
            }
            Err(message) => {
                let flow = self.flow.clone();
                let pos = scope(&flow, &self.state).step(idx).pos;
                match self.fail(
                    idx,
                    pos,
                    format!("{what} `{}` failed: {message}", call.name),
                ) {
                    Some(t) => self.run(t, budget),
                    None => self.end(EndReason::Error),
                }
            }
        }
    }
}
