//! Queue reports: statistics per queue and interval, computed from the ACD events the
//! driver persisted (the `acd_events` documents of the replicated database) with the
//! definitions of `acd::stats` (see docs/acd.md). `svi stats` reads them from a data
//! directory; the `EngineHandle` (and so the admin reports) from the running engine's
//! database; `svi stats --source central` from the central database (every pair's
//! events). Like the driver, this is the ACD's edge with I/O: the core never reads storage.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::driver::EVENTS_COLLECTION;
use super::{queue_stats_by_interval, AcdEvent, EventKind, QueueId, QueueStats, Timestamp};
use crate::storage::central::CentralDb;
use crate::storage::{Storage, StorageError};

/// Events of calls answered in the period may end (talk, wrap-up) after it: read this much
/// further so the handle times are complete.
const LOOK_AHEAD: Duration = Duration::from_secs(4 * 3600);

/// A batch of events is keyed by its first event, so batches that started up to this long
/// before the period are read too (far longer than a batch window).
const LOOK_BEHIND: Duration = Duration::from_secs(60);

/// The service-level threshold when neither the query nor the queue's configuration gives
/// one.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(20);

/// Which queues, which period, cut how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportQuery {
    /// One queue; `None`: every queue with calls in the period.
    pub queue: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Interval length; `None`: the whole period as one interval.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// The service-level threshold for every queue; `None`: each queue's own.
    #[serde(default)]
    pub threshold: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the end of the period ({until}) is not after its start ({since})")]
    EmptyPeriod {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored ACD events `{key}` are not readable: {source}")]
    Unreadable {
        key: String,
        source: serde_json::Error,
    },
}

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix_ms(u64::try_from(t.timestamp_millis()).unwrap_or(0))
}

fn key(t: Timestamp) -> String {
    format!("{:013}", t.as_unix_ms())
}

/// The batch keys to read for `[from, to)`: `[from - LOOK_BEHIND, to + LOOK_AHEAD)`.
fn key_range(from: Timestamp, to: Timestamp) -> (String, String) {
    let start = Timestamp::from_unix_ms(
        from.as_unix_ms()
            .saturating_sub(LOOK_BEHIND.as_millis() as u64),
    );
    (key(start), key(to + LOOK_AHEAD))
}

