//! `svi stats`: queue statistics per interval from the persisted ACD events.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use engine::config::EngineConfig;

use super::{data_dir_of, runtime, Where};

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    at: Where,
    /// One queue (default: every queue with calls in the period).
    #[arg(long)]
    queue: Option<String>,
    /// Start: RFC 3339, or a span back from now (15m, 24h, 7d).
    #[arg(long, default_value = "24h")]
    since: String,
    /// End (default: now), same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// Cut the period in intervals of this length (15m, 1h, 1d; default: one interval).
    #[arg(long)]
    interval: Option<String>,
    /// Service-level threshold (default: each queue's `service_level`, else 20s).
    #[arg(long)]
    threshold: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let span = |flag: &str, v: Option<String>| -> anyhow::Result<Option<Duration>> {
        v.map(|s| {
            crate::stats::parse_span(&s)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!("{flag}: `{s}` is not a duration (90s, 15m, 1h, 1d)")
                })
        })
        .transpose()
    };
    let query = crate::stats::StatsQuery {
        queue: args.queue,
        since: crate::stats::parse_time(&args.since, now).context("--since")?,
        until: match args.until {
            Some(u) => crate::stats::parse_time(&u, now).context("--until")?,
            None => now,
        },
        interval: span("--interval", args.interval)?,
        threshold: span("--threshold", args.threshold)?,
        thresholds: thresholds(&args.at),
        json: args.json,
    };
    let data_dir = data_dir_of(&args.at)?;
    runtime()?.block_on(crate::stats::print_stats(&data_dir, query))
}

/// Each configured queue's service-level threshold: from `--config`, else from the
/// embedded default written in the data directory, else none.
fn thresholds(at: &Where) -> HashMap<String, Duration> {
    let file = match (&at.config, &at.data_dir) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(d)) => Some(d.join("default/svi.toml")).filter(|f| f.exists()),
        (None, None) => None,
    };
    file.and_then(|f| EngineConfig::load(&f).ok())
        .map(|c| {
            c.acd
                .queues
                .iter()
                .map(|q| (q.id.as_str().to_string(), q.service_level))
                .collect()
        })
        .unwrap_or_default()
}
