//! Stepping through a flow: what each step does when entered.
//!
//! [`resume`] dispatches an input to the step the call waits at (the answers themselves are
//! handled in `respond`); [`Interpreter::run`] then walks from a step until one produces an
//! effect. Internal steps return [`Next::Go`]; steps that need the outside world return
//! [`Next::Wait`] with their effect. Failures go through [`Interpreter::fail`], which finds the
//! error branch: the step's, its scope's `on_error`, then the calling scope's, outwards.

use chrono::{DateTime, Utc};
use pii::Pii;
use serde_json::Value;

use super::eval::Failure;
use super::io::{DeskField, Effect, EffectKind, EndReason, HangupReason, Input, PromptRef};
use super::state::{CallState, Frame, Position, ScopeState};
use super::{Interpreter, MAX_STEPS_WITHOUT_INPUT, MAX_SUBFLOW_DEPTH};
use crate::diagnostic::Pos;
use crate::expr::{display_value, Expr};
use crate::flow::{Flow, Scope, StepIdx, StepKind};
use crate::hours::HoursStatus;
use crate::say;

/// The scope the call is in: the innermost subflow frame, or the main flow.
pub(super) fn scope<'f>(flow: &'f Flow, state: &CallState) -> &'f Scope {
    state
        .frames
        .last()
        .and_then(|f| flow.scope_named(Some(&f.subflow)))
        .map_or_else(|| flow.main(), |(_, s)| s)
}

/// What entering a step leads to.
pub(super) enum Next {
    Go(StepIdx),
    Wait(EffectKind),
    Fail(Pos, String),
    End(EndReason),
}

/// Per-resume bookkeeping.
pub(super) struct Budget {
    pub(super) now: DateTime<Utc>,
    left: u32,
    escaped: bool,
}

pub(super) fn resume(it: &mut Interpreter, now: DateTime<Utc>, input: Input) -> Effect {
    let mut budget = Budget {
        now,
        left: MAX_STEPS_WITHOUT_INPUT,
        escaped: false,
    };
    match it.state.position.clone() {
        Position::Ended { reason } => it.effect_here(EffectKind::Finished { reason }),
        _ if input == Input::CallerHangup => it.end(EndReason::CallerHangup),
        Position::NotStarted => match input {
            Input::Start => {
                it.init_scope_vars(now);
                it.state.position = Position::Answering;
                let start = it.flow.main().start;
                Effect {
                    flow: it.flow.name.clone(),
                    step: it.flow.main().qualified(start),
                    kind: EffectKind::Answer,
                }
            }
            other => it.unexpected(other, "Start", &mut budget),
        },
        Position::Answering => match input {
            Input::Answered => {
                let start = it.flow.main().start;
                it.run(start, &mut budget)
            }
            other => it.unexpected(other, "Answered", &mut budget),
        },
        Position::Step { step } => match scope(&it.flow, &it.state).find(&step) {
            Some(idx) => it.on_input(idx, input, &mut budget),
            // `from_state` checks this; a state mutated behind our back still must not panic.
            None => it.end(EndReason::Error),
        },
    }
}

impl Interpreter {
    /// Walks from `idx` until a step waits or the call ends.
    pub(super) fn run(&mut self, mut idx: StepIdx, budget: &mut Budget) -> Effect {
        loop {
            if budget.left == 0 {
                let flow = self.flow.clone();
                let pos = scope(&flow, &self.state).step(idx).pos;
                self.report(
                    idx,
                    pos,
                    format!(
                        "more than {MAX_STEPS_WITHOUT_INPUT} steps without waiting for the caller"
                    ),
                );
                if budget.escaped {
                    return self.end(EndReason::Error);
                }
                budget.escaped = true;
                budget.left = MAX_STEPS_WITHOUT_INPUT;
                match self.error_target(idx) {
                    Some(t) => {
                        idx = t;
                        continue;
                    }
                    None => return self.end(EndReason::Error),
                }
            }
            budget.left -= 1;
            let flow = self.flow.clone();
            let qualified = scope(&flow, &self.state).qualified(idx);
            self.state.push_path(qualified);
            match self.enter(idx, budget) {
                Next::Go(t) => idx = t,
                Next::Wait(kind) => {
                    let current = scope(&flow, &self.state);
                    self.state.position = Position::Step {
                        step: current.step(idx).id.clone(),
                    };
                    return Effect {
                        flow: flow.name.clone(),
                        step: current.qualified(idx),
                        kind,
                    };
                }
                Next::Fail(pos, message) => match self.fail(idx, pos, message) {
                    Some(t) => idx = t,
                    None => return self.end(EndReason::Error),
                },
                Next::End(reason) => return self.end(reason),
            }
        }
    }

