//! Digit collection during and after a prompt, as a sans-IO state machine: the call actor
//! feeds it digits, the end of playback and the time, and asks for its next deadline.
//!
//! Rules (the usual IVR ones): with barge-in, the first digit stops the prompt and counts;
//! without it, digits keyed while the prompt plays are discarded. The first-digit timeout
//! starts when the prompt ends; each digit restarts the inter-digit timeout; the terminator
//! ends collection and is not part of the result; reaching the maximum ends it too.
//!
//! The time type is the caller's: `Instant`, or the call core's `Timestamp` (which
//! serialises, so a collection in progress is part of a call's snapshot).
//!
//! Keyed digits are personal data (a PIN, a card number): they come in and go out as
//! [`Pii`], so no log line can show them by mistake.

use std::ops::Add;
use std::time::{Duration, Instant};

use pii::Pii;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectSpec {
    pub min_digits: usize,
    pub max_digits: usize,
    pub terminator: Option<char>,
    #[serde(with = "crate::acd::ms")]
    pub first_digit_timeout: Duration,
    #[serde(with = "crate::acd::ms")]
    pub inter_digit_timeout: Duration,
    pub barge_in: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Collection ended with these digits (at least `min_digits`, terminator removed).
    Digits(Pii<String>),
    /// Time ran out with fewer than `min_digits` (possibly none).
    Timeout(Pii<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigitCollector<T = Instant> {
    spec: CollectSpec,
    digits: Pii<String>,
    playing: bool,
    deadline: Option<T>,
    done: bool,
}

/// What the actor must do after a digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitOutcome {
    pub stop_playback: bool,
    pub result: Option<Collected>,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> DigitCollector<T> {
    pub fn new(spec: CollectSpec) -> Self {
        DigitCollector {
            spec,
            digits: Pii::default(),
            playing: true,
            deadline: None,
            done: false,
        }
    }

    pub fn prompts_finished(&mut self, now: T) {
        if self.playing {
            self.playing = false;
            if self.deadline.is_none() {
                self.deadline = Some(now + self.spec.first_digit_timeout);
            }
        }
    }

    pub fn digit(&mut self, now: T, digit: Pii<char>) -> DigitOutcome {
        let d = *digit.reveal();
        let mut out = DigitOutcome {
            stop_playback: false,
            result: None,
        };
        if self.done || (self.playing && !self.spec.barge_in) {
            return out;
        }
        if self.playing {
            self.playing = false;
            out.stop_playback = true;
        }
        if Some(d) == self.spec.terminator {
            out.result = Some(self.finish());
            return out;
        }
        self.digits.reveal_mut().push(d);
        if self.digits.reveal().len() >= self.spec.max_digits {
            out.result = Some(self.finish());
        } else {
            self.deadline = Some(now + self.spec.inter_digit_timeout);
        }
        out
    }

    fn finish(&mut self) -> Collected {
        self.done = true;
        self.deadline = None;
        let digits = std::mem::take(&mut self.digits);
        if digits.reveal().len() >= self.spec.min_digits {
            Collected::Digits(digits)
        } else {
            Collected::Timeout(digits)
        }
    }

    pub fn timeout(&mut self, now: T) -> Option<Collected> {
        match self.deadline {
            Some(d) if now >= d && !self.done => Some(self.finish()),
            _ => None,
        }
    }

    pub fn deadline(&self) -> Option<T> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max: usize, barge_in: bool) -> CollectSpec {
        CollectSpec {
            min_digits: 1,
            max_digits: max,
            terminator: Some('#'),
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
            barge_in,
        }
    }

    #[test]
    fn barge_in_single_digit() {
        let t0 = Instant::now();
        let mut c: DigitCollector = DigitCollector::new(spec(1, true));
        let o = c.digit(t0, Pii::new('1'));
        assert!(o.stop_playback);
        assert_eq!(o.result, Some(Collected::Digits("1".into())));
    }

    #[test]
    fn no_barge_in_discards_digits_during_prompt() {
        let t0 = Instant::now();
        let mut c: DigitCollector = DigitCollector::new(spec(1, false));
        assert_eq!(
            c.digit(t0, Pii::new('1')),
            DigitOutcome {
                stop_playback: false,
                result: None
            }
        );
        c.prompts_finished(t0);
        assert_eq!(
            c.digit(t0, Pii::new('2')).result,
            Some(Collected::Digits("2".into()))
        );
    }

    #[test]
    fn timeouts_in_virtual_time() {
        let t0 = Instant::now();
        let mut c: DigitCollector = DigitCollector::new(spec(4, true));
        assert_eq!(c.deadline(), None);
        c.prompts_finished(t0);
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(c.timeout(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            c.timeout(t0 + Duration::from_secs(5)),
            Some(Collected::Timeout(Pii::default()))
        );
        let mut c: DigitCollector = DigitCollector::new(spec(4, true));
        c.prompts_finished(t0);
        c.digit(t0 + Duration::from_secs(1), Pii::new('4'));
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(4)));
        assert_eq!(
            c.timeout(t0 + Duration::from_secs(4)),
            Some(Collected::Digits("4".into()))
        );
    }

    #[test]
    fn terminator_and_max() {
        let t0 = Instant::now();
        let mut c: DigitCollector = DigitCollector::new(spec(4, true));
        c.digit(t0, Pii::new('1'));
        c.digit(t0, Pii::new('2'));
        assert_eq!(
            c.digit(t0, Pii::new('#')).result,
            Some(Collected::Digits("12".into()))
        );
        let mut c: DigitCollector = DigitCollector::new(spec(2, true));
        c.digit(t0, Pii::new('1'));
        assert_eq!(
            c.digit(t0, Pii::new('2')).result,
            Some(Collected::Digits("12".into()))
        );
        assert_eq!(c.digit(t0, Pii::new('3')).result, None);
    }

    #[test]
    fn the_collector_never_shows_the_digits() {
        let t0 = Instant::now();
        let mut c: DigitCollector = DigitCollector::new(spec(8, true));
        c.prompts_finished(t0);
        for d in "9753186".chars() {
            c.digit(t0, Pii::new(d));
        }
        let shown = format!("{c:?}");
        assert!(!shown.contains("975"), "{shown}");
        let done = c.digit(t0, Pii::new('4')).result.expect("eight digits");
        assert!(!format!("{done:?}").contains("975"), "{done:?}");
        assert_eq!(done, Collected::Digits("97531864".into()));
    }
}
