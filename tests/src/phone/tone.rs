//! Tone detection with Goertzel's algorithm, on what a phone received and on recordings.
//!
//! The measure is *relative*: the share of the signal's energy found at one frequency, from 0
//! (absent) to about 1 (a pure tone). It needs no calibration of levels through the engine
//! (gain, G.711 quantisation, transcoding) and it falls when another sound is mixed in, so
//! "hears 500 Hz and not 1700 Hz" is a comparison of shares.
//!
//! The signal is cut into 20 ms blocks; each block's Goertzel power is normalised by its own
//! length and the shares are summed over blocks. Blocks make the measure indifferent to the
//! phase jumps between RTP frames that arrive with gaps, and 20 ms (50 Hz resolution) is
//! plenty for test tones hundreds of Hz apart. Audio quieter than [`SILENCE_DBFS`] counts
//! as silence and yields 0 for every frequency.

use std::path::Path;
use std::time::Duration;

/// Below this RMS level (dBFS) a signal is silence: G.711 "zero" (A-law decodes to ±8) and
/// line noise stay well under it, the quietest prompt well above.
pub const SILENCE_DBFS: f32 = -55.0;

/// Goertzel's |X(f)|² of `samples` at `freq_hz` (any frequency, not only bin centres).
pub fn goertzel_power(samples: &[i16], sample_rate: u32, freq_hz: f32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f64::from(freq_hz) / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

/// The share (0..=1) of the energy of `samples` found at `freq_hz`; 0 for silence.
pub fn tone_power(samples: &[i16], sample_rate: u32, freq_hz: f32) -> f32 {
    if samples.is_empty() || level_dbfs(samples) < SILENCE_DBFS {
        return 0.0;
    }
    let block = (sample_rate / 50).max(1) as usize;
    let (mut at_freq, mut total) = (0.0f64, 0.0f64);
    for chunk in samples.chunks(block) {
        // A sinusoid of amplitude A over N samples has |X|² = (AN/2)² and energy A²N/2, so
        // 2|X|²/N is its energy: the share of a pure tone is 1.
        at_freq += 2.0 * goertzel_power(chunk, sample_rate, freq_hz) / chunk.len() as f64;
        total += chunk.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
    }
    if total <= 0.0 {
        return 0.0;
    }
    (at_freq / total).clamp(0.0, 1.0) as f32
}

/// RMS level of `samples` in dBFS (a full-scale square wave is 0 dBFS); -inf for no signal.
pub fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean_square =
        samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64;
    (10.0 * (mean_square / (32_768.0f64 * 32_768.0)).log10()) as f32
}

/// A sine tone: `duration` of `freq_hz` at `level_dbfs` (peak; -3 dB more as RMS), for tests
/// and for the phone's own sender.
pub fn sine(freq_hz: f32, level_dbfs: f32, sample_rate: u32, duration: Duration) -> Vec<i16> {
    let n = (duration.as_secs_f64() * f64::from(sample_rate)).round() as usize;
    let amplitude = peak_amplitude(level_dbfs);
    let w = 2.0 * std::f64::consts::PI * f64::from(freq_hz) / f64::from(sample_rate);
    (0..n)
        .map(|i| (amplitude * (w * i as f64).sin()).round() as i16)
        .collect()
}

/// The peak amplitude of a sine at `level_dbfs`, clamped to the 16-bit range.
pub fn peak_amplitude(level_dbfs: f32) -> f64 {
    (32_767.0 * 10f64.powf(f64::from(level_dbfs) / 20.0)).min(32_767.0)
}

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read the WAV file: {0}")]
    Read(#[from] hound::Error),
    #[error("the WAV file has {channels} channel(s); channel {channel} does not exist")]
    NoChannel { channel: u16, channels: u16 },
}

/// One channel (0 = left) of a WAV file between `from` and `to` (clipped to the file), as
/// 16-bit samples, with the file's sample rate. Wider integer and float samples are scaled.
pub fn wav_channel_samples(
    path: &Path,
    channel: u16,
    from: Duration,
    to: Duration,
) -> Result<(Vec<i16>, u32), WavError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if channel >= spec.channels {
        return Err(WavError::NoChannel {
            channel,
            channels: spec.channels,
        });
    }
    let rate = f64::from(spec.sample_rate);
    let first = (from.as_secs_f64() * rate) as u64;
    let last = (to.as_secs_f64() * rate) as u64;
    let channels = u64::from(spec.channels);
    let wanted =
        |i: u64| i % channels == u64::from(channel) && (first..last).contains(&(i / channels));
    let mut out = Vec::new();
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, _) => {
            for (i, s) in reader.samples::<f32>().enumerate() {
                let s = s?;
                if wanted(i as u64) {
                    out.push((f64::from(s) * 32_767.0).clamp(-32_768.0, 32_767.0) as i16);
                }
            }
        }
        (hound::SampleFormat::Int, bits) if bits <= 16 => {
            for (i, s) in reader.samples::<i16>().enumerate() {
                let s = s?;
                if wanted(i as u64) {
                    // 8-bit files are scaled up so levels compare with 16-bit ones.
                    out.push(s << (16 - bits));
                }
            }
        }
        (hound::SampleFormat::Int, bits) => {
            for (i, s) in reader.samples::<i32>().enumerate() {
                let s = s?;
                if wanted(i as u64) {
                    out.push((s >> (bits - 16)) as i16);
                }
            }
        }
    }
    Ok((out, spec.sample_rate))
}

