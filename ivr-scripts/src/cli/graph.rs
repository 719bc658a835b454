//! `svi graph FILE [--format dot|mermaid]`: the flow as a picture.
//!
//! One node per step (labelled with its id and kind), one edge per reference (labelled with
//! the menu key or the branch it is taken on: `ok`, `not found`, `error`...); subflows are
//! drawn as clusters. The graph comes from the compiled flow, so it is the graph that runs.
//! [`FlowGraph`] is that graph as data: the DOT and Mermaid writers here and the admin web's
//! drawing read the same one.

use std::io::Write;
use std::path::Path;

use super::{finish, load, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::flow::{Flow, StepKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// A compiled flow's graph: its scopes (the main flow first, then each subflow) and the
/// calls from a `subflow` step to the subflow's first step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowGraph {
    pub name: String,
    pub scopes: Vec<GraphScope>,
    /// `(scope, step)` of the calling step, then of the subflow's start.
    pub calls: Vec<((usize, usize), (usize, usize))>,
}

/// The steps of one scope and the jumps between them (indices into `steps`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphScope {
    /// `None` for the main flow.
    pub name: Option<String>,
    pub start: usize,
    pub steps: Vec<GraphStep>,
    pub edges: Vec<GraphEdge>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphStep {
    pub id: String,
    /// `play`, `menu`, `queue`...
    pub kind: &'static str,
    /// Where the step is written in the file.
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphEdge {
    pub from: usize,
    pub to: usize,
    /// The menu key or branch (`""` for the plain next step, `error` for the error path).
    pub label: String,
}

impl FlowGraph {
    /// The graph of a compiled flow.
    pub fn of(flow: &Flow) -> FlowGraph {
        let mut calls = Vec::new();
        let scopes = flow
            .scopes
            .iter()
            .enumerate()
            .map(|(s, scope)| {
                let mut edges = Vec::new();
                for (i, step) in scope.steps.iter().enumerate() {
                    for (label, target) in step.edges() {
                        edges.push(GraphEdge {
                            from: i,
                            to: target.get(),
                            label,
                        });
                    }
                    if let StepKind::Subflow { scope: callee, .. } = step.kind {
                        if let Some(sub) = flow.scopes.get(callee) {
                            calls.push(((s, i), (callee, sub.start.get())));
                        }
                    }
                }
                GraphScope {
                    name: scope.name.clone(),
                    start: scope.start.get(),
                    steps: scope
                        .steps
                        .iter()
                        .map(|step| GraphStep {
                            id: step.id.clone(),
                            kind: step.kind.name(),
                            line: step.pos.line,
                        })
                        .collect(),
                    edges,
                }
            })
            .collect();
        FlowGraph {
            name: flow.name.clone(),
            scopes,
            calls,
        }
    }
}

/// Prints the graph of `file` (checked permissively: drawing needs no engine configuration).
pub fn graph(file: &Path, format: GraphFormat, out: &mut dyn Write) -> i32 {
    let result = (|| -> Result<i32, CliError> {
        let Some(flow) = load(file, &CheckContext::permissive(), out)? else {
            return Ok(EXIT_FAILED);
        };
        let graph = FlowGraph::of(&flow);
        match format {
            GraphFormat::Dot => dot(&graph, out)?,
            GraphFormat::Mermaid => mermaid(&graph, out)?,
        }
        Ok(EXIT_OK)
    })();
    finish(result, out)
}

fn node_id(scope: usize, step: usize) -> String {
    format!("s{scope}_{step}")
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(graph: &FlowGraph, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "digraph \"{}\" {{", quote(&graph.name))?;
    writeln!(out, "  rankdir=TB;")?;
    writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    )?;
    for (s, scope) in graph.scopes.iter().enumerate() {
        let indent = if scope.name.is_some() { "    " } else { "  " };
        if let Some(name) = &scope.name {
            writeln!(out, "  subgraph cluster_{s} {{")?;
            writeln!(out, "    label=\"subflow {}\";", quote(name))?;
        }
        for (i, step) in scope.steps.iter().enumerate() {
            let shape = if i == scope.start { ", penwidth=2" } else { "" };
            writeln!(
                out,
                "{indent}{} [label=\"{}\\n({})\"{shape}];",
                node_id(s, i),
                quote(&step.id),
                step.kind
            )?;
        }
        for e in &scope.edges {
            let attrs = match e.label.as_str() {
                "" => String::new(),
                "error" => " [label=\"error\", style=dashed]".into(),
                l => format!(" [label=\"{}\"]", quote(l)),
            };
            writeln!(
                out,
                "{indent}{} -> {}{attrs};",
                node_id(s, e.from),
                node_id(s, e.to)
            )?;
        }
        if scope.name.is_some() {
            writeln!(out, "  }}")?;
        }
    }
    // Calls into subflows.
    for ((s, i), (callee, start)) in &graph.calls {
        writeln!(
            out,
            "  {} -> {} [style=dotted, label=\"call\"];",
            node_id(*s, *i),
            node_id(*callee, *start)
        )?;
    }
    writeln!(out, "}}")?;
    Ok(())
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn mermaid(graph: &FlowGraph, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "flowchart TD")?;
    for (s, scope) in graph.scopes.iter().enumerate() {
        let indent = if scope.name.is_some() { "    " } else { "  " };
        if let Some(name) = &scope.name {
            writeln!(out, "  subgraph sub{s}[\"subflow {}\"]", mermaid_text(name))?;
        }
        for (i, step) in scope.steps.iter().enumerate() {
            writeln!(
                out,
                "{indent}{}[\"{}<br/>({})\"]",
                node_id(s, i),
                mermaid_text(&step.id),
                step.kind
            )?;
        }
        for e in &scope.edges {
            let arrow = match e.label.as_str() {
                "" => " --> ".to_owned(),
                "error" => " -. error .-> ".to_owned(),
                l => format!(" -->|\"{}\"| ", mermaid_text(l)),
            };
            writeln!(
                out,
                "{indent}{}{arrow}{}",
                node_id(s, e.from),
                node_id(s, e.to)
            )?;
        }
        if scope.name.is_some() {
            writeln!(out, "  end")?;
        }
    }
    for ((s, i), (callee, start)) in &graph.calls {
        writeln!(
            out,
            "  {} -.->|call| {}",
            node_id(*s, *i),
            node_id(*callee, *start)
        )?;
    }
    Ok(())
}
