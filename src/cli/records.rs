//! `svi calls` and `svi recordings`: call records and the recording index, read from the
//! data directory's database (read-only, so they work while the engine runs).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::storage::Storage;

use super::{data_dir_of, runtime, Where};

#[derive(clap::Args, Debug)]
pub struct CallsArgs {
    #[command(flatten)]
    at: Where,
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
        .latest_docs(engine::call::RECORDINGS_COLLECTION, "$.recorded_at", limit)
        .await;
    storage.close().await;
    let entries = docs?
        .into_iter()
        .map(|(key, text)| {
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("recording index entry {key} is not JSON"))
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
        let text = |k: &str| e[k].as_str().unwrap_or("-").to_string();
        let recorded = chrono::DateTime::parse_from_rfc3339(&text("recorded_at"))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_else(|_| text("recorded_at"));
        let secs = e["duration_ms"]
            .as_u64()
            .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let sha: String = text("sha256").chars().take(12).collect();
        let present: Vec<&str> = e["present_on"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        println!(
            "{:<25} {:<20} {:>10} {:>7} {:<12} {}",
            recorded,
            text("call"),
            e["bytes"].as_u64().unwrap_or(0),
            secs,
            sha,
            present.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
