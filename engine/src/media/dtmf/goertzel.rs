//! In-band DTMF detection: a sans-IO Goertzel detector over 8 kHz PCM.
//!
//! Audio is cut into 20 ms blocks (160 samples, whatever size the caller feeds). For each
//! block, the Goertzel algorithm measures the energy at the eight DTMF frequencies (a single
//! DFT bin each, at the exact frequency), and the block counts as a digit when:
//!
//! - the strongest row and column tones are each above [`MIN_TONE_AMPLITUDE`];
//! - their levels differ by at most the allowed twist: the column tone may be up to 8 dB
//!   weaker (normal twist, what a phone line does to high frequencies) or 4 dB stronger
//!   (reverse twist) than the row tone;
//! - each is at least 6 dB above every other tone of its group (relative peak), which with
//!   160-sample blocks keeps clear of the spectral leakage between neighbouring rows;
//! - the two tones carry at least 75% of the block's energy, which rejects speech and music
//!   that happen to contain a DTMF pair among other sounds.
//!
//! A digit is reported when two consecutive blocks (at least 40 ms) agree on it, and only once
//! until it ends. It ends at a quiet block, or at two blocks of something else, so one block
//! disturbed by noise in the middle of a tone does not produce a second digit, while the
//! usual 40-50 ms pause between key presses always contains a quiet block.
//!
//! Thresholds follow ITU-T Q.24 and the choices of widely deployed detectors (spandsp uses
//! similar twist and relative-peak checks).

use std::collections::VecDeque;

use super::{DtmfDigit, COLUMN_FREQUENCIES, ROW_FREQUENCIES};
use crate::media::codec::{SAMPLES_PER_FRAME, SAMPLE_RATE};

/// Weakest tone accepted, as a peak amplitude: about -33 dBm0 per frequency in G.711.
pub const MIN_TONE_AMPLITUDE: f64 = 500.0;
/// Column tone may be this much weaker than the row tone (power ratio, 8 dB).
const NORMAL_TWIST: f64 = 6.31;
/// Column tone may be this much stronger than the row tone (power ratio, 4 dB).
const REVERSE_TWIST: f64 = 2.51;
/// The winning tone must exceed the others of its group by this power ratio (6 dB).
const RELATIVE_PEAK: f64 = 3.98;
/// Share of the block energy the two tones must carry.
const MIN_TONE_TO_TOTAL: f64 = 0.75;
/// Blocks of "something else" that end a digit (a quiet block ends it at once).
const MISSES_TO_END: u8 = 2;

/// What one 20 ms block contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Too little energy to hold a tone.
    Quiet,
    /// A valid dual tone.
    Digit(DtmfDigit),
    /// Sound that is not a valid DTMF pair.
    Other,
}

/// Stateful in-band detector for one audio direction.
#[derive(Debug, Clone)]
pub struct InBandDetector {
    block: Vec<f64>,
    coefficients: [f64; 8],
    /// Digit of the previous block, waiting for confirmation.
    candidate: Option<DtmfDigit>,
    /// Digit reported and not yet ended.
    reported: Option<DtmfDigit>,
    misses: u8,
    detected: VecDeque<DtmfDigit>,
}

impl Default for InBandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InBandDetector {
    /// A detector in the idle state.
    pub fn new() -> Self {
        let rate = f64::from(SAMPLE_RATE);
        let coefficients = std::array::from_fn(|i| {
            let frequency = if i < 4 {
                ROW_FREQUENCIES[i]
            } else {
                COLUMN_FREQUENCIES[i - 4]
            };
            2.0 * (2.0 * std::f64::consts::PI * frequency / rate).cos()
        });
        InBandDetector {
            block: Vec::with_capacity(SAMPLES_PER_FRAME),
            coefficients,
            candidate: None,
            reported: None,
            misses: 0,
            detected: VecDeque::new(),
        }
    }

    /// Feeds 8 kHz PCM, normally one 20 ms frame; digits found are queued for [`Self::poll_digit`].
    pub fn process(&mut self, pcm: &[i16]) {
        for &sample in pcm {
            self.block.push(f64::from(sample));
            if self.block.len() == SAMPLES_PER_FRAME {
                let block = self.classify();
                self.block.clear();
                self.advance(block);
            }
        }
    }

    /// The next detected digit.
    pub fn poll_digit(&mut self) -> Option<DtmfDigit> {
        self.detected.pop_front()
    }

