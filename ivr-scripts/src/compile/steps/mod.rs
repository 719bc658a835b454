//! Decoding one step: which kind it is, its fields, its references.
//!
//! A step is a mapping whose *kind key* (`play`, `menu`, ...) says what it does and holds its
//! main argument; the other keys are that kind's fields:
//!
//! ```yaml
//! main_menu:
//!   menu: main_menu_prompt
//!   options: { "1": option1, "2": support }
//!   exhausted: goodbye
//! ```
//!
//! Each kind lists the fields it accepts, so a typo is an unknown field with a "did you mean".
//! This module finds the kind and holds the field readers; the kinds themselves are decoded in
//! [`caller`] (what the caller hears and keys), [`routing`] (connectors, queues, transfers) and
//! [`logic`] (everything else).

mod caller;
mod logic;
mod routing;

use std::time::Duration;

use super::{is_prompt_name, Compiler, ScopeCx};
use crate::decode::{boolean, count, did_you_mean, duration, text, text_list, Fields, Spanned};
use crate::diagnostic::Code;
use crate::expr::Expr;
use crate::flow::{Step, StepIdx, StepKind};
use crate::yaml::Node;

/// Every step kind, i.e. the keys that say what a step does.
pub(crate) const KINDS: &[&str] = &[
    "play", "say", "menu", "collect", "set", "branch", "hours", "lookup", "action", "queue",
    "transfer", "record", "goto", "subflow", "return", "language", "hangup",
];

fn fields_for(kind: &str) -> &'static [&'static str] {
    match kind {
        "play" => &["play", "barge_in", "next", "description"],
        "say" => &[
            "say",
            "as",
            "before",
            "after",
            "barge_in",
            "next",
            "error",
            "description",
        ],
        "menu" => &[
            "menu",
            "options",
            "timeout",
            "inter_digit_timeout",
            "attempts",
            "invalid",
            "no_input",
            "exhausted",
            "barge_in",
            "description",
        ],
        "collect" => &[
            "collect",
            "into",
            "min_digits",
            "max_digits",
            "terminator",
            "timeout",
            "inter_digit_timeout",
            "validate",
            "attempts",
            "invalid",
            "no_input",
            "exhausted",
            "next",
            "error",
            "barge_in",
            "description",
        ],
        "set" => &["set", "next", "error", "description"],
        "branch" => &["branch", "then", "else", "error", "description"],
        "hours" => &[
            "hours",
            "open",
            "closed",
            "holiday",
            "closure",
            "description",
        ],
        "lookup" => &[
            "lookup",
            "params",
            "timeout",
            "into",
            "ok",
            "not_found",
            "error",
            "description",
        ],
        "action" => &[
            "action",
            "params",
            "timeout",
            "into",
            "ok",
            "not_found",
            "error",
            "description",
        ],
        "queue" => &[
            "queue",
            "priority",
            "max_wait",
            "desk",
            "overflow",
            "error",
            "description",
        ],
        "transfer" => &[
            "transfer",
            "mode",
            "timeout",
            "failed",
            "error",
            "description",
        ],
        "record" => &[
            "record",
            "beep",
            "max_length",
            "terminator",
            "into",
            "next",
            "description",
        ],
        "goto" => &["goto", "description"],
        "subflow" => &["subflow", "args", "into", "next", "error", "description"],
        "return" => &["return", "error", "description"],
        "language" => &["language", "next", "description"],
        _ => &["hangup", "description"],
    }
}

const SEC: Duration = Duration::from_secs(1);

