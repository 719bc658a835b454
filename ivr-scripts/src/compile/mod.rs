//! From YAML text to a validated [`Flow`], or every reason why not.
//!
//! The compiler works in passes over the spanned YAML tree:
//!
//! 1. **Header**: flow name, languages, time zone, calendars, subflow signatures.
//! 2. **Declarations**: the step ids of each scope (duplicates are errors) and the variables
//!    each scope defines (`vars:`, parameters, `set` targets, `into` of collects and lookups),
//!    so that any step may reference any other and expressions can be checked against the
//!    complete list of names, whatever the order of steps in the file.
//! 3. **Steps** ([`steps`]): each step is decoded into its final form, references resolved to
//!    indices, prompts, queues and connectors checked against the [`CheckContext`],
//!    expressions compiled.
//! 4. **Graph checks** ([`check`]): unreachable steps, loops that never wait for the caller,
//!    menus with no way out, subflow recursion, missing error branches. They run only when the
//!    steps are free of errors, so they never report consequences of an earlier mistake.
//!
//! All diagnostics of a file are returned together, sorted by position. Pass 2 lives in
//! `scope`, name resolution and expression compilation in `refs`.

mod check;
mod refs;
mod scope;
mod steps;

pub(crate) use refs::{is_prompt_name, shortlist};
use scope::{declared_variables, ScopeDecl};

use std::collections::HashMap;
use std::path::Path;

use chrono_tz::Tz;

use crate::context::CheckContext;
use crate::decode::{name, text, text_list, Fields};
use crate::diagnostic::{Code, Diagnostic, Pos, Sink};
use crate::expr::ExprEngine;
use crate::flow::{Flow, Scope, StepIdx};
use crate::hours::{decode_calendar, parse_tz, Calendar};
use crate::yaml::{self, Node};

const TOP_FIELDS: &[&str] = &[
    "flow",
    "description",
    "language",
    "languages",
    "timezone",
    "start",
    "on_error",
    "vars",
    "calendars",
    "subflows",
    "steps",
];
const SUBFLOW_FIELDS: &[&str] = &[
    "description",
    "params",
    "start",
    "on_error",
    "vars",
    "steps",
];

/// Compiles a flow file. `file` is only used in diagnostics.
pub fn compile(source: &str, file: &Path, ctx: &CheckContext) -> Result<Flow, Vec<Diagnostic>> {
    let mut sink = Sink::new(file.to_path_buf());
    let root = match yaml::parse(source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            sink.error(Code::MissingField, Pos::new(1, 1), "the flow file is empty")
                .hint("a flow starts with `flow: <name>`, `start: <first step>` and `steps:`");
            return Err(sink.into_sorted());
        }
        Err(e) => {
            sink.error(e.code, e.pos, e.message).maybe_hint(e.hint);
            return Err(sink.into_sorted());
        }
    };
    let mut c = Compiler {
        source,
        ctx,
        sink,
        engine: ExprEngine::new(),
        languages: Vec::new(),
        calendars: Vec::new(),
        subflows: Vec::new(),
    };
    let flow = c.flow(&root, file);
    let Compiler { sink, .. } = c;
    match flow {
        Some(flow) if !sink.has_errors() => Ok(Flow {
            warnings: sink.into_sorted(),
            ..flow
        }),
        _ => Err(sink.into_sorted()),
    }
}

/// A subflow as seen from a `subflow` step: its name and parameters (with "has a default").
pub(crate) struct SubflowSig {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, bool)>,
}

/// What steps of one scope may refer to.
pub(crate) struct ScopeCx {
    pub(crate) index: usize,
    pub(crate) name: Option<String>,
    pub(crate) ids: Vec<String>,
    /// `ids` by name, so resolving a reference does not scan the list.
    pub(crate) by_id: HashMap<String, StepIdx>,
    /// Built-ins plus every variable the scope defines.
    pub(crate) known: Vec<String>,
}

impl ScopeCx {
    pub(crate) fn find(&self, id: &str) -> Option<StepIdx> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn what(&self) -> String {
        match &self.name {
            None => "this flow".into(),
            Some(n) => format!("subflow `{n}`"),
        }
    }
}

pub(crate) struct Compiler<'a> {
    pub(crate) source: &'a str,
    pub(crate) ctx: &'a CheckContext,
    pub(crate) sink: Sink,
    pub(crate) engine: ExprEngine,
    /// The languages the flow speaks; prompts must exist in all of them.
    pub(crate) languages: Vec<String>,
    /// Calendars by name; `None` when the definition had errors (already reported).
    pub(crate) calendars: Vec<(String, Option<Calendar>)>,
    pub(crate) subflows: Vec<SubflowSig>,
}

