//! `svi graph FILE [--format dot|mermaid]`: the flow as a picture.
//!
//! One node per step (labelled with its id and kind), one edge per reference (labelled with
//! the menu key or the branch it is taken on: `ok`, `not found`, `error`...); subflows are
//! drawn as clusters. The graph comes from the compiled flow, so it is the graph that runs.

use std::io::Write;
use std::path::Path;

use super::{finish, load, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::flow::{Flow, StepIdx};

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
        match format {
            GraphFormat::Dot => dot(&flow, out)?,
            GraphFormat::Mermaid => mermaid(&flow, out)?,
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

fn dot(flow: &Flow, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "digraph \"{}\" {{", quote(&flow.name))?;
    writeln!(out, "  rankdir=TB;")?;
    writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    )?;
    for (s, scope) in flow.scopes.iter().enumerate() {
        let indent = if scope.name.is_some() { "    " } else { "  " };
        if let Some(name) = &scope.name {
            writeln!(out, "  subgraph cluster_{s} {{")?;
            writeln!(out, "    label=\"subflow {}\";", quote(name))?;
        }
        for (i, step) in scope.steps.iter().enumerate() {
            let shape = if StepIdx(u32::try_from(i).unwrap_or(0)) == scope.start {
                ", penwidth=2"
            } else {
                ""
            };
            writeln!(
                out,
                "{indent}{} [label=\"{}\\n({})\"{shape}];",
                node_id(s, i),
                quote(&step.id),
                step.kind.name()
            )?;
        }
        for (i, step) in scope.steps.iter().enumerate() {
            for (label, target) in step.edges() {
                let attrs = match label.as_str() {
                    "" => String::new(),
                    "error" => " [label=\"error\", style=dashed]".into(),
                    l => format!(" [label=\"{}\"]", quote(l)),
                };
                writeln!(
                    out,
                    "{indent}{} -> {}{attrs};",
                    node_id(s, i),
                    node_id(s, target.get())
                )?;
            }
        }
        if scope.name.is_some() {
            writeln!(out, "  }}")?;
        }
    }
    // Calls into subflows.
    for (s, scope) in flow.scopes.iter().enumerate() {
        for (i, step) in scope.steps.iter().enumerate() {
            if let crate::flow::StepKind::Subflow { scope: callee, .. } = step.kind {
                if let Some(sub) = flow.scopes.get(callee) {
                    writeln!(
                        out,
                        "  {} -> {} [style=dotted, label=\"call\"];",
                        node_id(s, i),
                        node_id(callee, sub.start.get())
                    )?;
                }
            }
        }
    }
    writeln!(out, "}}")?;
    Ok(())
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn mermaid(flow: &Flow, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "flowchart TD")?;
    for (s, scope) in flow.scopes.iter().enumerate() {
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
                step.kind.name()
            )?;
        }
        for (i, step) in scope.steps.iter().enumerate() {
            for (label, target) in step.edges() {
                let arrow = match label.as_str() {
                    "" => " --> ".to_owned(),
                    "error" => " -. error .-> ".to_owned(),
                    l => format!(" -->|\"{}\"| ", mermaid_text(l)),
                };
                writeln!(
                    out,
                    "{indent}{}{arrow}{}",
                    node_id(s, i),
                    node_id(s, target.get())
                )?;
            }
        }
        if scope.name.is_some() {
            writeln!(out, "  end")?;
        }
    }
    for (s, scope) in flow.scopes.iter().enumerate() {
        for (i, step) in scope.steps.iter().enumerate() {
            if let crate::flow::StepKind::Subflow { scope: callee, .. } = step.kind {
                if let Some(sub) = flow.scopes.get(callee) {
                    writeln!(
                        out,
                        "  {} -.->|call| {}",
                        node_id(s, i),
                        node_id(callee, sub.start.get())
                    )?;
                }
            }
        }
    }
    Ok(())
}