/// Decodes one step; `None` if it had errors (already reported).
pub(crate) fn decode<'a>(
    c: &mut Compiler<'a>,
    cx: &ScopeCx,
    id: &Spanned<String>,
    node: &'a Node,
) -> Option<Step> {
    let Some(entries) = node.as_map() else {
        c.sink
            .error(
                Code::WrongType,
                node.pos(),
                format!(
                    "step `{}` must be a mapping of fields, found {}",
                    id.value,
                    node.describe()
                ),
            )
            .hint(format!(
                "for example `{}: {{ play: welcome, next: main_menu }}`",
                id.value
            ));
        return None;
    };
    // Distinct kind keys (a repeated key is reported as a duplicate by `Fields`).
    let mut kinds: Vec<&Node> = Vec::new();
    for (key, _) in entries {
        if key.as_str().is_some_and(|s| KINDS.contains(&s))
            && !kinds.iter().any(|k| k.as_str() == key.as_str())
        {
            kinds.push(key);
        }
    }
    let kind = match kinds.as_slice() {
        [one] => one.as_str().unwrap_or("hangup"),
        [] => {
            let close = entries
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .find_map(|k| did_you_mean(k, KINDS.iter().copied()).map(|c| (k, c)));
            c.sink
                .error(
                    Code::StepKind,
                    id.pos,
                    format!("step `{}` does not say what it does", id.value),
                )
                .hint(match close {
                    Some((typo, kind)) => {
                        format!("`{typo}` is not a step kind: did you mean `{kind}`?")
                    }
                    None => format!("give it one of: {}", KINDS.join(", ")),
                });
            return None;
        }
        [first, second, ..] => {
            c.sink
                .error(
                    Code::StepKind,
                    second.pos(),
                    format!(
                        "step `{}` is both `{}` and `{}`",
                        id.value,
                        first.as_str().unwrap_or(""),
                        second.as_str().unwrap_or("")
                    ),
                )
                .hint("a step does one thing: split it into two steps linked by `next`");
            return None;
        }
    };
    let allowed = fields_for(kind);
    let f = Fields::new(
        node,
        allowed,
        format!("{kind} step `{}`", id.value),
        &mut c.sink,
    )?;
    let errors_before = c.sink.error_count();
    let mut r = Reader { c, cx, f, id };
    let _ = r.f.get("description");
    let error = if allowed.contains(&"error") {
        r.opt_target("error")
    } else {
        None
    };
    let main = r.f.get(kind);
    let decoded = match (kind, main) {
        (_, None) => None,
        ("play", Some(n)) => r.play(n),
        ("say", Some(n)) => r.say(n),
        ("menu", Some(n)) => r.menu(n),
        ("collect", Some(n)) => r.collect(n),
        ("set", Some(n)) => r.set(n),
        ("branch", Some(n)) => r.branch(n),
        ("hours", Some(n)) => r.hours(n),
        ("lookup", Some(n)) => r.call(n, false),
        ("action", Some(n)) => r.call(n, true),
        ("queue", Some(n)) => r.queue(n),
        ("transfer", Some(n)) => r.transfer(n),
        ("record", Some(n)) => r.record(n),
        ("goto", Some(n)) => r.c.step_ref(n, r.cx).map(StepKind::Goto),
        ("subflow", Some(n)) => r.subflow(n),
        ("return", Some(n)) => r.return_(n),
        ("language", Some(n)) => r.language(n),
        (_, Some(n)) => r.hangup(n),
    };
    let Reader { c, f, .. } = r;
    f.finish(&mut c.sink);
    let kind = decoded?;
    (c.sink.error_count() == errors_before).then(|| Step {
        id: id.value.clone(),
        pos: id.pos,
        kind,
        error,
    })
}

/// Reads the fields of one step. Failed reads report and return a placeholder; the caller
/// drops the step when any error was reported, so placeholders never reach a `Flow`.
struct Reader<'c, 'a> {
    c: &'c mut Compiler<'a>,
    cx: &'c ScopeCx,
    f: Fields<'a>,
    id: &'c Spanned<String>,
}

