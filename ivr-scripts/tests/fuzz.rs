//! Fuzz-style robustness: every prefix and many byte flips of the sample files, and random
//! expressions, must load or be refused without a panic, in bounded time; flows that do load
//! must run without a panic. Deterministic (fixed seed), so a failure reproduces.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{repo, samples_context};
use ivr_scripts::{
    compile, CallInfo, CheckContext, EffectKind, Input, Interpreter, QueueOutcome, TransferOutcome,
};

/// xorshift64*: tiny, deterministic, good enough to pick positions and tokens.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T10:00:00+01:00")
        .expect("time")
        .with_timezone(&Utc)
}

/// Compiles, and if the flow loads, drives a call with inputs from `rng` until it ends.
/// Returns whether the flow loaded.
fn exercise(source: &str, ctx: &CheckContext, rng: &mut Rng) -> bool {
    let Ok(flow) = compile(source, Path::new("fuzz.yaml"), ctx) else {
        return false;
    };
    let mut it = Interpreter::new(Arc::new(flow), CallInfo::default());
    let mut effect = it.resume(at(), Input::Start);
    for _ in 0..200 {
        let input = match &effect.kind {
            EffectKind::Answer => Input::Answered,
            EffectKind::Play { .. } => Input::PlaybackDone,
            EffectKind::PlayAndCollect { .. } => match rng.below(4) {
                0 => Input::Timeout,
                _ => Input::Digits {
                    digits: ["1", "2", "3", "9", "*", "#", "1234#", ""][rng.below(8)].into(),
                },
            },
            EffectKind::Lookup { .. } | EffectKind::Action { .. } => {
                let result = match rng.below(3) {
                    0 => Ok(None),
                    1 => Err("down".into()),
                    _ => Ok(serde_json::json!({"vip": true, "confirmed": true})
                        .as_object()
                        .cloned()),
                };
                if matches!(effect.kind, EffectKind::Lookup { .. }) {
                    Input::LookupResult(result)
                } else {
                    Input::ActionResult(result)
                }
            }
            EffectKind::Queue { .. } => Input::QueueResult(QueueOutcome::Overflow),
            EffectKind::Transfer { .. } => {
                Input::TransferResult(TransferOutcome::Failed("busy".into()))
            }
            EffectKind::Record { .. } => Input::RecordDone {
                path: "x.wav".into(),
                duration: Duration::from_secs(3),
            },
            EffectKind::Hangup { .. } | EffectKind::Finished { .. } => break,
        };
        effect = it.resume(at(), input);
    }
    true
}

fn corpus() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["samples/flows", "ivr-scripts/tests/broken"] {
        let mut paths: Vec<_> = std::fs::read_dir(repo().join(dir))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        files.extend(
            paths
                .into_iter()
                .filter_map(|p| std::fs::read_to_string(p).ok()),
        );
    }
    files
}

#[test]
fn every_prefix_of_every_sample_is_handled() {
    let ctx = samples_context();
    let mut rng = Rng(0x5eed_0001);
    for name in ["demo.yaml", "service-desk.yaml", "reception.yaml"] {
        let source =
            std::fs::read_to_string(repo().join("samples/flows").join(name)).expect("sample");
        for (i, _) in source.char_indices() {
            let _ = exercise(&source[..i], &ctx, &mut rng);
        }
    }
}

#[test]
fn byte_flips_are_handled() {
    let ctx = samples_context();
    let permissive = CheckContext::permissive();
    let mut rng = Rng(0x5eed_0002);
    for source in corpus() {
        let bytes = source.as_bytes();
        for round in 0..300 {
            let mut mutated = bytes.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(mutated.len());
                match rng.below(4) {
                    0 => mutated[at] ^= 1 << rng.below(8),
                    1 => mutated[at] = b" :-#{}[]\"'|>&*!\n\t0"[rng.below(18)],
                    2 => {
                        mutated.remove(at);
                    }
                    _ => mutated.insert(at, mutated[rng.below(mutated.len())]),
                }
                if mutated.is_empty() {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&mutated);
            let _ = exercise(
                &text,
                if round % 2 == 0 { &ctx } else { &permissive },
                &mut rng,
            );
        }
    }
}

