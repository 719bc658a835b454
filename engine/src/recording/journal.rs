//! The recording journal: what survives of a call when the engine dies during it.
//!
//! When a recording starts, `<id>.json` is written next to `<id>.wav` with the call's
//! partial record (a JSON value the call engine chooses), atomically: a temporary file,
//! synced, renamed over the final name, then the directory synced, so the journal is either
//! absent or complete. A normal end of the recording removes it. A journal found later means
//! the process died while the call was recorded: [`recover`] repairs the WAV and returns the
//! record, which the engine stores with the end reason `engine_failure` before calling
//! [`Recovered::done`].
//!
//! Only journaled recordings are repaired. A WAV without a journal is a finished recording
//! (its header is final) or the rare leftover of a crash between creating the WAV and writing
//! its journal, which holds no audio yet; [`super::repair_wav`] can be run on any file on
//! demand, but scanning every recording at each start would cost a read per file for nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::wav::repair_wav;
use super::{RecordingError, RecordingInfo};

/// Extension of journals.
pub const JOURNAL_EXTENSION: &str = "json";
/// Extension of a journal being written.
const TEMP_EXTENSION: &str = "json.tmp";

/// `<dir>/<id>.wav`.
pub fn wav_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.wav"))
}

/// `<dir>/<id>.json`.
pub fn journal_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.{JOURNAL_EXTENSION}"))
}

/// Writes the journal of `id` atomically. Blocking.
pub fn write_journal(
    dir: &Path,
    id: &str,
    journal: &serde_json::Value,
) -> Result<(), RecordingError> {
    let path = journal_path(dir, id);
    let temp = dir.join(format!("{id}.{TEMP_EXTENSION}"));
    let bytes = serde_json::to_vec(journal).map_err(|source| RecordingError::Journal {
        path: path.clone(),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, &path)?;
        sync_dir(dir)
    };
    write().map_err(|e| {
        // Best effort: a temporary left behind is removed by `recover`.
        let _ = fs::remove_file(&temp);
        RecordingError::io(&path, e)
    })
}

/// Removes the journal of `id` (absent is fine). Blocking.
pub fn remove_journal(dir: &Path, id: &str) -> Result<(), RecordingError> {
    let path = journal_path(dir, id);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir).map_err(|e| RecordingError::io(dir, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RecordingError::io(&path, e)),
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

/// A recording interrupted by a crash, repaired.
#[derive(Debug)]
pub struct Recovered {
    /// The recording id (the file stem).
    pub id: String,
    /// The call's partial record, as given to `Recorder::start`.
    pub journal: serde_json::Value,
    /// The repaired WAV (`paused` is zero: pauses are not journaled).
    pub info: RecordingInfo,
    /// When the WAV was last written before the crash: the latest time the call was known
    /// alive, to within one flush interval.
    pub modified: SystemTime,
    journal_path: PathBuf,
}

impl Recovered {
    /// Deletes the journal, once the call record is stored. Blocking.
    pub fn done(self) -> Result<(), RecordingError> {
        match fs::remove_file(&self.journal_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RecordingError::io(&self.journal_path, e)),
        }
    }
}

/// Repairs every recording that a crash left with its journal in `dir` (none if `dir` does
/// not exist), and removes journal temporaries. A journal or WAV that cannot be read or
/// repaired is logged at error level and skipped, its files left for an operator. Blocking:
/// run it before taking calls, or on the blocking pool.
pub fn recover(dir: &Path) -> Result<Vec<Recovered>, RecordingError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordingError::io(dir, e)),
    };
    let mut recovered = Vec::new();
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => return Err(RecordingError::io(dir, e)),
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(&format!(".{TEMP_EXTENSION}")) {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove journal temporary");
            }
            continue;
        }
        let Some(id) = name.strip_suffix(&format!(".{JOURNAL_EXTENSION}")) else {
            continue;
        };
        match recover_one(dir, id, &path) {
            Ok(one) => {
                tracing::warn!(
                    path = %one.info.path.display(),
                    duration = ?one.info.duration,
                    "recording interrupted by a crash: repaired"
                );
                recovered.push(one);
            }
            Err(error) => {
                tracing::error!(journal = %path.display(), %error, "cannot recover recording");
            }
        }
    }
    recovered.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(recovered)
}

