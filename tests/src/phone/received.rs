//! The audio a phone received: decoded frames with their arrival time, bounded to the last
//! [`KEEP`] so a long test cannot grow it without limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How much received audio is kept.
pub const KEEP: Duration = Duration::from_secs(30);

/// One RTP packet's audio, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// When it arrived (the window of [`crate::phone::Phone::heard`] is on arrival time).
    pub at: Instant,
    pub seq: u16,
    pub rtp_timestamp: u32,
    pub samples: Vec<i16>,
}

#[derive(Debug, Default)]
pub struct Received {
    frames: VecDeque<ReceivedFrame>,
    total: u64,
}

impl Received {
    pub fn push(&mut self, frame: ReceivedFrame) {
        let at = frame.at;
        self.frames.push_back(frame);
        self.total += 1;
        while self
            .frames
            .front()
            .is_some_and(|f| at.saturating_duration_since(f.at) > KEEP)
        {
            self.frames.pop_front();
        }
    }

    /// Frames received since `since`, oldest first.
    pub fn frames_since(&self, since: Instant) -> impl Iterator<Item = &ReceivedFrame> {
        // Arrival times only grow, so the frames kept are sorted by `at`.
        let start = self.frames.partition_point(|f| f.at < since);
        self.frames.range(start..)
    }

    /// The samples received since `since`, concatenated in arrival order.
    pub fn samples_since(&self, since: Instant) -> Vec<i16> {
        self.frames_since(since)
            .flat_map(|f| f.samples.iter().copied())
            .collect()
    }

    /// Audio packets received since the phone started (including those no longer kept).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn clear(&mut self) {
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(at: Instant, value: i16) -> ReceivedFrame {
        ReceivedFrame {
            at,
            seq: 0,
            rtp_timestamp: 0,
            samples: vec![value; 160],
        }
    }

    #[test]
    fn keeps_a_bounded_window_and_selects_by_arrival() {
        let t0 = Instant::now();
        let mut r = Received::default();
        for i in 0..2000u32 {
            r.push(frame(t0 + Duration::from_millis(20) * i, i as i16));
        }
        assert_eq!(r.total(), 2000);
        // 40 s of frames, 30 s kept.
        assert!(r.frames.len() <= 1501, "{}", r.frames.len());
        let last = t0 + Duration::from_millis(20) * 1999;
        let recent = r.samples_since(last - Duration::from_millis(39));
        assert_eq!(recent.len(), 2 * 160);
        assert_eq!(recent[0], 1998);
    }
}
