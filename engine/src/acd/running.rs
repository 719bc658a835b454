//! Statistics of one period kept up to date event by event ([`RunningStats`]), for
//! wallboards: today's figures per queue without reading the stored events on every
//! refresh. The definitions are those of `stats` (the same accumulator, fed one event at a
//! time), so the running figures equal what `queue_report` computes from the stored events
//! of the same period (tests below, and `tests/tests/admin_today.rs` against a running
//! engine).
//!
//! Sans-IO: the owner builds it for `[from, to)` (e.g. from the stored events of today, see
//! `report::running_since`), applies each `AcdEvent` of the live stream, and starts a new
//! one when an event or the clock reaches `to` ([`RunningStats::is_over`]). The average
//! handle time adds a call's wrap-up when its `WrapUpEnded` comes, after its `CallEnded`;
//! the stored-events report finds it later in the log the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::event::{AcdEvent, EventKind};
use super::report::DEFAULT_THRESHOLD;
use super::stats::{Acc, QueueStats};
use super::types::{CallId, QueueId, Timestamp};

#[derive(Debug, Clone, Default)]
struct Running {
    acc: Acc,
    /// The queue had a call in the period (the queues a report lists).
    listed: bool,
}

/// One period's figures per queue, fed by events (see the module documentation).
#[derive(Debug, Clone)]
pub struct RunningStats {
    from: Timestamp,
    to: Timestamp,
    thresholds: HashMap<String, Duration>,
    queues: BTreeMap<QueueId, Running>,
    /// Calls ended in the period, waiting for their wrap-up to end.
    ended: HashSet<(QueueId, CallId)>,
}

impl RunningStats {
    /// Empty figures for `[from, to)`; `thresholds` are the queues' service-level
    /// thresholds by id (`DEFAULT_THRESHOLD` for the others).
    pub fn new(from: Timestamp, to: Timestamp, thresholds: HashMap<String, Duration>) -> Self {
        RunningStats {
            from,
            to,
            thresholds,
            queues: BTreeMap::new(),
            ended: HashSet::new(),
        }
    }

    pub fn period(&self) -> (Timestamp, Timestamp) {
        (self.from, self.to)
    }

    /// Whether `now` is past the period: the owner starts the next one.
    pub fn is_over(&self, now: Timestamp) -> bool {
        now >= self.to
    }

    /// Counts one event. Events outside the period count for nothing, except the end of
    /// the wrap-up of a call that ended in it.
    pub fn apply(&mut self, e: &AcdEvent) {
        if let EventKind::WrapUpEnded {
            call, queue, wrap, ..
        } = &e.kind
        {
            if self.ended.remove(&(queue.clone(), call.clone())) {
                let r = self.queues.entry(queue.clone()).or_default();
                r.acc.handle = r.acc.handle.saturating_add(*wrap);
            }
            return;
        }
        if e.at < self.from || e.at >= self.to {
            return;
        }
        let (touched, listed): (Vec<&QueueId>, bool) = match &e.kind {
            EventKind::CallQueued { queue, .. }
            | EventKind::CallAnswered { queue, .. }
            | EventKind::CallAbandoned { queue, .. }
            | EventKind::CallOverflowed { queue, .. } => (vec![queue], true),
            EventKind::CallMoved { from, to, .. } => {
                // A report lists the queue a call moved into, not the one it left.
                self.add(from, &e.kind, false);
                (vec![to], true)
            }
            EventKind::CallbackRequested { queue, .. }
            | EventKind::CallbackFailed { queue, .. } => (vec![queue], false),
            EventKind::CallEnded { call, queue, .. } => {
                self.ended.insert((queue.clone(), call.clone()));
                (vec![queue], false)
            }
            _ => (Vec::new(), false),
        };
        for q in touched {
            self.add(q, &e.kind, listed);
        }
    }

    fn add(&mut self, queue: &QueueId, kind: &EventKind, listed: bool) {
        let threshold = self
            .thresholds
            .get(queue.as_str())
            .copied()
            .unwrap_or(DEFAULT_THRESHOLD);
        let r = self.queues.entry(queue.clone()).or_default();
        r.listed |= listed;
        // Wrap-ups are added as they end (`apply`), not looked up.
        r.acc.add(kind, queue, threshold, &HashMap::new());
    }

    /// The figures of the queues that had calls in the period, in id order, as
    /// `queue_report` gives them for the whole period.
    pub fn rows(&self) -> Vec<QueueStats> {
        self.queues
            .iter()
            .filter(|(_, r)| r.listed)
            .map(|(q, r)| r.acc.clone().finish(q, self.from, self.to))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{queue_stats, AgentId, Priority};

    const T0: u64 = 1_765_062_000_000;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_unix_ms(T0 + s * 1000)
    }

