//! RTP as the load generator needs it: G.711 encoding of a test tone, building audio and RFC
//! 4733 event packets for one call, and reading the fixed header of what comes back.
//!
//! The generator is deliberately independent of the engine's media code (`rtp-rs`, its
//! codecs): a benchmark that shares the code it measures would hide the bugs they share.

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
pub const HEADER_LEN: usize = 12;
/// The largest packet built here: header + one G.711 frame.
pub const MAX_PACKET: usize = HEADER_LEN + FRAME_SAMPLES;
/// RFC 4733 events: packets while the key is held (5 x 20 ms = 100 ms), the last one with
/// the End bit; the End packet is then sent twice more (RFC 4733 §2.5.1.4).
const DTMF_HELD_PACKETS: u64 = 5;
const DTMF_END_REPEATS: u64 = 2;
pub const DTMF_PACKETS: u64 = DTMF_HELD_PACKETS + DTMF_END_REPEATS;
/// Payload type we offer for telephone-event.
pub const TELEPHONE_EVENT_PT: u8 = 101;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn parse(s: &str) -> Option<Codec> {
        match s.to_ascii_lowercase().as_str() {
            "pcmu" | "ulaw" | "0" => Some(Codec::Pcmu),
            "pcma" | "alaw" | "8" => Some(Codec::Pcma),
            _ => None,
        }
    }

    pub fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(sample),
            Codec::Pcma => linear_to_alaw(sample),
        }
    }
}

/// ITU-T G.711 µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// ITU-T G.711 A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let segment = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
        .iter()
        .position(|&end| v <= end);
    let a = match segment {
        None => 0x7F,
        Some(seg) => {
            let mantissa = if seg < 2 { v >> 1 } else { v >> seg } & 0x0F;
            ((seg as i32) << 4) | mantissa
        }
    };
    (a ^ mask) as u8
}

/// One second of a quiet 425 Hz tone (about -30 dBFS), encoded once: the caller's "audio".
/// 425 whole cycles per second, so the 50 frames loop without a click. Not digital silence,
/// so the engine's decoder and in-band DTMF detector do their real work.
pub fn tone_frames(codec: Codec) -> Vec<[u8; FRAME_SAMPLES]> {
    let mut frames = vec![[0u8; FRAME_SAMPLES]; 50];
    for (f, frame) in frames.iter_mut().enumerate() {
        for (i, byte) in frame.iter_mut().enumerate() {
            let n = (f * FRAME_SAMPLES + i) as f64;
            let x = 1000.0 * (2.0 * std::f64::consts::PI * 425.0 * n / 8000.0).sin();
            *byte = codec.encode(x as i16);
        }
    }
    frames
}

fn write_header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    out[0] = 0x80;
    out[1] = (u8::from(marker) << 7) | (pt & 0x7F);
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// A digit to send as RFC 4733 events, `at_frame` frames after the call's media started.
#[derive(Debug, Clone, Copy)]
pub struct DtmfPlan {
    pub at_frame: u64,
    /// The event code (0-9, 10 = `*`, 11 = `#`).
    pub event: u8,
}

/// The RFC 4733 event code of a key.
pub fn dtmf_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        _ => None,
    }
}

/// The sending side of one call's stream: one packet per 20 ms slot, audio or an event.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub pt: u8,
    /// Payload type of telephone-event, as the answer numbers it.
    pub te_pt: u8,
    pub ssrc: u32,
    seq: u16,
    ts0: u32,
    /// Slots used so far (packets sent).
    slot: u64,
    pub dtmf: Option<DtmfPlan>,
    pub digits_sent: u64,
}

impl Outbound {
    pub fn new(pt: u8, te_pt: u8, ssrc: u32, dtmf: Option<DtmfPlan>) -> Self {
        // Initial sequence number and timestamp derived from the (random-looking) SSRC:
        // distinct per call, as RFC 3550 §5.1 asks, and reproducible.
        Outbound {
            pt,
            te_pt,
            ssrc,
            seq: (ssrc >> 16) as u16,
            ts0: ssrc.rotate_left(7),
            slot: 0,
            dtmf,
            digits_sent: 0,
        }
    }

