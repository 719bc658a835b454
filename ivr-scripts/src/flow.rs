//! The validated form of a flow: what [`compile`](crate::compile()) produces and the interpreter
//! runs.
//!
//! Parse, don't validate: every step reference here is a [`StepIdx`] into the same scope's
//! step table, every expression is a compiled AST, every calendar is checked, every prompt,
//! queue and connector was found in the engine's [`CheckContext`](crate::CheckContext). Nothing
//! in this module can be built from outside the crate except through `compile`, so a `Flow`
//! value cannot reference a missing step. The interpreter therefore indexes without checks
//! that could fail at run time.
//!
//! A flow has one main scope and one scope per subflow; step ids are unique per scope and a
//! step only jumps within its scope (subflows are entered and left through `subflow` and
//! `return` steps).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Pos};
use crate::expr::{Expr, ExprEngine};
use crate::hours::Calendar;
use crate::interp::PromptRef;
use crate::say::{self, SayAs};

/// Index of a step within its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StepIdx(pub(crate) u32);

impl StepIdx {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

/// Index of a scope: 0 is the main flow, then subflows in file order.
pub(crate) type ScopeIdx = usize;

/// Queue priority as the ACD sees it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub(crate) const ALL: [(&'static str, Priority); 4] = [
        ("low", Priority::Low),
        ("normal", Priority::Normal),
        ("high", Priority::High),
        ("urgent", Priority::Urgent),
    ];

    /// A number for ordering in the ACD: higher is served first.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Low => 1,
            Priority::Normal => 5,
            Priority::High => 8,
            Priority::Urgent => 9,
        }
    }
}

/// How a `transfer` step hands the call over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// SIP REFER: the PBX takes the call; the engine is out of it once accepted.
    #[default]
    Blind,
    /// The engine calls the target and bridges both legs.
    Bridged,
}

pub(crate) struct Menu {
    pub(crate) prompts: Vec<String>,
    pub(crate) options: Vec<(String, StepIdx)>,
    pub(crate) max_digits: u32,
    pub(crate) timeout: Duration,
    pub(crate) inter_digit_timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) invalid: Option<StepIdx>,
    pub(crate) no_input: Option<StepIdx>,
    pub(crate) exhausted: StepIdx,
    pub(crate) barge_in: bool,
}

pub(crate) struct Collect {
    pub(crate) prompts: Vec<String>,
    pub(crate) into: String,
    pub(crate) min_digits: u32,
    pub(crate) max_digits: u32,
    pub(crate) terminator: Option<char>,
    pub(crate) timeout: Duration,
    pub(crate) inter_digit_timeout: Duration,
    pub(crate) validate: Option<Expr>,
    pub(crate) attempts: u32,
    pub(crate) invalid: Option<StepIdx>,
    pub(crate) no_input: Option<StepIdx>,
    pub(crate) exhausted: StepIdx,
    pub(crate) next: StepIdx,
    pub(crate) barge_in: bool,
}

/// A `lookup` or `action`: a named connector call with parameters.
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, Expr)>,
    pub(crate) timeout: Duration,
    pub(crate) into: Option<String>,
    pub(crate) ok: StepIdx,
    pub(crate) not_found: StepIdx,
}

pub(crate) enum StepKind {
    Play {
        prompts: Vec<String>,
        barge_in: bool,
        next: StepIdx,
    },
    Say {
        value: Expr,
        how: SayAs,
        before: Vec<String>,
        after: Vec<String>,
        barge_in: bool,
        next: StepIdx,
    },
    Menu(Menu),
    Collect(Collect),
    Set {
        assigns: Vec<(String, Expr)>,
        next: StepIdx,
    },
    Branch {
        arms: Vec<(Expr, StepIdx)>,
        otherwise: StepIdx,
    },
    Hours {
        calendar: usize,
        open: StepIdx,
        closed: StepIdx,
        holiday: StepIdx,
        closure: StepIdx,
    },
    Lookup(Call),
    Action(Call),
    Queue {
        queue: String,
        priority: Priority,
        max_wait: Option<Duration>,
        /// What the agent's desk shows of the call: name and expression, in the file's order.
        desk: Vec<(String, Expr)>,
        overflow: StepIdx,
    },
    Transfer {
        target: Expr,
        mode: TransferMode,
        timeout: Duration,
        failed: StepIdx,
    },
    Record {
        prompts: Vec<String>,
        beep: bool,
        max_length: Duration,
        terminator: Option<char>,
        into: Option<String>,
        next: StepIdx,
    },
    Goto(StepIdx),
    Subflow {
        scope: ScopeIdx,
        args: Vec<(String, Expr)>,
        into: Option<String>,
        next: StepIdx,
    },
    Return {
        values: Vec<(String, Expr)>,
    },
    Language {
        language: String,
        next: StepIdx,
    },
    Hangup,
}

