//! The `[backup]` schedule: the active node takes a backup every `every`, named
//! `svi-backup-<node>-<UTC time>.tar` in the backup directory, and keeps the newest `keep`
//! of them (files of that pattern only: copies taken by hand are never deleted).
//!
//! The time of the last backup is read from the newest file name, so a restart or a
//! failover does not reset the schedule: a node becoming active whose newest backup is older
//! than `every` takes one at once. A failed backup is retried after `RETRY` (or `every`, if
//! shorter), not in a loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::watch;

use super::{create, BackupError, Source};
use crate::storage::Storage;

const PREFIX: &str = "svi-backup-";
const SUFFIX: &str = ".tar";
const TIME: &str = "%Y%m%dT%H%M%SZ";
/// Pause after a failed backup before the next try.
pub const RETRY: Duration = Duration::from_secs(3600);

/// `[backup]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
    pub recordings: bool,
}

/// The file name of a backup of `node` taken at `at`.
pub fn file_name(node: &str, at: DateTime<Utc>) -> String {
    let node: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{node}-{}{SUFFIX}", at.format(TIME))
}

/// When the backup named `name` was taken (None: not a scheduled backup's name).
pub fn taken_at(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (_, time) = stem.rsplit_once('-')?;
    NaiveDateTime::parse_from_str(time, TIME)
        .ok()
        .map(|t| t.and_utc())
}

/// The scheduled backups in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(PathBuf, DateTime<Utc>)> {
    let mut out: Vec<(PathBuf, DateTime<Utc>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let at = taken_at(e.file_name().to_str()?)?;
            Some((e.path(), at))
        })
        .collect();
    out.sort_by_key(|(_, at)| *at);
    out
}

