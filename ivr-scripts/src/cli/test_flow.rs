//! `svi test-flow FILE.test.yaml`: scripted calls with expected outcomes.
//!
//! ```yaml
//! flow: demo.yaml              # relative to this file
//! defaults:                    # optional, for every case
//!   at: "2026-03-10T10:00:00+01:00"
//!   caller: "+33612345678"
//! cases:
//!   - name: option 1 plays the information then hangs up
//!     inputs: "1"              # or a list: ["1", "-"]; `-`/null is a timeout
//!     stubs: { lookups: { directory: not_found } }
//!     expect:
//!       path: [welcome, main_menu, option1, end]
//!       effect: hangup         # or a subset of the effect: { type: queue, queue: vip }
//!       prompts: [welcome, main_menu, option1_info]   # optional: names played, in order
//!       errors: 0              # optional: number of flow errors reported
//! ```
//!
//! Without `at`, cases run at 2026-03-10T10:00:00+01:00 (a Tuesday morning in Paris), so a
//! test never depends on the day it runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::sim::{parse_inputs, run, Transcript};
use super::stubs::Stubs;
use super::{describe, describe_input, finish, load, read, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::interp::{CallInfo, EffectKind};

const DEFAULT_AT: &str = "2026-03-10T10:00:00+01:00";

struct Case {
    name: String,
    inputs: Vec<Option<String>>,
    at: DateTime<Utc>,
    call: CallInfo,
    stubs: Stubs,
    path: Option<Vec<String>>,
    effect: Option<Map<String, Value>>,
    prompts: Option<Vec<String>>,
    errors: Option<usize>,
}

/// Runs every case of a flow-test file. Exit 0 when all pass, 1 when one fails or the flow
/// does not load, 2 when the test file is malformed.
pub fn test_flow(file: &Path, ctx: &CheckContext, out: &mut dyn Write) -> i32 {
    let result = run_file(file, ctx, out);
    finish(result, out)
}

fn run_file(file: &Path, ctx: &CheckContext, out: &mut dyn Write) -> Result<i32, CliError> {
    let bad = |message: String| CliError::Format {
        path: file.to_path_buf(),
        message,
    };
    let root = crate::yaml::parse(&read(file)?)
        .map_err(|e| bad(format!("{}: {}", e.pos, e.message)))?
        .map(|n| crate::yaml::to_json(&n))
        .unwrap_or(Value::Null);
    let flow_file = root
        .get("flow")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("needs `flow: <flow file>`".into()))?;
    let flow_path: PathBuf = file
        .parent()
        .map_or_else(|| PathBuf::from(flow_file), |dir| dir.join(flow_file));
    let defaults = root.get("defaults").cloned().unwrap_or(Value::Null);
    let cases = root
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("needs a `cases` list".into()))?
        .iter()
        .enumerate()
        .map(|(i, c)| parse_case(i, c, &defaults).map_err(&bad))
        .collect::<Result<Vec<_>, _>>()?;
    writeln!(out, "{} ({})", file.display(), flow_path.display())?;
    let Some(flow) = load(&flow_path, ctx, out)? else {
        return Ok(EXIT_FAILED);
    };
    let flow = Arc::new(flow);
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let t = run(
            flow.clone(),
            case.call.clone(),
            case.at,
            &case.inputs,
            &case.stubs,
        );
        let problems = compare(case, &t);
        if problems.is_empty() {
            passed += 1;
            writeln!(out, "  ok    {}", case.name)?;
        } else {
            failed += 1;
            writeln!(out, "  FAIL  {}", case.name)?;
            for p in problems {
                writeln!(out, "        {p}")?;
            }
            writeln!(out, "        transcript:")?;
            for e in &t.events {
                let answer = e
                    .input
                    .as_ref()
                    .and_then(describe_input)
                    .map(|a| format!("  -> {a}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "          {}  {}{answer}",
                    e.effect.step,
                    describe(&e.effect.kind)
                )?;
            }
            for e in &t.errors {
                writeln!(out, "          ! {e}")?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILED })
}

