//! `svi ha status|promote|cert`: the HA pair as this node sees it, manual fail-back, and
//! this member's cluster certificate (its fingerprint, to pin in every member's `[ha]`).

use std::process::ExitCode;

use engine::control::{Reply, Request};
use engine::replication::HaStatus;

use super::table::print_table;
use super::{control, data_dir_of, unexpected, Where};

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
    /// Print this member's cluster certificate fingerprint, generating the certificate in
    /// the data directory first if there is none (the node need not be running).
    Cert {
        #[command(flatten)]
        at: Where,
    },
}

pub fn run(command: HaCommand) -> anyhow::Result<ExitCode> {
    match command {
        HaCommand::Cert { at } => {
            println!("{}", crate::ha::member_fingerprint(&data_dir_of(&at)?)?);
        }
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
