//! Pass 2 and the frame of pass 3: the scopes of a flow (the main flow and each subflow),
//! their step ids, parameters and variables.
//!
//! Step ids and variable names are collected before any step is decoded, so a step may refer
//! to a step defined further down, and an expression may use a variable that a later `set`
//! assigns (every variable exists from the start of its scope, as `()` until assigned).

use std::collections::{HashMap, HashSet};

use super::{steps, Compiler, ScopeCx, SubflowSig, SUBFLOW_FIELDS};
use crate::decode::{is_identifier, name, Fields, Spanned};
use crate::diagnostic::{Code, Pos};
use crate::expr::{Expr, BUILTINS};
use crate::flow::{Param, Scope, StepIdx};
use crate::yaml::{Kind, Node};

/// The raw parts of a scope, found in pass 2.
pub(super) struct ScopeDecl<'a> {
    pub(super) name: Option<Spanned<String>>,
    pub(super) pos: Pos,
    pub(super) start: Option<&'a Node>,
    pub(super) on_error: Option<&'a Node>,
    pub(super) vars: Option<&'a Node>,
    pub(super) params: Option<&'a Node>,
    pub(super) steps: Vec<(Spanned<String>, &'a Node)>,
    pub(super) variables: Vec<String>,
}

impl<'a> Compiler<'a> {
    /// Reads the ids of a `steps` mapping, reporting duplicates.
    pub(super) fn step_ids(
        &mut self,
        node: Option<&'a Node>,
        what: &str,
    ) -> Vec<(Spanned<String>, &'a Node)> {
        let Some(node) = node else { return Vec::new() };
        let Some(entries) = node.as_map() else {
            self.sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    format!("`steps` of {what} must map step ids to steps"),
                )
                .hint("write each step under `steps:` as `<id>: { <kind>: ..., next: ... }`");
            return Vec::new();
        };
        let mut out: Vec<(Spanned<String>, &'a Node)> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (key, value) in entries {
            let Some(id) = name(key, "step id", &mut self.sink) else {
                continue;
            };
            if let Some(first) = seen.get(&id.value) {
                self.sink
                    .error(
                        Code::DuplicateStep,
                        id.pos,
                        format!("step `{}` is defined twice in {what}", id.value),
                    )
                    .hint(format!(
                        "the first definition is at line {}; rename one of them",
                        first.line
                    ));
                continue;
            }
            seen.insert(id.value.clone(), id.pos);
            out.push((id, value));
        }
        out
    }

    pub(super) fn subflow_decls(&mut self, node: &'a Node, decls: &mut Vec<ScopeDecl<'a>>) {
        let Some(entries) = node.as_map() else {
            self.sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    "`subflows` must map subflow names to subflows",
                )
                .hint("for example `subflows: { identify: { start: ask, steps: { ... } } }`");
            return;
        };
        crate::decode::report_duplicate_keys(entries, "`subflows`", &mut self.sink);
        for (key, value) in entries {
            let Some(sub_name) = name(key, "subflow name", &mut self.sink) else {
                continue;
            };
            if self.subflows.iter().any(|s| s.name == sub_name.value) {
                continue; // reported as a duplicate key
            }
            let what = format!("subflow `{}`", sub_name.value);
            let Some(mut f) = Fields::new(value, SUBFLOW_FIELDS, what.clone(), &mut self.sink)
            else {
                continue;
            };
            let _ = f.get("description");
            let params_node = f.get("params");
            let params = self.params(params_node);
            let start = f.require("start", sub_name.pos, &mut self.sink);
            let steps = f.get("steps");
            if steps.is_none() {
                self.sink
                    .error(
                        Code::MissingField,
                        sub_name.pos,
                        format!("{what} needs a `steps` mapping"),
                    )
                    .hint("list its steps under `steps:`, ending with a `return` step");
            }
            let decl = ScopeDecl {
                name: Some(sub_name.clone()),
                pos: sub_name.pos,
                start,
                on_error: f.get("on_error"),
                vars: f.get("vars"),
                params: params_node,
                steps: self.step_ids(steps, &what),
                variables: Vec::new(),
            };
            f.finish(&mut self.sink);
            self.subflows.push(SubflowSig {
                name: sub_name.value,
                params,
            });
            decls.push(decl);
        }
    }

    /// Parameter names and whether each has a default: `[a, b]` or `{ a: ~, b: "1" }`.
    pub(super) fn params(&mut self, node: Option<&Node>) -> Vec<(String, bool)> {
        let Some(node) = node else { return Vec::new() };
        let mut out = Vec::new();
        match &node.kind {
            Kind::Seq(items) => {
                for item in items {
                    if let Some(p) = self.variable_name(item, "parameter") {
                        out.push((p.value, false));
                    }
                }
            }
            Kind::Map(entries) => {
                crate::decode::report_duplicate_keys(entries, "`params`", &mut self.sink);
                for (key, value) in entries {
                    if let Some(p) = self.variable_name(key, "parameter") {
                        out.push((p.value, !value.is_null()));
                    }
                }
            }
            Kind::Scalar(..) => {
                self.sink.error(
                    Code::WrongType,
                    node.pos(),
                    "`params` must be a list of names or a mapping of names to default values",
                )
                .hint("for example `params: [number]` or `params: { number: ~, prefix: '\"+33\"' }`");
            }
        }
        out
    }

    /// Pass 3 for one scope.
    pub(super) fn scope(&mut self, index: usize, decl: &ScopeDecl<'a>) -> Option<Scope> {
        let mut known: Vec<String> = BUILTINS.iter().map(|s| (*s).to_owned()).collect();
        known.extend(decl.variables.iter().cloned());
        let cx = ScopeCx {
            index,
            name: decl.name.as_ref().map(|n| n.value.clone()),
            ids: decl.steps.iter().map(|(id, _)| id.value.clone()).collect(),
            by_id: decl
                .steps
                .iter()
                .enumerate()
                .filter_map(|(i, (id, _))| {
                    Some((id.value.clone(), StepIdx(u32::try_from(i).ok()?)))
                })
                .collect(),
            known,
        };
        if decl.steps.is_empty() && decl.start.is_some() {
            self.sink
                .error(
                    Code::MissingField,
                    decl.pos,
                    format!("{} has no steps", cx.what()),
                )
                .hint("add steps under `steps:`");
        }
        let start = decl.start.and_then(|n| self.step_ref(n, &cx));
        let on_error = decl.on_error.and_then(|n| self.step_ref(n, &cx));
        let params = self.param_defaults(decl.params, &cx);
        let vars = self.vars(decl.vars, &cx);
        let mut steps = Vec::new();
        for (id, node) in &decl.steps {
            steps.push(steps::decode(self, &cx, id, node));
        }
        let steps: Option<Vec<_>> = steps.into_iter().collect();
        Some(Scope {
            name: cx.name.clone(),
            pos: decl.pos,
            start: start?,
            on_error,
            params,
            vars,
            variables: decl.variables.clone(),
            steps: steps?,
        })
    }

    pub(super) fn param_defaults(&mut self, node: Option<&Node>, cx: &ScopeCx) -> Vec<Param> {
        let Some(node) = node else { return Vec::new() };
        match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_str())
                .map(|n| Param {
                    name: n.to_owned(),
                    default: None,
                })
                .collect(),
            Kind::Map(entries) => entries
                .iter()
                .filter_map(|(k, v)| {
                    let name = k.as_str()?.to_owned();
                    let default = if v.is_null() { None } else { self.expr(v, cx) };
                    Some(Param { name, default })
                })
                .collect(),
            Kind::Scalar(..) => Vec::new(),
        }
    }

    pub(super) fn vars(
        &mut self,
        node: Option<&Node>,
        cx: &ScopeCx,
    ) -> Vec<(String, Option<Expr>)> {
        let Some(node) = node else { return Vec::new() };
        let Some(entries) = node.as_map() else {
            self.sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    "`vars` must map variable names to initial values",
                )
                .hint("for example `vars: { attempts: 0, vip: false }`");
            return Vec::new();
        };
        crate::decode::report_duplicate_keys(entries, "`vars`", &mut self.sink);
        let mut out = Vec::new();
        for (key, value) in entries {
            let Some(var) = self.variable_name(key, "variable") else {
                continue;
            };
            let init = if value.is_null() {
                None
            } else {
                self.expr(value, cx)
            };
            out.push((var.value, init));
        }
        out
    }
}

/// Variables a scope defines: `vars:`, parameters, `set` targets, `into` of steps.
pub(super) fn declared_variables(decl: &ScopeDecl<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |n: &str| {
        if is_identifier(n) && !BUILTINS.contains(&n) && seen.insert(n.to_owned()) {
            out.push(n.to_owned());
        }
    };
    if let Some(entries) = decl.vars.and_then(Node::as_map) {
        entries
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .for_each(&mut add);
    }
    match decl.params.map(|p| &p.kind) {
        Some(Kind::Seq(items)) => items.iter().filter_map(Node::as_str).for_each(&mut add),
        Some(Kind::Map(entries)) => entries
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .for_each(&mut add),
        _ => {}
    }
    for (_, step) in &decl.steps {
        if let Some(entries) = step.get("set").and_then(Node::as_map) {
            entries
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .for_each(&mut add);
        }
        if let Some(into) = step.get("into").and_then(Node::as_str) {
            add(into);
        }
    }
    out
}