fn parse_case(i: usize, value: &Value, defaults: &Value) -> Result<Case, String> {
    let get = |key: &str| {
        value
            .get(key)
            .or_else(|| defaults.get(key))
            .filter(|v| !v.is_null())
    };
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .map_or_else(|| format!("case {}", i + 1), str::to_owned);
    let ctx = |m: String| format!("case `{name}`: {m}");
    let text = |key: &str| get(key).map(crate::expr::display_value).unwrap_or_default();
    let inputs = match get("inputs") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => None,
                Value::String(s) if s.is_empty() || s == "-" => None,
                other => Some(crate::expr::display_value(other)),
            })
            .collect(),
        Some(other) => parse_inputs(&crate::expr::display_value(other)),
    };
    let at = match get("at") {
        Some(v) => parse_time(&crate::expr::display_value(v)).map_err(&ctx)?,
        None => parse_time(DEFAULT_AT).map_err(&ctx)?,
    };
    let stubs = match get("stubs") {
        Some(v) => Stubs::from_json(v).map_err(&ctx)?,
        None => Stubs::default(),
    };
    let expect = value
        .get("expect")
        .ok_or_else(|| ctx("needs `expect`".into()))?;
    let path = match expect.get("path") {
        None => None,
        Some(Value::Array(items)) => Some(items.iter().map(crate::expr::display_value).collect()),
        Some(_) => return Err(ctx("`expect.path` must be a list of step ids".into())),
    };
    let effect = match expect.get("effect") {
        None => None,
        Some(Value::String(kind)) => {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(kind.clone()));
            Some(m)
        }
        Some(Value::Object(m)) if m.contains_key("type") => Some(m.clone()),
        Some(_) => {
            return Err(ctx(
                "`expect.effect` must be an effect type or a mapping with `type`".into(),
            ))
        }
    };
    let prompts = match expect.get("prompts") {
        None => None,
        Some(Value::Array(items)) => Some(items.iter().map(crate::expr::display_value).collect()),
        Some(_) => return Err(ctx("`expect.prompts` must be a list".into())),
    };
    let errors = match expect.get("errors") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ctx("`expect.errors` must be a number".into()))?,
        ),
    };
    Ok(Case {
        call: CallInfo {
            caller: text("caller").into(),
            called: text("called").into(),
            call_id: format!("test-{}", i + 1),
            language: get("language").map(crate::expr::display_value),
        },
        name,
        inputs,
        at,
        stubs,
        path,
        effect,
        prompts,
        errors,
    })
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{s}` is not a date and time like 2026-03-10T10:00:00+01:00"))
}

fn compare(case: &Case, t: &Transcript) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &case.path {
        if *path != t.path {
            problems.push(format!("expected path: {}", path.join(" > ")));
            problems.push(format!("actual path:   {}", t.path.join(" > ")));
        }
    }
    if let Some(expected) = &case.effect {
        let actual = t
            .last_effect()
            .and_then(|e| serde_json::to_value(&e.kind).ok())
            .unwrap_or(Value::Null);
        let matches = expected.iter().all(|(k, v)| {
            actual.get(k).is_some_and(|a| {
                a == v || crate::expr::display_value(a) == crate::expr::display_value(v)
            })
        });
        if !matches {
            problems.push(format!(
                "expected final effect: {}",
                Value::Object(expected.clone())
            ));
            problems.push(format!("actual final effect:   {actual}"));
        }
    }
    if let Some(prompts) = &case.prompts {
        let played: Vec<String> = t
            .events
            .iter()
            .flat_map(|e| match &e.effect.kind {
                EffectKind::Play { prompts, .. }
                | EffectKind::PlayAndCollect { prompts, .. }
                | EffectKind::Record { prompts, .. } => {
                    prompts.iter().map(|p| p.name.clone()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        if *prompts != played {
            problems.push(format!("expected prompts: {}", prompts.join(", ")));
            problems.push(format!("actual prompts:   {}", played.join(", ")));
        }
    }
    if let Some(n) = case.errors {
        if n != t.errors.len() {
            problems.push(format!(
                "expected {n} flow error(s), got {}",
                t.errors.len()
            ));
            for e in &t.errors {
                problems.push(format!("  {e}"));
            }
        }
    }
    problems
}
