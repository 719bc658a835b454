//! `[backup]`: the backups the active node takes by itself (see `backup::schedule`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Ctx};
use crate::backup::schedule::Schedule;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    dir: Option<String>,
    every_hours: Option<u64>,
    keep: Option<usize>,
    recordings: Option<bool>,
}

/// `[backup]`, checked. Without `every_hours` nothing is scheduled (`svi backup` by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupConfig {
    /// `None`: `DATA_DIR/backups` (following a `--data-dir` override).
    pub dir: Option<PathBuf>,
    pub every: Option<Duration>,
    pub keep: usize,
    pub recordings: bool,
}

impl BackupConfig {
    pub const DEFAULT_KEEP: usize = 7;

    /// Where backups go for a node whose data directory is `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join(crate::storage::BACKUP_DIR))
    }

    /// The schedule, if one is configured.
    pub fn schedule(&self, data_dir: &Path) -> Option<Schedule> {
        Some(Schedule {
            dir: self.dir(data_dir),
            every: self.every?,
            keep: self.keep,
            recordings: self.recordings,
        })
    }
}

pub(super) fn parse(cx: &Ctx<'_>, raw: RawBackup) -> Result<BackupConfig, ConfigError> {
    let every = match raw.every_hours {
        Some(0) => return Err(cx.err("backup.every_hours", "must be at least 1")),
        Some(h) if h > 24 * 366 => {
            return Err(cx.err("backup.every_hours", "at most a year (8784 hours)"))
        }
        Some(h) => Some(Duration::from_secs(h * 3600)),
        None => None,
    };
    let keep = match raw.keep {
        Some(0) => return Err(cx.err("backup.keep", "must be at least 1")),
        Some(n) => n,
        None => BackupConfig::DEFAULT_KEEP,
    };
    Ok(BackupConfig {
        dir: raw.dir.as_deref().map(|d| cx.path(d)),
        every,
        keep,
        recordings: raw.recordings.unwrap_or(false),
    })
}