impl<'a> Reader<'_, 'a> {
    fn missing(&mut self, key: &str, hint: &str) {
        let what = self.f.what().to_owned();
        self.c
            .sink
            .error(
                Code::MissingField,
                self.id.pos,
                format!("{what} needs a `{key}` field"),
            )
            .hint(hint.to_owned());
    }

    /// A required step reference.
    fn target(&mut self, key: &str) -> StepIdx {
        match self.f.get(key) {
            Some(n) => self.c.step_ref(n, self.cx).unwrap_or(StepIdx(0)),
            None => {
                let hint = match key {
                    "next" => "say which step comes after this one: `next: <step id>`".to_owned(),
                    "exhausted" => "say where callers go after the last failed attempt, e.g. `exhausted: goodbye`".to_owned(),
                    "overflow" => "say where callers go when the queue cannot take them, e.g. a step that plays `no_agent_available`".to_owned(),
                    "failed" => "say where callers go when the transfer fails".to_owned(),
                    other => format!("add `{other}: <step id>`"),
                };
                self.missing(key, &hint);
                StepIdx(0)
            }
        }
    }

    fn opt_target(&mut self, key: &str) -> Option<StepIdx> {
        let n = self.f.get(key)?;
        self.c.step_ref(n, self.cx)
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.f.get(key) {
            Some(n) => boolean(n, &format!("`{key}`"), &mut self.c.sink).unwrap_or(default),
            None => default,
        }
    }

    fn time(&mut self, key: &str, default: Duration, min: Duration, max: Duration) -> Duration {
        match self.f.get(key) {
            Some(n) => {
                duration(n, &format!("`{key}`"), min, max, &mut self.c.sink).unwrap_or(default)
            }
            None => default,
        }
    }

    fn number(&mut self, key: &str, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        match self.f.get(key) {
            Some(n) => count(n, &format!("`{key}`"), range, &mut self.c.sink).unwrap_or(default),
            None => default,
        }
    }

    fn variable(&mut self, key: &str) -> Option<String> {
        let n = self.f.get(key)?;
        self.c.variable_name(n, "variable").map(|v| v.value)
    }

    fn expr_field(&mut self, key: &str) -> Option<Expr> {
        let n = self.f.get(key)?;
        self.c.expr(n, self.cx)
    }

    /// `name: expression` pairs (lookup params, subflow args, return values).
    fn expr_map(&mut self, node: &Node, what: &str) -> Vec<(Spanned<String>, Expr)> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(entries) = node.as_map() else {
            self.c
                .sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    format!("{what} must map names to expressions"),
                )
                .hint("for example `{ number: caller, kind: '\"mobile\"' }`");
            return Vec::new();
        };
        crate::decode::report_duplicate_keys(entries, what, &mut self.c.sink);
        let mut out = Vec::new();
        for (key, value) in entries {
            let Some(k) = text(key, "name", &mut self.c.sink) else {
                continue;
            };
            if let Some(e) = self.c.expr(value, self.cx) {
                out.push((k, e));
            }
        }
        out
    }

    /// One prompt or a list, each checked against every language of the flow.
    fn prompts(&mut self, node: &Node, what: &str) -> Vec<String> {
        let list = text_list(node, what, &mut self.c.sink).unwrap_or_default();
        let mut out = Vec::new();
        for p in list {
            if !is_prompt_name(&p.value) {
                self.c
                    .sink
                    .error(Code::BadValue, p.pos, format!("`{}` is not a valid prompt name", p.value))
                    .hint("prompt names are file names without `.wav`: letters, digits, `_`, `-`, and `/` between folders");
                continue;
            }
            self.check_prompt(&p);
            out.push(p.value);
        }
        out
    }

    fn check_prompt(&mut self, p: &Spanned<String>) {
        let missing: Vec<String> = self
            .c
            .languages
            .iter()
            .filter(|l| !self.c.ctx.has_prompt(l, &p.value))
            .cloned()
            .collect();
        let Some(first) = missing.first() else { return };
        let close = did_you_mean(&p.value, self.c.ctx.prompt_names(first)).map(str::to_owned);
        let langs = missing
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.c
            .sink
            .error(
                Code::UnknownPrompt,
                p.pos,
                format!("prompt `{}` is missing for language {langs}", p.value),
            )
            .hint(match close {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("record it as `<prompts>/{first}/{}.wav`", p.value),
            });
    }

    fn terminator(&mut self, default: Option<char>) -> Option<char> {
        let Some(node) = self.f.get("terminator") else {
            return default;
        };
        match node.as_str() {
            Some("none") | Some("false") => None,
            Some(s) if s.chars().count() == 1 && s.chars().all(is_dtmf) => s.chars().next(),
            _ => {
                // An empty value sits after the colon; the key is the better place to point at.
                let pos = if node.is_null() {
                    self.f.key("terminator").map_or(node.pos(), Node::pos)
                } else {
                    node.pos()
                };
                self.c
                    .sink
                    .error(
                        Code::BadValue,
                        pos,
                        "`terminator` must be one DTMF key or `none`",
                    )
                    .hint("quote it, since `#` starts a YAML comment: `terminator: \"#\"`");
                default
            }
        }
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}
