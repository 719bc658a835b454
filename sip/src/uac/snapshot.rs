//! The client's state as data: what a call snapshot holds to rebuild the leg on another node.
//!
//! A [`UacSnapshot`] is everything but the clock and the secrets: the timers are saved as the
//! time left when the snapshot was taken and re-armed from the `now` of [`Uac::restore`]; the
//! digest password is never saved (the TU gives the credentials again). Outputs and events
//! not drained yet are not part of it: a driver snapshots after draining, as it always does
//! before waiting.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::transaction::TimerTable;

use super::{digest_of, Credentials, Data, Timer, Uac};

/// A saved [`Uac`] (serialisable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UacSnapshot {
    data: Data,
    /// Armed timers and the time each had left.
    timers: Vec<(Timer, Duration)>,
}

impl Uac {
    pub fn snapshot(&self, now: Instant) -> UacSnapshot {
        UacSnapshot {
            data: self.d.clone(),
            timers: self
                .timers
                .iter()
                .map(|(t, at)| (t, at.saturating_duration_since(now)))
                .collect(),
        }
    }

    /// The client a snapshot was taken of, its timers running again from `now`.
    pub fn restore(snapshot: UacSnapshot, credentials: Option<Credentials>, now: Instant) -> Uac {
        let mut timers = TimerTable::default();
        for (timer, left) in snapshot.timers {
            timers.set(timer, now + left);
        }
        Uac {
            d: snapshot.data,
            digest: digest_of(credentials),
            timers,
            outputs: Default::default(),
            events: Default::default(),
        }
    }
}