#[test]
fn random_expressions_are_handled() {
    const TOKENS: &[&str] = &[
        "caller",
        "called",
        "now",
        "now.hour",
        "last_error",
        "x",
        "y",
        "1",
        "0",
        "-1",
        "2.5",
        "\"a\"",
        "\"+33\"",
        "true",
        "false",
        "()",
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        "!",
        "(",
        ")",
        "[",
        "]",
        "#{",
        "}",
        ",",
        ".",
        "len()",
        "starts_with(\"1\")",
        "pad(100000, 0)",
        "map(|v| v * 2)",
        "filter(|v| v > 1)",
        "..",
        "in",
        "if",
        "else",
        "{",
        "switch",
        "=>",
        "_",
        "\"\"",
        "to_upper()",
        "sub_string(1, 2)",
        "contains(1)",
        "x.a",
        "y[0]",
        "range(0, 1000000)",
        "reduce(|a, b| a + b)",
        "eval",
        "Fn(\"f\")",
        "`${x}`",
        "99999999999999999999",
        "1e308 * 1e308",
        "1 / 0",
        ";",
        "let",
        "=",
        "loop",
        "import",
    ];
    let ctx = CheckContext::permissive();
    let mut rng = Rng(0x5eed_0003);
    let mut loaded = 0;
    for _ in 0..2000 {
        let n = 1 + rng.below(12);
        let expr: Vec<&str> = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        let expr = expr.join(" ").replace('\'', "''");
        let flow = format!(
            "flow: fuzz\nstart: s\non_error: bye\nvars: {{ x: 3, y: '[1, 2, 3]' }}\nsteps:\n  s:\n    set: {{ z: '{expr}' }}\n    next: b\n  b:\n    branch: '{expr}'\n    then: bye\n    else: bye\n  bye:\n    hangup:\n"
        );
        loaded += usize::from(exercise(&flow, &ctx, &mut rng));
    }
    // The generator must also produce valid expressions, or it tests only the parser.
    assert!(loaded > 50, "only {loaded} random expressions compiled");
}

#[test]
fn large_generated_files_load_and_run() {
    let ctx = CheckContext::permissive();
    let mut rng = Rng(0x5eed_0004);
    // A long chain of steps, each referring to the next.
    let mut chain = String::from("flow: chain\nstart: s0\non_error: end\nsteps:\n");
    for i in 0..20_000 {
        chain.push_str(&format!(
            "  s{i}: {{ set: {{ n{i}: {i} }}, next: s{} }}\n",
            i + 1
        ));
    }
    chain.push_str("  s20000: { play: x, next: end }\n  end: { hangup: }\n");
    // A mapping with a great many (duplicated) keys.
    let mut keys = String::from("flow: keys\nstart: a\nsteps:\n  a: { hangup: }\nvars:\n");
    for i in 0..100_000 {
        keys.push_str(&format!("  v{}: 1\n", i % 50_000));
    }
    // Many subflows calling one another in a line.
    let mut subs = String::from("flow: subs\nstart: a\nsteps:\n  a: { subflow: f0, next: b }\n  b: { hangup: }\nsubflows:\n");
    for i in 0..3_000 {
        let call = if i + 1 < 3_000 {
            format!("{{ subflow: f{}, next: r }}", i + 1)
        } else {
            "{ play: x, next: r }".into()
        };
        subs.push_str(&format!(
            "  f{i}:\n    start: c\n    steps:\n      c: {call}\n      r: {{ return: }}\n"
        ));
    }
    // Time is not asserted here (shared machines are noisy): these inputs finishing at all
    // proves there is no exponential path; their cost is printed for the curious.
    for source in [chain, keys, subs] {
        let started = Instant::now();
        let _ = exercise(&source, &ctx, &mut rng);
        eprintln!("{} bytes handled in {:?}", source.len(), started.elapsed());
    }
}