    fn ev(s: u64, kind: EventKind) -> AcdEvent {
        AcdEvent { at: at(s), kind }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A burst on two queues: answered in and out of the service level, abandoned short
    /// and long, overflowed, moved, a callback failed, calls ended with and without their
    /// wrap-up, and events before and after the period.
    fn burst() -> Vec<AcdEvent> {
        let (s, v) = (QueueId::from("support"), QueueId::from("vip"));
        let c = |n: u32| CallId::new(format!("c{n}"));
        let a = AgentId::from("1001");
        let mut out = vec![ev(
            5,
            EventKind::CallAnswered {
                call: c(99),
                queue: s.clone(),
                agent: a.clone(),
                wait: secs(3),
                callback: false,
            },
        )];
        for n in 0..40u32 {
            let t = 100 + u64::from(n) * 7;
            let q = if n % 3 == 0 { &v } else { &s };
            out.push(ev(
                t,
                EventKind::CallQueued {
                    call: c(n),
                    queue: q.clone(),
                    priority: Priority::Normal,
                },
            ));
            let wait = secs(u64::from(n % 9) * 4);
            let end = t + wait.as_secs();
            out.push(ev(
                end,
                match n % 5 {
                    0 | 1 => EventKind::CallAnswered {
                        call: c(n),
                        queue: q.clone(),
                        agent: a.clone(),
                        wait,
                        callback: false,
                    },
                    2 => EventKind::CallAbandoned {
                        call: c(n),
                        queue: q.clone(),
                        wait,
                    },
                    3 => EventKind::CallOverflowed {
                        call: c(n),
                        queue: q.clone(),
                        wait,
                        reason: crate::acd::OverflowReason::MaxWait,
                        target: crate::acd::ExitTarget::Flow { step: None },
                    },
                    _ => EventKind::CallMoved {
                        call: c(n),
                        from: q.clone(),
                        to: if q == &s { v.clone() } else { s.clone() },
                        reason: crate::acd::OverflowReason::MaxWait,
                        wait,
                    },
                },
            ));
            if n % 5 < 2 {
                out.push(ev(
                    end + 60,
                    EventKind::CallEnded {
                        call: c(n),
                        queue: q.clone(),
                        agent: a.clone(),
                        talk: secs(60),
                    },
                ));
                if n % 2 == 0 {
                    out.push(ev(
                        end + 70,
                        EventKind::WrapUpEnded {
                            call: c(n),
                            queue: q.clone(),
                            agent: a.clone(),
                            wrap: secs(10),
                        },
                    ));
                }
            }
        }
        out.push(ev(
            400,
            EventKind::CallbackFailed {
                call: c(50),
                queue: s.clone(),
                attempts: 2,
            },
        ));
        out.push(ev(
            100_000,
            EventKind::CallQueued {
                call: c(98),
                queue: s.clone(),
                priority: Priority::Normal,
            },
        ));
        out.sort_by_key(|e| e.at);
        out
    }

    #[test]
    fn running_figures_equal_the_reports_after_a_burst() {
        let (from, to) = (at(50), at(3600));
        let thresholds = HashMap::from([("vip".to_string(), secs(10))]);
        let events = burst();
        let mut running = RunningStats::new(from, to, thresholds.clone());
        for e in &events {
            running.apply(e);
        }
        let rows = running.rows();
        assert_eq!(
            rows.iter().map(|r| r.queue.as_str()).collect::<Vec<_>>(),
            ["support", "vip"]
        );
        for r in &rows {
            let threshold = thresholds
                .get(r.queue.as_str())
                .copied()
                .unwrap_or(DEFAULT_THRESHOLD);
            assert_eq!(r, &queue_stats(&events, &r.queue, from, to, threshold));
        }
        let support = &rows[0];
        assert!(support.offered > 20 && support.abandoned > 0 && support.handled > 0);
        assert!(
            support.average_handle_time > Some(secs(60)),
            "wrap-ups count"
        );
        assert_eq!(support.callbacks_failed, 1);
    }

    #[test]
    fn events_outside_the_period_count_for_nothing_and_its_end_is_seen() {
        let (from, to) = (at(50), at(200));
        let mut running = RunningStats::new(from, to, HashMap::new());
        running.apply(&ev(
            5,
            EventKind::CallQueued {
                call: CallId::from("early"),
                queue: QueueId::from("support"),
                priority: Priority::Normal,
            },
        ));
        running.apply(&ev(
            200,
            EventKind::CallQueued {
                call: CallId::from("late"),
                queue: QueueId::from("support"),
                priority: Priority::Normal,
            },
        ));
        assert!(running.rows().is_empty());
        assert!(!running.is_over(at(199)));
        assert!(running.is_over(at(200)));
        assert_eq!(running.period(), (from, to));
    }
}
