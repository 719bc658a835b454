//! The stereo timeline: two legs' frames in, aligned stereo samples out, in virtual time.
//!
//! Each leg's tap delivers about fifty 20 ms frames a second, but with its own jitter (the
//! network, the media worker's pass), gaps (packet loss, a phone on mute that sends nothing)
//! and slight clock drift. Writing each channel as it comes would slide the two voices apart
//! over a long call. The timeline instead anchors both channels to the time elapsed since
//! the start: sample `n` of the file is the audio of instant `start + n / 8000 s`.
//!
//! Output runs [`LAG`] behind the elapsed time. A frame arriving up to that late still lands
//! in its place; a channel that has nothing for a position the output reaches is padded with
//! silence (and counted). When a channel that sent nothing for [`RESYNC_AFTER`] sends again,
//! its frame is placed where it was produced (ending at its arrival), not at the output
//! position: a muted phone or a PBX that suppresses silence does not shift what follows.
//! (A shorter gap is jitter: the late audio follows the channel's previous audio.) A channel
//! may run ahead of the elapsed time by at most [`AHEAD`] (a burst after a stall, a fast
//! clock): beyond that its oldest audio is dropped (and counted), which pulls it back into
//! line. So the file's duration is the call's duration and the two channels stay within
//! `AHEAD` of each other (a delay spike longer than `RESYNC_AFTER` is what can use it).
//!
//! Pause (while a card number is read out) is a range of positions, from the elapsed time at
//! `pause` to the elapsed time at `resume`: both channels are silent there, audio arriving in
//! the meantime is discarded, and the file keeps running so its duration stays the talk time.
//!
//! Sans-IO: time is an argument, and samples go into a caller's buffer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::wav::SAMPLE_RATE;

/// How far output trails the elapsed time: the lateness a frame may have and still land
/// in place.
pub const LAG: Duration = Duration::from_millis(60);
/// How far a channel may run ahead of the elapsed time before its oldest audio is dropped.
pub const AHEAD: Duration = Duration::from_millis(60);
/// A channel that sent nothing for this long was silent, not late: its next frame is placed
/// at its arrival time rather than right after its previous audio.
pub const RESYNC_AFTER: Duration = Duration::from_millis(200);

/// A channel of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The caller.
    Left,
    /// The agent, or the engine (prompts) for an unbridged call.
    Right,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Left => 0,
            Channel::Right => 1,
        }
    }
}

/// Counters of what the timeline had to correct, per channel (left, right).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Samples of silence inserted because a channel had nothing in time.
    pub padded: [u64; 2],
    /// Samples dropped because a channel ran too far ahead.
    pub dropped: [u64; 2],
    /// Samples discarded because they arrived while paused.
    pub discarded_paused: [u64; 2],
}

/// A paused range of positions; `end` is `None` while the pause lasts.
#[derive(Debug, Clone, Copy)]
struct Pause {
    start: u64,
    end: Option<u64>,
}

/// Aligns two channels on elapsed time.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    /// Next position (in sample pairs from the start) to emit.
    position: u64,
    /// Per channel, the samples for positions from `live_from()` on.
    queues: [VecDeque<i16>; 2],
    /// Pauses that end after `position` (older ones are forgotten).
    pauses: VecDeque<Pause>,
    /// Paused samples of forgotten pauses.
    paused_before: u64,
    /// When each channel last delivered a frame.
    last_push: [Instant; 2],
    stats: TimelineStats,
}

impl Timeline {
    /// A timeline whose position 0 is `start`.
    pub fn new(start: Instant) -> Self {
        Timeline {
            start,
            position: 0,
            queues: [VecDeque::new(), VecDeque::new()],
            pauses: VecDeque::new(),
            paused_before: 0,
            last_push: [start; 2],
            stats: TimelineStats::default(),
        }
    }

