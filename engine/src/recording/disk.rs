//! The recording disk: the free-space guard and the retention sweep.
//!
//! A full disk corrupts more than recordings (the SQLite database, the raft log, logs may
//! live on it), so recordings stop well before: below `min_free_bytes` a recording refuses to
//! start and a running one stops, each raising an alarm. Free space is what an unprivileged
//! process may use (`f_bavail`), read with `statvfs` through `rustix`, whose safe wrapper
//! keeps the workspace's `unsafe_code = "forbid"`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::journal::JOURNAL_EXTENSION;

/// The free-space guard of every writer of audio (recordings, messages, recording copies):
/// below `min_free` bytes on the file system holding `dir` the write is refused and an alarm
/// raised (an `ALARM` error line, and the `disk_guard_refusals` counter). `what` names the
/// writer in the alarm. An unreadable free space skips the guard (with a warning).
pub fn guard(dir: &Path, min_free: u64, what: &str) -> Result<(), super::RecordingError> {
    guard_with(dir, min_free, what, &|d: &Path| free_bytes(d))
}

pub(super) fn guard_with(
    dir: &Path,
    min_free: u64,
    what: &str,
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<(), super::RecordingError> {
    match free_space(dir) {
        Ok(free) if free < min_free => {
            super::DISK_GUARD_REFUSALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                dir = %dir.display(),
                free,
                min = min_free,
                "ALARM {what} refused: free space below the minimum"
            );
            Err(super::RecordingError::DiskGuard {
                free,
                min: min_free,
            })
        }
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot read free space: guard skipped");
            Ok(())
        }
    }
}

/// Bytes available to the engine on the file system holding `dir`.
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Bytes available to the engine on the file system holding `dir`.
#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> std::io::Result<u64> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Deletes the recordings of `dir` last written before `now - older_than`, and returns the
/// deleted files. A recording with a journal is in progress or awaits recovery: it is kept
/// unless its journal is that old too (a crash nobody recovered), and then both go. Old
/// journals without a WAV and old journal temporaries go as well. Errors are logged and the
/// file skipped. Blocking.
pub fn sweep_retention(dir: &Path, older_than: Duration, now: SystemTime) -> Vec<PathBuf> {
    let Some(cutoff) = now.checked_sub(older_than) else {
        return Vec::new();
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot read the recording directory");
            return Vec::new();
        }
    };
    let is_old = |path: &Path| {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < cutoff)
    };
    let mut deleted = Vec::new();
    let mut delete = |path: &Path| match fs::remove_file(path) {
        Ok(()) => deleted.push(path.to_owned()),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot delete old recording")
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in &paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".wav") {
            let journal = dir.join(format!("{id}.{JOURNAL_EXTENSION}"));
            let journaled = journal.exists();
            if !is_old(path) || (journaled && !is_old(&journal)) {
                continue;
            }
            delete(path);
            if journaled {
                delete(&journal);
            }
        } else if let Some(id) = name
            .strip_suffix(&format!(".{JOURNAL_EXTENSION}"))
            .or_else(|| name.strip_suffix(&format!(".{JOURNAL_EXTENSION}.tmp")))
        {
            let orphan = !dir.join(format!("{id}.wav")).exists();
            if orphan && path.exists() && is_old(path) {
                delete(path);
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, age: Duration, now: SystemTime) {
        fs::write(path, b"x").expect("write");
        let file = fs::File::options().write(true).open(path).expect("open");
        file.set_modified(now - age).expect("set mtime");
    }

    #[test]
    fn free_space_is_known_for_a_real_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn retention_deletes_old_finished_recordings_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        touch(&d.join("old.wav"), 40 * day, now);
        touch(&d.join("new.wav"), day, now);
        // In progress: an old-looking file whose journal is fresh.
        touch(&d.join("running.wav"), 40 * day, now);
        touch(&d.join("running.json"), day, now);
        // A crash nobody recovered, older than the retention: both go.
        touch(&d.join("crashed.wav"), 40 * day, now);
        touch(&d.join("crashed.json"), 35 * day, now);
        touch(&d.join("orphan.json"), 40 * day, now);
        touch(&d.join("notes.txt"), 40 * day, now);

        let mut deleted = sweep_retention(d, 30 * day, now);
        deleted.sort();
        let names: Vec<String> = deleted
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        assert_eq!(
            names,
            vec!["crashed.json", "crashed.wav", "old.wav", "orphan.json"]
        );
        for kept in ["new.wav", "running.wav", "running.json", "notes.txt"] {
            assert!(d.join(kept).exists(), "{kept}");
        }
    }
}
