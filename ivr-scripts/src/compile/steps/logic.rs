//! Steps that only move the call through the flow: `set`, `branch`, `hours`, `subflow`,
//! `return`, `language`, `hangup`.

use super::Reader;
use crate::decode::{did_you_mean, text, Fields};
use crate::diagnostic::Code;
use crate::flow::StepKind;
use crate::yaml::{Kind, Node};

impl<'a> Reader<'_, 'a> {
    pub(super) fn set(&mut self, node: &Node) -> Option<StepKind> {
        let Some(entries) = node.as_map().filter(|e| !e.is_empty()) else {
            self.c
                .sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    "`set` must map variables to expressions",
                )
                .hint("for example `set: { attempts: \"attempts + 1\", vip: \"false\" }`");
            return None;
        };
        crate::decode::report_duplicate_keys(entries, "`set`", &mut self.c.sink);
        let mut assigns = Vec::new();
        for (key, value) in entries {
            let var = self.c.variable_name(key, "variable");
            let expr = self.c.expr(value, self.cx);
            if let (Some(var), Some(expr)) = (var, expr) {
                assigns.push((var.value, expr));
            }
        }
        let next = self.target("next");
        Some(StepKind::Set { assigns, next })
    }

    pub(super) fn branch(&mut self, node: &Node) -> Option<StepKind> {
        let mut arms = Vec::new();
        match &node.kind {
            Kind::Seq(items) => {
                for item in items {
                    const ARM: &[&str] = &["if", "then"];
                    let Some(mut f) = Fields::new(item, ARM, "branch arm", &mut self.c.sink) else {
                        continue;
                    };
                    let cond = f
                        .require("if", item.pos(), &mut self.c.sink)
                        .and_then(|n| self.c.expr(n, self.cx));
                    let then = f
                        .require("then", item.pos(), &mut self.c.sink)
                        .and_then(|n| self.c.step_ref(n, self.cx));
                    f.finish(&mut self.c.sink);
                    if let (Some(c), Some(t)) = (cond, then) {
                        arms.push((c, t));
                    }
                }
            }
            _ => {
                let cond = self.c.expr(node, self.cx);
                let then = self.target("then");
                arms.push((cond?, then));
            }
        }
        let otherwise = self.target("else");
        Some(StepKind::Branch { arms, otherwise })
    }

    pub(super) fn hours(&mut self, node: &Node) -> Option<StepKind> {
        let name = text(node, "calendar", &mut self.c.sink)?;
        let found = self.c.calendars.iter().position(|(n, _)| *n == name.value);
        let calendar = match found {
            Some(i) => self.c.calendars[..i]
                .iter()
                .filter(|(_, c)| c.is_some())
                .count(),
            None => {
                let names: Vec<String> = self.c.calendars.iter().map(|(n, _)| n.clone()).collect();
                let close =
                    did_you_mean(&name.value, names.iter().map(String::as_str)).map(str::to_owned);
                self.c
                    .sink
                    .error(
                        Code::UnknownCalendar,
                        name.pos,
                        format!("unknown calendar `{}`", name.value),
                    )
                    .hint(match close {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => "define it under `calendars:` at the top of the file".into(),
                    });
                0
            }
        };
        let open = self.target("open");
        let closed = self.target("closed");
        let holiday = self.opt_target("holiday").unwrap_or(closed);
        let closure = self.opt_target("closure").unwrap_or(closed);
        Some(StepKind::Hours {
            calendar,
            open,
            closed,
            holiday,
            closure,
        })
    }

    pub(super) fn subflow(&mut self, node: &Node) -> Option<StepKind> {
        let name = text(node, "subflow", &mut self.c.sink)?;
        let Some(i) = self.c.subflows.iter().position(|s| s.name == name.value) else {
            let names: Vec<String> = self.c.subflows.iter().map(|s| s.name.clone()).collect();
            let close =
                did_you_mean(&name.value, names.iter().map(String::as_str)).map(str::to_owned);
            self.c
                .sink
                .error(
                    Code::UnknownSubflow,
                    name.pos,
                    format!("unknown subflow `{}`", name.value),
                )
                .hint(match close {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "define it under `subflows:` at the top of the file".into(),
                });
            return None;
        };
        let args = match self.f.get("args") {
            Some(n) => self.expr_map(n, "`args`"),
            None => Vec::new(),
        };
        let params = self.c.subflows[i].params.clone();
        for (arg, _) in &args {
            if !params.iter().any(|(p, _)| *p == arg.value) {
                let close = did_you_mean(&arg.value, params.iter().map(|(p, _)| p.as_str()))
                    .map(str::to_owned);
                self.c
                    .sink
                    .error(
                        Code::UnknownSubflow,
                        arg.pos,
                        format!("subflow `{}` has no parameter `{}`", name.value, arg.value),
                    )
                    .hint(match close {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => format!(
                            "its parameters: {}",
                            params
                                .iter()
                                .map(|(p, _)| p.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
            }
        }
        for (param, has_default) in &params {
            if !has_default && !args.iter().any(|(a, _)| a.value == *param) {
                self.c
                    .sink
                    .error(
                        Code::UnknownSubflow,
                        name.pos,
                        format!("subflow `{}` needs argument `{param}`", name.value),
                    )
                    .hint(format!("pass it: `args: {{ {param}: <expression> }}`"));
            }
        }
        let into = self.variable("into");
        let next = self.target("next");
        Some(StepKind::Subflow {
            scope: i + 1,
            args: args.into_iter().map(|(k, e)| (k.value, e)).collect(),
            into,
            next,
        })
    }

    pub(super) fn return_(&mut self, node: &Node) -> Option<StepKind> {
        if self.cx.index == 0 {
            self.c
                .sink
                .error(
                    Code::ReturnOutsideSubflow,
                    self.id.pos,
                    "`return` is only meaningful inside a subflow",
                )
                .hint("end the call with `hangup`, or move these steps into a subflow");
            return None;
        }
        let values = self.expr_map(node, "`return`");
        Some(StepKind::Return {
            values: values.into_iter().map(|(k, e)| (k.value, e)).collect(),
        })
    }

    pub(super) fn language(&mut self, node: &Node) -> Option<StepKind> {
        let language = text(node, "language", &mut self.c.sink)?;
        self.c.check_language(&language);
        let next = self.target("next");
        Some(StepKind::Language {
            language: language.value,
            next,
        })
    }

    pub(super) fn hangup(&mut self, node: &Node) -> Option<StepKind> {
        if !(node.is_null() || node.as_str() == Some("normal")) {
            self.c
                .sink
                .error(Code::BadValue, node.pos(), "`hangup` takes no value")
                .hint("write `hangup:` alone (or `hangup: normal`); play a prompt in a step before it");
        }
        Some(StepKind::Hangup)
    }
}
