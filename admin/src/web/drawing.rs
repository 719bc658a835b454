//! A flow drawn as SVG, server-side, from the graph `svi graph` prints
//! ([`ivr_scripts::graph::FlowGraph`]): no layout tool at run time, a simple layered
//! drawing instead. Each scope (the main flow, then each subflow in a dashed frame) is laid
//! out top-down: a step's layer is its distance from the scope's start (breadth first, so
//! loops back to a menu do not push it down), steps of a layer side by side in the order
//! they were reached. An edge to a lower layer or within a layer is a straight arrow; an
//! edge back up is a curve on the right, so loops stay readable. Colours come from the
//! stylesheet (classes on the shapes): the CSP allows no inline style.
//!
//! Every step is a `<g class="step" data-step="ID">` and every jump a `<g class="edge"
//! data-from="ID" data-to="ID">`, so the page's script can mark a simulated call's path.

use std::collections::VecDeque;

use ivr_scripts::graph::{FlowGraph, GraphScope};

use super::html::escape;

const BOX_W: i64 = 168;
const BOX_H: i64 = 44;
const GAP_X: i64 = 28;
const GAP_Y: i64 = 64;
const PAD: i64 = 24;
/// Room above a subflow's steps for its name.
const TITLE: i64 = 26;
/// Longest step id shown whole; longer ones are cut with an ellipsis.
const MAX_ID: usize = 20;

/// Where each step of one scope goes, in the scope's own coordinates.
struct Placed {
    /// Top-left corner of each step's box.
    at: Vec<(i64, i64)>,
    layer: Vec<usize>,
    width: i64,
    height: i64,
}

/// Each step's layer (its distance from the start) and its breadth-first visit rank.
fn layers(scope: &GraphScope) -> (Vec<usize>, Vec<usize>) {
    let n = scope.steps.len();
    let mut layer = vec![usize::MAX; n];
    let mut rank = vec![usize::MAX; n];
    let mut queue = VecDeque::new();
    if scope.start < n {
        layer[scope.start] = 0;
        queue.push_back(scope.start);
    }
    let mut visited = 0;
    while let Some(i) = queue.pop_front() {
        rank[i] = visited;
        visited += 1;
        for e in scope.edges.iter().filter(|e| e.from == i) {
            if e.to < n && layer[e.to] == usize::MAX {
                layer[e.to] = layer[i] + 1;
                queue.push_back(e.to);
            }
        }
    }
    // Steps no path reaches (the checker warns of them) go in one layer at the bottom, in
    // file order.
    let deepest = layer.iter().filter(|l| **l != usize::MAX).max().copied();
    let unreached = deepest.map_or(0, |d| d + 1);
    for (i, l) in layer.iter_mut().enumerate() {
        if *l == usize::MAX {
            *l = unreached;
            rank[i] = n + i;
        }
    }
    (layer, rank)
}