/// The share of `freq_hz` in one channel of a WAV recording between `from` and `to` (see the
/// module documentation for the measure).
pub fn wav_channel_tone_power(
    path: &Path,
    channel: u16,
    freq_hz: f32,
    from: Duration,
    to: Duration,
) -> Result<f32, WavError> {
    let (samples, rate) = wav_channel_samples(path, channel, from, to)?;
    Ok(tone_power(&samples, rate, freq_hz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::{HEARS_THRESHOLD, TEST_TONES_HZ};

    const RATE: u32 = 8000;

    fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
        a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
    }

    #[test]
    fn a_pure_tone_is_found_at_its_frequency_only() {
        for &f in &TEST_TONES_HZ {
            let s = sine(f, -12.0, RATE, Duration::from_millis(500));
            assert!(tone_power(&s, RATE, f) > 0.95, "{f} Hz");
            for &other in TEST_TONES_HZ.iter().filter(|&&o| o != f) {
                assert!(
                    tone_power(&s, RATE, other) < 0.01,
                    "{f} Hz seen at {other} Hz"
                );
            }
        }
    }

    #[test]
    fn off_grid_frequencies_and_quiet_tones_are_found() {
        // 770 Hz is not a multiple of 50 Hz, so blocks hold fractional cycles.
        let s = sine(770.0, -40.0, RATE, Duration::from_millis(300));
        assert!(tone_power(&s, RATE, 770.0) > 0.9);
        assert!(tone_power(&s, RATE, 1100.0) < 0.01);
    }

    #[test]
    fn mixtures_share_the_energy() {
        let d = Duration::from_millis(400);
        let s = mix(&sine(500.0, -12.0, RATE, d), &sine(1700.0, -12.0, RATE, d));
        let (a, b) = (tone_power(&s, RATE, 500.0), tone_power(&s, RATE, 1700.0));
        assert!(
            (0.4..0.6).contains(&a) && (0.4..0.6).contains(&b),
            "{a} {b}"
        );
        assert!(a > HEARS_THRESHOLD && b > HEARS_THRESHOLD);
        assert!(tone_power(&s, RATE, 1100.0) < 0.01);
    }

    #[test]
    fn silence_and_noise_hear_nothing() {
        assert_eq!(tone_power(&vec![0; 8000], RATE, 500.0), 0.0);
        // A-law's decoded "zero" is a constant 8.
        assert_eq!(tone_power(&vec![8; 8000], RATE, 500.0), 0.0);
        assert_eq!(tone_power(&[], RATE, 500.0), 0.0);
        // Deterministic white-ish noise at -20 dBFS: no single frequency holds a real share.
        let mut x: u32 = 12_345;
        let noise: Vec<i16> = (0..8000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                ((x >> 16) as i16) / 10
            })
            .collect();
        for &f in &TEST_TONES_HZ {
            assert!(tone_power(&noise, RATE, f) < 0.1, "noise at {f} Hz");
        }
    }

    #[test]
    fn level_of_a_sine() {
        let s = sine(1000.0, -6.0, RATE, Duration::from_secs(1));
        // RMS of a sine is 3 dB below its peak.
        assert!((level_dbfs(&s) + 9.0).abs() < 0.2, "{}", level_dbfs(&s));
        assert_eq!(level_dbfs(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn wav_channels_are_analysed_separately() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let second = Duration::from_secs(1);
        // Left: 1 s of 500 Hz then 1 s of 2300 Hz; right: 1 s of silence then 1 s of 1100 Hz.
        let left = [
            sine(500.0, -10.0, RATE, second),
            sine(2300.0, -10.0, RATE, second),
        ]
        .concat();
        let right = [vec![0; RATE as usize], sine(1100.0, -20.0, RATE, second)].concat();
        let mut w = hound::WavWriter::create(&path, spec).expect("create wav");
        for (l, r) in left.iter().zip(&right) {
            w.write_sample(*l).expect("write left");
            w.write_sample(*r).expect("write right");
        }
        w.finalize().expect("finalize wav");

        let p = |ch, f, from_ms, to_ms| {
            wav_channel_tone_power(
                &path,
                ch,
                f,
                Duration::from_millis(from_ms),
                Duration::from_millis(to_ms),
            )
            .expect("analyse wav")
        };
        assert!(p(0, 500.0, 0, 1000) > 0.95);
        assert!(p(0, 2300.0, 0, 1000) < 0.01);
        assert!(p(0, 2300.0, 1000, 2000) > 0.95);
        assert!(p(0, 500.0, 1000, 2000) < 0.01);
        assert_eq!(p(1, 1100.0, 0, 1000), 0.0);
        assert!(p(1, 1100.0, 1000, 2000) > 0.95);
        assert!(p(1, 500.0, 1000, 2000) < 0.01);
        // Past the end: clipped to the file, here nothing left.
        assert_eq!(p(1, 1100.0, 5000, 6000), 0.0);
        assert!(matches!(
            wav_channel_tone_power(&path, 2, 500.0, Duration::ZERO, second),
            Err(WavError::NoChannel { channels: 2, .. })
        ));
    }
}
