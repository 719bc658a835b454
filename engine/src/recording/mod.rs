//! Call recording: stereo WAV files that survive a crash of the engine.
//!
//! A recorded call is one 8 kHz, 16-bit stereo WAV file, caller on the left channel and agent
//! (or engine) on the right, in the directory of [`RecordingSettings`]. The parts:
//!
//! - [`timeline`]: a sans-IO core that turns two streams of 20 ms frames, each with its own
//!   jitter and gaps, into interleaved stereo samples aligned on the time elapsed since the
//!   start; it also owns pause/resume (silence while a card number is read out).
//! - [`wav`]: the streaming writer. Samples are written and the RIFF sizes rewritten every
//!   `flush_every` (2 s by default), so a crash loses at most that much audio and leaves a
//!   header at most one interval stale; [`wav::repair_wav`] recomputes it from the length.
//! - [`journal`]: `<id>.json` beside `<id>.wav` holds the call's partial record while the
//!   recording runs. A journal found at start-up means the engine died during that call:
//!   [`recover`] repairs the WAV and hands the record back so the call is not lost.
//! - [`disk`]: the free-space guard (a recording refuses to start, or stops, below
//!   [`RecordingSettings::min_free_bytes`]) and the retention sweep.
//! - [`recorder`]: the task that ties them together for one call, reading the two legs'
//!   taps ([`crate::media::Link::Record`]). File I/O runs on tokio's blocking pool, one short
//!   job per flush, never on the async threads and never a thread per recording.
//! - [`index`]: the replicated index of recordings (which file, its hash, on which nodes).
//!
//! A recording never affects its call: every failure ends the recording (logged at error
//! level with the file and the OS error, and counted in [`alarms`]), not the call.

pub mod disk;
pub mod index;
pub mod journal;
pub mod recorder;
pub mod timeline;
pub mod wav;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use disk::{free_bytes, guard as disk_guard, sweep_retention};
pub use index::IndexEntry;
pub use journal::{recover, Recovered};
pub use recorder::{Recorder, RecorderHandle};
pub use timeline::{Channel, Timeline};
pub use wav::{repair_wav, WavWriter};

/// Where and how recordings are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    /// Directory of the `<id>.wav` files and their journals.
    pub dir: PathBuf,
    /// Interval between two writes to disk: the most audio a crash can lose.
    pub flush_every: Duration,
    /// Below this much free space, recordings refuse to start and running ones stop.
    pub min_free_bytes: u64,
    /// Age after which [`sweep_retention`] deletes recordings; `None` keeps them forever.
    pub retention: Option<Duration>,
}

impl RecordingSettings {
    /// Default flush interval.
    pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(2);
    /// Default free-space minimum: 500 MiB, about 4 hours and a half of one recording.
    pub const DEFAULT_MIN_FREE_BYTES: u64 = 500 * 1024 * 1024;

    /// Settings with the defaults, recording into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecordingSettings {
            dir: dir.into(),
            flush_every: Self::DEFAULT_FLUSH_EVERY,
            min_free_bytes: Self::DEFAULT_MIN_FREE_BYTES,
            retention: None,
        }
    }
}

/// A finished (or repaired) recording, as the call record stores it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordingInfo {
    /// The WAV file.
    pub path: PathBuf,
    /// Audio duration (paused time included: it is silence in the file).
    pub duration: Duration,
    /// File size, header included.
    pub bytes: u64,
    /// SHA-256 of the whole file, lowercase hex: proof that the file was not altered.
    pub sha256: String,
    /// Total time the recording was paused. Zero for a recording repaired after a crash:
    /// the pauses are not journaled.
    pub paused: Duration,
}

/// Why a recording could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The id would not make a plain file name in the recording directory.
    #[error("recording id {0:?} is not a plain file name")]
    InvalidId(String),
    /// Free space is below [`RecordingSettings::min_free_bytes`].
    #[error("recording disk has {free} bytes free, below the {min} bytes minimum")]
    DiskGuard {
        /// Bytes available.
        free: u64,
        /// The configured minimum.
        min: u64,
    },
    /// A file operation failed (read-only directory, disk full, ...).
    #[error("recording file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A WAV file is not in the format svi records (8 kHz, 16-bit, stereo PCM), so it is
    /// left as it is.
    #[error("{path} is not an 8 kHz 16-bit stereo PCM WAV file")]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// The recording reached the 4 GiB a WAV header can describe (about 37 hours).
    #[error("recording file {path} reached the WAV size limit")]
    TooLong {
        /// The file.
        path: PathBuf,
    },
    /// A journal could not be written or read back.
    #[error("recording journal {path}: {source}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// The recording stopped before `finish` (write failure, disk guard). `partial`
    /// describes what was saved, when the file could be closed properly.
    #[error("recording stopped early: {source}")]
    Interrupted {
        /// What stopped it.
        source: Box<RecordingError>,
        /// The audio saved up to the failure.
        partial: Option<RecordingInfo>,
    },
    /// The recorder task is gone (the runtime is shutting down).
    #[error("recorder task ended")]
    TaskGone,
}

impl RecordingError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RecordingError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Alarms raised by recordings since the process started, for metrics and the admin page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingAlarms {
    /// Recordings refused because free space was below the minimum.
    pub disk_guard_refusals: u64,
    /// Running recordings stopped because free space fell below the minimum.
    pub disk_guard_stops: u64,
    /// Recordings ended by a failed write.
    pub write_failures: u64,
}

impl RecordingAlarms {
    /// All alarms together.
    pub fn total(&self) -> u64 {
        self.disk_guard_refusals + self.disk_guard_stops + self.write_failures
    }
}

// Process-wide counters: alarms are raised by independent recorder tasks and read by metrics,
// and atomics need no owner to hand them around.
static DISK_GUARD_REFUSALS: AtomicU64 = AtomicU64::new(0);
static DISK_GUARD_STOPS: AtomicU64 = AtomicU64::new(0);
static WRITE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// The alarms raised so far.
pub fn alarms() -> RecordingAlarms {
    RecordingAlarms {
        disk_guard_refusals: DISK_GUARD_REFUSALS.load(Ordering::Relaxed),
        disk_guard_stops: DISK_GUARD_STOPS.load(Ordering::Relaxed),
        write_failures: WRITE_FAILURES.load(Ordering::Relaxed),
    }
}

/// The recording of `id` would be `<dir>/<id>.wav`: refuses anything but a plain name.
fn check_id(id: &str) -> Result<(), RecordingError> {
    let plain = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if plain {
        Ok(())
    } else {
        Err(RecordingError::InvalidId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_plain_file_names() {
        for good in ["call-1", "a1b2.c3@host", "X_9"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", "..", ".hidden", "a/b", "../x", "a b", "é"] {
            assert!(
                matches!(check_id(bad), Err(RecordingError::InvalidId(_))),
                "{bad}"
            );
        }
    }
}
