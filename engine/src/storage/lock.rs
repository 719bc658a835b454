//! The data directory lock: one running process per data directory.
//!
//! Two engines on one data directory would both apply the replicated log to the same
//! database and both become active (each is a one-voter cluster, or the same member twice),
//! so `svi run` and `svi witness` take an advisory lock on `DATA_DIR/svi.lock` before
//! opening anything, and hold it until they exit. The lock is `flock(2)` (through `rustix`'s
//! safe wrapper): the kernel releases it when the process dies, even by `kill -9`, so a
//! stale file never blocks a restart. The file holds the holder's pid and start time, which
//! the refusal names. Readers (`svi calls`, `svi ha status`) do not take it.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "svi.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "data directory {dir} is in use by another svi process ({holder}): lock file {lock} is held; stop that process or use another data directory"
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("lock file {lock}: {source}")]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// Held while the value lives (the kernel drops the lock with the file descriptor).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (created if needed) without waiting; names the holder
    /// when another process has it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let lock = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "pid unknown".to_string(),
                    h => h.to_string(),
                };
                return Err(LockError::Held {
                    dir: data_dir.to_path_buf(),
                    lock,
                    holder,
                });
            }
            return Err(io(e.into()));
        }
        // Ours now: say who holds it, for the refusal a second process prints.
        let who = format!(
            "pid {}, since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock {
            _file: file,
            path: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).expect("first lock");
        assert_eq!(first.path(), data.join(LOCK_FILE));
        // flock(2) locks belong to the open file: a second open conflicts, in one process
        // as in two.
        let err = DataDirLock::acquire(&data).expect_err("second lock refused");
        let text = err.to_string();
        assert!(
            text.contains(&data.join(LOCK_FILE).display().to_string()),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "names the holder: {text}"
        );
        drop(first);
        DataDirLock::acquire(&data).expect("free again once the holder is gone");
    }
}
