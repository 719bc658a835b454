//! When a call's snapshot is replicated (sans-IO: the driver gives the time and the call's
//! [`PhaseMark`] after each input, and sleeps until [`Pacer::poll_timeout`]).
//!
//! A change of mark (a new phase, step or leg) is replicated at once: it is what another
//! node needs to resume the call where it is. Anything else (the flow's variables, digits
//! collected, a queue position announced) is replicated at most once per `refresh`, and
//! only if an input came since the last write: a call that waits quietly costs nothing.

use std::time::{Duration, Instant};

use crate::call::core::PhaseMark;

#[derive(Debug)]
pub struct Pacer {
    refresh: Duration,
    /// The last write: when, and the mark it carried.
    last: Option<(Instant, PhaseMark)>,
    /// An input came since the last write, with the same mark.
    dirty: bool,
}

/// What the driver does after telling the pacer about the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Replicate the call's snapshot now.
    Write,
    /// Nothing to write now.
    Wait,
    /// The call cannot be adopted any more (ending): remove its replica, if it had one.
    Remove,
}

impl Pacer {
    pub fn new(refresh: Duration) -> Pacer {
        Pacer {
            refresh,
            last: None,
            dirty: false,
        }
    }

    /// After an input: `mark` is the call's [`PhaseMark`] now (`None`: not adoptable).
    pub fn handle_input(&mut self, now: Instant, mark: Option<PhaseMark>) -> Pace {
        let Some(mark) = mark else {
            // Once written, a call that stops being adoptable is removed once.
            return match self.last.take() {
                Some(_) => {
                    self.dirty = false;
                    Pace::Remove
                }
                None => Pace::Wait,
            };
        };
        match &self.last {
            Some((at, last)) if *last == mark && now < *at + self.refresh => {
                self.dirty = true;
                Pace::Wait
            }
            _ => self.written(now, mark),
        }
    }

    /// When the next periodic write is due (only after an input since the last one).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.last {
            Some((at, _)) if self.dirty => Some(*at + self.refresh),
            _ => None,
        }
    }

    /// The deadline of [`Pacer::poll_timeout`] passed: write if it is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Pace {
        match self.last.take() {
            Some((at, mark)) if self.dirty && now >= at + self.refresh => self.written(now, mark),
            last => {
                self.last = last;
                Pace::Wait
            }
        }
    }

    fn written(&mut self, now: Instant, mark: PhaseMark) -> Pace {
        self.last = Some((now, mark));
        self.dirty = false;
        Pace::Write
    }
}
