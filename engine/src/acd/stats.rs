//! Queue statistics, computed from the event log alone (what `svi stats --queue support
//! --since ...` will read back from storage), for one interval or a series of intervals.
//!
//! An event counts in the interval `[from, to)` that holds its time stamp. Definitions (the
//! same in `docs/acd.md`), with T the service-level threshold:
//!
//! - offered = calls entering the queue: `CallQueued` + `CallMoved` into it;
//! - answered, abandoned = `CallAnswered`, `CallAbandoned` in the queue;
//! - short abandons = abandoned with wait ≤ T (the caller gave up before the target passed);
//! - overflowed = `CallOverflowed` from the queue + `CallMoved` out of it;
//! - answered within SL = answered with wait ≤ T;
//! - service level = answered within SL / (answered + abandoned − short abandons +
//!   overflowed + callbacks failed), `None` when that is 0;
//! - ASA (average speed of answer) = Σ answered waits / answered;
//! - AHT (average handle time) = Σ (talk + wrap-up) / handled, handled = `CallEnded` in the
//!   interval; the wrap-up is matched by call from `WrapUpEnded` anywhere in the list;
//! - longest wait = the largest wait of an answered, abandoned or overflowed call.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::{AcdEvent, EventKind};
use super::types::{millis, opt_ms, CallId, QueueId, Timestamp};

/// The most intervals one query returns.
pub const MAX_INTERVALS: u64 = 100_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: QueueId,
    pub from: Timestamp,
    pub to: Timestamp,
    pub offered: u32,
    pub answered: u32,
    pub answered_within_sl: u32,
    pub abandoned: u32,
    pub short_abandoned: u32,
    pub overflowed: u32,
    pub callbacks_requested: u32,
    pub callbacks_failed: u32,
    pub handled: u32,
    /// Fraction 0..=1.
    pub service_level: Option<f64>,
    #[serde(with = "opt_ms")]
    pub average_speed_of_answer: Option<Duration>,
    #[serde(with = "opt_ms")]
    pub average_handle_time: Option<Duration>,
    #[serde(with = "opt_ms")]
    pub longest_wait: Option<Duration>,
}

/// One queue over `[from, to)`.
pub fn queue_stats(
    events: &[AcdEvent],
    queue: &QueueId,
    from: Timestamp,
    to: Timestamp,
    threshold: Duration,
) -> QueueStats {
    let step = to.since(from).max(Duration::from_millis(1));
    queue_stats_by_interval(events, queue, from, to, step, threshold)
        .into_iter()
        .next()
        .unwrap_or_else(|| empty(queue, from, to))
}

/// One queue over `[from, to)` cut in intervals of `step` (the last may be shorter), in
/// one pass over the events.
pub fn queue_stats_by_interval(
    events: &[AcdEvent],
    queue: &QueueId,
    from: Timestamp,
    to: Timestamp,
    step: Duration,
    threshold: Duration,
) -> Vec<QueueStats> {
    let span = to.as_unix_ms().saturating_sub(from.as_unix_ms());
    // A step too small for the span is widened: at most `MAX_INTERVALS` results.
    let step_ms = millis(step).max(1).max(span.div_ceil(MAX_INTERVALS));
    let step = Duration::from_millis(step_ms);
    let count = span.div_ceil(step_ms);
    let mut acc: Vec<Acc> = (0..count).map(|_| Acc::default()).collect();
    let wraps: HashMap<&CallId, Duration> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WrapUpEnded {
                call,
                queue: q,
                wrap,
                ..
            } if q == queue => Some((call, *wrap)),
            _ => None,
        })
        .collect();
    for e in events {
        if e.at < from || e.at >= to {
            continue;
        }
        let i = (e.at.as_unix_ms() - from.as_unix_ms()) / step_ms;
        if let Some(a) = usize::try_from(i).ok().and_then(|i| acc.get_mut(i)) {
            a.add(&e.kind, queue, threshold, &wraps);
        }
    }
    acc.into_iter()
        .zip(0u64..)
        .map(|(a, i)| {
            let start = Timestamp::from_unix_ms(
                from.as_unix_ms().saturating_add(i.saturating_mul(step_ms)),
            );
            let end = (start + step).min(to);
            a.finish(queue, start, end)
        })
        .collect()
}