    pub fn packets(&self) -> u64 {
        self.slot
    }

    /// Writes the next packet into `out` and returns its length.
    pub fn next_packet(&mut self, frames: &[[u8; FRAME_SAMPLES]], out: &mut [u8]) -> usize {
        let slot = self.slot;
        self.slot += 1;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let ts = self
            .ts0
            .wrapping_add((slot as u32).wrapping_mul(FRAME_SAMPLES as u32));
        if let Some(plan) = self.dtmf {
            if slot >= plan.at_frame && slot < plan.at_frame + DTMF_PACKETS {
                let k = slot - plan.at_frame;
                let event_ts = self
                    .ts0
                    .wrapping_add((plan.at_frame as u32).wrapping_mul(FRAME_SAMPLES as u32));
                let held = (k + 1).min(DTMF_HELD_PACKETS);
                let end = k + 1 >= DTMF_HELD_PACKETS;
                if k + 1 == DTMF_HELD_PACKETS {
                    self.digits_sent += 1;
                }
                write_header(out, k == 0, self.te_pt, seq, event_ts, self.ssrc);
                out[12] = plan.event;
                // E bit, R = 0, volume 10 (-10 dBm0).
                out[13] = (u8::from(end) << 7) | 10;
                let duration = (held * FRAME_SAMPLES as u64) as u16;
                out[14..16].copy_from_slice(&duration.to_be_bytes());
                return 16;
            }
        }
        write_header(out, slot == 0, self.pt, seq, ts, self.ssrc);
        let frame = &frames[(slot % frames.len() as u64) as usize];
        out[HEADER_LEN..MAX_PACKET].copy_from_slice(frame);
        MAX_PACKET
    }
}

/// The fixed header of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pt: u8,
    pub seq: u16,
    pub ssrc: u32,
}

/// What a received datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    Rtp(Header),
    Rtcp,
    Other,
}

pub fn classify(buf: &[u8]) -> Datagram {
    if buf.len() < HEADER_LEN || buf[0] >> 6 != 2 {
        return Datagram::Other;
    }
    // RTCP packet types 200-204 read as RTP would be marker + PT 72-76 (RFC 5761 §4).
    if (200..=204).contains(&buf[1]) {
        return Datagram::Rtcp;
    }
    Datagram::Rtp(Header {
        pt: buf[1] & 0x7F,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-8), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn audio_then_a_digit_then_audio() {
        let frames = tone_frames(Codec::Pcmu);
        let plan = DtmfPlan {
            at_frame: 2,
            event: 1,
        };
        let mut out = Outbound::new(0, TELEPHONE_EVENT_PT, 0x1234_5678, Some(plan));
        let mut buf = [0u8; MAX_PACKET];
        let mut seqs = Vec::new();
        let mut kinds = Vec::new();
        for _ in 0..(2 + DTMF_PACKETS + 2) {
            let len = out.next_packet(&frames, &mut buf);
            let Datagram::Rtp(h) = classify(&buf[..len]) else {
                panic!("not RTP");
            };
            seqs.push(h.seq);
            kinds.push((h.pt, len, buf[13] >> 7, buf[1] >> 7));
        }
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1));
        }
        assert_eq!(
            kinds[0],
            (0, MAX_PACKET, kinds[0].2, 1),
            "first audio has the marker"
        );
        assert_eq!(
            (kinds[2].0, kinds[2].1, kinds[2].3),
            (101, 16, 1),
            "event starts"
        );
        assert_eq!(kinds[5].2, 0, "key still held");
        assert_eq!(kinds[6].2, 1, "End bit");
        assert_eq!(kinds[8].2, 1, "End repeated");
        assert_eq!(kinds[9].0, 0, "audio resumes");
        assert_eq!(out.digits_sent, 1);
        assert_eq!(out.packets(), 2 + DTMF_PACKETS + 2);
    }
}
