//! `svi simulate FILE --input "1 2 #" [--at TIME] [--caller N] [--stubs FILE] [--json]`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};

use super::sim::{parse_inputs, run, Ending, Transcript};
use super::stubs::Stubs;
use super::{describe, describe_input, finish, load, read, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::interp::CallInfo;

/// Arguments of `svi simulate`.
#[derive(Clone, Debug, Default)]
pub struct SimulateOptions {
    pub file: PathBuf,
    /// Digits the caller keys, one token per menu or collect: `"1 2 #"`; `-` means no input
    /// (or comma-separated, where an empty token is no input too: `"1,,4321#"`). When the
    /// tokens run out, every further menu or collect times out.
    pub inputs: String,
    /// Virtual start time; the current time when `None`.
    pub at: Option<DateTime<FixedOffset>>,
    pub caller: String,
    pub called: String,
    pub language: Option<String>,
    /// YAML or JSON file of canned lookup/action/queue/transfer outcomes.
    pub stubs: Option<PathBuf>,
    /// One JSON object per line instead of text.
    pub json: bool,
}

/// Runs the flow and prints each effect. Exit 0 when the flow ends or routes the call, 1 when
/// it does not load or loops without end, 2 on unreadable files.
pub fn simulate(opts: &SimulateOptions, ctx: &CheckContext, out: &mut dyn Write) -> i32 {
    let result = run_command(opts, ctx, out);
    finish(result, out)
}

fn run_command(
    opts: &SimulateOptions,
    ctx: &CheckContext,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let stubs = match &opts.stubs {
        Some(path) => Stubs::parse(&read(path)?).map_err(|message| CliError::Format {
            path: path.clone(),
            message,
        })?,
        None => Stubs::default(),
    };
    let Some(flow) = load(&opts.file, ctx, out)? else {
        return Ok(EXIT_FAILED);
    };
    let at = opts.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let call = CallInfo {
        caller: opts.caller.as_str().into(),
        called: opts.called.as_str().into(),
        call_id: "simulated".into(),
        language: opts.language.clone(),
    };
    let transcript = run(
        Arc::new(flow),
        call,
        at,
        &parse_inputs(&opts.inputs),
        &stubs,
    );
    if opts.json {
        print_json(&transcript, out)?;
    } else {
        print_text(&transcript, out)?;
    }
    Ok(match transcript.ending {
        Ending::Endless => EXIT_FAILED,
        _ => EXIT_OK,
    })
}

fn print_text(t: &Transcript, out: &mut dyn Write) -> Result<(), CliError> {
    let width = t
        .events
        .iter()
        .map(|e| e.effect.step.chars().count())
        .max()
        .unwrap_or(0);
    for event in &t.events {
        for error in &event.errors {
            writeln!(out, "  ! {error}")?;
        }
        let mut line = format!(
            "  {:width$}  {}",
            event.effect.step,
            describe(&event.effect.kind)
        );
        if let Some(answer) = event.input.as_ref().and_then(describe_input) {
            line.push_str(&format!("  -> {answer}"));
        }
        writeln!(out, "{line}")?;
    }
    writeln!(out, "path: {}", t.path.join(" > "))?;
    let last = t
        .last_effect()
        .map(|e| describe(&e.kind))
        .unwrap_or_default();
    match t.ending {
        Ending::Finished => writeln!(out, "result: {last}")?,
        Ending::Routed => writeln!(out, "result: routed: {last}")?,
        Ending::Endless => writeln!(
            out,
            "result: stopped after {} effects (the flow does not end with these inputs)",
            super::MAX_EFFECTS
        )?,
    }
    Ok(())
}

fn print_json(t: &Transcript, out: &mut dyn Write) -> Result<(), CliError> {
    let count = t.events.len();
    for (i, event) in t.events.iter().enumerate() {
        let mut value = serde_json::to_value(event).map_err(|e| CliError::Format {
            path: PathBuf::from("<effect>"),
            message: e.to_string(),
        })?;
        if i + 1 == count {
            if let Some(obj) = value.as_object_mut() {
                obj.insert("path".into(), serde_json::json!(t.path));
                obj.insert("ending".into(), serde_json::json!(t.ending));
            }
        }
        writeln!(out, "{value}")?;
    }
    Ok(())
}
