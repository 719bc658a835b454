//! Timers as data: each state machine names its timers in an enum and keeps their deadlines in
//! a small table. Nothing sleeps and nothing is spawned; the owner asks for the earliest
//! deadline (`next`) and, once the clock has passed it, takes the expired timers one at a time.

use std::time::{Duration, Instant};

/// RFC 3261 §17.1.1.1 and Table 4: the base intervals every transaction timer derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate (500 ms): first retransmission interval; 64*T1 bounds a transaction.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (5 s): linger of Timers I and K.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, L and M, and the 2xx retransmission give-up time (§13.3.1.4).
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Deadlines of named timers. A handful of entries at most, so a vector beats a map.
#[derive(Debug, Clone)]
pub struct TimerTable<T> {
    entries: Vec<(T, Instant)>,
}

impl<T> Default for TimerTable<T> {
    fn default() -> Self {
        TimerTable {
            entries: Vec::new(),
        }
    }
}

impl<T: Copy + PartialEq> TimerTable<T> {
    /// Arms `timer` at `at`, replacing an earlier deadline of the same timer.
    pub fn set(&mut self, timer: T, at: Instant) {
        self.cancel(timer);
        self.entries.push((timer, at));
    }

    pub fn cancel(&mut self, timer: T) {
        self.entries.retain(|(t, _)| *t != timer);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn is_armed(&self, timer: T) -> bool {
        self.entries.iter().any(|(t, _)| *t == timer)
    }

    /// Every armed timer with its deadline (to save a machine's state).
    pub fn iter(&self) -> impl Iterator<Item = (T, Instant)> + '_ {
        self.entries.iter().copied()
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next(&self) -> Option<Instant> {
        self.entries.iter().map(|(_, at)| *at).min()
    }

    /// Disarms and returns the earliest timer whose deadline is not after `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<T> {
        let (i, _) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(_, (_, at))| *at)?;
        Some(self.entries.swap_remove(i).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum T {
        A,
        B,
    }

    #[test]
    fn earliest_first_and_rearm_replaces() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(T::B, t0 + Duration::from_secs(32));
        table.set(T::A, t0 + Duration::from_millis(500));
        table.set(T::A, t0 + Duration::from_secs(1));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.pop_expired(t0), None);
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(40)), Some(T::A));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(40)), Some(T::B));
        assert_eq!(table.next(), None);
    }
}
