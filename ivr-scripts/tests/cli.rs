//! The command functions: exit codes and output shapes the `svi flow` commands rely on.

mod common;

use std::path::{Path, PathBuf};

use common::{sample, samples_context};
use ivr_scripts::cli::{self, GraphFormat};
use ivr_scripts::CheckContext;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ivr-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn output(f: impl FnOnce(&mut Vec<u8>) -> i32) -> (i32, String) {
    let mut out = Vec::new();
    let code = f(&mut out);
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn check_reports_errors_as_text_and_json() {
    let dir = Scratch::new("check");
    let bad = dir.file(
        "bad.yaml",
        "flow: bad\nstart: a\nsteps:\n  a: { queue: sales, overflow: a }\n",
    );
    let ctx = CheckContext::builder("en")
        .queue("support")
        .queue("sale")
        .build();
    let (code, text) = output(|o| cli::check(std::slice::from_ref(&bad), &ctx, false, o));
    assert_eq!(code, 1);
    assert!(
        text.contains("bad.yaml:4:15: error: unknown queue `sales`"),
        "{text}"
    );
    assert!(text.contains("  hint: did you mean `sale`?"), "{text}");
    assert!(
        text.ends_with("1 file(s) checked: 1 error(s), 0 warning(s)\n"),
        "{text}"
    );

    let (code, json) = output(|o| cli::check(&[bad], &ctx, true, o));
    assert_eq!(code, 1);
    let list: serde_json::Value = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(list[0]["line"], 4);
    assert_eq!(list[0]["column"], 15);
    assert_eq!(list[0]["severity"], "error");
    assert_eq!(list[0]["code"], "unknown-queue");
    assert_eq!(list[0]["hint"], "did you mean `sale`?");
}

#[test]
fn check_of_a_missing_file_is_a_usage_error() {
    let (code, text) = output(|o| {
        cli::check(
            &[PathBuf::from("/nonexistent/x.yaml")],
            &CheckContext::permissive(),
            false,
            o,
        )
    });
    assert_eq!(code, 2);
    assert!(
        text.starts_with("error: cannot read /nonexistent/x.yaml"),
        "{text}"
    );
}

#[test]
fn graph_draws_every_step_and_edge() {
    let (code, dot) = output(|o| cli::graph(&sample("demo.yaml"), GraphFormat::Dot, o));
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph \"demo\" {"), "{dot}");
    assert!(
        dot.contains("s0_1 [label=\"main_menu\\n(menu)\"];"),
        "{dot}"
    );
    assert!(dot.contains("s0_1 -> s0_3 [label=\"1\"];"), "{dot}");
    assert!(dot.contains("s0_1 -> s0_6 [label=\"exhausted\"];"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));

    let (code, mermaid) =
        output(|o| cli::graph(&sample("service-desk.yaml"), GraphFormat::Mermaid, o));
    assert_eq!(code, 0);
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(mermaid.contains("-->|\"not found\"|"), "{mermaid}");
    assert!(mermaid.contains("-. error .->"), "{mermaid}");
}

#[test]
fn graph_shows_subflows_as_clusters() {
    let dir = Scratch::new("graph");
    let file = dir.file(
        "sub.yaml",
        "flow: s\nstart: a\nsteps:\n  a: { subflow: greet, next: b }\n  b: { hangup: }\nsubflows:\n  greet:\n    start: hi\n    steps:\n      hi: { play: hello, next: done }\n      done: { return: }\n",
    );
    let (code, dot) = output(|o| cli::graph(&file, GraphFormat::Dot, o));
    assert_eq!(code, 0, "{dot}");
    assert!(dot.contains("subgraph cluster_1 {"), "{dot}");
    assert!(
        dot.contains("s0_0 -> s1_0 [style=dotted, label=\"call\"];"),
        "{dot}"
    );
}

#[test]
fn a_failing_flow_test_shows_what_differs() {
    let dir = Scratch::new("test");
    dir.file(
        "demo.yaml",
        &std::fs::read_to_string(sample("demo.yaml")).expect("demo"),
    );
    let test = dir.file(
        "demo.test.yaml",
        "flow: demo.yaml\ncases:\n  - name: wrong expectation\n    inputs: \"1\"\n    expect:\n      path: [welcome, main_menu, support]\n      effect: { type: queue }\n  - name: right\n    inputs: [\"-\", \"1\"]\n    expect:\n      path: [welcome, main_menu, main_menu, option1, end]\n",
    );
    let (code, text) = output(|o| cli::test_flow(&test, &samples_context(), o));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("  FAIL  wrong expectation"), "{text}");
    assert!(
        text.contains("expected path: welcome > main_menu > support"),
        "{text}"
    );
    assert!(
        text.contains("actual path:   welcome > main_menu > option1 > end"),
        "{text}"
    );
    assert!(
        text.contains("expected final effect: {\"type\":\"queue\"}"),
        "{text}"
    );
    assert!(text.contains("  ok    right"), "{text}");
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
}

#[test]
fn a_malformed_test_file_is_a_usage_error() {
    let dir = Scratch::new("badtest");
    let test = dir.file(
        "x.test.yaml",
        "flow: demo.yaml\ncases:\n  - name: no expectation\n",
    );
    let (code, text) = output(|o| cli::test_flow(&test, &CheckContext::permissive(), o));
    assert_eq!(code, 2);
    assert!(
        text.contains("case `no expectation`: needs `expect`"),
        "{text}"
    );
}

#[test]
fn simulate_json_with_stubs_and_records() {
    let dir = Scratch::new("sim");
    let stubs = dir.file(
        "stubs.json",
        r#"{"lookups": {"directory": {"not_found": true}}}"#,
    );
    let opts = cli::SimulateOptions {
        file: sample("service-desk.yaml"),
        inputs: "- 1".into(),
        at: chrono::DateTime::parse_from_rfc3339("2026-03-10T10:00:00+01:00").ok(),
        caller: "+33100000000".into(),
        stubs: Some(stubs),
        json: true,
        ..Default::default()
    };
    let (code, text) = output(|o| cli::simulate(&opts, &samples_context(), o));
    assert_eq!(code, 0, "{text}");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("lines")).expect("json");
    assert_eq!(last["effect"]["type"], "queue");
    assert_eq!(last["effect"]["queue"], "hw");
    assert_eq!(last["ending"], "routed");
}

#[test]
fn inputs_parse_into_tokens() {
    assert_eq!(
        cli::parse_inputs("1 22 - #"),
        vec![Some("1".into()), Some("22".into()), None, Some("#".into())]
    );
    assert!(cli::parse_inputs("  ").is_empty());
    assert_eq!(
        cli::parse_inputs("1,,4321#, -"),
        vec![Some("1".into()), None, Some("4321#".into()), None]
    );
}

#[test]
fn prompt_directories_are_scanned_into_a_catalog() {
    let dir = Scratch::new("prompts");
    dir.file("en/welcome.wav", "");
    dir.file("en/digits/1.wav", "");
    dir.file("fr/bienvenue.wav", "");
    dir.file("fr/notes.txt", "");
    let catalog = cli::scan_prompts(Path::new(&dir.0)).expect("scan");
    let en: Vec<&str> = catalog["en"].iter().map(String::as_str).collect();
    assert_eq!(en, ["digits/1", "welcome"]);
    assert_eq!(catalog["fr"].len(), 1);
}

#[test]
fn flows_and_interpreters_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<ivr_scripts::Flow>();
    assert_send::<ivr_scripts::Interpreter>();
    assert_send_sync::<ivr_scripts::CallState>();
}
