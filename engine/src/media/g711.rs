//! ITU-T G.711 companding: A-law (PCMA) and µ-law (PCMU).
//!
//! G.711 maps 13-bit (A-law) or 14-bit (µ-law) linear samples onto 8-bit codes made of a
//! sign, a 3-bit segment (a power-of-two range) and a 4-bit step inside that segment. The
//! formulas below are the classic Sun Microsystems reference (`g711.c`, public domain), which
//! is bit-exact with the tables in G.711 itself; the tests check every one of the 256 codes.
//!
//! Both directions go through tables built at compile time from those formulas: 256 entries
//! to decode, and to encode one entry per value of the law's 13-bit (A-law, 8 KiB) or 14-bit
//! (µ-law, 16 KiB) input, since the low bits a law drops never change its code. A bridged
//! call encodes every relayed frame again, so encoding is on the relay's per-packet path
//! (see docs/performance.md).

/// A-law code of linear silence (the positive zero step).
pub const ALAW_SILENCE: u8 = 0xD5;
/// µ-law code of linear silence (the positive zero).
pub const ULAW_SILENCE: u8 = 0xFF;

/// Upper bounds of the eight A-law segments, on the 13-bit magnitude.
const ALAW_SEGMENT_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// Upper bounds of the eight µ-law segments, on the biased 14-bit magnitude.
const ULAW_SEGMENT_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// µ-law adds this bias (in 16-bit units) so that segments start on powers of two.
const ULAW_BIAS: i32 = 0x84;
/// Largest µ-law magnitude (14-bit units) before the bias is added.
const ULAW_CLIP: i32 = 8159;

const ALAW_DECODE: [i16; 256] = build_alaw_table();
const ULAW_DECODE: [i16; 256] = build_ulaw_table();

/// Index of the first segment whose end is at least `value`, or 8 when it overflows.
const fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    let mut index = 0;
    while index < 8 {
        if value <= ends[index] {
            return index as i32;
        }
        index += 1;
    }
    8
}

/// A-law code of a 13-bit linear value (the sample shifted right by 3).
const fn alaw_encode_formula(value: i32) -> u8 {
    // The even bits (0x55) are inverted on the line.
    let (value, mask) = if value >= 0 {
        (value, 0xD5u8)
    } else {
        (-value - 1, 0x55u8)
    };
    let seg = segment(value, &ALAW_SEGMENT_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let step = if seg < 2 { value >> 1 } else { value >> seg };
    (((seg << 4) | (step & 0x0F)) as u8) ^ mask
}

/// µ-law code of a 14-bit linear value (the sample shifted right by 2).
const fn ulaw_encode_formula(value: i32) -> u8 {
    // All bits are inverted on the line.
    let (value, mask) = if value < 0 {
        (-value, 0x7Fu8)
    } else {
        (value, 0xFFu8)
    };
    let clipped = if value > ULAW_CLIP { ULAW_CLIP } else { value };
    let value = clipped + (ULAW_BIAS >> 2);
    let seg = segment(value, &ULAW_SEGMENT_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    (((seg << 4) | ((value >> (seg + 1)) & 0x0F)) as u8) ^ mask
}

/// A-law codes of every 13-bit value, offset by 4096 (8 KiB).
const ALAW_ENCODE: [u8; 8192] = build_alaw_encode_table();
/// µ-law codes of every 14-bit value, offset by 8192 (16 KiB).
const ULAW_ENCODE: [u8; 16384] = build_ulaw_encode_table();

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits: -4096..=4095 after the shift, so the index is in 0..8192.
    ALAW_ENCODE[((i32::from(sample) >> 3) + 4096) as usize]
}

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    // µ-law works on 14 bits: -8192..=8191 after the shift, so the index is in 0..16384.
    ULAW_ENCODE[((i32::from(sample) >> 2) + 8192) as usize]
}

/// Decodes one A-law code to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Decodes one µ-law code to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

