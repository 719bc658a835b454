//! `svi ha status|promote`: the HA pair as this node sees it, and manual fail-back.

use std::process::ExitCode;

use engine::control::Request;

use super::table::print_table;
use super::{control, Where};

#[derive(clap::Subcommand, Debug)]
pub enum HaCommand {
    /// Role, leader, term, indexes and members, as seen by this node.
    Status {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Make this node the active one (manual fail-back). With --force, in a pair without a
    /// witness whose other node is gone: continue alone (the operator's decision).
    Promote {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: HaCommand) -> anyhow::Result<ExitCode> {
    match command {
        HaCommand::Promote { at, force } => {
            control(&at, &Request::HaPromote { force })?;
            println!("ok");
        }
        HaCommand::Status { at, json } => {
            let v = control(&at, &Request::HaStatus)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(v: &serde_json::Value) {
    println!(
        "node {}  role {}  leader {}  term {}  commit {}  applied {}",
        v["node"],
        v["role"].as_str().unwrap_or("?"),
        v["leader"],
        v["term"],
        v["commit_index"],
        v["applied_index"]
    );
    println!(
        "role since {}  role changes {}",
        v["role_since"].as_str().unwrap_or("?"),
        v["role_changes"]
    );
    print_table(
        &v["members"],
        false,
        &[
            "id",
            "kind",
            "voter",
            "cluster_addr",
            "sip_addr",
            "matched_index",
        ],
    );
}