/// Whole milliseconds, like every duration the log and the reports carry.
fn mean(total: Duration, n: u32) -> Option<Duration> {
    (n > 0).then(|| Duration::from_millis(millis(total) / u64::from(n)))
}

fn inc(n: &mut u32) {
    *n = n.saturating_add(1);
}

fn empty(queue: &QueueId, from: Timestamp, to: Timestamp) -> QueueStats {
    Acc::default().finish(queue, from, to)
}

/// One queue's running sums over one interval (also kept by `running`, event by event).
#[derive(Debug, Clone, Default)]
pub(super) struct Acc {
    s: QueueStats,
    answer_wait: Duration,
    pub(super) handle: Duration,
    longest: Option<Duration>,
}

impl Acc {
    fn waited(&mut self, wait: Duration) {
        self.longest = Some(self.longest.map_or(wait, |l| l.max(wait)));
    }

    pub(super) fn add(
        &mut self,
        kind: &EventKind,
        queue: &QueueId,
        threshold: Duration,
        wraps: &HashMap<&CallId, Duration>,
    ) {
        let s = &mut self.s;
        match kind {
            EventKind::CallQueued { queue: q, .. } if q == queue => inc(&mut s.offered),
            EventKind::CallMoved { from, to, wait, .. } => {
                if to == queue {
                    inc(&mut s.offered);
                }
                if from == queue {
                    inc(&mut s.overflowed);
                    self.waited(*wait);
                }
            }
            EventKind::CallAnswered { queue: q, wait, .. } if q == queue => {
                inc(&mut s.answered);
                if *wait <= threshold {
                    inc(&mut s.answered_within_sl);
                }
                self.answer_wait = self.answer_wait.saturating_add(*wait);
                self.waited(*wait);
            }
            EventKind::CallAbandoned { queue: q, wait, .. } if q == queue => {
                inc(&mut s.abandoned);
                if *wait <= threshold {
                    inc(&mut s.short_abandoned);
                }
                self.waited(*wait);
            }
            EventKind::CallOverflowed { queue: q, wait, .. } if q == queue => {
                inc(&mut s.overflowed);
                self.waited(*wait);
            }
            EventKind::CallbackRequested { queue: q, .. } if q == queue => {
                inc(&mut s.callbacks_requested)
            }
            EventKind::CallbackFailed { queue: q, .. } if q == queue => {
                inc(&mut s.callbacks_failed)
            }
            EventKind::CallEnded {
                call,
                queue: q,
                talk,
                ..
            } if q == queue => {
                inc(&mut s.handled);
                let wrap = wraps.get(call).copied().unwrap_or_default();
                self.handle = self.handle.saturating_add(*talk).saturating_add(wrap);
            }
            _ => {}
        }
    }

    pub(super) fn finish(self, queue: &QueueId, from: Timestamp, to: Timestamp) -> QueueStats {
        let mut s = self.s;
        s.queue = queue.clone();
        s.from = from;
        s.to = to;
        let denominator = (s.answered)
            .saturating_add(s.abandoned.saturating_sub(s.short_abandoned))
            .saturating_add(s.overflowed)
            .saturating_add(s.callbacks_failed);
        s.service_level =
            (denominator > 0).then(|| f64::from(s.answered_within_sl) / f64::from(denominator));
        s.average_speed_of_answer = mean(self.answer_wait, s.answered);
        s.average_handle_time = mean(self.handle, s.handled);
        s.longest_wait = self.longest;
        s
    }
}
