//! `svi check`, `simulate`, `test-flow` and `graph`: the script author's tools, run without
//! telephony against the prompts, queues and connectors of a configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use engine::config::EngineConfig;

use super::exit;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Exit 0 even when there are warnings (unreachable steps...).
    #[arg(long)]
    allow_warnings: bool,
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    file: PathBuf,
    /// Digits keyed at each menu or collect: "1 2 #"; `-` or nothing means no input.
    #[arg(long, default_value = "")]
    input: String,
    /// Virtual start time (RFC 3339), default now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    #[arg(long, default_value = "+33100000000")]
    caller: String,
    #[arg(long, default_value = "100")]
    called: String,
    #[arg(long)]
    language: Option<String>,
    /// YAML/JSON file of canned lookup, action, queue and transfer outcomes.
    #[arg(long, value_name = "FILE")]
    stubs: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct TestFlowArgs {
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
    format: GraphFormatArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum GraphFormatArg {
    Dot,
    Mermaid,
}

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let ctx = check_context(args.config.as_deref())?;
    Ok(exit(ivr_scripts::cli::check_with(
        &args.files,
        &ctx,
        args.json,
        args.allow_warnings,
        &mut std::io::stdout(),
    )))
}

pub fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let at = args
        .at
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t).with_context(|| {
                format!("--at: `{t}` is not an RFC 3339 time (e.g. 2026-12-25T10:00:00+01:00)")
            })
        })
        .transpose()?;
    let ctx = check_context(args.config.as_deref())?;
    let opts = ivr_scripts::cli::SimulateOptions {
        file: args.file,
        inputs: args.input,
        at,
        caller: args.caller,
        called: args.called,
        language: args.language,
        stubs: args.stubs,
        json: args.json,
    };
    Ok(exit(ivr_scripts::cli::simulate(
        &opts,
        &ctx,
        &mut std::io::stdout(),
    )))
}

pub fn test_flow(args: TestFlowArgs) -> anyhow::Result<ExitCode> {
    let ctx = check_context(args.config.as_deref())?;
    let mut worst = 0;
    for f in &args.files {
        worst = worst.max(ivr_scripts::cli::test_flow(f, &ctx, &mut std::io::stdout()));
    }
    Ok(exit(worst))
}

pub fn graph(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        GraphFormatArg::Dot => ivr_scripts::cli::GraphFormat::Dot,
        GraphFormatArg::Mermaid => ivr_scripts::cli::GraphFormat::Mermaid,
    };
    Ok(exit(ivr_scripts::cli::graph(
        &args.file,
        format,
        &mut std::io::stdout(),
    )))
}

/// What flows are checked against: the prompts, queues and connectors of `--config`, or of
/// the embedded default (written to a temporary directory, which is removed after).
fn check_context(config: Option<&Path>) -> anyhow::Result<ivr_scripts::CheckContext> {
    let (config, _tmp) = match config {
        Some(file) => (EngineConfig::load(file)?, None),
        None => {
            let tmp = std::env::temp_dir().join(format!("svi-check-{}", std::process::id()));
            let file = crate::embedded::materialise(&tmp)?;
            let config = EngineConfig::load(&file);
            (config?, Some(TempDir(tmp)))
        }
    };
    let names = ivr_scripts::cli::scan_prompts(&config.prompts_dir)
        .with_context(|| format!("reading prompts in {}", config.prompts_dir.display()))?;
    Ok(engine::flows::check_context(&names, &config))
}

/// Removes a directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