fn place(scope: &GraphScope) -> Placed {
    let (layer, rank) = layers(scope);
    let depth = layer.iter().max().map_or(0, |d| d + 1);
    // Within a layer, the order in which the steps were reached.
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    let mut order: Vec<usize> = (0..scope.steps.len()).collect();
    order.sort_by_key(|i| (layer[*i], rank[*i]));
    for i in order {
        rows[layer[i]].push(i);
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(0) as i64;
    let width = (widest * (BOX_W + GAP_X) - GAP_X).max(BOX_W);
    let mut at = vec![(0, 0); scope.steps.len()];
    for (r, row) in rows.iter().enumerate() {
        let row_w = row.len() as i64 * (BOX_W + GAP_X) - GAP_X;
        let left = (width - row_w) / 2;
        for (k, i) in row.iter().enumerate() {
            at[*i] = (
                left + k as i64 * (BOX_W + GAP_X),
                r as i64 * (BOX_H + GAP_Y),
            );
        }
    }
    let height = (depth as i64 * (BOX_H + GAP_Y) - GAP_Y).max(BOX_H);
    Placed {
        at,
        layer,
        width,
        height,
    }
}

fn short(id: &str) -> String {
    if id.chars().count() <= MAX_ID {
        id.to_string()
    } else {
        let cut: String = id.chars().take(MAX_ID - 1).collect();
        format!("{cut}…")
    }
}

/// The SVG of `graph`; `label` is its accessible name.
pub fn svg(graph: &FlowGraph, label: &str) -> String {
    let placed: Vec<Placed> = graph.scopes.iter().map(place).collect();
    // Scopes side by side, each subflow with room for its title; the right margin of a
    // scope leaves room for the curves of its loops.
    let mut left = Vec::with_capacity(placed.len());
    let mut x = PAD;
    for p in &placed {
        left.push(x);
        x += p.width + 2 * GAP_X + PAD;
    }
    let width = x;
    let height = placed.iter().map(|p| p.height).max().unwrap_or(BOX_H) + 2 * PAD + TITLE;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flow-drawing\" role=\"img\" \
         aria-label=\"{label}\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" \
         refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"10\" \
         markerHeight=\"10\" orient=\"auto-start-reverse\">\
         <path class=\"arrowhead\" d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>",
        label = escape(label),
    );
    for (s, (scope, p)) in graph.scopes.iter().zip(&placed).enumerate() {
        let (ox, oy) = (left[s], PAD + TITLE);
        if let Some(name) = &scope.name {
            out.push_str(&format!(
                "<g class=\"subflow\" data-subflow=\"{n}\"><rect class=\"frame\" x=\"{x}\" \
                 y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"8\"/><text class=\"title\" \
                 x=\"{tx}\" y=\"{ty}\">subflow {n}</text></g>",
                n = escape(name),
                x = ox - PAD / 2,
                y = oy - TITLE,
                w = p.width + GAP_X + PAD,
                h = p.height + TITLE + PAD / 2,
                tx = ox,
                ty = oy - 8,
            ));
        }
        for e in &scope.edges {
            let (Some(from), Some(to)) = (p.at.get(e.from), p.at.get(e.to)) else {
                continue;
            };
            let down = p.layer[e.to] > p.layer[e.from];
            let across = p.layer[e.to] == p.layer[e.from] && e.to != e.from;
            let (path, lx, ly) = if across {
                // Within a layer: side to side, straight.
                let y = oy + from.1 + BOX_H / 2;
                let (x1, x2) = if to.0 < from.0 {
                    (ox + from.0, ox + to.0 + BOX_W)
                } else {
                    (ox + from.0 + BOX_W, ox + to.0)
                };
                (format!("M{x1},{y} L{x2},{y}"), (x1 + x2) / 2, y - 4)
            } else if down {
                let (x1, y1) = (ox + from.0 + BOX_W / 2, oy + from.1 + BOX_H);
                let (x2, y2) = (ox + to.0 + BOX_W / 2, oy + to.1);
                (
                    format!("M{x1},{y1} L{x2},{y2}"),
                    (x1 + x2) / 2,
                    (y1 + y2) / 2,
                )
            } else {
                // Back up (or across): out of the right side, round, into the right side.
                let (x1, y1) = (ox + from.0 + BOX_W, oy + from.1 + BOX_H / 2);
                let (x2, y2) = (ox + to.0 + BOX_W, oy + to.1 + BOX_H / 2);
                let bulge = x1.max(x2) + GAP_X + (y1 - y2).abs() / 8;
                (
                    format!("M{x1},{y1} C{bulge},{y1} {bulge},{y2} {x2},{y2}"),
                    bulge - 6,
                    (y1 + y2) / 2,
                )
            };
            let class = match e.label.as_str() {
                "error" => "edge error",
                _ if down || across => "edge",
                _ => "edge back",
            };
            out.push_str(&format!(
                "<g class=\"{class}\" data-from=\"{f}\" data-to=\"{t}\"><path d=\"{path}\" \
                 marker-end=\"url(#arrow)\"/>",
                f = escape(&scope.steps[e.from].id),
                t = escape(&scope.steps[e.to].id),
            ));
            if !e.label.is_empty() {
                out.push_str(&format!(
                    "<text class=\"edge-label\" x=\"{lx}\" y=\"{ly}\">{}</text>",
                    escape(&e.label)
                ));
            }
            out.push_str("</g>");
        }
        for (i, step) in scope.steps.iter().enumerate() {
            let (x, y) = (ox + p.at[i].0, oy + p.at[i].1);
            let start = if i == scope.start { " start" } else { "" };
            out.push_str(&format!(
                "<g class=\"step kind-{kind}{start}\" data-step=\"{id}\" data-line=\"{line}\">\
                 <title>{id} ({kind}), line {line}</title>\
                 <rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"8\"/>\
                 <text class=\"id\" x=\"{tx}\" y=\"{ty1}\">{shown}</text>\
                 <text class=\"kind\" x=\"{tx}\" y=\"{ty2}\">{kind}</text></g>",
                kind = step.kind,
                id = escape(&step.id),
                line = step.line,
                shown = escape(&short(&step.id)),
                tx = x + BOX_W / 2,
                ty1 = y + 19,
                ty2 = y + 36,
            ));
        }
    }
    for ((s, i), (callee, start)) in &graph.calls {
        let (Some(a), Some(b)) = (
            placed.get(*s).and_then(|p| p.at.get(*i)),
            placed.get(*callee).and_then(|p| p.at.get(*start)),
        ) else {
            continue;
        };
        let (x1, y1) = (left[*s] + a.0 + BOX_W, PAD + TITLE + a.1 + BOX_H / 2);
        let (x2, y2) = (left[*callee] + b.0, PAD + TITLE + b.1 + BOX_H / 2);
        out.push_str(&format!(
            "<g class=\"edge call\"><path d=\"M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}\" \
             marker-end=\"url(#arrow)\"/></g>",
            mx = (x1 + x2) / 2,
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn graph_of(source: &str) -> FlowGraph {
        let flow = ivr_scripts::compile(
            source,
            Path::new("t.yaml"),
            &ivr_scripts::CheckContext::permissive(),
        )
        .expect("compiles");
        FlowGraph::of(&flow)
    }

    const MENU: &str = "flow: t\nstart: hello\nsteps:\n  hello: { play: welcome, next: menu }\n  \
        menu:\n    menu: main\n    options:\n      \"1\": info\n      \"2\": bye\n    \
        exhausted: bye\n  info: { play: info, next: menu }\n  bye: { hangup: }\n";

    /// The `(x, y)` of the box of `step` in the drawing.
    fn box_of(svg: &str, step: &str) -> (i64, i64) {
        let at = svg
            .find(&format!("data-step=\"{step}\""))
            .expect("step drawn");
        let rect = &svg[at..];
        let num = |attr: &str| -> i64 {
            let from = rect.find(&format!(" {attr}=\"")).expect(attr) + attr.len() + 3;
            rect[from..]
                .split('"')
                .next()
                .expect("value")
                .parse()
                .expect("number")
        };
        (num("x"), num("y"))
    }

    #[test]
    fn layers_go_down_from_the_start_and_a_loop_back_is_a_curve() {
        let svg = svg(&graph_of(MENU), "t");
        let (hello, menu, info, bye) = (
            box_of(&svg, "hello"),
            box_of(&svg, "menu"),
            box_of(&svg, "info"),
            box_of(&svg, "bye"),
        );
        assert!(hello.1 < menu.1 && menu.1 < info.1, "{svg}");
        assert_eq!(info.1, bye.1, "both one jump from the menu");
        assert_ne!(info.0, bye.0);
        // info -> menu goes back up: drawn as a curve, marked as such.
        assert!(
            svg.contains("<g class=\"edge back\" data-from=\"info\" data-to=\"menu\"><path d=\"M"),
            "{svg}"
        );
        assert!(svg.contains("class=\"step kind-play start\" data-step=\"hello\""));
        assert!(svg.contains(">exhausted</text>"));
        assert_eq!(svg.matches("<g class=\"step").count(), 4);
        assert_eq!(svg.matches("<g class=\"edge").count(), 5);
    }

    #[test]
    fn names_from_the_file_cannot_open_a_tag_and_long_ids_are_cut() {
        let long = "a_step_with_a_very_long_name_indeed";
        let source = format!(
            "flow: t\nstart: {long}\nsteps:\n  {long}: {{ play: \"x\", next: b }}\n  b: {{ hangup: }}\n"
        );
        let svg = svg(&graph_of(&source), "<t>");
        assert!(svg.contains("aria-label=\"&lt;t&gt;\""));
        assert!(svg.contains("a_step_with_a_very_…</text>"), "{svg}");
        assert!(svg.contains(&format!("data-step=\"{long}\"")));
    }

    #[test]
    fn subflows_are_framed_beside_the_main_flow_and_called() {
        let source = "flow: s\nstart: a\nsteps:\n  a: { subflow: greet, next: b }\n  b: { hangup: }\n\
            subflows:\n  greet:\n    start: hi\n    steps:\n      hi: { play: hello, next: done }\n      done: { return: }\n";
        let svg = svg(&graph_of(source), "s");
        assert!(svg.contains("data-subflow=\"greet\""), "{svg}");
        assert!(box_of(&svg, "hi").0 > box_of(&svg, "a").0);
        assert!(svg.contains("<g class=\"edge call\">"));
    }
}
