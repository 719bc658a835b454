//! The audio codecs a call can negotiate, and the 20 ms framing shared by all of them.
//!
//! svi speaks G.711 only for now: both laws are static RTP payload types (RFC 3551) at
//! 8 kHz, one byte per sample, so a 20 ms frame is always 160 samples and 160 bytes. That
//! fixed framing lets prompts be encoded once at load into ready-to-send frames.

use std::time::Duration;

use super::g711;

/// Sampling rate of every codec svi speaks, and of all internal PCM.
pub const SAMPLE_RATE: u32 = 8000;
/// Packetisation interval: one RTP packet every 20 ms.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Samples (and, for G.711, payload bytes) in one 20 ms frame.
pub const SAMPLES_PER_FRAME: usize = 160;

/// One encoded 20 ms G.711 frame, ready to be an RTP payload.
pub type Frame = [u8; SAMPLES_PER_FRAME];

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0 (North America, Japan).
    Pcmu,
    /// G.711 A-law, static payload type 8 (Europe and most of the world).
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec with this static payload type, if svi speaks it.
    pub const fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// RTP clock rate, as in the SDP `a=rtpmap` line.
    pub const fn clock_rate(self) -> u32 {
        SAMPLE_RATE
    }

    /// Encoding name, as in the SDP `a=rtpmap` line.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code of linear silence, used to pad frames and for comfort silence.
    pub const fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => g711::ULAW_SILENCE,
            Codec::Pcma => g711::ALAW_SILENCE,
        }
    }

    /// A frame of silence.
    pub const fn silence_frame(self) -> Frame {
        [self.silence_byte(); SAMPLES_PER_FRAME]
    }

    /// Encodes one byte per sample.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        let encode = self.encoder();
        pcm.iter().map(|&sample| encode(sample)).collect()
    }

    /// Decodes one sample per byte.
    pub fn decode(self, payload: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(payload.len());
        self.decode_into(payload, &mut out);
        out
    }

    /// Decodes appending to `out`, to reuse a buffer on the receive path.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        // One loop per law, so that the table lookup is inlined rather than called per
        // sample through a function pointer.
        match self {
            Codec::Pcmu => out.extend(payload.iter().map(|&code| g711::ulaw_to_linear(code))),
            Codec::Pcma => out.extend(payload.iter().map(|&code| g711::alaw_to_linear(code))),
        }
    }

    /// Encodes one 20 ms frame, padding with silence when `pcm` is shorter (the send path:
    /// no allocation).
    pub fn encode_frame(self, pcm: &[i16]) -> Frame {
        let mut frame = self.silence_frame();
        match self {
            Codec::Pcmu => {
                for (byte, &sample) in frame.iter_mut().zip(pcm) {
                    *byte = g711::linear_to_ulaw(sample);
                }
            }
            Codec::Pcma => {
                for (byte, &sample) in frame.iter_mut().zip(pcm) {
                    *byte = g711::linear_to_alaw(sample);
                }
            }
        }
        frame
    }

    /// Encodes PCM into 20 ms frames, padding the last one with silence.
    pub fn encode_frames(self, pcm: &[i16]) -> Vec<Frame> {
        let encode = self.encoder();
        pcm.chunks(SAMPLES_PER_FRAME)
            .map(|chunk| {
                let mut frame = self.silence_frame();
                for (byte, &sample) in frame.iter_mut().zip(chunk) {
                    *byte = encode(sample);
                }
                frame
            })
            .collect()
    }

    fn encoder(self) -> fn(i16) -> u8 {
        match self {
            Codec::Pcmu => g711::linear_to_ulaw,
            Codec::Pcma => g711::linear_to_alaw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_payload_types_round_trip() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(codec.payload_type()), Some(codec));
            assert_eq!(codec.clock_rate(), 8000);
        }
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(101), None);
    }

    #[test]
    fn frames_are_padded_with_silence() {
        let pcm = vec![1000i16; 200];
        let frames = Codec::Pcma.encode_frames(&pcm);
        assert_eq!(frames.len(), 2);
        assert!(frames[1][40..].iter().all(|&b| b == 0xD5));
        assert_eq!(frames[1][39], g711::linear_to_alaw(1000));
        let frames = Codec::Pcmu.encode_frames(&pcm[..160]);
        assert_eq!(frames.len(), 1);
        assert!(Codec::Pcmu.encode_frames(&[]).is_empty());
        // One frame at a time: the same codes, the same padding.
        assert_eq!(Codec::Pcma.encode_frame(&pcm[160..]), frames_a_last(&pcm));
        assert_eq!(Codec::Pcmu.encode_frame(&pcm[..160]), frames[0]);
        assert_eq!(Codec::Pcmu.encode_frame(&[]), Codec::Pcmu.silence_frame());
    }

    fn frames_a_last(pcm: &[i16]) -> Frame {
        Codec::Pcma.encode_frames(pcm)[1]
    }

    #[test]
    fn encode_then_decode_is_close() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let decoded = codec.decode(&codec.encode(&pcm));
            assert_eq!(decoded.len(), pcm.len());
            for (a, b) in pcm.iter().zip(&decoded) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 1024 / 2);
            }
        }
    }
}