/// The events of the batches of `key_range(from, to)`.
async fn load_events(
    storage: &Storage,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<AcdEvent>, ReportError> {
    let (start, end) = key_range(from, to);
    let docs = storage
        .docs_in_range(EVENTS_COLLECTION, &start, &end)
        .await?;
    let mut events = Vec::new();
    for (key, text) in docs {
        let batch: Vec<AcdEvent> = serde_json::from_str(&text)
            .map_err(|source| ReportError::Unreadable { key, source })?;
        events.extend(batch);
    }
    Ok(events)
}

/// The queues that had calls in `events`, in id order.
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

/// The period of `query` on the events' timeline; an error if it is empty.
fn period(query: &ReportQuery) -> Result<(Timestamp, Timestamp), ReportError> {
    if query.until <= query.since {
        return Err(ReportError::EmptyPeriod {
            since: query.since,
            until: query.until,
        });
    }
    Ok((timestamp(query.since), timestamp(query.until)))
}

/// The report: one row per queue and interval, queues in id order. `thresholds` are the
/// configured service-level thresholds per queue id.
pub async fn queue_report(
    storage: &Storage,
    query: &ReportQuery,
    thresholds: &HashMap<String, Duration>,
) -> Result<Vec<QueueStats>, ReportError> {
    let (from, to) = period(query)?;
    let events = load_events(storage, from, to).await?;
    Ok(rows_of(&events, query, thresholds))
}

/// The same report across every pair, from the events exported to the central database
/// (`svi stats --source central`).
pub async fn central_queue_report(
    central: &CentralDb,
    query: &ReportQuery,
    thresholds: &HashMap<String, Duration>,
) -> Result<Vec<QueueStats>, ReportError> {
    let (from, to) = period(query)?;
    let (start, end) = key_range(from, to);
    let mut events = Vec::new();
    for value in central.acd_events(&start, &end).await? {
        let event: AcdEvent =
            serde_json::from_value(value).map_err(|source| ReportError::Unreadable {
                key: "central_acd_events".into(),
                source,
            })?;
        events.push(event);
    }
    Ok(rows_of(&events, query, thresholds))
}

/// One row per queue and interval of the period of `query`, from `events`.
fn rows_of(
    events: &[AcdEvent],
    query: &ReportQuery,
    thresholds: &HashMap<String, Duration>,
) -> Vec<QueueStats> {
    let (from, to) = (timestamp(query.since), timestamp(query.until));
    let queues: Vec<String> = match &query.queue {
        Some(name) => vec![name.clone()],
        None => queues_in(events).into_iter().collect(),
    };
    let step = query.interval.unwrap_or_else(|| to.since(from));
    let mut rows = Vec::new();
    for name in &queues {
        let threshold = query
            .threshold
            .or_else(|| thresholds.get(name).copied())
            .unwrap_or(DEFAULT_THRESHOLD);
        let queue = QueueId::from(name.as_str());
        rows.extend(queue_stats_by_interval(
            events, &queue, from, to, step, threshold,
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::AgentId;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    fn ev(ms: u64, kind: EventKind) -> AcdEvent {
        AcdEvent { at: at(ms), kind }
    }

    fn utc(ms: u64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms as i64).expect("time")
    }

    #[tokio::test]
    async fn rows_come_from_the_stored_events_of_the_period() {
        let dir = tempfile::tempdir().expect("tmp");
        let storage = Storage::open(dir.path()).await.expect("db");
        let t0: u64 = 1_700_000_000_000;
        let (c1, c2) = (
            crate::acd::CallId::from("c1"),
            crate::acd::CallId::from("c2"),
        );
        let support = QueueId::from("support");
        let batch = vec![
            ev(
                t0,
                EventKind::CallQueued {
                    call: c1.clone(),
                    queue: support.clone(),
                    priority: crate::acd::Priority::Normal,
                },
            ),
            ev(
                t0 + 5_000,
                EventKind::CallAnswered {
                    call: c1.clone(),
                    queue: support.clone(),
                    agent: AgentId::from("1001"),
                    wait: Duration::from_secs(5),
                    callback: false,
                },
            ),
            ev(
                t0 + 6_000,
                EventKind::CallQueued {
                    call: c2.clone(),
                    queue: support.clone(),
                    priority: crate::acd::Priority::Normal,
                },
            ),
            ev(
                t0 + 36_000,
                EventKind::CallAbandoned {
                    call: c2.clone(),
                    queue: support.clone(),
                    wait: Duration::from_secs(30),
                },
            ),
        ];
        storage
            .put_doc(
                EVENTS_COLLECTION,
                &format!("{t0:013}-a-00000001"),
                &serde_json::to_string(&batch).expect("json"),
            )
            .await
            .expect("stored");
        let query = ReportQuery {
            queue: None,
            since: utc(t0 - 1000),
            until: utc(t0 + 60_000),
            interval: None,
            threshold: None,
        };
        let rows = queue_report(&storage, &query, &HashMap::new())
            .await
            .expect("report");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.queue, support);
        assert_eq!((r.offered, r.answered, r.abandoned), (2, 1, 1));
        assert_eq!(r.answered_within_sl, 1, "5 s is within the default 20 s");
        let strict = HashMap::from([("support".to_string(), Duration::from_secs(2))]);
        let rows = queue_report(&storage, &query, &strict)
            .await
            .expect("report");
        assert_eq!(rows[0].answered_within_sl, 0, "the queue's own threshold");

        let backwards = ReportQuery {
            until: query.since,
            ..query
        };
        assert!(matches!(
            queue_report(&storage, &backwards, &HashMap::new()).await,
            Err(ReportError::EmptyPeriod { .. })
        ));
        storage.close().await;
    }
}