    /// Runs the step's own logic on entry.
    pub(super) fn enter(&mut self, idx: StepIdx, budget: &Budget) -> Next {
        let flow = self.flow.clone();
        let step = scope(&flow, &self.state).step(idx);
        let now = budget.now;
        match &step.kind {
            StepKind::Play {
                prompts, barge_in, ..
            } => Next::Wait(EffectKind::Play {
                prompts: self.prompt_refs(prompts),
                barge_in: *barge_in,
            }),
            StepKind::Say {
                value,
                how,
                before,
                after,
                barge_in,
                ..
            } => {
                let value = match self.eval(value, now, None) {
                    Ok(v) => v,
                    Err(f) => return fail(f),
                };
                match say::compose(&self.state.language, *how, &value) {
                    Ok(fragments) => {
                        let mut prompts = self.prompt_refs(before);
                        prompts.extend(self.prompt_refs(&fragments));
                        prompts.extend(self.prompt_refs(after));
                        Next::Wait(EffectKind::Play {
                            prompts,
                            barge_in: *barge_in,
                        })
                    }
                    Err(message) => Next::Fail(step.pos, message),
                }
            }
            StepKind::Menu(menu) => Next::Wait(self.menu_effect(menu)),
            StepKind::Collect(collect) => Next::Wait(self.collect_effect(collect)),
            StepKind::Set { assigns, next } => {
                for (name, expr) in assigns {
                    match self.eval(expr, now, None) {
                        Ok(v) => self.set_var(name, v),
                        Err(f) => return fail(f),
                    }
                }
                Next::Go(*next)
            }
            StepKind::Branch { arms, otherwise } => {
                for (cond, target) in arms {
                    match self.eval_bool(cond, now, None) {
                        Ok(true) => return Next::Go(*target),
                        Ok(false) => {}
                        Err(f) => return fail(f),
                    }
                }
                Next::Go(*otherwise)
            }
            StepKind::Hours {
                calendar,
                open,
                closed,
                holiday,
                closure,
            } => {
                let status = flow
                    .calendars
                    .get(*calendar)
                    .map_or(HoursStatus::Closed, |c| c.status(&now));
                Next::Go(match status {
                    HoursStatus::Open => *open,
                    HoursStatus::Closed => *closed,
                    HoursStatus::Holiday => *holiday,
                    HoursStatus::Closure => *closure,
                })
            }
            StepKind::Lookup(call) | StepKind::Action(call) => {
                let params = match self.eval_map(&call.params, now) {
                    Ok(p) => p,
                    Err(f) => return fail(f),
                };
                Next::Wait(if matches!(step.kind, StepKind::Lookup(_)) {
                    EffectKind::Lookup {
                        source: call.name.clone(),
                        params: Pii::new(params),
                        timeout: call.timeout,
                    }
                } else {
                    EffectKind::Action {
                        action: call.name.clone(),
                        params: Pii::new(params),
                        timeout: call.timeout,
                    }
                })
            }
            StepKind::Queue {
                queue,
                priority,
                max_wait,
                desk,
                ..
            } => Next::Wait(EffectKind::Queue {
                queue: queue.clone(),
                priority: *priority,
                max_wait: *max_wait,
                desk: Pii::new(self.desk(idx, desk, now)),
            }),
            StepKind::Transfer {
                target,
                mode,
                timeout,
                ..
            } => match self.eval(target, now, None) {
                Ok(v) => {
                    let target_text = display_value(&v);
                    if target_text.is_empty() || !matches!(v, Value::String(_) | Value::Number(_)) {
                        return Next::Fail(
                            target.pos,
                            format!(
                                "transfer target `{}` gave {}, not a number or address",
                                target.source,
                                crate::expr::value_kind(&v)
                            ),
                        );
                    }
                    Next::Wait(EffectKind::Transfer {
                        target: target_text,
                        mode: *mode,
                        timeout: *timeout,
                    })
                }
                Err(f) => fail(f),
            },
            StepKind::Record {
                prompts,
                beep,
                max_length,
                terminator,
                ..
            } => Next::Wait(EffectKind::Record {
                prompts: self.prompt_refs(prompts),
                beep: *beep,
                max_length: *max_length,
                terminator: *terminator,
            }),
            StepKind::Goto(t) => Next::Go(*t),
            StepKind::Language { language, next } => {
                self.state.language = language.clone();
                Next::Go(*next)
            }
            StepKind::Subflow {
                scope: target,
                args,
                ..
            } => {
                if self.state.frames.len() >= MAX_SUBFLOW_DEPTH {
                    return Next::Fail(step.pos, "subflows nested too deeply".into());
                }
                let values = match self.eval_map(args, now) {
                    Ok(v) => v,
                    Err(f) => return fail(f),
                };
                let Some(sub) = flow.scopes.get(*target) else {
                    return Next::Fail(step.pos, "subflow missing".into());
                };
                self.state.frames.push(Frame {
                    subflow: sub.name.clone().unwrap_or_default(),
                    caller_step: step.id.clone(),
                    state: ScopeState {
                        vars: Pii::new(values.into_iter().collect()),
                        attempts: Default::default(),
                    },
                });
                self.init_scope_vars(now);
                Next::Go(sub.start)
            }
            StepKind::Return { values } => {
                let values = match self.eval_map(values, now) {
                    Ok(v) => v,
                    Err(f) => return fail(f),
                };
                match self.pop_frame() {
                    Some(caller) => {
                        let parent = scope(&flow, &self.state);
                        match &parent.step(caller).kind {
                            StepKind::Subflow { into, next, .. } => {
                                if let Some(into) = into {
                                    self.set_var(into, Value::Object(values));
                                }
                                Next::Go(*next)
                            }
                            _ => Next::End(EndReason::Error),
                        }
                    }
                    None => Next::End(EndReason::Error),
                }
            }
            StepKind::Hangup => Next::End(EndReason::Hangup),
        }
    }

