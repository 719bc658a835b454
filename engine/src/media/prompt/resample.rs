//! Sample-rate conversion by windowed-sinc interpolation, done once per prompt at load.
//!
//! Each output sample is the input convolved with a Kaiser-windowed sinc low-pass filter
//! centred on its exact (fractional) input position, which serves any rate ratio, down or
//! up. The filter passes up to 85% of the lower Nyquist frequency (3.4 kHz, the whole
//! telephone band, when producing 8 kHz) and attenuates by 80 dB from 110% of it, so what
//! folds back lands above the telephone band. The kernel is tabulated finely and linearly
//! interpolated, so its cost is a few multiplications per tap; quality is chosen over speed
//! since a prompt is converted once.

use std::f64::consts::PI;

/// Passband edge, as a fraction of the lower of the two Nyquist frequencies.
const PASSBAND: f64 = 0.85;
/// Stopband edge, likewise.
const STOPBAND: f64 = 1.10;
/// Stopband attenuation in dB; sets the Kaiser window and the filter length.
const ATTENUATION_DB: f64 = 80.0;
/// Kernel table entries per input sample.
const TABLE_STEPS: usize = 512;

/// Converts `input` at `from` Hz into `to` Hz.
pub(super) fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    let kernel = Kernel::new(from, to);
    let step = f64::from(from) / f64::from(to);
    let out_len = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let last = input.len() as i64 - 1;
    (0..out_len)
        .map(|m| {
            let centre = m as f64 * step;
            let first = ((centre - kernel.half_width).ceil() as i64).max(0);
            let end = ((centre + kernel.half_width).floor() as i64).min(last);
            let mut acc = 0.0;
            for k in first..=end {
                acc += f64::from(input[k as usize]) * kernel.at((centre - k as f64).abs());
            }
            acc as f32
        })
        .collect()
}

/// The tabulated right half of the symmetric filter, in units of input samples.
struct Kernel {
    half_width: f64,
    table: Vec<f64>,
}

impl Kernel {
    fn new(from: u32, to: u32) -> Self {
        let from = f64::from(from);
        let lower_nyquist = f64::from(to).min(from) / 2.0;
        // Cutoff halfway through the transition band, in cycles per input sample.
        let cutoff = (PASSBAND + STOPBAND) / 2.0 * lower_nyquist / from;
        let transition = (STOPBAND - PASSBAND) * lower_nyquist / from;
        // Kaiser's formulas: length for the attenuation over the transition, and beta.
        let taps = (ATTENUATION_DB - 8.0) / (2.285 * 2.0 * PI * transition);
        let half_width = (taps / 2.0).ceil().max(1.0);
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        let i0_beta = bessel_i0(beta);
        let entries = (half_width as usize) * TABLE_STEPS + 2;
        let table = (0..entries)
            .map(|i| {
                let d = i as f64 / TABLE_STEPS as f64;
                let ratio = d / half_width;
                if ratio > 1.0 {
                    return 0.0;
                }
                let window = bessel_i0(beta * (1.0 - ratio * ratio).sqrt()) / i0_beta;
                2.0 * cutoff * sinc(2.0 * cutoff * d) * window
            })
            .collect();
        Kernel { half_width, table }
    }

    /// Filter value at distance `d` (input samples) from the centre; `d <= half_width`.
    fn at(&self, d: f64) -> f64 {
        let position = d * TABLE_STEPS as f64;
        let index = position as usize;
        let frac = position - index as f64;
        let a = self.table.get(index).copied().unwrap_or(0.0);
        let b = self.table.get(index + 1).copied().unwrap_or(0.0);
        a + (b - a) * frac
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Modified Bessel function of the first kind, order 0, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(frequency: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (0.5 * (2.0 * PI * frequency * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// RMS over the middle of the signal, away from the filter's edge effects.
    fn rms_middle(samples: &[f32]) -> f64 {
        let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
        (middle.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / middle.len() as f64).sqrt()
    }

    #[test]
    fn passband_tones_keep_their_level_and_length() {
        for from in [11_025, 16_000, 22_050, 44_100, 48_000, 6_000] {
            for frequency in [300.0, 1000.0, 2900.0] {
                if frequency >= f64::from(from) / 2.0 * PASSBAND {
                    continue;
                }
                let out = resample(&sine(frequency, from, 0.5), from, 8000);
                assert_eq!(out.len(), 4000, "{from} Hz");
                let rms = rms_middle(&out);
                let expected = 0.5 / 2f64.sqrt();
                assert!(
                    (rms / expected - 1.0).abs() < 0.01,
                    "{from} Hz, {frequency} Hz: {rms}"
                );
            }
        }
    }

    #[test]
    fn tones_above_the_new_nyquist_are_removed_not_folded() {
        for (from, frequency) in [
            (48_000, 5000.0),
            (44_100, 6000.0),
            (16_000, 4500.0),
            (48_000, 12_000.0),
        ] {
            let out = resample(&sine(frequency, from, 0.5), from, 8000);
            let rms = rms_middle(&out);
            // 80 dB below the 0.35 RMS input.
            assert!(rms < 0.354 * 1e-3, "{from} Hz, {frequency} Hz leaked {rms}");
        }
    }

    #[test]
    fn identity_and_degenerate_inputs() {
        let input = [0.1f32, -0.2, 0.3];
        assert_eq!(resample(&input, 8000, 8000), input.to_vec());
        assert!(resample(&[], 44_100, 8000).is_empty());
        assert_eq!(resample(&[0.5], 16_000, 8000).len(), 1);
    }
}
