//! New calls admitted and refused, by reason, since the start: counted by the dispatcher as
//! it answers each new INVITE, read at scrape time for metrics (`svi_calls_total`,
//! `svi_calls_refused_total{reason}`). Relaxed atomics: one increment per new call.
//! Requests from outside `sip.allowed_networks` are not calls: the SIP edge counts them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Why a new call was refused before it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// This node is not the active one of its pair (503).
    Standby,
    /// `sip.max_calls` calls in progress (503).
    Overloaded,
    /// `sip.max_calls_per_second` exceeded (503).
    RateLimit,
    /// The engine is shutting down (503).
    Draining,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Standby,
        Refusal::Overloaded,
        Refusal::RateLimit,
        Refusal::Draining,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Standby => "standby",
            Refusal::Overloaded => "overloaded",
            Refusal::RateLimit => "rate_limit",
            Refusal::Draining => "draining",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The dispatcher's counters; shared with the engine handle.
#[derive(Debug, Default)]
pub struct Admission {
    admitted: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// A reading of [`Admission`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionCounts {
    /// New calls started.
    pub admitted: u64,
    /// New calls refused, for each reason (every reason listed, zeros included).
    pub refused: Vec<(Refusal, u64)>,
}

impl Admission {
    pub fn admitted(&self) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            admitted: self.admitted.load(Ordering::Relaxed),
            refused: Refusal::ALL
                .iter()
                .map(|r| (*r, self.refused[r.index()].load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_counts_apart() {
        let a = Admission::default();
        a.admitted();
        a.admitted();
        a.refused(Refusal::RateLimit);
        a.refused(Refusal::Standby);
        a.refused(Refusal::RateLimit);
        let c = a.counts();
        assert_eq!(c.admitted, 2);
        assert_eq!(
            c.refused,
            vec![
                (Refusal::Standby, 1),
                (Refusal::Overloaded, 0),
                (Refusal::RateLimit, 2),
                (Refusal::Draining, 0),
            ]
        );
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
