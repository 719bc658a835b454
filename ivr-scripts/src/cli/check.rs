//! `svi check FILE...`: does each flow load against this engine's configuration?

use std::io::Write;
use std::path::PathBuf;

use super::{finish, print_diagnostics, read, CliError, EXIT_FAILED, EXIT_OK};
use crate::context::CheckContext;
use crate::diagnostic::Diagnostic;

/// Checks `files`. Human output: `file:line:col: error: message` with the source line and a
/// hint, then a summary; with `json`, one JSON array of all diagnostics. Exit 0 when every
/// file loads (warnings allowed), 1 otherwise.
pub fn check(files: &[PathBuf], ctx: &CheckContext, json: bool, out: &mut dyn Write) -> i32 {
    check_with(files, ctx, json, true, out)
}

/// Like [`check`]; with `allow_warnings` false (what `svi check` does unless told
/// otherwise), a warning (an unreachable step, an expression without error branch) fails the
/// check too: a flow about to go live should have none.
pub fn check_with(
    files: &[PathBuf],
    ctx: &CheckContext,
    json: bool,
    allow_warnings: bool,
    out: &mut dyn Write,
) -> i32 {
    let result = run(files, ctx, json, allow_warnings, out);
    finish(result, out)
}

fn run(
    files: &[PathBuf],
    ctx: &CheckContext,
    json: bool,
    allow_warnings: bool,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut failed = 0usize;
    for file in files {
        let source = read(file)?;
        let diagnostics = match crate::compile(&source, file, ctx) {
            Ok(flow) => {
                if !json {
                    writeln!(
                        out,
                        "{}: ok (flow `{}`, {} steps)",
                        file.display(),
                        flow.name(),
                        flow.step_ids().len()
                    )?;
                }
                flow.warnings().to_vec()
            }
            Err(diagnostics) => {
                failed += 1;
                diagnostics
            }
        };
        if !json {
            print_diagnostics(&diagnostics, &source, out)?;
        }
        all.extend(diagnostics);
    }
    if json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| CliError::Format {
            path: PathBuf::from("<diagnostics>"),
            message: e.to_string(),
        })?;
        writeln!(out, "{text}")?;
    } else {
        let errors = all.iter().filter(|d| d.is_error()).count();
        let warnings = all.len() - errors;
        writeln!(
            out,
            "{} file(s) checked: {} error(s), {} warning(s)",
            files.len(),
            errors,
            warnings
        )?;
    }
    let warned = all.iter().any(|d| !d.is_error());
    Ok(if failed == 0 && (allow_warnings || !warned) {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
