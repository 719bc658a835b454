//! `svi stats`: queue statistics per interval, computed from the ACD events the engine
//! persisted (the `acd_events` documents of the replicated database), with the definitions
//! of `engine::acd::stats` (see docs/acd.md).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use engine::acd::driver::EVENTS_COLLECTION;
use engine::acd::{self, AcdEvent, EventKind, QueueId, Timestamp};
use engine::storage::Storage;

/// Events of calls answered in the period may end (talk, wrap-up) after it: read this much
/// further so the handle times are complete.
const LOOK_AHEAD: Duration = Duration::from_secs(4 * 3600);

/// Default service-level threshold when the configuration is not at hand.
const DEFAULT_THRESHOLD: Duration = Duration::from_secs(20);

pub struct StatsQuery {
    pub queue: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub interval: Option<Duration>,
    /// Per-queue thresholds from the configuration, overridden by `threshold`.
    pub thresholds: HashMap<String, Duration>,
    pub threshold: Option<Duration>,
    pub json: bool,
}

/// `--since`/`--until`: RFC 3339, or a duration back from now (`15m`, `24h`, `7d`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
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
pub fn parse_span(s: &str) -> Option<Duration> {
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

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix_ms(t.timestamp_millis().max(0) as u64)
}

fn key(t: Timestamp) -> String {
    format!("{:013}", t.as_unix_ms())
}

/// Reads the events of `[from, to + LOOK_AHEAD)`; a batch is keyed by its first event, so
/// batches that started up to one batch window before `from` are read too.
async fn load_events(
    storage: &Storage,
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<Vec<AcdEvent>> {
    let start = Timestamp::from_unix_ms(from.as_unix_ms().saturating_sub(60_000));
    let end = to + LOOK_AHEAD;
    let docs = storage
        .docs_in_range(EVENTS_COLLECTION, &key(start), &key(end))
        .await?;
    let mut events = Vec::new();
    for (k, v) in docs {
        let batch: Vec<AcdEvent> = serde_json::from_str(&v)
            .with_context(|| format!("stored ACD events `{k}` are not readable"))?;
        events.extend(batch);
    }
    Ok(events)
}

fn queues_in(events: &[AcdEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CallQueued { queue, .. }
            | EventKind::CallAnswered { queue, .. }
            | EventKind::CallAbandoned { queue, .. }
            | EventKind::CallOverflowed { queue, .. } => Some(queue.as_str().to_string()),
            EventKind::CallMoved { to, .. } => Some(to.as_str().to_string()),
            _ => None,
        })
        .collect()
}

pub async fn print_stats(data_dir: &Path, q: StatsQuery) -> anyhow::Result<ExitCode> {
    if q.until <= q.since {
        bail!("--until ({}) is not after --since ({})", q.until, q.since);
    }
    if !data_dir.join("svi.db").exists() {
        bail!(
            "no statistics in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let (from, to) = (timestamp(q.since), timestamp(q.until));
    let events = load_events(&storage, from, to).await;
    storage.close().await;
    let events = events?;
    let queues: Vec<String> = match &q.queue {
        Some(name) => vec![name.clone()],
        None => queues_in(&events).into_iter().collect(),
    };
    let step = q.interval.unwrap_or_else(|| to.since(from));
    let mut rows = Vec::new();
    for name in &queues {
        let threshold = q
            .threshold
            .or_else(|| q.thresholds.get(name).copied())
            .unwrap_or(DEFAULT_THRESHOLD);
        let queue = QueueId::from(name.as_str());
        rows.extend(acd::queue_stats_by_interval(
            &events, &queue, from, to, step, threshold,
        ));
    }
    if q.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
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
    for r in &rows {
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
    Ok(ExitCode::SUCCESS)
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
