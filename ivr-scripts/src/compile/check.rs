//! Graph checks on a flow whose steps all decoded.
//!
//! - **Unreachable steps** (warning): nothing leads there from `start` or `on_error`.
//! - **Loops without input** (error): a cycle of steps none of which plays audio or waits for
//!   the caller or the network. At run time it would spin until the step bound trips; at load
//!   it is certainly a mistake (a retry loop needs at least a "please wait" prompt).
//! - **No way out** (error): a menu or collect from which no path reaches a step that ends the
//!   call (`hangup`, `queue`, `transfer`, or `return` in a subflow): the caller would be trapped.
//! - **Subflow recursion** (error): subflows that call themselves.
//! - **Missing error branch**: a `lookup`/`action` with neither `error` nor `on_error` is an
//!   error (a slow backend must never drop the caller); other steps that evaluate expressions
//!   without a fallback give one warning per flow.
//!
//! All graph walks are iterative: a generated file with thousands of steps must not overflow
//! the stack.

use crate::diagnostic::{Code, Sink};
use crate::flow::{Flow, Scope, StepIdx, StepKind};

pub(crate) fn check(flow: &Flow, sink: &mut Sink) {
    let recursive = subflow_recursion(flow, sink);
    if recursive {
        return;
    }
    let waits = subflow_always_waits(flow);
    for scope in &flow.scopes {
        unreachable(scope, sink);
        loops(scope, &waits, sink);
        way_out(scope, sink);
    }
    unused_subflows(flow, sink);
    error_branches(flow, sink);
}

fn adjacency(scope: &Scope) -> Vec<Vec<usize>> {
    scope
        .steps
        .iter()
        .map(|s| s.edges().into_iter().map(|(_, t)| t.get()).collect())
        .collect()
}

/// Nodes reachable from `roots` following `adj`.
fn reach(adj: &[Vec<usize>], roots: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut seen = vec![false; adj.len()];
    let mut stack: Vec<usize> = roots.into_iter().collect();
    while let Some(n) = stack.pop() {
        if n >= seen.len() || seen[n] {
            continue;
        }
        seen[n] = true;
        stack.extend(adj[n].iter().copied());
    }
    seen
}

fn unreachable(scope: &Scope, sink: &mut Sink) {
    let adj = adjacency(scope);
    let roots = std::iter::once(scope.start.get()).chain(scope.on_error.map(StepIdx::get));
    let seen = reach(&adj, roots);
    for (step, seen) in scope.steps.iter().zip(seen) {
        if !seen {
            sink.warning(
                Code::UnreachableStep,
                step.pos,
                format!("step `{}` is never reached", step.id),
            )
            .hint("link it from another step (e.g. `next:`) or delete it");
        }
    }
}

/// For each scope, whether every path from its start to a `return` passes a waiting step.
fn subflow_always_waits(flow: &Flow) -> Vec<bool> {
    // Without recursion, a fixpoint over "callee known" settles in at most #scopes rounds.
    let mut waits = vec![false; flow.scopes.len()];
    for _ in 0..=flow.scopes.len() {
        let next: Vec<bool> = flow
            .scopes
            .iter()
            .map(|scope| {
                let mut seen = vec![false; scope.steps.len()];
                let mut stack = vec![scope.start.get()];
                while let Some(n) = stack.pop() {
                    if seen[n] {
                        continue;
                    }
                    seen[n] = true;
                    let step = &scope.steps[n];
                    if step_waits(&step.kind, &waits) {
                        continue;
                    }
                    if matches!(step.kind, StepKind::Return { .. }) {
                        return false;
                    }
                    stack.extend(step.edges().into_iter().map(|(_, t)| t.get()));
                }
                true
            })
            .collect();
        if next == waits {
            break;
        }
        waits = next;
    }
    waits
}

fn step_waits(kind: &StepKind, sub_waits: &[bool]) -> bool {
    match kind {
        StepKind::Subflow { scope, .. } => sub_waits.get(*scope).copied().unwrap_or(true),
        k => k.waits(),
    }
}

