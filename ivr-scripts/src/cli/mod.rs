//! The `svi check/simulate/test-flow/graph` commands, as library functions.
//!
//! Each command takes already-parsed arguments and a `&mut dyn Write`, prints what a script
//! author needs, and returns the process exit code, so the `svi` binary only forwards its
//! arguments (and tests capture the output in a `Vec<u8>`):
//!
//! - [`check()`]: compile files against the engine's [`CheckContext`]; 0 if all load.
//! - [`simulate()`]: run a flow with scripted digits and stubbed connectors, in virtual time.
//! - [`test_flow()`]: run the cases of a flow-test file and compare paths and final effects.
//! - [`graph()`]: draw a flow as Graphviz DOT or Mermaid.
//!
//! Exit codes: 0 success, 1 a flow does not load or a test fails, 2 bad usage or unreadable
//! input (a file that cannot be read, a malformed stub or test file).
//!
//! This is the only module that reads files (and, for `simulate` without `--at`, the clock).

mod check;
mod graph;
mod sim;
mod simulate;
mod stubs;
mod test_flow;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use check::{check, check_with};
pub use graph::{graph, GraphFormat};
pub use sim::{
    parse_inputs, run as run_simulation, Ending, Event as SimulatedEvent, Transcript, MAX_EFFECTS,
};
pub use simulate::{simulate, SimulateOptions};
pub use stubs::Stubs;
pub use test_flow::test_flow;

use crate::context::CheckContext;
use crate::diagnostic::Diagnostic;
use crate::flow::Flow;
use crate::interp::{EffectKind, EndReason, HangupReason, Input, QueueOutcome, TransferOutcome};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Errors of the command layer: files that cannot be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("output: {0}")]
    Output(#[from] io::Error),
}

pub(crate) fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Compiles a flow file, or prints its diagnostics.
pub(crate) fn load(
    path: &Path,
    ctx: &CheckContext,
    out: &mut dyn Write,
) -> Result<Option<Flow>, CliError> {
    let source = read(path)?;
    match crate::compile(&source, path, ctx) {
        Ok(flow) => Ok(Some(flow)),
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, &source, out)?;
            Ok(None)
        }
    }
}

pub(crate) fn print_diagnostics(
    diagnostics: &[Diagnostic],
    source: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    for d in diagnostics {
        writeln!(out, "{}", d.render_with_source(source))?;
    }
    Ok(())
}

/// Turns a command's result into an exit code, printing command-layer errors.
pub(crate) fn finish(result: Result<i32, CliError>, out: &mut dyn Write) -> i32 {
    match result {
        Ok(code) => code,
        Err(CliError::Output(_)) => EXIT_USAGE,
        Err(e) => {
            // If even this write fails there is nowhere left to report to.
            let _ = writeln!(out, "error: {e}");
            EXIT_USAGE
        }
    }
}

/// Lists the prompts installed under `root` (`<root>/<language>/<name>.wav`, names may contain
/// folders), for building a [`CheckContext`] from the engine's prompt directory.
pub fn scan_prompts(root: &Path) -> io::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let language = entry.file_name().to_string_lossy().into_owned();
        let mut names = BTreeSet::new();
        let mut stack = vec![(entry.path(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for item in std::fs::read_dir(&dir)? {
                let item = item?;
                let name = item.file_name().to_string_lossy().into_owned();
                if item.file_type()?.is_dir() {
                    stack.push((item.path(), format!("{prefix}{name}/")));
                } else if let Some(stem) = name.strip_suffix(".wav") {
                    names.insert(format!("{prefix}{stem}"));
                }
            }
        }
        out.insert(language, names);
    }
    Ok(out)
}