    /// Takes a frame of `channel` received at `now`. Discarded while paused.
    pub fn push(&mut self, channel: Channel, pcm: &[i16], now: Instant) {
        let c = channel.index();
        if self.is_paused() {
            self.stats.discarded_paused[c] += pcm.len() as u64;
            return;
        }
        let elapsed = now.saturating_duration_since(self.start);
        let live_from = self.live_from();
        let limit = samples(elapsed + AHEAD).saturating_sub(live_from);
        let silent_for = now.saturating_duration_since(self.last_push[c]);
        self.last_push[c] = now;
        let queue = &mut self.queues[c];
        if queue.is_empty() && silent_for >= RESYNC_AFTER {
            // The channel was silent (a muted phone, a PBX suppressing silence) rather than
            // late, so its audio resumes where it was produced, the frame ending now.
            let begins = samples(elapsed).saturating_sub(pcm.len() as u64);
            let gap = begins.saturating_sub(live_from).min(limit);
            // Lossless: gap <= limit, a few seconds' worth of samples at most in practice.
            queue.extend(std::iter::repeat_n(0, gap as usize));
            self.stats.padded[c] += gap;
        }
        queue.extend(pcm.iter().copied());
        let excess = (queue.len() as u64).saturating_sub(limit);
        if excess > 0 {
            // Lossless: excess <= queue.len().
            queue.drain(..excess as usize);
            self.stats.dropped[c] += excess;
        }
    }

    /// Appends to `out` the interleaved samples (left, right, ...) of every position up to
    /// [`LAG`] before `now`.
    pub fn advance(&mut self, now: Instant, out: &mut Vec<i16>) {
        let elapsed = now.saturating_duration_since(self.start);
        self.emit_to(samples(elapsed.saturating_sub(LAG)), out);
    }

    /// Appends the samples of every position up to `now` (what is queued, then silence):
    /// the end of the recording.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) {
        self.emit_to(samples(now.saturating_duration_since(self.start)), out);
    }

    /// Starts a pause at `now` (nothing if already paused).
    pub fn pause(&mut self, now: Instant) {
        if self.is_paused() {
            return;
        }
        let start = samples(now.saturating_duration_since(self.start)).max(self.live_from());
        // Audio queued for positions past the pause's start arrived early; it is not part
        // of what precedes the pause.
        let keep = start - self.live_from();
        for (c, queue) in self.queues.iter_mut().enumerate() {
            if queue.len() as u64 > keep {
                self.stats.dropped[c] += queue.len() as u64 - keep;
                // Lossless: keep < queue.len().
                queue.truncate(keep as usize);
            }
        }
        self.pauses.push_back(Pause { start, end: None });
    }

    /// Ends the pause at `now` (nothing if not paused).
    pub fn resume(&mut self, now: Instant) {
        let elapsed = samples(now.saturating_duration_since(self.start));
        if let Some(pause) = self.pauses.back_mut().filter(|p| p.end.is_none()) {
            pause.end = Some(elapsed.max(pause.start));
        }
    }

    /// Whether a pause is running.
    pub fn is_paused(&self) -> bool {
        self.pauses.back().is_some_and(|p| p.end.is_none())
    }

    /// Total paused time up to `now`.
    pub fn paused(&self, now: Instant) -> Duration {
        let elapsed = samples(now.saturating_duration_since(self.start));
        let running: u64 = self
            .pauses
            .iter()
            .map(|p| p.end.unwrap_or(elapsed).saturating_sub(p.start))
            .sum();
        duration(self.paused_before + running)
    }

    /// Audio emitted so far.
    pub fn emitted(&self) -> Duration {
        duration(self.position)
    }

    /// Corrections made so far.
    pub fn stats(&self) -> TimelineStats {
        self.stats
    }

    /// First position that queued audio is for: the current position, or the end of the
    /// pause it falls in (audio arriving after a resume belongs after the pause).
    fn live_from(&self) -> u64 {
        self.pauses
            .iter()
            .find(|p| p.start <= self.position && p.end.is_none_or(|end| self.position < end))
            .map_or(self.position, |p| p.end.unwrap_or(u64::MAX))
    }

    fn emit_to(&mut self, target: u64, out: &mut Vec<i16>) {
        if target <= self.position {
            return;
        }
        out.reserve(2 * usize::try_from(target - self.position).unwrap_or(0));
        while self.position < target {
            // The run of positions up to the next pause boundary.
            let mut paused = false;
            let mut run_end = target;
            for pause in &self.pauses {
                let end = pause.end.unwrap_or(u64::MAX);
                if pause.start <= self.position && self.position < end {
                    paused = true;
                    run_end = run_end.min(end);
                    break;
                }
                if pause.start > self.position {
                    run_end = run_end.min(pause.start);
                    break;
                }
            }
            for _ in self.position..run_end {
                if paused {
                    out.extend_from_slice(&[0, 0]);
                    continue;
                }
                for (c, queue) in self.queues.iter_mut().enumerate() {
                    let sample = queue.pop_front().unwrap_or_else(|| {
                        self.stats.padded[c] += 1;
                        0
                    });
                    out.push(sample);
                }
            }
            self.position = run_end;
        }
        while let Some(pause) = self.pauses.front() {
            match pause.end {
                Some(end) if end <= self.position => {
                    self.paused_before += end - pause.start;
                    self.pauses.pop_front();
                }
                _ => break,
            }
        }
    }
}

