//! Resolving names: steps, variables, languages, and compiling expressions, each with a
//! diagnostic that says what was meant when it can guess ("did you mean `main_menu`?").

use super::{Compiler, ScopeCx};
use crate::decode::{did_you_mean, is_identifier, text, Spanned};
use crate::diagnostic::Code;
use crate::expr::{Expr, BUILTINS};
use crate::flow::StepIdx;
use crate::yaml::{self, Kind, Node};

impl Compiler<'_> {
    pub(super) fn check_language(&mut self, language: &Spanned<String>) {
        if !self.ctx.languages.contains(&language.value) {
            let close = did_you_mean(&language.value, self.ctx.languages.names());
            let known: Vec<&str> = self.ctx.languages.names().collect();
            self.sink
                .error(
                    Code::UnknownLanguage,
                    language.pos,
                    format!("no prompts are installed for language `{}`", language.value),
                )
                .hint(match close {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("installed languages: {}", known.join(", ")),
                });
        }
    }

    /// A name a flow may assign: an identifier that is not a built-in.
    pub(crate) fn variable_name(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        let t = text(node, what, &mut self.sink)?;
        if BUILTINS.contains(&t.value.as_str()) {
            self.sink
                .error(
                    Code::BadValue,
                    t.pos,
                    format!(
                        "`{}` is a built-in variable and cannot be assigned",
                        t.value
                    ),
                )
                .hint("choose another name");
            return None;
        }
        if !is_identifier(&t.value) {
            self.sink
                .error(
                    Code::BadValue,
                    t.pos,
                    format!("{what} `{}` is not a valid variable name", t.value),
                )
                .hint("use letters, digits and `_`, starting with a letter or `_`");
            return None;
        }
        Some(t)
    }

    /// Resolves a step reference in `cx`, reporting unknown ones with a suggestion.
    pub(crate) fn step_ref(&mut self, node: &Node, cx: &ScopeCx) -> Option<StepIdx> {
        let t = text(node, "step reference", &mut self.sink)?;
        if let Some(idx) = cx.find(&t.value) {
            return Some(idx);
        }
        let close = did_you_mean(&t.value, cx.ids.iter().map(String::as_str));
        self.sink
            .error(
                Code::UnknownStep,
                t.pos,
                format!("unknown step `{}` in {}", t.value, cx.what()),
            )
            .hint(match close {
                Some(c) => format!("did you mean `{c}`?"),
                None if cx.ids.is_empty() => "define the step under `steps:`".into(),
                None => format!(
                    "define a step `{}` under `steps:`, or use one of: {}",
                    t.value,
                    shortlist(&cx.ids)
                ),
            });
        None
    }

    /// Compiles an expression written in a YAML scalar.
    pub(crate) fn expr(&mut self, node: &Node, cx: &ScopeCx) -> Option<Expr> {
        let Kind::Scalar(source, _) = &node.kind else {
            self.sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    format!("expected an expression, found {}", node.describe()),
                )
                .hint("write the expression as text, quoted if it contains `: ` or ` #`");
            return None;
        };
        if node.is_null() {
            self.sink
                .error(Code::BadExpression, node.pos(), "empty expression")
                .hint("write `()` for no value");
            return None;
        }
        let positions = yaml::value_positions(self.source, node);
        let known: Vec<&str> = cx.known.iter().map(String::as_str).collect();
        match self.engine.compile(source, positions, node.pos(), &known) {
            Ok(expr) => Some(expr),
            Err(failure) => {
                match &failure.unknown_variable {
                    Some(var) => {
                        let close = did_you_mean(var, known.iter().copied());
                        self.sink
                            .error(
                                Code::UnknownVariable,
                                failure.pos,
                                format!("unknown variable `{var}`"),
                            )
                            .hint(match close {
                                Some(c) => format!("did you mean `{c}`?"),
                                None => format!(
                                    "define it under `vars:` or with a `set` step; text values need quotes inside the expression: '\"{var}\"'"
                                ),
                            });
                    }
                    None => {
                        self.sink
                            .error(
                                Code::BadExpression,
                                failure.pos,
                                format!("bad expression: {}", failure.message),
                            )
                            .hint("expressions use rhai syntax, e.g. `vip.level == \"gold\" && attempts < 3`");
                    }
                }
                None
            }
        }
    }
}

/// Up to ten names, for hints.
pub(crate) fn shortlist(names: &[String]) -> String {
    let mut list: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    if names.len() > 10 {
        list.push("...");
    }
    list.join(", ")
}

/// Whether `name` is a valid prompt name: relative, `/`-separated segments of letters, digits,
/// `_` and `-`; so no `..`, no absolute path, no extension: it maps safely to a file.
pub(crate) fn is_prompt_name(name: &str) -> bool {
    name.len() <= 128
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}
