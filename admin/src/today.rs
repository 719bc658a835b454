//! Today's figures per queue for the wallboard (offered, answered, abandoned, service
//! level... from midnight in `[admin] timezone`), kept by one task from the ACD's event
//! stream so that a page refresh reads them instead of scanning the day's stored events:
//! with N wallboards open, each refresh on each event, the scan would cost N per event.
//!
//! The task builds the figures from the stored events of the day (`EngineHandle::
//! running_statistics`) when it starts, when the engine becomes active (after a takeover),
//! after missing events (a lagging subscription) and at midnight; between those it applies
//! each ACD event as it comes (`acd::RunningStats`, the reports' own definitions) and
//! publishes the rows on a `watch` channel. Events that arrive while the day is read may
//! also be in what was read (the ACD writes its events in batches): the subscription is
//! opened first, and an event already read is not counted twice.
//!
//! Until the first build (or while the engine is not active) there are no rows and the
//! wallboard reads the stored events itself, as before.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use engine::acd::{AcdEvent, QueueStats, RunningStats};
use engine::EngineHandle;
use futures_util::FutureExt as _;
use tokio::sync::{broadcast::error::RecvError, watch};

use crate::web::i18n::{day_of, day_start, today_start};

/// How long the task waits before trying again when the engine is not active.
const RETRY: Duration = Duration::from_secs(1);

/// Today's rows, as the task last published them (cheap to clone).
#[derive(Clone)]
pub struct Today {
    rows: watch::Receiver<Option<Arc<Vec<QueueStats>>>>,
}

impl Today {
    /// Starts the task (in the current tokio runtime).
    pub fn start(engine: EngineHandle, zone: Tz) -> Today {
        let (tx, rows) = watch::channel(None);
        tokio::spawn(run(engine, zone, tx));
        Today { rows }
    }

    /// A `Today` that never has rows (no runtime to run the task in).
    pub fn none() -> Today {
        Today {
            rows: watch::channel(None).1,
        }
    }

    /// Today's rows; `None` until the task has read the day.
    pub fn rows(&self) -> Option<Arc<Vec<QueueStats>>> {
        self.rows.borrow().clone()
    }
}

/// The day `now` falls on in `zone`: its start and the next day's.
pub fn day_bounds(zone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = today_start(zone, now);
    let to = day_of(zone, now)
        .succ_opt()
        .and_then(|d| day_start(zone, d))
        .unwrap_or(from + chrono::Duration::hours(24));
    (from, to)
}

