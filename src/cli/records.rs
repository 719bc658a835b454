//! `svi calls` and `svi recordings`: call records and the recording index, read from the
//! data directory's database (read-only, so they work while the engine runs); and
//! `svi calls --live`, the calls in progress, asked of the running engine.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::control::{Reply, Request};
use engine::handle::CallInProgress;
use engine::recording::IndexEntry;
use engine::storage::Storage;

use super::{control, data_dir_of, runtime, unexpected, Where};

#[derive(clap::Args, Debug)]
pub struct CallsArgs {
    #[command(flatten)]
    at: Where,
    /// The calls in progress (flow and step, queue and position, agent, duration), from the
    /// running engine, instead of the records of ended calls.
    #[arg(long)]
    live: bool,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RecordingsArgs {
    #[command(flatten)]
    at: Where,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

pub fn calls(args: CallsArgs) -> anyhow::Result<ExitCode> {
    if args.live {
        let calls = match control(&args.at, &Request::Calls)? {
            Reply::Calls { calls } => calls,
            other => return Err(unexpected(other)),
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&calls)?);
        } else {
            print_live(&calls);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = data_dir_of(&args.at)?;
    runtime()?.block_on(print_calls(&data_dir, args.limit, args.json))
}

pub fn recordings(args: RecordingsArgs) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir_of(&args.at)?;
    runtime()?.block_on(print_recordings(&data_dir, args.limit, args.json))
}

async fn print_calls(data_dir: &Path, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    if !data_dir.join("svi.db").exists() {
        anyhow::bail!(
            "no call records in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let calls = storage.latest_calls(limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
    } else {
        println!(
            "{:<25} {:<16} {:<16} {:<10} {:>6} {:<15} PATH",
            "ENDED", "FROM", "TO", "FLOW", "SECS", "END"
        );
        for c in &calls {
            let secs = (c.ended_at - c.started_at).num_milliseconds() as f64 / 1000.0;
            println!(
                "{:<25} {:<16} {:<16} {:<10} {:>6.1} {:<15} {}",
                c.ended_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                c.caller,
                c.called,
                c.flow.as_deref().unwrap_or("-"),
                secs,
                c.end_reason.as_str(),
                c.path.join(" > ")
            );
        }
    }
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `svi calls --live`: one line per call in progress, oldest first.
fn print_live(calls: &[CallInProgress]) {
    println!(
        "{:<17} {:<14} {:<10} {:<16} {:<12} {:>4} {:<8} {:>7} CALLER",
        "CALL", "PHASE", "FLOW", "STEP", "QUEUE", "POS", "AGENT", "SECS"
    );
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for c in calls {
        let v = &c.call;
        let phase = serde_json::to_value(v.phase)
            .ok()
            .and_then(|p| p.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<17} {:<14} {:<10} {:<16} {:<12} {:>4} {:<8} {:>7.1} {}",
            v.id,
            phase,
            text(&v.flow),
            text(&v.step),
            text(&v.queue),
            v.position.map_or_else(|| "-".into(), |p| p.to_string()),
            text(&v.agent),
            c.duration_ms as f64 / 1000.0,
            v.caller.reveal(),
        );
    }
}

/// `svi recordings`: the replicated recording index of this node's database, newest first.
async fn print_recordings(data_dir: &Path, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    if !data_dir.join("svi.db").exists() {
        anyhow::bail!(
            "no recording index in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let docs = storage
        .latest_docs(engine::recording::index::COLLECTION, "$.recorded_at", limit)
        .await;
    storage.close().await;
    let entries = docs?
        .into_iter()
        .map(|(key, text)| {
            serde_json::from_str::<IndexEntry>(&text)
                .with_context(|| format!("recording index entry {key} is not readable"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<25} {:<20} {:>10} {:>7} {:<12} PRESENT ON",
        "RECORDED", "CALL", "BYTES", "SECS", "SHA256"
    );
    for e in &entries {
        let recorded = e.recorded_at.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        );
        let secs = e
            .duration_ms
            .map_or_else(|| "-".into(), |ms| format!("{:.1}", ms as f64 / 1000.0));
        let sha: String = e
            .sha256
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(12)
            .collect();
        println!(
            "{:<25} {:<20} {:>10} {:>7} {:<12} {}",
            recorded,
            e.call,
            e.bytes,
            secs,
            sha,
            e.present_on.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
