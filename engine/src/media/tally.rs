//! RTP totals over every stream of the process, for metrics, read at scrape time: the
//! sums of the streams' own stats snapshots (each worker publishes one per stream every
//! 500 ms; nothing new on the media path), the live streams' latest plus the last of the
//! streams that ended. A closed stream's last snapshot moves into the closed sums, so each
//! total only grows.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::MediaStats;

/// RTP totals since the start (packets are counters; `streams` and `jitter_max` describe
/// the streams open now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpTotals {
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Expected but never received (RFC 3550 A.3).
    pub packets_lost: u64,
    /// Received twice.
    pub packets_duplicate: u64,
    /// Arrived too late (too old or out of sequence) to be played.
    pub packets_late: u64,
    /// Refused: from an unexpected source (outside the SDP host or the allowed networks).
    pub packets_unexpected_source: u64,
    /// Refused by SRTP (authentication, replay, plain while SRTP was negotiated).
    pub packets_srtp_refused: u64,
    /// Streams open now.
    pub streams: u64,
    /// The largest interarrival jitter among the streams open now.
    pub jitter_max: Duration,
}

impl RtpTotals {
    fn add(&mut self, s: &MediaStats) {
        self.packets_sent += s.packets_sent;
        self.packets_received += s.packets_received;
        self.packets_lost += s.packets_lost;
        self.packets_duplicate += s.packets_duplicate;
        self.packets_late += s.packets_late;
        self.packets_unexpected_source += s.unexpected_source;
        self.packets_srtp_refused += s.srtp_refused;
    }
}

/// The streams' snapshots, live and ended.
#[derive(Default)]
pub struct MediaTally {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    live: Vec<watch::Receiver<MediaStats>>,
    closed: RtpTotals,
    /// Live streams at the last fold: the next fold comes when as many have been added.
    folded_at: usize,
}

impl Inner {
    /// Moves the streams that ended (their sender is gone) into the closed sums.
    fn fold(&mut self) {
        let closed = &mut self.closed;
        self.live.retain(|rx| {
            let open = rx.has_changed().is_ok();
            if !open {
                closed.add(&rx.borrow());
            }
            open
        });
        self.folded_at = self.live.len();
    }
}

impl MediaTally {
    /// Follows a new stream's snapshots (at stream open: not on the media path).
    pub fn add(&self, stats: watch::Receiver<MediaStats>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.live.push(stats);
        // Ended streams are folded now and then, so the list stays about the size of the
        // live streams even when nobody scrapes.
        if inner.live.len() >= 2 * inner.folded_at + 64 {
            inner.fold();
        }
    }

    pub fn totals(&self) -> RtpTotals {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.fold();
        let mut t = inner.closed;
        for rx in &inner.live {
            let s = rx.borrow();
            t.add(&s);
            t.streams += 1;
            t.jitter_max = t.jitter_max.max(s.jitter);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: u64, received: u64, lost: u64, jitter_ms: u64) -> MediaStats {
        MediaStats {
            packets_sent: sent,
            packets_received: received,
            packets_lost: lost,
            packets_late: 1,
            jitter: Duration::from_millis(jitter_ms),
            ..MediaStats::default()
        }
    }

    #[test]
    fn totals_sum_live_and_ended_streams_and_never_go_back() {
        let tally = MediaTally::default();
        let (a_tx, a_rx) = watch::channel(stats(10, 9, 1, 4));
        let (b_tx, b_rx) = watch::channel(stats(5, 5, 0, 12));
        tally.add(a_rx);
        tally.add(b_rx);
        let t = tally.totals();
        assert_eq!(
            (
                t.packets_sent,
                t.packets_received,
                t.packets_lost,
                t.packets_late
            ),
            (15, 14, 1, 2)
        );
        assert_eq!((t.streams, t.jitter_max), (2, Duration::from_millis(12)));
        // Stream b publishes more, then ends: its last snapshot stays in the sums.
        b_tx.send_replace(stats(50, 48, 2, 30));
        drop(b_tx);
        let t = tally.totals();
        assert_eq!((t.packets_sent, t.packets_lost), (60, 3));
        assert_eq!((t.streams, t.jitter_max), (1, Duration::from_millis(4)));
        a_tx.send_replace(stats(11, 10, 1, 4));
        assert_eq!(tally.totals().packets_sent, 61);
    }

    #[test]
    fn ended_streams_are_folded_without_scrapes() {
        let tally = MediaTally::default();
        for i in 0..1000 {
            let (tx, rx) = watch::channel(stats(i, 0, 0, 0));
            tally.add(rx);
            drop(tx);
        }
        assert!(tally.inner.lock().expect("lock").live.len() <= 64);
        assert_eq!(tally.totals().packets_sent, (0..1000).sum::<u64>());
    }
}
