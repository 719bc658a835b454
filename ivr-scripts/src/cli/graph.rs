//! `svi graph FILE [--format dot|mermaid]`: the flow as a picture.
//!
//! One node per step (labelled with its id and kind), one edge per reference (labelled with
//! the menu key or the branch it is taken on: `ok`, `not found`, `error`...); subflows are
//! drawn as clusters. The graph comes from the compiled flow, so it is the graph that runs.
//! The graph is [`crate::graph::FlowGraph`], which the admin web's drawing reads too.

use std::io::Write;
use std::path::Path;

use super::{finish, load, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::graph::FlowGraph;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
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