impl<'a> Compiler<'a> {
    fn flow(&mut self, root: &'a Node, file: &Path) -> Option<Flow> {
        let mut top = Fields::new(root, TOP_FIELDS, "the flow", &mut self.sink)?;
        let flow_name = top
            .require("flow", root.pos(), &mut self.sink)
            .and_then(|n| name(n, "flow name", &mut self.sink));
        if flow_name.is_none() && top.key("flow").is_none() {
            self.sink
                .hint("start the file with `flow: <name>`, e.g. `flow: demo`");
        }
        let description = top
            .get("description")
            .and_then(|n| text(n, "description", &mut self.sink))
            .map(|t| t.value);
        let timezone = top
            .get("timezone")
            .and_then(|n| parse_tz(n, &mut self.sink))
            .unwrap_or(Tz::UTC);

        // Calendars.
        if let Some(node) = top.get("calendars") {
            self.calendars(node, timezone);
        }

        // Scopes: main first, then subflows in file order.
        let mut decls = vec![ScopeDecl {
            name: None,
            pos: root.pos(),
            start: top.get("start"),
            on_error: top.get("on_error"),
            vars: top.get("vars"),
            params: None,
            steps: Vec::new(),
            variables: Vec::new(),
        }];
        let steps_node = top.get("steps");
        if steps_node.is_none() {
            self.sink
                .error(Code::MissingField, root.pos(), "the flow needs a `steps` mapping")
                .hint("list the steps under `steps:`, each with an id, e.g. `welcome: { play: welcome, next: menu }`");
        }
        decls[0].steps = self.step_ids(steps_node, "this flow");
        if let Some(subs) = top.get("subflows") {
            self.subflow_decls(subs, &mut decls);
        }
        if decls[0].start.is_none() {
            self.sink
                .error(
                    Code::MissingField,
                    root.pos(),
                    "the flow needs a `start` step",
                )
                .hint("add `start: <id of the first step>`");
        }

        // Languages: the default, those listed, those a `language` step switches to.
        // Unknown languages are reported once (here or at their `language` step) and left
        // out, so their missing prompts do not bury the real mistake.
        let default_language = match top.get("language") {
            Some(node) => text(node, "language", &mut self.sink)
                .inspect(|l| self.check_language(l))
                .map(|l| l.value),
            None => Some(self.ctx.default_language.clone()),
        }
        .unwrap_or_else(|| self.ctx.default_language.clone());
        let mut candidates = vec![default_language.clone()];
        if let Some(list) = top.get("languages") {
            for l in text_list(list, "language", &mut self.sink).unwrap_or_default() {
                self.check_language(&l);
                candidates.push(l.value);
            }
        }
        for decl in &decls {
            for (_, node) in &decl.steps {
                if let Some(l) = node.get("language").and_then(|n| n.as_str()) {
                    candidates.push(l.to_owned());
                }
            }
        }
        for l in candidates {
            if self.ctx.languages.contains(&l) && !self.languages.contains(&l) {
                self.languages.push(l);
            }
        }
        top.finish(&mut self.sink);

        // Variables each scope defines.
        for decl in &mut decls {
            decl.variables = declared_variables(decl);
        }

        // Pass 3: steps.
        let mut scopes = Vec::new();
        for (index, decl) in decls.iter().enumerate() {
            scopes.push(self.scope(index, decl));
        }
        let scopes: Option<Vec<Scope>> = scopes.into_iter().collect();
        let scopes = scopes?;
        if self.sink.has_errors() {
            return None;
        }
        let flow = Flow {
            name: flow_name?.value,
            description,
            file: file.to_path_buf(),
            default_language,
            languages: std::mem::take(&mut self.languages),
            timezone,
            scopes,
            calendars: self.calendars.drain(..).filter_map(|(_, c)| c).collect(),
            engine: std::mem::replace(&mut self.engine, ExprEngine::new()),
            warnings: Vec::new(),
        };
        // Pass 4: graph checks, on a flow whose steps all decoded.
        check::check(&flow, &mut self.sink);
        Some(flow)
    }

    fn calendars(&mut self, node: &Node, timezone: Tz) {
        let Some(entries) = node.as_map() else {
            self.sink
                .error(
                    Code::WrongType,
                    node.pos(),
                    "`calendars` must map calendar names to calendars",
                )
                .hint(
                    "for example `calendars: { office: { weekly: { mon-fri: \"08:00-18:00\" } } }`",
                );
            return;
        };
        crate::decode::report_duplicate_keys(entries, "`calendars`", &mut self.sink);
        for (key, value) in entries {
            let Some(cal_name) = name(key, "calendar name", &mut self.sink) else {
                continue;
            };
            let calendar = decode_calendar(&cal_name, value, timezone, &mut self.sink);
            self.calendars.push((cal_name.value, calendar));
        }
    }
}