const fn alaw_decode_formula(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mut value = ((code & 0x0F) as i32) << 4;
    let seg = ((code & 0x70) >> 4) as i32;
    value = match seg {
        0 => value + 8,
        1 => value + 0x108,
        _ => (value + 0x108) << (seg - 1),
    };
    if code & 0x80 != 0 {
        value as i16
    } else {
        -value as i16
    }
}

const fn ulaw_decode_formula(code: u8) -> i16 {
    let code = !code;
    let mut value = (((code & 0x0F) as i32) << 3) + ULAW_BIAS;
    value <<= ((code & 0x70) >> 4) as i32;
    if code & 0x80 != 0 {
        (ULAW_BIAS - value) as i16
    } else {
        (value - ULAW_BIAS) as i16
    }
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = alaw_decode_formula(code as u8);
        code += 1;
    }
    table
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = ulaw_decode_formula(code as u8);
        code += 1;
    }
    table
}

const fn build_alaw_encode_table() -> [u8; 8192] {
    let mut table = [0u8; 8192];
    let mut index = 0;
    while index < 8192 {
        table[index] = alaw_encode_formula(index as i32 - 4096);
        index += 1;
    }
    table
}

const fn build_ulaw_encode_table() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut index = 0;
    while index < 16384 {
        table[index] = ulaw_encode_formula(index as i32 - 8192);
        index += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_tables_match_the_formulas_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            let s = i32::from(sample);
            assert_eq!(
                linear_to_alaw(sample),
                alaw_encode_formula(s >> 3),
                "A-law {sample}"
            );
            assert_eq!(
                linear_to_ulaw(sample),
                ulaw_encode_formula(s >> 2),
                "µ-law {sample}"
            );
        }
    }

    #[test]
    fn silence_encodes_to_the_idle_codes() {
        assert_eq!(linear_to_alaw(0), ALAW_SILENCE);
        assert_eq!(linear_to_ulaw(0), ULAW_SILENCE);
        assert_eq!(alaw_to_linear(ALAW_SILENCE), 8);
        assert_eq!(ulaw_to_linear(ULAW_SILENCE), 0);
    }

    #[test]
    fn known_values_from_the_standard() {
        // Extremes: A-law peaks at ±32256 (codes 0xAA / 0x2A), µ-law at ±32124 (0x80 / 0x00).
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        // Smallest non-zero steps.
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        // µ-law has a negative zero; it decodes to 0 and re-encodes as the positive one.
        assert_eq!(ulaw_to_linear(0x7F), 0);
        // Segment boundaries: 1024 (128 in 13 bits) opens A-law segment 3, code 0x30 before
        // the even-bit inversion; 1023 is the top step of segment 2.
        assert_eq!(linear_to_alaw(1024), 0x30 ^ 0xD5);
        assert_eq!(linear_to_alaw(1023), 0x2F ^ 0xD5);
        // µ-law 1000: (1000 >> 2) + 33 = 283 lies in segment 3, step (283 >> 4) & 15 = 1.
        assert_eq!(linear_to_ulaw(1000), 0x31 ^ 0xFF);
    }

    #[test]
    fn every_code_round_trips_through_linear() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected,
                "µ-law {code:#04x}"
            );
        }
    }

    #[test]
    fn encoding_is_monotonic_and_error_is_bounded() {
        // The quantisation step doubles with each segment, so the error stays below about 1/16
        // of the magnitude plus the smallest step; and decoded values never move backwards.
        let mut previous_a = i16::MIN;
        let mut previous_u = i16::MIN;
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let a = alaw_to_linear(linear_to_alaw(sample));
            let u = ulaw_to_linear(linear_to_ulaw(sample));
            assert!(a >= previous_a && u >= previous_u, "monotonic at {sample}");
            let bound = i32::from(sample).abs() / 16 + 16;
            assert!(
                (i32::from(a) - i32::from(sample)).abs() <= bound,
                "A-law at {sample}"
            );
            assert!(
                (i32::from(u) - i32::from(sample)).abs() <= bound,
                "µ-law at {sample}"
            );
            previous_a = a;
            previous_u = u;
        }
    }
}