/// One-line human description of an effect.
pub(crate) fn describe(kind: &EffectKind) -> String {
    let list = |prompts: &[crate::interp::PromptRef]| {
        prompts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        EffectKind::Answer => "answer".into(),
        EffectKind::Play { prompts, barge_in } => format!(
            "play {}{}",
            list(prompts),
            if *barge_in { " (barge-in)" } else { "" }
        ),
        EffectKind::PlayAndCollect {
            prompts,
            min_digits,
            max_digits,
            terminator,
            first_digit_timeout,
            ..
        } => {
            let digits = if min_digits == max_digits {
                format!(
                    "{min_digits} digit{}",
                    if *min_digits == 1 { "" } else { "s" }
                )
            } else {
                format!("{min_digits}-{max_digits} digits")
            };
            let end = terminator.map(|t| format!(", end {t}")).unwrap_or_default();
            format!(
                "collect after {} ({digits}{end}, timeout {})",
                list(prompts),
                crate::decode::show_duration(*first_digit_timeout)
            )
        }
        EffectKind::Lookup { source, params, .. } => {
            format!(
                "lookup {source} {}",
                serde_json::Value::Object(params.reveal().clone())
            )
        }
        EffectKind::Action { action, params, .. } => {
            format!(
                "action {action} {}",
                serde_json::Value::Object(params.reveal().clone())
            )
        }
        EffectKind::Queue {
            queue, priority, ..
        } => format!("queue {queue} (priority {})", priority_name(*priority)),
        EffectKind::Transfer { target, mode, .. } => format!(
            "transfer to {target} ({})",
            match mode {
                crate::flow::TransferMode::Blind => "blind",
                crate::flow::TransferMode::Bridged => "bridged",
            }
        ),
        EffectKind::Record {
            prompts,
            beep,
            max_length,
            ..
        } => format!(
            "record after {}{} (max {})",
            if prompts.is_empty() {
                "nothing".into()
            } else {
                list(prompts)
            },
            if *beep { " and a beep" } else { "" },
            crate::decode::show_duration(*max_length)
        ),
        EffectKind::Hangup {
            reason: HangupReason::Normal,
        } => "hangup".into(),
        EffectKind::Hangup {
            reason: HangupReason::Error,
        } => "hangup (flow error)".into(),
        EffectKind::Finished { reason } => format!(
            "finished ({})",
            match reason {
                EndReason::Hangup => "hung up",
                EndReason::Error => "flow error",
                EndReason::CallerHangup => "caller hung up",
                EndReason::Queued => "answered by an agent",
                EndReason::Transferred => "transferred",
            }
        ),
    }
}

fn priority_name(p: crate::flow::Priority) -> &'static str {
    match p {
        crate::flow::Priority::Low => "low",
        crate::flow::Priority::Normal => "normal",
        crate::flow::Priority::High => "high",
        crate::flow::Priority::Urgent => "urgent",
    }
}

/// What the simulated engine answered, when it is worth showing.
pub(crate) fn describe_input(input: &Input) -> Option<String> {
    Some(match input {
        // The simulator shows the author what was keyed: on purpose.
        Input::Digits { digits } => format!("keyed \"{}\"", digits.reveal()),
        Input::Timeout => "no input (timeout)".into(),
        Input::LookupResult(r) | Input::ActionResult(r) => match r {
            Ok(Some(map)) => format!("found {}", serde_json::Value::Object(map.clone())),
            Ok(None) => "not found".into(),
            Err(e) => format!("error: {e}"),
        },
        Input::QueueResult(QueueOutcome::Answered) => "answered by an agent".into(),
        Input::QueueResult(QueueOutcome::Overflow) => "overflow".into(),
        Input::QueueResult(QueueOutcome::Failed(e)) => format!("failed: {e}"),
        Input::TransferResult(TransferOutcome::Completed) => "completed".into(),
        Input::TransferResult(TransferOutcome::Failed(e)) => format!("failed: {e}"),
        Input::RecordDone { path, duration } => {
            format!(
                "recorded {} to {path}",
                crate::decode::show_duration(*duration)
            )
        }
        Input::Start | Input::Answered | Input::PlaybackDone | Input::CallerHangup => return None,
    })
}
