//! Live audio links of a stream: which consumer a tap serves, and the mix of its feeds.
//!
//! A stream may be tapped by several consumers at once (the bridged peer, a recorder, a
//! supervisor) and may send the sum of several feeds (in a barge, the agent hears the caller
//! plus the supervisor). Each tap and each feed is named by a [`Link`], small and `Copy`, so
//! the call actor can add and remove one without touching the others.
//!
//! [`LiveMix`] holds the feeds' audio between the moment the worker reads it and the 20 ms
//! slot that sends it. Legs live on different workers (or the same worker at another point
//! of its pass), so a feed's frames arrive at its own phase: at a given slot one feed may
//! have nothing yet and another two frames. Each feed therefore has its own small FIFO of
//! samples, and each slot takes one frame from every feed that has a whole frame ready and
//! sums them with saturation. A feed that runs ahead (its leg's clock is a little fast, or
//! the prompt on this stream held the mix) keeps only its latest [`MAX_LIVE_FRAMES`]; one
//! that runs dry adds nothing to the slot. Delay stays bounded and nothing drifts.

use std::collections::VecDeque;

use crate::media::codec::SAMPLES_PER_FRAME;

/// Frames buffered per feed at most (60 ms): the relay's added delay bound.
pub const MAX_LIVE_FRAMES: usize = 3;

/// Names one tap or one feed of a stream, so several can coexist.
///
/// A key names the consumer (for a tap) or the producer (for a feed) at the other end of
/// the link; it is unique per stream and per direction, and a key that is added again
/// replaces the previous tap or feed of that key. The convention of the call engine:
///
/// - on the caller's and the agent's streams, [`Link::Relay`] is the bridged peer (the
///   default of `tap_inbound`/`feed_live`), [`Link::Record`] the recorder (tap only) and
///   [`Link::Supervisor`] a supervisor leg (tap for listen, feed for whisper or barge);
/// - on a supervisor's stream, [`Link::Caller`] and [`Link::Agent`] are the two parties:
///   two feeds mixed for listening, and taps towards the agent (whisper) or both (barge);
/// - [`Link::Other`] is for consumers this list does not know yet (speech recognition,
///   conferences), numbered by their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    /// The other party of a two-party bridge.
    Relay,
    /// A call recorder.
    Record,
    /// A supervisor leg (listen, whisper, barge).
    Supervisor,
    /// On a supervisor's stream: the caller.
    Caller,
    /// On a supervisor's stream: the agent.
    Agent,
    /// Any other consumer or producer.
    Other(u8),
}

/// One feed's pending samples.
#[derive(Debug)]
struct FeedBuffer {
    link: Link,
    samples: VecDeque<i16>,
}

/// The pending audio of every feed of a stream, mixed one frame per slot.
#[derive(Debug, Default)]
pub struct LiveMix {
    /// A handful of feeds at most: a vector beats a map.
    feeds: Vec<FeedBuffer>,
    dropped: u64,
}

impl LiveMix {
    /// Appends audio of the feed `link`. Beyond [`MAX_LIVE_FRAMES`] frames pending, the
    /// oldest samples are dropped (and counted) so that the delay stays bounded.
    pub fn push(&mut self, link: Link, pcm: &[i16]) {
        let index = match self.feeds.iter().position(|f| f.link == link) {
            Some(index) => index,
            None => {
                self.feeds.push(FeedBuffer {
                    link,
                    samples: VecDeque::with_capacity(MAX_LIVE_FRAMES * SAMPLES_PER_FRAME),
                });
                self.feeds.len() - 1
            }
        };
        let buffer = &mut self.feeds[index].samples;
        buffer.extend(pcm.iter().copied());
        let excess = buffer
            .len()
            .saturating_sub(MAX_LIVE_FRAMES * SAMPLES_PER_FRAME);
        if excess > 0 {
            buffer.drain(..excess);
            self.dropped += 1;
        }
    }

    /// Forgets the feed `link` and its pending audio.
    pub fn remove(&mut self, link: Link) {
        self.feeds.retain(|f| f.link != link);
    }

