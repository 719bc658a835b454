//! Prompts: audio converted once at load into ready-to-send G.711 frames.
//!
//! A prompt file may be any PCM WAV (8/16/24/32-bit integer or 32-bit float, mono or
//! stereo, any rate). At load it is downmixed, resampled to 8 kHz with a windowed-sinc
//! low-pass filter (`resample`) and stored three ways: 16-bit PCM (for mixing, recording
//! or future codecs) and 160-byte A-law and µ-law frames. Playing a prompt then costs a
//! copy of 160 bytes per 20 ms and no arithmetic, for any number of calls: all calls share
//! the same frames through an `Arc`.
//!
//! - `wav`: reading and normalising WAV files with `hound`.
//! - `resample`: the sample-rate converter.
//! - `store` ([`PromptStore`]): the `<root>/<language>/<name>.wav` tree, looked up by
//!   language and name.

mod resample;
mod store;
mod wav;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use store::PromptStore;

use super::codec::{Codec, Frame, SAMPLE_RATE};

/// Why a prompt file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a well-formed WAV file.
    #[error("{path} is not a valid WAV file: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A WAV file in an encoding svi does not read (e.g. A-law WAV, 64-bit float).
    #[error("{path} uses an unsupported WAV format: {detail}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The format found.
        detail: String,
    },
    /// The audio data ends before the length its header declares.
    #[error("{path} is truncated: {read} of {declared} samples present")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Samples read.
        read: usize,
        /// Samples declared by the header.
        declared: usize,
    },
    /// The file holds no audio.
    #[error("{path} contains no audio")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// An audio prompt, in every form the media layer sends. Cloning is one reference count.
#[derive(Clone)]
pub struct Prompt {
    inner: Arc<PromptData>,
}

struct PromptData {
    name: String,
    pcm: Box<[i16]>,
    pcma: Box<[Frame]>,
    pcmu: Box<[Frame]>,
}

impl Prompt {
    /// A prompt from 8 kHz mono PCM (generated tones, tests, text-to-speech output).
    pub fn from_pcm(name: impl Into<String>, pcm: Vec<i16>) -> Prompt {
        let pcma = Codec::Pcma.encode_frames(&pcm).into_boxed_slice();
        let pcmu = Codec::Pcmu.encode_frames(&pcm).into_boxed_slice();
        Prompt {
            inner: Arc::new(PromptData {
                name: name.into(),
                pcm: pcm.into_boxed_slice(),
                pcma,
                pcmu,
            }),
        }
    }

    /// Loads a WAV file; `name` is how logs and lookups will call it.
    pub fn load_wav(path: &Path, name: impl Into<String>) -> Result<Prompt, PromptError> {
        let file = std::fs::File::open(path).map_err(|source| PromptError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Self::from_wav_reader(std::io::BufReader::new(file), path, name)
    }

    /// Reads WAV data from any reader; `path` only names the source in errors.
    pub fn from_wav_reader<R: std::io::Read>(
        reader: R,
        path: &Path,
        name: impl Into<String>,
    ) -> Result<Prompt, PromptError> {
        let audio = wav::read_mono(reader, path)?;
        let resampled = resample::resample(&audio.samples, audio.sample_rate, SAMPLE_RATE);
        let pcm: Vec<i16> = resampled.iter().map(|&x| to_i16(x)).collect();
        if pcm.is_empty() {
            return Err(PromptError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Prompt::from_pcm(name, pcm))
    }

    /// The prompt's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Playing time, excluding the silence padding of the last frame.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.inner.pcm.len() as f64 / f64::from(SAMPLE_RATE))
    }

    /// The audio as 8 kHz mono 16-bit PCM.
    pub fn pcm(&self) -> &[i16] {
        &self.inner.pcm
    }

    /// The audio as 20 ms frames in `codec`, the last one padded with silence.
    pub fn frames(&self, codec: Codec) -> &[Frame] {
        match codec {
            Codec::Pcma => &self.inner.pcma,
            Codec::Pcmu => &self.inner.pcmu,
        }
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.inner.pcma.len()
    }
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name())
            .field("duration", &self.duration())
            .finish()
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests;