    fn advance(&mut self, block: Block) {
        match block {
            Block::Quiet => {
                self.candidate = None;
                self.reported = None;
                self.misses = 0;
            }
            Block::Other => {
                self.candidate = None;
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES_TO_END {
                    self.reported = None;
                }
            }
            Block::Digit(digit) => {
                self.misses = 0;
                if self.reported != Some(digit) && self.candidate == Some(digit) {
                    self.reported = Some(digit);
                    self.detected.push_back(digit);
                }
                self.candidate = Some(digit);
            }
        }
    }

    fn classify(&self) -> Block {
        let n = self.block.len() as f64;
        let mean = self.block.iter().sum::<f64>() / n;
        let mean_square = self.block.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        // A DTMF pair at the weakest level has a mean square of MIN_TONE_AMPLITUDE^2.
        if mean_square < MIN_TONE_AMPLITUDE * MIN_TONE_AMPLITUDE {
            return Block::Quiet;
        }
        // The eight filters run side by side in one pass over the block (the same
        // operations in the same order for each, so the same results as eight passes, but
        // the compiler can run them in vector registers: this is on the per-packet path).
        let (mut s1, mut s2) = ([0.0f64; 8], [0.0f64; 8]);
        for &x in &self.block {
            let x = x - mean;
            for i in 0..8 {
                let s = x + self.coefficients[i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = s;
            }
        }
        // Squared amplitude of each tone: 4 |X(f)|^2 / N^2 for a sine of amplitude A.
        let powers: [f64; 8] = std::array::from_fn(|i| {
            let (s1, s2, coefficient) = (s1[i], s2[i], self.coefficients[i]);
            4.0 * (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (n * n)
        });
        let (rows, columns) = powers.split_at(4);
        let (Some(row), Some(column)) = (strongest(rows), strongest(columns)) else {
            return Block::Other;
        };
        let (row_power, column_power) = (rows[row], columns[column]);
        let min_power = MIN_TONE_AMPLITUDE * MIN_TONE_AMPLITUDE;
        let valid = row_power >= min_power
            && column_power >= min_power
            && column_power * NORMAL_TWIST >= row_power
            && row_power * REVERSE_TWIST >= column_power
            && dominates(rows, row)
            && dominates(columns, column)
            // A tone of amplitude A has a mean square of A^2 / 2.
            && (row_power + column_power) / 2.0 >= MIN_TONE_TO_TOTAL * mean_square;
        match DtmfDigit::at_keypad(row, column) {
            Some(digit) if valid => Block::Digit(digit),
            _ => Block::Other,
        }
    }
}

fn strongest(powers: &[f64]) -> Option<usize> {
    (0..powers.len()).max_by(|&a, &b| powers[a].total_cmp(&powers[b]))
}

fn dominates(powers: &[f64], best: usize) -> bool {
    powers
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || p * RELATIVE_PEAK <= powers[best])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::Codec;
    use crate::media::dtmf::synthesize;

    /// About -10 dBm0 per tone, a typical keypad level.
    const LEVEL: f64 = 7000.0;

    fn detect(pcm: &[i16]) -> Vec<char> {
        let mut detector = InBandDetector::new();
        let mut found = Vec::new();
        for frame in pcm.chunks(SAMPLES_PER_FRAME) {
            detector.process(frame);
            found.extend(std::iter::from_fn(|| detector.poll_digit()).map(DtmfDigit::to_char));
        }
        found
    }

    fn silence(samples: usize) -> Vec<i16> {
        vec![0; samples]
    }

    fn sines(frequencies: &[f64], amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let v: f64 = frequencies
                    .iter()
                    .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                    .sum();
                (v * amplitude) as i16
            })
            .collect()
    }

    #[test]
    fn each_of_the_sixteen_digits_is_detected_once() {
        for digit in DtmfDigit::all() {
            let mut pcm = silence(37); // not aligned on blocks
            pcm.extend(synthesize(digit, 0, 800, LEVEL));
            pcm.extend(silence(800));
            assert_eq!(detect(&pcm), vec![digit.to_char()]);
        }
    }

    #[test]
    fn weak_tones_with_twist_are_detected_but_too_weak_ones_are_not() {
        let digit = DtmfDigit::from_char('8').expect("valid");
        let (low, high) = digit.frequencies();
        // Column 6 dB below the row, row at about -24 dBm0.
        let mut pcm: Vec<i16> = sines(&[low], 1400.0, 800)
            .iter()
            .zip(sines(&[high], 700.0, 800))
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(detect(&pcm), vec!['8']);
        pcm = synthesize(digit, 0, 800, 150.0);
        assert!(detect(&pcm).is_empty());
        // Twist beyond 8 dB is rejected.
        pcm = sines(&[low], 7000.0, 800)
            .iter()
            .zip(sines(&[high], 1500.0, 800))
            .map(|(a, b)| a + b)
            .collect();
        assert!(detect(&pcm).is_empty());
    }

    #[test]
    fn single_tones_chords_and_noise_are_not_digits() {
        for f in ROW_FREQUENCIES.iter().chain(&COLUMN_FREQUENCIES) {
            assert!(
                detect(&sines(&[*f], 10_000.0, 1600)).is_empty(),
                "single tone {f}"
            );
        }
        // Major chords, including notes close to DTMF frequencies (G5 784 Hz, D#6 1245 Hz).
        for chord in [
            [523.25, 659.25, 783.99],
            [783.99, 1244.5, 523.25],
            [698.46, 880.0, 1318.5],
        ] {
            assert!(
                detect(&sines(&chord, 6000.0, 4000)).is_empty(),
                "chord {chord:?}"
            );
        }
        // A DTMF pair drowned in other sound is not a digit either.
        let mixed = sines(&[697.0, 1209.0, 1000.0, 400.0], 5000.0, 1600);
        assert!(detect(&mixed).is_empty());
        // Speech-like noise: filtered random noise with a slowly varying envelope.
        let mut state = 0x2545_F491u32;
        let mut smoothed = 0.0;
        let noise: Vec<i16> = (0..16_000)
            .map(|n| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let white = f64::from(state as i32) / f64::from(i32::MAX);
                smoothed = 0.7 * smoothed + 0.3 * white;
                let envelope = 0.5 + 0.5 * (n as f64 / 800.0).sin().abs();
                (smoothed * 20_000.0 * envelope) as i16
            })
            .collect();
        assert!(detect(&noise).is_empty());
    }

    #[test]
    fn two_presses_separated_by_fifty_ms_are_two_digits() {
        let digit = DtmfDigit::from_char('3').expect("valid");
        for offset in [0, 37, 80, 150] {
            let mut pcm = silence(offset);
            for _ in 0..2 {
                pcm.extend(synthesize(digit, 0, 800, LEVEL));
                pcm.extend(silence(400));
            }
            pcm.extend(silence(400));
            assert_eq!(detect(&pcm), vec!['3', '3'], "offset {offset}");
        }
    }

    #[test]
    fn a_forty_ms_press_is_enough_and_twenty_is_not() {
        let digit = DtmfDigit::from_char('#').expect("valid");
        let mut pcm = synthesize(digit, 0, 320, LEVEL);
        pcm.extend(silence(400));
        assert_eq!(detect(&pcm), vec!['#']);
        let mut pcm = synthesize(digit, 0, 160, LEVEL);
        pcm.extend(silence(400));
        assert!(detect(&pcm).is_empty());
    }

    #[test]
    fn a_disturbed_block_mid_tone_does_not_repeat_the_digit() {
        let digit = DtmfDigit::from_char('0').expect("valid");
        let mut pcm = synthesize(digit, 0, 480, LEVEL);
        pcm.extend(sines(&[500.0, 2500.0], 8000.0, 160)); // one block of something else
        pcm.extend(synthesize(digit, 640, 480, LEVEL));
        pcm.extend(silence(320));
        assert_eq!(detect(&pcm), vec!['0']);
    }

    #[test]
    fn tones_survive_g711() {
        for codec in [Codec::Pcma, Codec::Pcmu] {
            for digit in DtmfDigit::all() {
                let mut pcm = synthesize(digit, 0, 800, LEVEL);
                pcm.extend(silence(400));
                let decoded = codec.decode(&codec.encode(&pcm));
                assert_eq!(detect(&decoded), vec![digit.to_char()], "{codec:?}");
            }
        }
    }

    #[test]
    fn feeding_odd_sizes_gives_the_same_result() {
        let digit = DtmfDigit::from_char('D').expect("valid");
        let mut pcm = synthesize(digit, 0, 800, LEVEL);
        pcm.extend(silence(400));
        let mut detector = InBandDetector::new();
        for chunk in pcm.chunks(37) {
            detector.process(chunk);
        }
        assert_eq!(detector.poll_digit().map(DtmfDigit::to_char), Some('D'));
        assert_eq!(detector.poll_digit(), None);
    }
}