    /// Reports a failure at `idx` and finds where to go: the step's `error`, its scope's
    /// `on_error`, then the same at the calling `subflow` step, outwards. `None`: hang up.
    pub(super) fn fail(&mut self, idx: StepIdx, pos: Pos, message: String) -> Option<StepIdx> {
        self.report(idx, pos, message);
        self.error_target(idx)
    }

    pub(super) fn error_target(&mut self, mut idx: StepIdx) -> Option<StepIdx> {
        let flow = self.flow.clone();
        loop {
            let current = scope(&flow, &self.state);
            if let Some(t) = current.step(idx).error.or(current.on_error) {
                return Some(t);
            }
            idx = self.pop_frame()?;
        }
    }

    /// Leaves the innermost subflow; returns the calling step in the parent scope.
    pub(super) fn pop_frame(&mut self) -> Option<StepIdx> {
        let frame = self.state.frames.pop()?;
        scope(&self.flow, &self.state).find(&frame.caller_step)
    }

    /// Sets the declared variables (`vars:`, parameter defaults) of the scope just entered.
    pub(super) fn init_scope_vars(&mut self, now: DateTime<Utc>) {
        let flow = self.flow.clone();
        let current = scope(&flow, &self.state);
        let start = current.start;
        for param in &current.params {
            if self
                .state
                .scope_state_ref()
                .vars
                .reveal()
                .contains_key(&param.name)
            {
                continue;
            }
            if let Some(default) = &param.default {
                match self.eval(default, now, None) {
                    Ok(v) => self.set_var(&param.name, v),
                    Err(f) => self.report(start, f.pos, f.message),
                }
            }
        }
        for (name, init) in &current.vars {
            if let Some(init) = init {
                match self.eval(init, now, None) {
                    Ok(v) => self.set_var(name, v),
                    Err(f) => self.report(start, f.pos, f.message),
                }
            }
        }
    }

    pub(super) fn set_var(&mut self, name: &str, value: Value) {
        self.state
            .scope_state()
            .vars
            .reveal_mut()
            .insert(name.to_owned(), value);
    }

    pub(super) fn prompt_refs(&self, names: &[String]) -> Vec<PromptRef> {
        names
            .iter()
            .map(|n| PromptRef::new(&self.state.language, n))
            .collect()
    }

    pub(super) fn end(&mut self, reason: EndReason) -> Effect {
        self.state.position = Position::Ended { reason };
        self.effect_here(match reason {
            EndReason::Hangup => EffectKind::Hangup {
                reason: HangupReason::Normal,
            },
            EndReason::Error => EffectKind::Hangup {
                reason: HangupReason::Error,
            },
            other => EffectKind::Finished { reason: other },
        })
    }

    /// An effect attributed to the last step of the path.
    pub(super) fn effect_here(&self, kind: EffectKind) -> Effect {
        Effect {
            flow: self.flow.name.clone(),
            step: self.state.path.last().cloned().unwrap_or_default(),
            kind,
        }
    }
}

impl Interpreter {
    /// The desk values of a queue step. A value that fails to evaluate (e.g. `contact.name`
    /// when the lookup found nobody) is left out and reported: the caller still reaches the
    /// queue, since what the desk shows never decides the routing.
    fn desk(
        &mut self,
        idx: StepIdx,
        items: &[(String, Expr)],
        now: DateTime<Utc>,
    ) -> Vec<DeskField> {
        let mut out = Vec::with_capacity(items.len());
        for (name, expr) in items {
            match self.eval(expr, now, None) {
                Ok(value) => out.push(DeskField {
                    name: name.clone(),
                    value,
                }),
                Err(f) => self.report(idx, f.pos, f.message),
            }
        }
        out
    }
}

fn fail(f: Failure) -> Next {
    Next::Fail(f.pos, f.message)
}
