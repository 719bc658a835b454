//! DTMF digits, and the two ways they travel over RTP.
//!
//! - [`rfc4733`]: digits as named telephone events in their own RTP payload type (the norm
//!   with IP PBXs): a receiver that reports each key press once, and a sender.
//! - [`goertzel`]: digits as dual tones inside the audio (older gateways, some PBX trunks),
//!   found by a sans-IO Goertzel detector fed with decoded 20 ms frames.
//!
//! A digit is caller data (PINs, card numbers): [`DtmfDigit`]'s `Debug` output is redacted
//! so that a logged event never leaks it; use [`DtmfDigit::to_char`] where the value is meant
//! to be seen.

pub mod goertzel;
pub mod rfc4733;

use std::fmt;

/// Low-group (row) frequencies in Hz, top to bottom of the keypad.
pub const ROW_FREQUENCIES: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz, left to right.
pub const COLUMN_FREQUENCIES: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad, by row and column.
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// One of the 16 DTMF keys, stored as its RFC 4733 event code (0-15).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(u8);

impl DtmfDigit {
    /// All sixteen digits, in event-code order.
    pub fn all() -> impl Iterator<Item = DtmfDigit> {
        (0..16).map(DtmfDigit)
    }

    /// `0`-`9`, `*`, `#`, `A`-`D` (lower case accepted).
    pub fn from_char(c: char) -> Option<DtmfDigit> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        };
        Some(DtmfDigit(code))
    }

    /// The key as printed on the keypad.
    pub fn to_char(self) -> char {
        match self.0 {
            d @ 0..=9 => char::from(b'0' + d),
            10 => '*',
            11 => '#',
            l => char::from(b'A' + l - 12),
        }
    }

    /// RFC 4733 section 3.2 event code: 0-9, `*` 10, `#` 11, `A`-`D` 12-15.
    pub fn event_code(self) -> u8 {
        self.0
    }

    /// The digit for an event code; other events (flash, tones) are not digits.
    pub fn from_event_code(code: u8) -> Option<DtmfDigit> {
        (code < 16).then_some(DtmfDigit(code))
    }

    /// The keypad position as (row, column), indexes into the frequency tables.
    pub fn keypad_position(self) -> (usize, usize) {
        // Indexed by event code; `self.0 < 16` is the newtype's invariant.
        const POSITIONS: [(usize, usize); 16] = [
            (3, 1),
            (0, 0),
            (0, 1),
            (0, 2),
            (1, 0),
            (1, 1),
            (1, 2),
            (2, 0),
            (2, 1),
            (2, 2),
            (3, 0),
            (3, 2),
            (0, 3),
            (1, 3),
            (2, 3),
            (3, 3),
        ];
        POSITIONS[usize::from(self.0 & 0x0F)]
    }

    /// The digit at a keypad position.
    pub fn at_keypad(row: usize, column: usize) -> Option<DtmfDigit> {
        KEYPAD
            .get(row)
            .and_then(|keys| keys.get(column))
            .and_then(|&c| DtmfDigit::from_char(c))
    }

    /// The (low, high) tone pair in Hz.
    pub fn frequencies(self) -> (f64, f64) {
        let (row, column) = self.keypad_position();
        (ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column])
    }
}

/// A keyed digit is personal data when wrapped in `Pii` (media events): its shape only.
impl pii::Redact for DtmfDigit {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("1 digit")
    }
}

impl fmt::Debug for DtmfDigit {
    /// Redacted: digits are personal data in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DtmfDigit(<redacted>)")
    }
}

/// How a digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones detected in the audio.
    InBand,
}

/// Synthesises the dual tone of `digit`: `samples` at 8 kHz starting at sample `offset`
/// (to continue a tone across frames), each component at `amplitude` peak.
pub fn synthesize(digit: DtmfDigit, offset: usize, samples: usize, amplitude: f64) -> Vec<i16> {
    let (low, high) = digit.frequencies();
    let rate = f64::from(super::codec::SAMPLE_RATE);
    (offset..offset + samples)
        .map(|n| {
            let t = n as f64 / rate;
            let value = amplitude
                * ((2.0 * std::f64::consts::PI * low * t).sin()
                    + (2.0 * std::f64::consts::PI * high * t).sin());
            value
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_and_event_codes_map_both_ways() {
        let chars = "0123456789*#ABCD";
        for (code, c) in chars.chars().enumerate() {
            let digit = DtmfDigit::from_char(c).expect("valid digit");
            assert_eq!(digit.event_code(), code as u8);
            assert_eq!(digit.to_char(), c);
            assert_eq!(DtmfDigit::from_event_code(code as u8), Some(digit));
        }
        assert_eq!(DtmfDigit::from_char('b').map(DtmfDigit::to_char), Some('B'));
        assert_eq!(DtmfDigit::from_char('E'), None);
        assert_eq!(DtmfDigit::from_char('+'), None);
        assert_eq!(DtmfDigit::from_event_code(16), None); // flash
        assert_eq!(DtmfDigit::all().count(), 16);
    }

    #[test]
    fn keypad_frequencies() {
        let five = DtmfDigit::from_char('5').expect("valid");
        assert_eq!(five.frequencies(), (770.0, 1336.0));
        let star = DtmfDigit::from_char('*').expect("valid");
        assert_eq!(star.frequencies(), (941.0, 1209.0));
        for digit in DtmfDigit::all() {
            let (row, column) = digit.keypad_position();
            assert_eq!(DtmfDigit::at_keypad(row, column), Some(digit));
        }
    }

    #[test]
    fn debug_output_does_not_leak_the_digit() {
        let shown: Vec<String> = DtmfDigit::all().map(|d| format!("{:?}", Some(d))).collect();
        assert!(shown.iter().all(|s| s == &shown[0]), "{shown:?}");
        assert!(shown[0].contains("redacted"));
    }
}