impl StepKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            StepKind::Play { .. } => "play",
            StepKind::Say { .. } => "say",
            StepKind::Menu(_) => "menu",
            StepKind::Collect(_) => "collect",
            StepKind::Set { .. } => "set",
            StepKind::Branch { .. } => "branch",
            StepKind::Hours { .. } => "hours",
            StepKind::Lookup(_) => "lookup",
            StepKind::Action(_) => "action",
            StepKind::Queue { .. } => "queue",
            StepKind::Transfer { .. } => "transfer",
            StepKind::Record { .. } => "record",
            StepKind::Goto(_) => "goto",
            StepKind::Subflow { .. } => "subflow",
            StepKind::Return { .. } => "return",
            StepKind::Language { .. } => "language",
            StepKind::Hangup => "hangup",
        }
    }

    /// Steps that play audio or wait for the caller or the network: the interpreter yields an
    /// effect there, so a cycle through one of them is not a busy loop. (`subflow` depends on
    /// the subflow; the checker decides.)
    pub(crate) fn waits(&self) -> bool {
        matches!(
            self,
            StepKind::Play { .. }
                | StepKind::Say { .. }
                | StepKind::Menu(_)
                | StepKind::Collect(_)
                | StepKind::Record { .. }
                | StepKind::Queue { .. }
                | StepKind::Transfer { .. }
        )
    }

    /// Steps after which the call can be over (or leaves the subflow).
    pub(crate) fn ends(&self) -> bool {
        matches!(
            self,
            StepKind::Hangup
                | StepKind::Queue { .. }
                | StepKind::Transfer { .. }
                | StepKind::Return { .. }
        )
    }

    /// Whether the step evaluates expressions (and so can fail at run time).
    pub(crate) fn has_expressions(&self) -> bool {
        match self {
            StepKind::Say { .. }
            | StepKind::Set { .. }
            | StepKind::Branch { .. }
            | StepKind::Transfer { .. }
            | StepKind::Return { .. } => true,
            StepKind::Collect(c) => c.validate.is_some(),
            StepKind::Lookup(c) | StepKind::Action(c) => !c.params.is_empty(),
            StepKind::Subflow { args, .. } => !args.is_empty(),
            _ => false,
        }
    }
}

pub(crate) struct Step {
    pub(crate) id: String,
    pub(crate) pos: Pos,
    pub(crate) kind: StepKind,
    /// Where to go when this step fails at run time.
    pub(crate) error: Option<StepIdx>,
}

impl Step {
    /// Every outgoing edge with its label, in a stable order (for graphs and analyses).
    pub(crate) fn edges(&self) -> Vec<(String, StepIdx)> {
        let mut out: Vec<(String, StepIdx)> = Vec::new();
        fn push(out: &mut Vec<(String, StepIdx)>, label: impl Into<String>, t: StepIdx) {
            out.push((label.into(), t));
        }
        match &self.kind {
            StepKind::Play { next, .. }
            | StepKind::Say { next, .. }
            | StepKind::Set { next, .. }
            | StepKind::Record { next, .. }
            | StepKind::Language { next, .. }
            | StepKind::Subflow { next, .. } => push(&mut out, "", *next),
            StepKind::Goto(t) => push(&mut out, "", *t),
            StepKind::Menu(m) => {
                for (key, t) in &m.options {
                    push(&mut out, key.as_str(), *t);
                }
                if let Some(t) = m.invalid {
                    push(&mut out, "invalid", t);
                }
                if let Some(t) = m.no_input {
                    push(&mut out, "no input", t);
                }
                push(&mut out, "exhausted", m.exhausted);
            }
            StepKind::Collect(c) => {
                push(&mut out, "", c.next);
                if let Some(t) = c.invalid {
                    push(&mut out, "invalid", t);
                }
                if let Some(t) = c.no_input {
                    push(&mut out, "no input", t);
                }
                push(&mut out, "exhausted", c.exhausted);
            }
            StepKind::Branch { arms, otherwise } => {
                for (i, (_, t)) in arms.iter().enumerate() {
                    let label = if arms.len() == 1 {
                        "then".to_owned()
                    } else {
                        format!("if #{}", i + 1)
                    };
                    push(&mut out, label, *t);
                }
                push(&mut out, "else", *otherwise);
            }
            StepKind::Hours {
                open,
                closed,
                holiday,
                closure,
                ..
            } => {
                push(&mut out, "open", *open);
                push(&mut out, "closed", *closed);
                if holiday != closed {
                    push(&mut out, "holiday", *holiday);
                }
                if closure != closed {
                    push(&mut out, "closure", *closure);
                }
            }
            StepKind::Lookup(c) | StepKind::Action(c) => {
                push(&mut out, "ok", c.ok);
                if c.not_found != c.ok {
                    push(&mut out, "not found", c.not_found);
                }
            }
            StepKind::Queue { overflow, .. } => push(&mut out, "overflow", *overflow),
            StepKind::Transfer { failed, .. } => push(&mut out, "failed", *failed),
            StepKind::Return { .. } | StepKind::Hangup => {}
        }
        if let Some(t) = self.error {
            push(&mut out, "error", t);
        }
        out
    }
}

pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) default: Option<Expr>,
}

/// The main flow or one subflow.
pub(crate) struct Scope {
    /// `None` for the main flow.
    pub(crate) name: Option<String>,
    pub(crate) pos: Pos,
    pub(crate) start: StepIdx,
    pub(crate) on_error: Option<StepIdx>,
    pub(crate) params: Vec<Param>,
    /// Declared variables (`vars:`) with their initial value.
    pub(crate) vars: Vec<(String, Option<Expr>)>,
    /// Every variable name the scope knows, besides the built-ins.
    pub(crate) variables: Vec<String>,
    pub(crate) steps: Vec<Step>,
}

impl Scope {
    pub(crate) fn step(&self, idx: StepIdx) -> &Step {
        // Indices come from the compiler, which only hands out indices of this table.
        &self.steps[idx.get()]
    }

    pub(crate) fn find(&self, id: &str) -> Option<StepIdx> {
        self.steps
            .iter()
            .position(|s| s.id == id)
            .and_then(|i| u32::try_from(i).ok())
            .map(StepIdx)
    }

    /// The name used in paths and effects: `step` in the main flow, `subflow/step` inside one.
    pub(crate) fn qualified(&self, idx: StepIdx) -> String {
        let id = &self.step(idx).id;
        match &self.name {
            None => id.clone(),
            Some(scope) => format!("{scope}/{id}"),
        }
    }
}

/// A compiled, validated call flow. Share it between calls with an `Arc`.
pub struct Flow {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) file: PathBuf,
    pub(crate) default_language: String,
    pub(crate) languages: Vec<String>,
    pub(crate) timezone: Tz,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) calendars: Vec<Calendar>,
    pub(crate) engine: ExprEngine,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("file", &self.file)
            .field(
                "steps",
                &self.scopes.iter().map(|s| s.steps.len()).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

impl Flow {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The language a call starts in unless its `CallInfo` names another of [`languages`](Self::languages).
    pub fn default_language(&self) -> &str {
        &self.default_language
    }

    /// Every language the flow can speak (its prompts exist in all of them).
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// Problems that did not prevent loading (unreachable steps, missing error branches).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Every prompt the flow may play, in every language, including `say` fragments: what the
    /// engine should load and encode before the first call.
    pub fn prompts(&self) -> BTreeSet<PromptRef> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut says: BTreeSet<SayAs> = BTreeSet::new();
        for step in self.scopes.iter().flat_map(|s| &s.steps) {
            match &step.kind {
                StepKind::Play { prompts, .. } | StepKind::Record { prompts, .. } => {
                    names.extend(prompts.iter().cloned());
                }
                StepKind::Menu(m) => names.extend(m.prompts.iter().cloned()),
                StepKind::Collect(c) => names.extend(c.prompts.iter().cloned()),
                StepKind::Say {
                    how, before, after, ..
                } => {
                    names.extend(before.iter().chain(after).cloned());
                    says.insert(*how);
                }
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        for language in &self.languages {
            for name in &names {
                out.insert(PromptRef::new(language, name));
            }
            for how in &says {
                for name in say::fragments_needed(language, *how) {
                    out.insert(PromptRef::new(language, &name));
                }
            }
        }
        out
    }

    /// Queues the flow may send calls to.
    pub fn queues(&self) -> BTreeSet<&str> {
        self.steps()
            .filter_map(|s| match &s.kind {
                StepKind::Queue { queue, .. } => Some(queue.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Data sources used by `lookup` steps.
    pub fn data_sources(&self) -> BTreeSet<&str> {
        self.steps()
            .filter_map(|s| match &s.kind {
                StepKind::Lookup(c) => Some(c.name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Actions used by `action` steps.
    pub fn actions(&self) -> BTreeSet<&str> {
        self.steps()
            .filter_map(|s| match &s.kind {
                StepKind::Action(c) => Some(c.name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Qualified ids of all steps (`step`, or `subflow/step`), in file order.
    pub fn step_ids(&self) -> Vec<String> {
        self.scopes
            .iter()
            .flat_map(|scope| {
                (0..scope.steps.len())
                    .filter_map(move |i| u32::try_from(i).ok().map(|i| scope.qualified(StepIdx(i))))
            })
            .collect()
    }

    fn steps(&self) -> impl Iterator<Item = &Step> {
        self.scopes.iter().flat_map(|s| &s.steps)
    }

    pub(crate) fn main(&self) -> &Scope {
        // The compiler always creates the main scope first.
        &self.scopes[0]
    }

    pub(crate) fn scope_named(&self, name: Option<&str>) -> Option<(ScopeIdx, &Scope)> {
        self.scopes
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.as_deref() == name)
    }
}