/// How long to wait before the next backup: none taken yet, or the newest older than
/// `every`, means now; after a failure, not before `RETRY` (or `every`) has passed.
pub fn next_in(
    now: DateTime<Utc>,
    newest: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
    every: Duration,
) -> Duration {
    let due = newest.map_or(now, |n| n + every);
    let retry = last_failure.map_or(now, |f| f + every.min(RETRY));
    let at = due.max(retry);
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// The backups to delete so that the newest `keep` remain (`list` order: oldest first).
pub fn to_prune(backups: &[(PathBuf, DateTime<Utc>)], keep: usize) -> Vec<PathBuf> {
    let excess = backups.len().saturating_sub(keep);
    backups[..excess].iter().map(|(p, _)| p.clone()).collect()
}

/// Takes one scheduled backup and prunes the old ones; returns the new file.
pub async fn run_once(
    storage: &Storage,
    source: &Source,
    schedule: &Schedule,
) -> Result<PathBuf, BackupError> {
    let target = schedule.dir.join(file_name(&source.node, Utc::now()));
    let mut src = source.clone();
    src.recordings = schedule.recordings;
    let manifest = create(storage, &src, &target).await?;
    tracing::info!(
        file = %target.display(),
        calls = manifest.contents.calls,
        files = manifest.files.len(),
        "scheduled backup taken"
    );
    for old in to_prune(&list(&schedule.dir), schedule.keep) {
        match std::fs::remove_file(&old) {
            Ok(()) => tracing::info!(file = %old.display(), "old backup deleted (retention)"),
            Err(e) => {
                tracing::warn!(file = %old.display(), error = %e, "old backup not deleted")
            }
        }
    }
    Ok(target)
}

/// Starts the `[backup]` schedule of `config`, if it has one.
pub fn spawn(
    config: &crate::config::EngineConfig,
    storage: Storage,
    active: watch::Receiver<bool>,
    alarms: crate::alarm::AlarmHandle,
) -> Option<tokio::task::JoinHandle<()>> {
    let schedule = config.backup.schedule(&config.data_dir)?;
    let source = Source {
        node: config.node_name.clone(),
        data_dir: config.data_dir.clone(),
        recordings_dir: config.recording.settings(&config.data_dir).dir,
        recordings: schedule.recordings,
    };
    tracing::info!(dir = %schedule.dir.display(), every = ?schedule.every, keep = schedule.keep, "backup schedule (runs on the active node)");
    let dir = schedule.dir.display().to_string();
    let report = move |r: &Result<PathBuf, BackupError>| {
        use crate::alarm::{AlarmKind, Condition, Severity};
        let seen = match r {
            Ok(_) => Vec::new(),
            Err(e) => vec![Condition {
                kind: AlarmKind::BackupFailed,
                subject: dir.clone(),
                severity: Severity::Minor,
                message: format!("the scheduled backup failed: {e}"),
            }],
        };
        alarms.report("backup", seen);
    };
    Some(tokio::spawn(run(storage, source, schedule, active, report)))
}

/// Runs the schedule while the process lives: only while `active` is true.
pub async fn run(
    storage: Storage,
    source: Source,
    schedule: Schedule,
    mut active: watch::Receiver<bool>,
    report: impl Fn(&Result<PathBuf, BackupError>) + Send + 'static,
) {
    let mut last_failure = None;
    loop {
        while !*active.borrow_and_update() {
            if active.changed().await.is_err() {
                return;
            }
        }
        let newest = list(&schedule.dir).last().map(|(_, at)| *at);
        let wait = next_in(Utc::now(), newest, last_failure, schedule.every);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = active.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        if !*active.borrow() {
            continue;
        }
        let result = run_once(&storage, &source, &schedule).await;
        match &result {
            Ok(_) => last_failure = None,
            Err(e) => {
                tracing::error!(dir = %schedule.dir.display(), error = %e, "scheduled backup failed");
                last_failure = Some(Utc::now());
            }
        }
        report(&result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::utc as t;

    #[test]
    fn names_carry_the_time_and_a_safe_node_name() {
        let at = t("2026-12-07T10:15:00Z");
        let name = file_name("node a/../x", at);
        assert_eq!(name, "svi-backup-node_a____x-20261207T101500Z.tar");
        assert_eq!(taken_at(&name), Some(at));
        assert_eq!(taken_at("svi-backup-n-20261207T101500Z.tar.partial"), None);
        assert_eq!(taken_at("mine.tar"), None);
    }

    #[test]
    fn due_at_once_without_a_recent_backup_and_never_in_a_loop_after_a_failure() {
        let every = Duration::from_secs(72 * 3600);
        let now = t("2026-12-07T10:00:00Z");
        assert_eq!(next_in(now, None, None, every), Duration::ZERO);
        assert_eq!(
            next_in(now, Some(t("2026-12-01T00:00:00Z")), None, every),
            Duration::ZERO
        );
        assert_eq!(
            next_in(now, Some(t("2026-12-06T10:00:00Z")), None, every),
            Duration::from_secs(48 * 3600)
        );
        // Failed a minute ago: the next try waits for the retry pause.
        assert_eq!(
            next_in(now, None, Some(t("2026-12-07T09:59:00Z")), every),
            RETRY - Duration::from_secs(60)
        );
        // A schedule shorter than the retry pause keeps its own pace.
        let short = Duration::from_secs(600);
        assert_eq!(
            next_in(now, None, Some(t("2026-12-07T09:59:00Z")), short),
            Duration::from_secs(540)
        );
    }

    #[test]
    fn keeps_the_newest_and_ignores_other_files() {
        let dir = tempfile::tempdir().expect("tmp");
        for (i, day) in ["01", "03", "02", "04"].iter().enumerate() {
            let at = t(&format!("2026-12-{day}T00:00:00Z"));
            std::fs::write(dir.path().join(file_name(&format!("n{i}"), at)), b"x").expect("w");
        }
        std::fs::write(dir.path().join("by-hand.tar"), b"x").expect("w");
        let all = list(dir.path());
        assert_eq!(all.len(), 4);
        let gone: Vec<String> = to_prune(&all, 2)
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        assert_eq!(
            gone,
            vec![
                "svi-backup-n0-20261201T000000Z.tar",
                "svi-backup-n2-20261202T000000Z.tar"
            ]
        );
        assert!(to_prune(&all, 10).is_empty());
    }
}
