//! A circuit breaker as a sans-IO state machine: the caller gives the time of each event.
//!
//! Closed, it counts backend failures in a row; at `failures` it opens. Open, every call is
//! refused at once (the flow takes its error branch without waiting for a dead backend's
//! timeout) until `open_for` has passed; then the connector is probed, by its own health
//! request when it has one (a background task), else by letting one real call through (the
//! trial). A successful probe or trial closes the circuit; a failed one opens it again for
//! another `open_for`. Only failures that say the backend is unwell count (timeouts,
//! transport errors, 5xx, garbage answers); a bad parameter does not. A call that never
//! put the backend to the test (refused on the caller's input, cut short by the flow's own
//! deadline, or dropped with its caller) is inconclusive: it neither counts nor resets,
//! and a trial that ends so hands the decision to the next call.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Backend failures in a row that open the circuit; 0 disables the breaker.
    pub failures: u32,
    /// How long the circuit stays open before the backend is probed.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        in_a_row: u32,
    },
    Open {
        until: Instant,
        in_a_row: u32,
    },
    /// One probe or trial call is in flight; others are refused meanwhile.
    Probing {
        in_a_row: u32,
    },
}

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: call the backend.
    Call,
    /// The open period is over: this call is the trial that decides.
    Trial,
    /// Open (or a probe is in flight): refuse at once.
    Refuse { failures: u32 },
}

/// A state change worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened {
        failures: u32,
    },
    /// A probe or trial failed: open for another period (it was never closed).
    Reopened,
    Closed,
}

/// The state as the health snapshot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    Probing,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: State::Closed { in_a_row: 0 },
        }
    }

    pub fn state(&self) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::Probing { .. } => CircuitState::Probing,
        }
    }

    /// Backend failures in a row so far.
    pub fn failures_in_a_row(&self) -> u32 {
        match self.state {
            State::Closed { in_a_row }
            | State::Open { in_a_row, .. }
            | State::Probing { in_a_row } => in_a_row,
        }
    }

    /// When an open circuit is due for a probe (`None` unless open).
    pub fn probe_at(&self) -> Option<Instant> {
        match self.state {
            State::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Whether a call may go to the backend now.
    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            State::Closed { .. } => Admit::Call,
            State::Open { until, in_a_row } if now >= until => {
                self.state = State::Probing { in_a_row };
                Admit::Trial
            }
            State::Open { in_a_row, .. } | State::Probing { in_a_row } => {
                Admit::Refuse { failures: in_a_row }
            }
        }
    }

    /// A background probe starts (same as a trial, without a caller waiting on it).
    pub fn start_probe(&mut self, now: Instant) -> bool {
        matches!(self.admit(now), Admit::Trial)
    }

    /// The backend answered (a record, nothing found, or an error that is not its fault).
    pub fn on_success(&mut self) -> Option<Transition> {
        let was_closed = matches!(self.state, State::Closed { .. });
        self.state = State::Closed { in_a_row: 0 };
        (!was_closed).then_some(Transition::Closed)
    }

    /// The call said nothing of the backend's health. Closed or open, nothing changes; a
    /// trial or probe that ends so leaves the circuit open and due, so the next call (or
    /// probe) is the trial: never closed on no evidence, never refusing forever.
    pub fn on_inconclusive(&mut self, now: Instant) {
        if let State::Probing { in_a_row } = self.state {
            self.state = State::Open {
                until: now,
                in_a_row,
            };
        }
    }

    /// The backend failed (timeout, transport, 5xx, garbage).
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        if self.config.failures == 0 {
            return None;
        }
        let until = now + self.config.open_for;
        match self.state {
            State::Closed { in_a_row } => {
                let in_a_row = in_a_row + 1;
                if in_a_row >= self.config.failures {
                    self.state = State::Open { until, in_a_row };
                    Some(Transition::Opened { failures: in_a_row })
                } else {
                    self.state = State::Closed { in_a_row };
                    None
                }
            }
            // A failed probe or trial (or a late failure of a call admitted before the
            // circuit opened): open for another period.
            State::Probing { in_a_row } | State::Open { in_a_row, .. } => {
                self.state = State::Open {
                    until,
                    in_a_row: in_a_row + 1,
                };
                Some(Transition::Reopened)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Breaker, Instant) {
        let b = Breaker::new(BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(10),
        });
        (b, Instant::now())
    }

    #[test]
    fn opens_after_failures_in_a_row_and_refuses_until_the_probe() {
        let (mut b, t0) = breaker();
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_success(), None, "a success resets the count");
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.admit(t0), Admit::Call);
        assert_eq!(b.on_failure(t0), Some(Transition::Opened { failures: 3 }));
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(t0), Admit::Refuse { failures: 3 });
        let later = t0 + Duration::from_millis(9_999);
        assert_eq!(b.admit(later), Admit::Refuse { failures: 3 });
        assert_eq!(b.probe_at(), Some(t0 + Duration::from_secs(10)));
        let due = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(due), Admit::Trial);
        assert_eq!(b.state(), CircuitState::Probing);
        assert_eq!(
            b.admit(due),
            Admit::Refuse { failures: 3 },
            "one trial at a time"
        );
        assert_eq!(b.on_success(), Some(Transition::Closed));
        assert_eq!(b.admit(due), Admit::Call);
    }

    #[test]
    fn a_failed_probe_opens_again_for_another_period() {
        let (mut b, t0) = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let due = t0 + Duration::from_secs(10);
        assert!(b.start_probe(due));
        assert!(!b.start_probe(due), "a probe is already in flight");
        assert_eq!(b.on_failure(due), Some(Transition::Reopened));
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.failures_in_a_row(), 4);
        assert_eq!(b.probe_at(), Some(due + Duration::from_secs(10)));
        assert_eq!(
            b.admit(due + Duration::from_secs(5)),
            Admit::Refuse { failures: 4 }
        );
    }

    #[test]
    fn an_inconclusive_trial_leaves_the_decision_to_the_next_call() {
        let (mut b, t0) = breaker();
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_inconclusive(t0);
        assert_eq!(
            b.failures_in_a_row(),
            2,
            "closed: neither counted nor reset"
        );
        b.on_failure(t0);
        let due = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(due), Admit::Trial);
        b.on_inconclusive(due);
        assert_eq!(b.state(), CircuitState::Open, "not closed on no evidence");
        assert_eq!(b.failures_in_a_row(), 3);
        assert_eq!(b.probe_at(), Some(due), "due at once");
        assert_eq!(b.admit(due), Admit::Trial, "the next call is the trial");
        assert_eq!(b.on_failure(due), Some(Transition::Reopened));
        // Open and not due: an inconclusive late call changes nothing.
        b.on_inconclusive(due);
        assert_eq!(b.probe_at(), Some(due + Duration::from_secs(10)));
    }

    #[test]
    fn zero_failures_disables_it() {
        let mut b = Breaker::new(BreakerConfig {
            failures: 0,
            open_for: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(b.on_failure(t0), None);
        }
        assert_eq!(b.admit(t0), Admit::Call);
    }
}
