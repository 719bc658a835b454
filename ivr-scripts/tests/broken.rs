//! Deliberately broken flows: each file in `tests/broken/` states the diagnostics it must
//! produce in its header (`# expect: LINE:COL CODE`, optionally followed by `# hint: TEXT`),
//! and the checker must report exactly those, at exactly those positions.

use std::path::Path;

use ivr_scripts::{compile, say, CheckContext, Diagnostic};

fn context() -> CheckContext {
    let prompts = ["welcome", "info", "option1_info", "main_menu", "goodbye"];
    let mut builder = CheckContext::builder("en")
        .prompts("en", prompts)
        .prompts("fr", prompts)
        .queue("support")
        .data_source("directory");
    for language in ["en", "fr"] {
        builder = builder.prompts(language, say::catalog(language).into_iter().map(|(n, _)| n));
    }
    builder.build()
}

struct Expected {
    line: u32,
    column: u32,
    code: String,
    hint: Option<String>,
}

fn expectations(source: &str) -> Vec<Expected> {
    let mut out: Vec<Expected> = Vec::new();
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("# expect: ") {
            let (pos, code) = rest.split_once(' ').expect("`LINE:COL CODE`");
            let (l, c) = pos.split_once(':').expect("LINE:COL");
            out.push(Expected {
                line: l.parse().expect("line"),
                column: c.parse().expect("column"),
                code: code.trim().to_owned(),
                hint: None,
            });
        } else if let Some(hint) = line.strip_prefix("# hint: ") {
            out.last_mut().expect("a hint follows an expect").hint = Some(hint.to_owned());
        }
    }
    out
}

fn diagnostics(source: &str, path: &Path) -> Vec<Diagnostic> {
    match compile(source, path, &context()) {
        Ok(flow) => flow.warnings().to_vec(),
        Err(d) => d,
    }
}

#[test]
fn every_broken_flow_reports_exactly_its_mistakes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/broken")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "at least ten broken flows");
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("readable");
        let expected = expectations(&source);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let actual = diagnostics(&source, path);
        let shown: Vec<String> = actual.iter().map(Diagnostic::render).collect();
        let same = actual.len() == expected.len()
            && actual.iter().zip(&expected).all(|(a, e)| {
                a.line == e.line
                    && a.column == e.column
                    && a.code.as_str() == e.code
                    && e.hint.as_ref().is_none_or(|h| a.hint.as_ref() == Some(h))
            });
        if !same {
            failures.push(format!("{}:\n  {}", path.display(), shown.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected diagnostics:\n{}",
        failures.join("\n")
    );
}

#[test]
fn errors_name_the_file_and_render_like_a_compiler() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/missing-step.yaml");
    let source = std::fs::read_to_string(&path).expect("readable");
    let d = diagnostics(&source, &path);
    let text = d[0].render_with_source(&source);
    assert!(
        text.starts_with(&format!(
            "{}:10:11: error: unknown step `main_mneu` in this flow",
            path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("10 |     next: main_mneu\n   |           ^"),
        "{text}"
    );
    assert!(text.ends_with("hint: did you mean `main_menu`?"), "{text}");
}
