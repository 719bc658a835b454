//! Reading any PCM WAV into mono floating-point samples.
//!
//! `hound` parses the RIFF structure and yields integer samples of 8-32 bits or 32-bit float;
//! here they are scaled to [-1, 1] and channels are averaged. Every failure is mapped to a
//! [`PromptError`] naming the file; a malformed header never panics and never makes us
//! allocate what the header merely claims.

use std::path::Path;

use hound::{SampleFormat, WavReader};

use super::PromptError;

/// Longest prompt accepted: an hour, far beyond any announcement or hold music loop.
const MAX_SECONDS: u64 = 3600;
/// Highest sample rate accepted.
const MAX_RATE: u32 = 384_000;
/// Preallocation bound, so a lying header cannot reserve gigabytes up front.
const MAX_PREALLOCATED: usize = 1 << 22;

/// Mono audio at its original rate.
pub(super) struct MonoAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

pub(super) fn read_mono<R: std::io::Read>(
    reader: R,
    path: &Path,
) -> Result<MonoAudio, PromptError> {
    let mut wav = WavReader::new(reader).map_err(|e| map_error(e, path))?;
    let spec = wav.spec();
    let unsupported = |detail: String| PromptError::Unsupported {
        path: path.to_owned(),
        detail,
    };
    if spec.sample_rate == 0 || spec.sample_rate > MAX_RATE {
        return Err(unsupported(format!("sample rate {} Hz", spec.sample_rate)));
    }
    if u64::from(wav.duration()) > MAX_SECONDS * u64::from(spec.sample_rate) {
        return Err(unsupported(format!("longer than {MAX_SECONDS} s")));
    }
    let declared = wav.len() as usize;
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            collect(wav.samples::<i32>(), declared, path, |s| {
                (f64::from(s) * scale) as f32
            })?
        }
        (SampleFormat::Float, 32) => collect(wav.samples::<f32>(), declared, path, |s| s)?,
        (format, bits) => return Err(unsupported(format!("{bits}-bit {format:?} samples"))),
    };
    let channels = usize::from(spec.channels.max(1));
    let samples = interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok(MonoAudio {
        samples,
        sample_rate: spec.sample_rate,
    })
}

fn collect<S, I: Iterator<Item = hound::Result<S>>>(
    samples: I,
    declared: usize,
    path: &Path,
    convert: impl Fn(S) -> f32,
) -> Result<Vec<f32>, PromptError> {
    let mut out = Vec::with_capacity(declared.min(MAX_PREALLOCATED));
    for sample in samples {
        match sample {
            Ok(s) => out.push(convert(s)),
            Err(hound::Error::IoError(e)) if is_short_read(&e) => {
                return Err(PromptError::Truncated {
                    path: path.to_owned(),
                    read: out.len(),
                    declared,
                })
            }
            Err(e) => return Err(map_error(e, path)),
        }
    }
    Ok(out)
}

fn map_error(error: hound::Error, path: &Path) -> PromptError {
    let path = path.to_owned();
    match error {
        hound::Error::IoError(source) if is_short_read(&source) => PromptError::NotWav {
            path,
            reason: "file ends inside the header".to_owned(),
        },
        hound::Error::IoError(source) => PromptError::Unreadable { path, source },
        hound::Error::FormatError(reason) => PromptError::NotWav {
            path,
            reason: reason.to_owned(),
        },
        hound::Error::UnfinishedSample => PromptError::NotWav {
            path,
            reason: "data ends inside a sample".to_owned(),
        },
        hound::Error::Unsupported => PromptError::Unsupported {
            path,
            detail: "not PCM or IEEE float (compressed WAV?)".to_owned(),
        },
        hound::Error::TooWide | hound::Error::InvalidSampleFormat => PromptError::Unsupported {
            path,
            detail: error.to_string(),
        },
    }
}

/// hound reports running out of data as `Other` ("Failed to read enough bytes"), the
/// standard library as `UnexpectedEof`; the file itself was readable, so either means the
/// content is cut short.
fn is_short_read(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other
    )
}
