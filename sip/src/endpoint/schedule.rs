//! The endpoint's table of deadlines: one entry per live machine (client transaction, server
//! transaction, 2xx awaiting its ACK), ordered by time, so that `poll_timeout` and
//! `handle_timeout` cost O(log n) with thousands of transactions instead of a scan.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// The machine a deadline belongs to (by its id number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Slot {
    Client(u64),
    Server(u64),
    AckWait(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Schedule {
    queue: BTreeSet<(Instant, Slot)>,
    current: HashMap<Slot, Instant>,
}

impl Schedule {
    /// Records the next deadline of `slot` (`None`: nothing pending, or the machine is gone).
    pub(crate) fn update(&mut self, slot: Slot, deadline: Option<Instant>) {
        if let Some(old) = self.current.remove(&slot) {
            self.queue.remove(&(old, slot));
        }
        if let Some(at) = deadline {
            self.current.insert(slot, at);
            self.queue.insert((at, slot));
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns every slot due at `now`. Taken all at once, so that a machine
    /// re-arming at `now` (a zero interval) is served on the next call, not in a loop.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Slot> {
        let mut due = Vec::new();
        while let Some(&(at, slot)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.current.remove(&slot);
            due.push(slot);
        }
        due
    }

    /// See `Endpoint::compact`.
    pub(crate) fn compact(&mut self) {
        super::shrink_sparse(&mut self.current);
    }
}
