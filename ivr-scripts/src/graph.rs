//! A compiled flow's graph as data: one node per step (its id and kind), one edge per
//! reference (labelled with the menu key or the branch it is taken on), subflows as their
//! own scopes. `svi graph` writes it as DOT or Mermaid; the admin web draws it as SVG.

use crate::flow::{Flow, StepKind};

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
