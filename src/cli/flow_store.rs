//! `svi flow install|list|activate|rollback`: flow versions of the running engine, through
//! its control socket. The engine checks a flow before installing it (against its own
//! prompts, queues and connectors) and refuses an invalid one with its diagnostics, each
//! at its line and column; installing and activating are served by the active node of a
//! pair, and every node lists the same versions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::control::{ControlError, Reply, Request};
use engine::handle::{FlowListing, HandleError, MAX_FLOW_SOURCE};

use super::table::print_table;
use super::{control, unexpected, Where};

#[derive(clap::Subcommand, Debug)]
pub enum FlowCommand {
    /// Check a flow file against the engine and install it as a version of the flow it
    /// names (the version is named by its content); `--activate`: new calls run it.
    Install {
        file: PathBuf,
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Every flow with its installed versions; `*` marks the one new calls run.
    List {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Make an installed version the one new calls run (calls in progress keep theirs).
    Activate {
        name: String,
        version: String,
        #[command(flatten)]
        at: Where,
    },
    /// Activate the version that was active before the current one.
    Rollback {
        name: String,
        #[command(flatten)]
        at: Where,
    },
}

pub fn run(command: FlowCommand) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Install {
            file,
            activate,
            at,
            json,
        } => install(file, activate, &at, json),
        FlowCommand::List { at, json } => list(&at, json),
        FlowCommand::Activate { name, version, at } => {
            let req = Request::FlowActivate { name, version };
            let reply = control(&at, &req)?;
            print_active(reply, "is active: new calls run it")
        }
        FlowCommand::Rollback { name, at } => {
            let reply = control(&at, &Request::FlowRollback { name })?;
            print_active(reply, "is active again: new calls run it")
        }
    }
}

fn install(file: PathBuf, activate: bool, at: &Where, json: bool) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_FLOW_SOURCE as u64 {
        anyhow::bail!(
            "{}: {size} bytes, a flow may have at most {MAX_FLOW_SOURCE}",
            file.display()
        );
    }
    let source = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let file = std::path::absolute(&file).unwrap_or(file);
    let req = Request::FlowInstall {
        file: file.clone(),
        source,
        activate,
    };
    let installed = match control(at, &req) {
        Ok(Reply::FlowInstalled { installed }) => installed,
        Ok(other) => return Err(unexpected(other)),
        Err(e) => {
            if let Some(ControlError::Engine(HandleError::InvalidFlow {
                diagnostics,
                rendered,
            })) = e.downcast_ref::<ControlError>()
            {
                if json {
                    println!("{}", serde_json::to_string_pretty(diagnostics)?);
                }
                eprintln!("{rendered}");
                eprintln!("svi: {} refused: not installed", file.display());
                return Ok(ExitCode::FAILURE);
            }
            return Err(e);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&installed)?);
    } else {
        println!(
            "{} version {}: {}{}",
            installed.name,
            installed.version,
            if installed.new {
                "installed"
            } else {
                "already installed"
            },
            if installed.active {
                "; active: new calls run it"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(at: &Where, json: bool) -> anyhow::Result<ExitCode> {
    let flows: Vec<FlowListing> = match control(at, &Request::FlowList)? {
        Reply::Flows { flows } => flows,
        other => return Err(unexpected(other)),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&flows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<serde_json::Value> = flows
        .iter()
        .flat_map(|f| {
            f.versions.iter().map(|v| {
                serde_json::json!({
                    "name": f.name,
                    "version": v.version,
                    "active": if v.active { "*" } else { "" },
                    "installed_at": v.installed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "file": v.file,
                })
            })
        })
        .collect();
    print_table(
        &serde_json::Value::Array(rows),
        false,
        &["name", "version", "active", "installed_at", "file"],
    );
    Ok(ExitCode::SUCCESS)
}

fn print_active(reply: Reply, what: &str) -> anyhow::Result<ExitCode> {
    let Reply::FlowActive { active } = reply else {
        return Err(unexpected(reply));
    };
    println!("{} version {} {what}", active.name, active.version);
    Ok(ExitCode::SUCCESS)
}
