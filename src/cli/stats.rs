//! `svi stats`: queue statistics per interval from the persisted ACD events, read from the
//! data directory's database, or with `--source central` from the central reporting
//! database across every pair (the report itself is the engine's `acd::report`).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use engine::acd::report::{central_queue_report, queue_report, ReportQuery};
use engine::acd::QueueStats;
use engine::config::EngineConfig;
use engine::storage::Storage;

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
    /// Where the events come from: this node's database, or the central database of
    /// `[central]` (every pair's events).
    #[arg(long, value_enum, default_value = "local")]
    source: Source,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Local,
    Central,
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let span = |flag: &str, v: Option<String>| -> anyhow::Result<Option<Duration>> {
        v.map(|s| {
            parse_span(&s).filter(|d| !d.is_zero()).ok_or_else(|| {
                anyhow::anyhow!("{flag}: `{s}` is not a duration (90s, 15m, 1h, 1d)")
            })
        })
        .transpose()
    };
    let query = ReportQuery {
        queue: args.queue,
        since: parse_time(&args.since, now).context("--since")?,
        until: match args.until {
            Some(u) => parse_time(&u, now).context("--until")?,
            None => now,
        },
        interval: span("--interval", args.interval)?,
        threshold: span("--threshold", args.threshold)?,
    };
    let thresholds = thresholds(&args.at);
    let rows = match args.source {
        Source::Local => {
            let data_dir = data_dir_of(&args.at)?;
            runtime()?.block_on(report(&data_dir, &query, &thresholds))?
        }
        Source::Central => runtime()?.block_on(central_report(&args.at, &query, &thresholds))?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_rows(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

async fn report(
    data_dir: &Path,
    query: &ReportQuery,
    thresholds: &HashMap<String, Duration>,
) -> anyhow::Result<Vec<QueueStats>> {
    if query.until <= query.since {
        bail!(
            "--until ({}) is not after --since ({})",
            query.until,
            query.since
        );
    }
    if !data_dir.join("svi.db").exists() {
        bail!(
            "no statistics in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let rows = queue_report(&storage, query, thresholds).await;
    storage.close().await;
    Ok(rows?)
}

/// The report from the central database named by the configuration's `[central]`.
async fn central_report(
    at: &Where,
    query: &ReportQuery,
    thresholds: &HashMap<String, Duration>,
) -> anyhow::Result<Vec<QueueStats>> {
    let config = super::load_config(at)?;
    let Some(central) = &config.central else {
        bail!(
            "{}: no [central] section: central reporting is not configured",
            config.file.display()
        );
    };
    let db = engine::central::reader(central, &config.data_dir).await?;
    let rows = central_queue_report(&db, query, thresholds).await;
    db.close().await;
    Ok(rows?)
}

fn print_rows(rows: &[QueueStats]) {
    println!(
        "{:<12} {:<20} {:>7} {:>8} {:>9} {:>8} {:>6} {:>8} {:>8} {:>9}",
        "QUEUE",
        "FROM",
        "OFFERED",
        "ANSWERED",
        "ABANDONED",
        "OVERFLOW",
        "SL%",
        "ASA",
        "AHT",
        "LONGEST"
    );
    let secs = |d: Option<Duration>| {
        d.map(|d| format!("{:.1}s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    for r in rows {
        let from: DateTime<Utc> = r.from.to_system_time().into();
        println!(
            "{:<12} {:<20} {:>7} {:>8} {:>9} {:>8} {:>6} {:>8} {:>8} {:>9}",
            r.queue.as_str(),
            from.format("%Y-%m-%d %H:%M"),
            r.offered,
            r.answered,
            r.abandoned,
            r.overflowed,
            r.service_level
                .map(|s| format!("{:.0}", s * 100.0))
                .unwrap_or_else(|| "-".into()),
            secs(r.average_speed_of_answer),
            secs(r.average_handle_time),
            secs(r.longest_wait),
        );
    }
}

/// `--since`/`--until`: RFC 3339, or a duration back from now (`15m`, `24h`, `7d`).
fn parse_time(s: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match parse_span(s) {
        Some(d) => Ok(now - chrono::Duration::from_std(d)?),
        None => bail!(
            "`{s}` is neither an RFC 3339 time (2026-11-21T08:00:00+01:00) nor a duration back from now (15m, 24h, 7d)"
        ),
    }
}

/// `90s`, `15m`, `1h`, `7d`, or a bare number of seconds.
fn parse_span(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(days) = s.strip_suffix('d') {
        return days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs);
    }
    ivr_scripts::parse_duration(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_span_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("2026-11-21T08:00:00+01:00", now).expect("rfc"),
            DateTime::parse_from_rfc3339("2026-11-21T07:00:00Z").expect("t")
        );
        assert_eq!(
            parse_time("2h", now).expect("span"),
            DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z").expect("t")
        );
        assert_eq!(parse_span("7d"), Some(Duration::from_secs(7 * 86_400)));
        let err = parse_time("yesterday", now).expect_err("refused");
        assert!(err.to_string().contains("`yesterday`"), "{err}");
    }
}
