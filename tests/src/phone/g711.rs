//! G.711 (ITU-T) µ-law and A-law, both directions, written here rather than shared with the
//! engine's media code: a test phone that shared the engine's codec would hide the bugs they
//! share.

use sip::sdp::Codec;

/// Encodes one 16-bit linear sample.
pub fn encode(codec: Codec, sample: i16) -> u8 {
    match codec {
        Codec::Pcmu => linear_to_ulaw(sample),
        Codec::Pcma => linear_to_alaw(sample),
    }
}

/// Decodes one G.711 byte to a 16-bit linear sample.
pub fn decode(codec: Codec, byte: u8) -> i16 {
    match codec {
        Codec::Pcmu => ulaw_to_linear(byte),
        Codec::Pcma => alaw_to_linear(byte),
    }
}

/// The codec of a static payload type (RFC 3551 §6), for packets outside the negotiated one.
pub fn codec_of_static_pt(pt: u8) -> Option<Codec> {
    match pt {
        0 => Some(Codec::Pcmu),
        8 => Some(Codec::Pcma),
        _ => None,
    }
}

fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = s.abs().min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7 (BIAS guarantees bit 7
    // or higher is set).
    let exponent = (31 - magnitude.leading_zeros()) as i32 - 7;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    // Even bits are inverted on the wire (0x55); the sign bit is set for positive samples.
    let (mask, magnitude) = if s >= 0 { (0xD5, s) } else { (0x55, -s - 1) };
    let magnitude = magnitude >> 3;
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let segment = (31 - magnitude.leading_zeros()) as i32 - 4;
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    (code ^ mask) as u8
}

fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = (a & 0x70) >> 4;
    let mut magnitude = i32::from(a & 0x0F) << 4;
    magnitude += if segment == 0 { 8 } else { 0x108 };
    if segment > 1 {
        magnitude <<= segment - 1;
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_encodes_to_the_usual_bytes() {
        assert_eq!(encode(Codec::Pcmu, 0), 0xFF);
        assert_eq!(encode(Codec::Pcma, 0), 0xD5);
        assert_eq!(decode(Codec::Pcmu, 0xFF), 0);
        assert_eq!(decode(Codec::Pcma, 0xD5), 8);
    }

    #[test]
    fn round_trip_is_within_half_a_step() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for x in (i16::MIN..=i16::MAX).step_by(7) {
                let y = decode(codec, encode(codec, x));
                let err = (i32::from(x) - i32::from(y)).abs();
                // Steps grow with the segment: 1/16 of the magnitude, at least 16 near zero;
                // µ-law also clips above 32 635.
                assert!(
                    err <= 16 + i32::from(x).abs() / 16,
                    "{codec:?}: {x} -> {y} (error {err})"
                );
                assert!(x.signum() * y.signum() >= 0, "{codec:?}: sign of {x}");
            }
        }
    }

    #[test]
    fn every_byte_survives_decode_encode() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for b in 0..=255u8 {
                let again = encode(codec, decode(codec, b));
                // µ-law has two zeros (0x7F and 0xFF); both decode to 0 which encodes to 0xFF.
                if codec == Codec::Pcmu && b == 0x7F {
                    assert_eq!(again, 0xFF);
                } else {
                    assert_eq!(again, b, "{codec:?} byte {b:#04x}");
                }
            }
        }
    }
}