async fn run(engine: EngineHandle, zone: Tz, tx: watch::Sender<Option<Arc<Vec<QueueStats>>>>) {
    while !tx.is_closed() {
        // Not active (standby, starting): no rows; the page reads the stored events.
        let Ok(mut events) = engine.acd_events() else {
            tx.send_replace(None);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let mut carry = Vec::new();
        // One subscription across days: the day's change loses no event.
        loop {
            // Events that happened before the subscription reach the database within
            // the ACD's batch window; wait that long before reading it (those after are
            // in the subscription).
            tokio::time::sleep(SETTLE).await;
            let (from, to) = day_bounds(zone, Utc::now());
            let (mut stats, read) = match engine.running_statistics(from, to).await {
                Ok(built) => built,
                Err(e) => {
                    tracing::debug!(error = %e, "wallboard: today's figures not read");
                    tx.send_replace(None);
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            };
            let mut pending = std::mem::take(&mut carry);
            let mut lost = false;
            while let Some(got) = events.recv().now_or_never() {
                match got {
                    Ok(e) => pending.push(e),
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => lost = true,
                }
            }
            if lost {
                break;
            }
            apply_new(&mut stats, &read, pending);
            tx.send_replace(Some(Arc::new(stats.rows())));
            match follow(&mut events, &mut stats, &tx, to).await {
                Followed::NextDay(first) => {
                    // Until the new day is read, the page reads the stored events.
                    tx.send_replace(None);
                    carry.extend(first);
                }
                Followed::Lost => break,
            }
        }
    }
}

/// How long events take at most to reach the database (the ACD's batch window, 250 ms,
/// and the write).
const SETTLE: Duration = Duration::from_secs(1);

enum Followed {
    /// The day ended (the clock, or the first event of the next day, given back).
    NextDay(Option<AcdEvent>),
    /// Events were missed or the engine stopped: read everything again.
    Lost,
}

/// Applies `pending` (received while `read` was read) except the events `read` holds.
pub fn apply_new(stats: &mut RunningStats, read: &[AcdEvent], pending: Vec<AcdEvent>) {
    let Some(first) = pending.first().map(|e| e.at) else {
        return;
    };
    let mut seen: Vec<&AcdEvent> = read.iter().filter(|e| e.at >= first).collect();
    for e in pending {
        match seen.iter().position(|s| **s == e) {
            Some(i) => {
                seen.swap_remove(i);
            }
            None => stats.apply(&e),
        }
    }
}

/// Applies live events until the day ends, events are missed or the engine stops.
async fn follow(
    events: &mut tokio::sync::broadcast::Receiver<AcdEvent>,
    stats: &mut RunningStats,
    tx: &watch::Sender<Option<Arc<Vec<QueueStats>>>>,
    to: DateTime<Utc>,
) -> Followed {
    let wait = (to - Utc::now()).to_std().unwrap_or_default();
    let midnight = tokio::time::sleep(wait);
    tokio::pin!(midnight);
    loop {
        tokio::select! {
            got = events.recv() => match got {
                Ok(e) if stats.is_over(e.at) => return Followed::NextDay(Some(e)),
                Ok(e) => {
                    stats.apply(&e);
                    tx.send_replace(Some(Arc::new(stats.rows())));
                }
                Err(_) => return Followed::Lost,
            },
            _ = &mut midnight => return Followed::NextDay(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::acd::{CallId, EventKind, Priority, QueueId, Timestamp};
    use std::collections::HashMap;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_day_runs_from_midnight_to_midnight_in_the_zone_even_on_clock_changes() {
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            day_bounds(paris, utc("2026-12-07T22:30:00Z")),
            (utc("2026-12-06T23:00:00Z"), utc("2026-12-07T23:00:00Z"))
        );
        // 29 March 2026 has 23 hours in Paris, 25 October 25.
        assert_eq!(
            day_bounds(paris, utc("2026-03-29T12:00:00Z")),
            (utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"))
        );
        assert_eq!(
            day_bounds(paris, utc("2026-10-25T12:00:00Z")),
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        );
    }

    fn queued(ms: u64, call: &str) -> AcdEvent {
        AcdEvent {
            at: Timestamp::from_unix_ms(ms),
            kind: EventKind::CallQueued {
                call: CallId::from(call),
                queue: QueueId::from("support"),
                priority: Priority::Normal,
            },
        }
    }

    fn empty_day(to: DateTime<Utc>) -> RunningStats {
        RunningStats::new(
            Timestamp::from_unix_ms(0),
            Timestamp::from_unix_ms(to.timestamp_millis() as u64),
            HashMap::new(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn live_events_are_published_until_the_day_ends_by_the_clock_or_by_an_event() {
        let to = Utc::now() + chrono::Duration::hours(1);
        let (events_tx, mut events) = tokio::sync::broadcast::channel(16);
        let (tx, rows) = watch::channel(None);
        let mut stats = empty_day(to);
        let now_ms = Utc::now().timestamp_millis() as u64;
        events_tx.send(queued(now_ms, "a")).expect("sent");
        // The next day's first event ends the day and is given back.
        let next_day = queued(to.timestamp_millis() as u64, "b");
        events_tx.send(next_day.clone()).expect("sent");
        match follow(&mut events, &mut stats, &tx, to).await {
            Followed::NextDay(Some(e)) => assert_eq!(e, next_day),
            _ => panic!("the day should end with its event"),
        }
        let shown = rows.borrow().clone().expect("published");
        assert_eq!(shown[0].offered, 1);
        // Without events, the clock ends the day (virtual time: an hour passes at once).
        let mut stats = empty_day(to);
        assert!(matches!(
            follow(&mut events, &mut stats, &tx, to).await,
            Followed::NextDay(None)
        ));
        // Missed events: everything is read again.
        let (events_tx, mut events) = tokio::sync::broadcast::channel(1);
        events_tx.send(queued(now_ms, "c")).expect("sent");
        events_tx.send(queued(now_ms, "d")).expect("sent");
        let mut stats = empty_day(Utc::now() + chrono::Duration::hours(1));
        assert!(matches!(
            follow(&mut events, &mut stats, &tx, to).await,
            Followed::Lost
        ));
    }

    #[test]
    fn an_event_both_read_and_received_counts_once() {
        let read = vec![queued(1_000, "a"), queued(2_000, "b"), queued(3_000, "c")];
        let mut stats = RunningStats::new(
            Timestamp::from_unix_ms(0),
            Timestamp::from_unix_ms(10_000),
            HashMap::new(),
        );
        for e in &read {
            stats.apply(e);
        }
        // Received live while the day was read: b and c were already stored, d not yet.
        let pending = vec![queued(2_000, "b"), queued(3_000, "c"), queued(4_000, "d")];
        apply_new(&mut stats, &read, pending);
        assert_eq!(stats.rows()[0].offered, 4);
        apply_new(&mut stats, &read, Vec::new());
        assert_eq!(stats.rows()[0].offered, 4);
    }
}