    /// The next 20 ms frame: the saturated sum of one frame of every feed that has a whole
    /// frame pending; `None` when none has.
    pub fn next_frame(&mut self) -> Option<[i16; SAMPLES_PER_FRAME]> {
        let mut sum = [0i32; SAMPLES_PER_FRAME];
        let mut any = false;
        for feed in &mut self.feeds {
            if feed.samples.len() < SAMPLES_PER_FRAME {
                continue;
            }
            any = true;
            // Over the ring buffer's two halves as plain slices (loops the compiler
            // vectorises; this runs for every relayed packet), then the frame is dropped.
            let (front, back) = feed.samples.as_slices();
            let split = front.len().min(SAMPLES_PER_FRAME);
            let (head, tail) = sum.split_at_mut(split);
            for (acc, &sample) in head.iter_mut().zip(&front[..split]) {
                *acc += i32::from(sample);
            }
            for (acc, &sample) in tail.iter_mut().zip(back) {
                *acc += i32::from(sample);
            }
            feed.samples.drain(..SAMPLES_PER_FRAME);
        }
        if !any {
            return None;
        }
        let mut frame = [0i16; SAMPLES_PER_FRAME];
        for (out, acc) in frame.iter_mut().zip(sum) {
            // Lossless: the value is clamped into i16's range first.
            *out = acc.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        Some(frame)
    }

    /// How many pushes had to drop old audio because their feed ran ahead.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Samples pending for `link` (zero for an unknown feed).
    pub fn pending(&self, link: Link) -> usize {
        self.feeds
            .iter()
            .find(|f| f.link == link)
            .map_or(0, |f| f.samples.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: i16) -> Vec<i16> {
        vec![level; SAMPLES_PER_FRAME]
    }

    #[test]
    fn two_feeds_are_summed_sample_by_sample() {
        let mut mix = LiveMix::default();
        let ramp: Vec<i16> = (0..SAMPLES_PER_FRAME as i16).collect();
        mix.push(Link::Relay, &ramp);
        mix.push(Link::Supervisor, &frame(-100));
        let out = mix.next_frame().expect("both feeds have a frame");
        for (i, sample) in out.iter().enumerate() {
            assert_eq!(*sample, i as i16 - 100);
        }
        assert!(mix.next_frame().is_none());
    }

    #[test]
    fn frames_come_out_in_order_across_the_ring_buffer_wrap() {
        // Pushes of 100 samples against takes of 160 move the frame boundary through every
        // position of the feed's ring buffer, including frames split across its end.
        let mut mix = LiveMix::default();
        let mut next_in = 0i32;
        let mut next_out = 0i32;
        for _ in 0..40 {
            let chunk: Vec<i16> = (next_in..next_in + 100).map(|v| v as i16).collect();
            next_in += 100;
            mix.push(Link::Relay, &chunk);
            while let Some(out) = mix.next_frame() {
                let expected: Vec<i16> = (next_out..next_out + 160).map(|v| v as i16).collect();
                assert_eq!(&out[..], &expected[..], "frame from sample {next_out}");
                next_out += 160;
            }
        }
        assert_eq!(mix.dropped(), 0);
        assert!(next_out >= 3_800);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let mut mix = LiveMix::default();
        mix.push(Link::Caller, &frame(30_000));
        mix.push(Link::Agent, &frame(20_000));
        assert_eq!(mix.next_frame(), Some([i16::MAX; SAMPLES_PER_FRAME]));
        mix.push(Link::Caller, &frame(-30_000));
        mix.push(Link::Agent, &frame(-20_000));
        assert_eq!(mix.next_frame(), Some([i16::MIN; SAMPLES_PER_FRAME]));
    }

    #[test]
    fn a_partial_frame_waits_and_old_audio_is_dropped_beyond_the_bound() {
        let mut mix = LiveMix::default();
        mix.push(Link::Relay, &[7; 100]);
        assert!(
            mix.next_frame().is_none(),
            "100 samples are not a frame yet"
        );
        mix.push(Link::Relay, &[8; 140]);
        let out = mix.next_frame().expect("240 samples hold a frame");
        assert_eq!(&out[..100], &[7; 100][..]);
        assert_eq!(&out[100..], &[8; 60][..]);
        assert_eq!(mix.pending(Link::Relay), 80);

        for level in 1..=5 {
            mix.push(Link::Relay, &frame(level));
        }
        assert_eq!(
            mix.pending(Link::Relay),
            MAX_LIVE_FRAMES * SAMPLES_PER_FRAME
        );
        assert!(mix.dropped() >= 2);
        let levels: Vec<i16> = std::iter::from_fn(|| mix.next_frame().map(|f| f[0])).collect();
        assert_eq!(levels, vec![3, 4, 5], "the latest frames survive");
        mix.push(Link::Relay, &frame(1));
        mix.remove(Link::Relay);
        assert!(mix.next_frame().is_none());
    }
}
