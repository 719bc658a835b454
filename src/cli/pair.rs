//! `svi ha status|promote`: the HA pair as this node sees it, and manual fail-back.

use std::process::ExitCode;

use engine::control::{Reply, Request};
use engine::replication::HaStatus;

use super::table::print_table;
use super::{control, unexpected, Where};

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
        HaCommand::Promote { at, force } => match control(&at, &Request::HaPromote { force })? {
            Reply::Done => println!("ok"),
            other => return Err(unexpected(other)),
        },
        HaCommand::Status { at, json } => {
            let status = match control(&at, &Request::HaStatus)? {
                Reply::HaStatus { status } => status,
                other => return Err(unexpected(other)),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(s: &HaStatus) -> anyhow::Result<()> {
    let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    println!(
        "node {}  role {}  leader {}  term {}  commit {}  applied {}",
        s.node,
        s.role,
        opt(s.leader),
        s.term,
        opt(s.commit_index),
        opt(s.applied_index)
    );
    println!(
        "role since {}  role changes {}",
        s.role_since
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        s.role_changes
    );
    print_table(
        &serde_json::to_value(&s.members)?,
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
    Ok(())
}