fn recover_one(dir: &Path, id: &str, journal_path: &Path) -> Result<Recovered, RecordingError> {
    let bytes = fs::read(journal_path).map_err(|e| RecordingError::io(journal_path, e))?;
    let journal = serde_json::from_slice(&bytes).map_err(|source| RecordingError::Journal {
        path: journal_path.to_owned(),
        source,
    })?;
    let wav = wav_path(dir, id);
    // Read before the repair, which writes the file.
    let modified = fs::metadata(&wav)
        .or_else(|_| fs::metadata(journal_path))
        .and_then(|m| m.modified())
        .map_err(|e| RecordingError::io(&wav, e))?;
    let info = repair_wav(&wav)?;
    Ok(Recovered {
        id: id.to_owned(),
        journal,
        info,
        modified,
        journal_path: journal_path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::recording::wav::WavWriter;

    #[test]
    fn a_crashed_recording_comes_back_playable_with_its_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = json!({"call": "c-1", "caller": "+33100000000", "queue": "sales"});
        write_journal(dir.path(), "c-1", &journal).expect("journal");
        let wav = wav_path(dir.path(), "c-1");
        let mut writer = WavWriter::create(&wav, Duration::from_secs(1)).expect("create");
        // 3.5 s of audio in 20 ms frames: three flushes reach the disk, then the process
        // dies (the writer is dropped without finish).
        for _ in 0..175 {
            let frame: Vec<i16> = (0..160).flat_map(|_| [1000, -1000]).collect();
            writer.write(&frame).expect("write");
        }
        drop(writer);

        let found = recover(dir.path()).expect("recover");
        assert_eq!(found.len(), 1);
        let one = &found[0];
        assert_eq!(one.id, "c-1");
        assert_eq!(one.journal, journal);
        assert!(
            one.info.duration >= Duration::from_millis(2500)
                && one.info.duration <= Duration::from_millis(3500),
            "{:?}",
            one.info.duration
        );
        let reader = hound::WavReader::open(&wav).expect("playable");
        let spec = reader.spec();
        assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        assert_eq!(
            Duration::from_millis(samples.len() as u64 / 16),
            one.info.duration
        );
        assert!(samples.iter().step_by(2).all(|&s| s == 1000), "left");
        assert!(
            samples.iter().skip(1).step_by(2).all(|&s| s == -1000),
            "right"
        );
        let (sha, bytes) = crate::recording::wav::sha256_file(&wav).expect("hash");
        assert_eq!((sha, bytes), (one.info.sha256.clone(), one.info.bytes));

        // Until `done`, the journal stays (a crash before the record is stored repeats).
        assert_eq!(recover(dir.path()).expect("recover").len(), 1);
        for one in recover(dir.path()).expect("recover") {
            one.done().expect("done");
        }
        assert!(recover(dir.path()).expect("recover").is_empty());
        assert!(wav.exists(), "the recording itself is kept");
    }

    #[test]
    fn a_journal_without_audio_still_returns_the_call() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_journal(dir.path(), "early", &json!({"n": 1})).expect("journal");
        std::fs::write(dir.path().join("other.json.tmp"), b"{\"half").expect("temp");
        std::fs::write(dir.path().join("bad.json"), b"{\"half").expect("bad journal");
        let found = recover(dir.path()).expect("recover");
        assert_eq!(found.len(), 1, "the garbled journal is skipped");
        assert_eq!(found[0].journal, json!({"n": 1}));
        assert_eq!(found[0].info.duration, Duration::ZERO);
        assert!(!dir.path().join("other.json.tmp").exists());
        assert!(dir.path().join("bad.json").exists(), "left for an operator");
        assert!(recover(&dir.path().join("missing"))
            .expect("no directory, nothing to recover")
            .is_empty());
    }
}
