//! Decoded inbound audio, kept for whoever will consume it (recording, bridging, ASR).
//!
//! Every accepted audio packet is decoded once into 8 kHz PCM (the in-band DTMF detector
//! reads it too) and appended here with its extended sequence number and RTP timestamp, so
//! a consumer can reorder, detect gaps and align with the outbound direction. The buffer
//! holds at most [`CAPACITY`] frames; when nobody drains it, the oldest are dropped (and
//! counted), so it always holds the latest half second and never grows. There is no jitter
//! buffer yet: frames are in arrival order.

use std::collections::VecDeque;

/// Frames kept: 500 ms at 20 ms per packet.
pub const CAPACITY: usize = 25;

/// One decoded inbound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFrame {
    /// Extended sequence number (increasing over the whole call).
    pub extended_seq: u64,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// 8 kHz mono PCM.
    pub pcm: Vec<i16>,
}

/// Bounded queue of decoded frames.
#[derive(Debug, Default)]
pub struct InboundAudio {
    frames: VecDeque<InboundFrame>,
    dropped: u64,
}

impl InboundAudio {
    /// Appends a frame, recycling the oldest one's buffer when full; returns the buffer to
    /// fill (cleared).
    pub fn push(&mut self, extended_seq: u64, timestamp: u32) -> &mut Vec<i16> {
        let mut pcm = if self.frames.len() == CAPACITY {
            self.dropped += 1;
            self.frames
                .pop_front()
                .map(|old| old.pcm)
                .unwrap_or_default()
        } else {
            Vec::with_capacity(160)
        };
        pcm.clear();
        self.frames.push_back(InboundFrame {
            extended_seq,
            timestamp,
            pcm,
        });
        let last = self.frames.len() - 1;
        &mut self.frames[last].pcm
    }

    /// Takes the oldest frame.
    pub fn pop(&mut self) -> Option<InboundFrame> {
        self.frames.pop_front()
    }

    /// The most recent frames, oldest first, without taking them.
    pub fn recent(&self) -> impl Iterator<Item = &InboundFrame> {
        self.frames.iter()
    }

    /// Frames dropped because nobody took them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