/// Strongly connected components of the non-waiting subgraph (Kosaraju, iterative).
fn loops(scope: &Scope, sub_waits: &[bool], sink: &mut Sink) {
    let n = scope.steps.len();
    let busy: Vec<bool> = scope
        .steps
        .iter()
        .map(|s| !step_waits(&s.kind, sub_waits))
        .collect();
    let adj: Vec<Vec<usize>> = adjacency(scope)
        .into_iter()
        .enumerate()
        .map(|(i, targets)| {
            if busy[i] {
                targets.into_iter().filter(|t| busy[*t]).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut radj = vec![Vec::new(); n];
    for (i, targets) in adj.iter().enumerate() {
        for t in targets {
            radj[*t].push(i);
        }
    }
    // 1. Post-order of a DFS over `adj`.
    let mut order = Vec::with_capacity(n);
    let mut visited = vec![false; n];
    for root in 0..n {
        if visited[root] || !busy[root] {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        visited[root] = true;
        while let Some((node, i)) = stack.pop() {
            if let Some(&next) = adj[node].get(i) {
                stack.push((node, i + 1));
                if !visited[next] {
                    visited[next] = true;
                    stack.push((next, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    // 2. Components over the reversed graph, in reverse post-order.
    let mut component = vec![usize::MAX; n];
    let mut components: Vec<Vec<usize>> = Vec::new();
    for &root in order.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        let id = components.len();
        let mut members = Vec::new();
        let mut stack = vec![root];
        component[root] = id;
        while let Some(node) = stack.pop() {
            members.push(node);
            for &prev in &radj[node] {
                if component[prev] == usize::MAX {
                    component[prev] = id;
                    stack.push(prev);
                }
            }
        }
        components.push(members);
    }
    for members in components {
        let first = members.iter().copied().min().unwrap_or(0);
        let cyclic = members.len() > 1 || adj[first].contains(&first);
        if !cyclic {
            continue;
        }
        let cycle = cycle_through(first, &adj, &component);
        let names: Vec<&str> = cycle.iter().map(|i| scope.steps[*i].id.as_str()).collect();
        let step = &scope.steps[first];
        sink.error(
            Code::LoopWithoutInput,
            step.pos,
            format!(
                "steps loop without waiting for the caller: {} -> {}",
                names.join(" -> "),
                step.id
            ),
        )
        .hint("put a step that plays a prompt or waits for digits in the loop, or send one branch out of it");
    }
}

/// A shortest cycle from `start` back to itself within its component (BFS).
fn cycle_through(start: usize, adj: &[Vec<usize>], component: &[usize]) -> Vec<usize> {
    let mut parent = vec![usize::MAX; adj.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = vec![false; adj.len()];
    seen[start] = true;
    while let Some(node) = queue.pop_front() {
        for &next in &adj[node] {
            if component[next] != component[start] {
                continue;
            }
            if next == start {
                let mut path = vec![node];
                let mut at = node;
                while at != start {
                    at = parent[at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if !seen[next] {
                seen[next] = true;
                parent[next] = node;
                queue.push_back(next);
            }
        }
    }
    vec![start]
}

fn way_out(scope: &Scope, sink: &mut Sink) {
    let mut radj = vec![Vec::new(); scope.steps.len()];
    for (i, targets) in adjacency(scope).into_iter().enumerate() {
        for t in targets {
            radj[t].push(i);
        }
    }
    // A subflow step may end the call inside the subflow; give it the benefit of the doubt.
    let ends = scope.steps.iter().enumerate().filter_map(|(i, s)| {
        (s.kind.ends() || matches!(s.kind, StepKind::Subflow { .. })).then_some(i)
    });
    let can_end = reach(&radj, ends);
    for (step, ok) in scope.steps.iter().zip(can_end) {
        if ok || !matches!(step.kind, StepKind::Menu(_) | StepKind::Collect(_)) {
            continue;
        }
        sink.error(
            Code::NoWayOut,
            step.pos,
            format!(
                "{} `{}` has no way out: no choice leads to a hangup, queue or transfer",
                step.kind.name(),
                step.id
            ),
        )
        .hint("send one option (or `exhausted`) to a step that ends the call, e.g. `exhausted: goodbye` with `goodbye` playing a prompt then `hangup`");
    }
}

/// Finds cycles in the subflow call graph with one iterative depth-first search, and reports
/// each at the `subflow` step that closes it.
fn subflow_recursion(flow: &Flow, sink: &mut Sink) -> bool {
    // calls[s] = (callee, calling step) for each `subflow` step of scope s.
    let calls: Vec<Vec<(usize, usize)>> = flow
        .scopes
        .iter()
        .map(|scope| {
            scope
                .steps
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match s.kind {
                    StepKind::Subflow { scope, .. } => Some((scope, i)),
                    _ => None,
                })
                .collect()
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; calls.len()];
    let mut found = false;
    for root in 0..calls.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        let mut stack = vec![(root, 0usize)];
        while let Some((scope, i)) = stack.pop() {
            let Some(&(callee, step)) = calls[scope].get(i) else {
                mark[scope] = Mark::Done;
                continue;
            };
            stack.push((scope, i + 1));
            match mark.get(callee).copied() {
                Some(Mark::New) => {
                    mark[callee] = Mark::Open;
                    stack.push((callee, 0));
                }
                Some(Mark::Open) => {
                    found = true;
                    let name = flow.scopes[scope].name.as_deref().unwrap_or("");
                    sink.error(
                        Code::SubflowRecursion,
                        flow.scopes[scope].steps[step].pos,
                        format!(
                            "subflow `{name}` calls itself (directly or through other subflows)"
                        ),
                    )
                    .hint(
                        "subflows cannot recurse; use a menu or a counter with `branch` to repeat",
                    );
                }
                _ => {}
            }
        }
    }
    found
}

/// For each scope, whether some `subflow` step calls it, and whether one with an `error` does.
fn callers(flow: &Flow) -> (Vec<bool>, Vec<bool>) {
    let mut called = vec![false; flow.scopes.len()];
    let mut handled = vec![false; flow.scopes.len()];
    for step in flow.scopes.iter().flat_map(|s| &s.steps) {
        if let StepKind::Subflow { scope, .. } = step.kind {
            if let Some(c) = called.get_mut(scope) {
                *c = true;
            }
            if let (Some(h), true) = (handled.get_mut(scope), step.error.is_some()) {
                *h = true;
            }
        }
    }
    (called, handled)
}

fn unused_subflows(flow: &Flow, sink: &mut Sink) {
    let (called, _) = callers(flow);
    for (scope, used) in flow.scopes.iter().zip(called).skip(1) {
        if !used {
            sink.warning(
                Code::UnreachableStep,
                scope.pos,
                format!(
                    "subflow `{}` is never used",
                    scope.name.as_deref().unwrap_or("")
                ),
            )
            .hint("call it with a `subflow` step or delete it");
        }
    }
}

fn error_branches(flow: &Flow, sink: &mut Sink) {
    let main_on_error = flow.main().on_error.is_some();
    let mut first_unhandled = None;
    let (_, handled) = callers(flow);
    for (scope, callers_handle) in flow.scopes.iter().zip(handled) {
        // From a subflow, failures propagate to the calling step, then the main `on_error`.
        let fallback = scope.on_error.is_some() || main_on_error || callers_handle;
        for step in &scope.steps {
            if step.error.is_some() || fallback {
                continue;
            }
            match &step.kind {
                StepKind::Lookup(call) | StepKind::Action(call) => {
                    sink.error(
                        Code::MissingErrorBranch,
                        step.pos,
                        format!(
                            "{} `{}` in step `{}` has no `error` branch",
                            step.kind.name(),
                            call.name,
                            step.id
                        ),
                    )
                    .hint("a slow or failed backend must not drop the caller: add `error: <step>` or a flow-level `on_error`");
                }
                kind if kind.has_expressions() && first_unhandled.is_none() => {
                    first_unhandled = Some(step);
                }
                _ => {}
            }
        }
    }
    if let Some(step) = first_unhandled {
        sink.warning(
            Code::MissingErrorBranch,
            step.pos,
            format!(
                "step `{}` evaluates expressions but neither it nor the flow has an error branch; a failure would hang up",
                step.id
            ),
        )
        .hint("add a flow-level `on_error: <step>` (e.g. a step that apologises and transfers to an operator)");
    }
}