/// Sample pairs in `d` (rounded down).
fn samples(d: Duration) -> u64 {
    let n = d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn duration(samples: u64) -> Duration {
    Duration::from_nanos(samples.saturating_mul(1_000_000_000) / u64::from(SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 160;
    const MS: Duration = Duration::from_millis(1);

    /// A timeline and a virtual clock.
    struct Clock {
        timeline: Timeline,
        start: Instant,
        out: Vec<i16>,
    }

    impl Clock {
        fn new() -> Self {
            let start = Instant::now();
            Clock {
                timeline: Timeline::new(start),
                start,
                out: Vec::new(),
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.start + MS * ms as u32
        }

        fn push(&mut self, channel: Channel, level: i16, ms: u64) {
            let now = self.at(ms);
            self.timeline.push(channel, &[level; FRAME], now);
        }

        fn advance(&mut self, ms: u64) {
            let now = self.at(ms);
            self.timeline.advance(now, &mut self.out);
        }

        fn finish(&mut self, ms: u64) {
            let now = self.at(ms);
            self.timeline.finish(now, &mut self.out);
        }

        fn channel(&self, channel: Channel) -> Vec<i16> {
            self.out
                .iter()
                .skip(channel.index())
                .step_by(2)
                .copied()
                .collect()
        }
    }

    /// Runs of equal samples: (value, length).
    fn runs(samples: &[i16]) -> Vec<(i16, usize)> {
        let mut runs: Vec<(i16, usize)> = Vec::new();
        for &s in samples {
            match runs.last_mut() {
                Some((v, n)) if *v == s => *n += 1,
                _ => runs.push((s, 1)),
            }
        }
        runs
    }

    #[test]
    fn steady_channels_come_out_aligned_and_complete() {
        let mut c = Clock::new();
        // Frame k covers [20k, 20k+20) ms and arrives at its end.
        for k in 0..50u64 {
            c.push(Channel::Left, 1000, 20 * k + 20);
            c.push(Channel::Right, -1000, 20 * k + 20);
            c.advance(20 * k + 20);
        }
        c.finish(1000);
        assert_eq!(c.out.len(), 2 * 8000, "one second of stereo");
        assert_eq!(runs(&c.channel(Channel::Left)), vec![(1000, 8000)]);
        assert_eq!(runs(&c.channel(Channel::Right)), vec![(-1000, 8000)]);
        assert_eq!(c.timeline.stats(), TimelineStats::default());
        assert_eq!(c.timeline.emitted(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_within_the_lag_loses_nothing() {
        let mut c = Clock::new();
        // Left is steady; right arrives in bursts up to 60 ms late, advance every 20 ms.
        let mut right_sent = 0;
        for k in 0..100u64 {
            let now = 20 * k + 20;
            c.push(Channel::Left, 1, now);
            if k % 3 == 2 {
                for _ in 0..3 {
                    c.push(Channel::Right, 2, now);
                    right_sent += 1;
                }
            }
            c.advance(now);
        }
        c.finish(2000);
        assert_eq!(right_sent, 99);
        let right = c.channel(Channel::Right);
        assert_eq!(right.len(), 16_000);
        assert_eq!(right.iter().filter(|&&s| s == 2).count(), 99 * FRAME);
        // Only the last frame, never sent, is padded.
        assert_eq!(c.timeline.stats().padded, [0, FRAME as u64]);
        assert_eq!(c.timeline.stats().dropped, [0, 0]);
    }

    #[test]
    fn a_silent_channel_is_padded_and_the_other_keeps_time() {
        let mut c = Clock::new();
        for k in 0..50u64 {
            let now = 20 * k + 20;
            c.push(Channel::Left, 1000, now);
            // Right sends the first 10 frames, then nothing for 20, then again.
            if !(10..30).contains(&k) {
                c.push(Channel::Right, -1000, now);
            }
            c.advance(now);
        }
        c.finish(1000);
        assert_eq!(runs(&c.channel(Channel::Left)), vec![(1000, 8000)]);
        assert_eq!(
            runs(&c.channel(Channel::Right)),
            vec![(-1000, 1600), (0, 3200), (-1000, 3200)],
            "the gap is silence in its place; what follows is not shifted"
        );
        assert_eq!(c.timeline.stats().padded, [0, 3200]);
    }

    #[test]
    fn a_channel_running_ahead_is_bounded_and_realigned() {
        let mut c = Clock::new();
        // A stall then a burst: right delivers 20 frames (400 ms) at once at 100 ms.
        for k in 0..5u64 {
            c.push(Channel::Left, 1, 20 * k + 20);
            c.advance(20 * k + 20);
        }
        for _ in 0..20 {
            c.push(Channel::Right, 2, 100);
        }
        let stats = c.timeline.stats();
        // Positions up to 40 ms are out (padded); right may hold audio up to 100 + 60 ms.
        assert_eq!(stats.padded, [0, 320]);
        assert_eq!(stats.dropped[1], 20 * FRAME as u64 - (160 - 40) * 8);
        for k in 5..50u64 {
            c.push(Channel::Left, 1, 20 * k + 20);
            c.push(Channel::Right, 2, 20 * k + 20);
            c.advance(20 * k + 20);
        }
        c.finish(1000);
        assert_eq!(c.out.len(), 16_000, "duration is the elapsed time");
    }

    #[test]
    fn pause_writes_silence_and_discards_what_arrives_meanwhile() {
        let mut c = Clock::new();
        for k in 0..100u64 {
            let now = 20 * k + 20;
            c.push(Channel::Left, 1000, now);
            c.push(Channel::Right, -1000, now);
            if now == 500 {
                let at = c.at(now);
                c.timeline.pause(at);
            }
            if now == 1500 {
                let at = c.at(now);
                c.timeline.resume(at);
            }
            c.advance(now);
        }
        c.finish(2000);
        let end = c.at(2000);
        assert_eq!(c.timeline.paused(end), Duration::from_secs(1));
        // Frames pushed from 520 ms to 1500 ms (paused) are discarded; the one pushed at
        // 1520 ms covers 1500..1520 ms and is the first after the pause.
        assert_eq!(
            runs(&c.channel(Channel::Left)),
            vec![(1000, 4000), (0, 8000), (1000, 4000)]
        );
        assert_eq!(
            runs(&c.channel(Channel::Right)),
            vec![(-1000, 4000), (0, 8000), (-1000, 4000)]
        );
        assert_eq!(c.timeline.stats().padded, [0, 0]);
        assert_eq!(c.timeline.stats().discarded_paused, [50 * 160, 50 * 160]);
    }
}
