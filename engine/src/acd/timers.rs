//! The core's table of deadlines (STYLE rule 4): one ordered set for "what is due next" and a
//! map for "when is this one due", so that setting, cancelling and popping are all
//! O(log T), and the driver keeps a single sleep on [`Timers::next`].
//!
//! It serialises as a plain list; the ordered set is rebuilt when it is read back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::types::{AgentId, CallId, QueueId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TimerKey {
    /// The call's max wait in its current queue.
    MaxWait(CallId),
    /// The offered agents' ring timeout.
    Ring(CallId),
    /// The end of an agent's wrap-up.
    WrapUp(AgentId),
    /// The queue's next announcement round.
    Announce(QueueId),
    /// A callback entry competes again.
    CallbackRetry(CallId),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Deadline {
    key: TimerKey,
    at: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Deadline>", into = "Vec<Deadline>")]
pub(crate) struct Timers {
    at: BTreeMap<TimerKey, Timestamp>,
    order: BTreeSet<(Timestamp, TimerKey)>,
}

impl Timers {
    /// Sets or moves the deadline of `key`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Timestamp) {
        if let Some(old) = self.at.insert(key.clone(), at) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((at, key));
    }

    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some(old) = self.at.remove(key) {
            self.order.remove(&(old, key.clone()));
        }
    }

    pub(crate) fn get(&self, key: &TimerKey) -> Option<Timestamp> {
        self.at.get(key).copied()
    }

    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest deadline due at `now`; equal deadlines come out in
    /// key order, so firing is deterministic.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<TimerKey> {
        let (at, _) = self.order.first()?;
        if *at > now {
            return None;
        }
        let (_, key) = self.order.pop_first()?;
        self.at.remove(&key);
        Some(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }
}

impl From<Vec<Deadline>> for Timers {
    fn from(list: Vec<Deadline>) -> Self {
        let mut t = Timers::default();
        for d in list {
            t.set(d.key, d.at);
        }
        t
    }
}

impl From<Timers> for Vec<Deadline> {
    fn from(t: Timers) -> Self {
        t.at.into_iter()
            .map(|(key, at)| Deadline { key, at })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    #[test]
    fn set_move_cancel_pop() {
        let mut t = Timers::default();
        let a = TimerKey::Ring(CallId::from("a"));
        let b = TimerKey::WrapUp(AgentId::from("1001"));
        t.set(a.clone(), ts(50));
        t.set(b.clone(), ts(20));
        t.set(a.clone(), ts(10));
        assert_eq!(t.next(), Some(ts(10)));
        assert_eq!(t.pop_due(ts(5)), None);
        assert_eq!(t.pop_due(ts(30)), Some(a));
        t.cancel(&b);
        assert_eq!(t.next(), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn serialises_as_a_list() {
        let mut t = Timers::default();
        t.set(TimerKey::Announce(QueueId::from("q")), ts(7));
        let json = serde_json::to_string(&t).expect("serialise");
        let back: Timers = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, t);
        assert_eq!(back.next(), Some(ts(7)));
    }
}
