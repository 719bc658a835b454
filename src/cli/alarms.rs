//! `svi alarms`: the alarms active on the running node, most severe first, and the counts
//! raised and cleared since it started (the node's alarm screen; the same snapshot feeds
//! the metrics).

use std::process::ExitCode;

use engine::control::{Reply, Request};

use super::table::print_table;
use super::{control, Where};

#[derive(clap::Args, Debug)]
pub struct AlarmsArgs {
    #[command(flatten)]
    at: Where,
    #[arg(long)]
    json: bool,
}

pub fn run(args: AlarmsArgs) -> anyhow::Result<ExitCode> {
    let Reply::Alarms { alarms } = control(&args.at, &Request::Alarms)? else {
        anyhow::bail!("the engine did not answer with its alarms");
    };
    let v = serde_json::to_value(&alarms)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let active = &v["active"];
    if active.as_array().is_none_or(|a| a.is_empty()) {
        println!("no active alarm");
    } else {
        print_table(
            active,
            false,
            &["severity", "kind", "subject", "raised_at", "message"],
        );
    }
    println!(
        "since start: {} raised, {} cleared; notifications {} sent, {} failed",
        alarms.raised_total.values().sum::<u64>(),
        alarms.cleared_total.values().sum::<u64>(),
        alarms.notifications_sent,
        alarms.notifications_failed
    );
    Ok(ExitCode::SUCCESS)
}
