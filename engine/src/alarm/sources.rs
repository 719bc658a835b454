//! The engine's own alarm sources, checked every `PERIOD`: the recording disk against its
//! guard, recordings refused or cut, and the certificates named in `[alarms]`. Each check is
//! a pure function of what was read, so it is tested without a disk to fill or a clock to
//! wait for. (Trunk registrations report from the trunk task, the HA pair from `ha`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::{AlarmKind, Condition, Severity};
use super::AlarmHandle;
use crate::recording::RecordingAlarms;

/// How often the sources are read.
pub const PERIOD: Duration = Duration::from_secs(15);
/// How long `recording_failure` stays raised after the last refused or cut recording.
pub const RECORDING_HOLD: Duration = Duration::from_secs(15 * 60);

/// Free space below the guard: no recording starts (and the database disk is at risk).
pub fn disk_condition(dir: &Path, free: u64, min_free: u64) -> Option<Condition> {
    (free < min_free).then(|| Condition {
        kind: AlarmKind::DiskLow,
        subject: dir.display().to_string(),
        severity: Severity::Critical,
        message: format!(
            "{} MiB free on the recording disk, below the guard of {} MiB: recordings are refused",
            free >> 20,
            min_free >> 20
        ),
    })
}

/// Tracks the recording counters between two reads.
#[derive(Debug, Default)]
pub struct RecordingWatch {
    last: RecordingAlarms,
    last_failure: Option<DateTime<Utc>>,
    recent: RecordingAlarms,
}

impl RecordingWatch {
    /// Feeds the counters read at `now`; returns the condition to report.
    pub fn update(&mut self, now: DateTime<Utc>, counters: RecordingAlarms) -> Option<Condition> {
        if counters.total() > self.last.total() {
            if self.last_failure.is_none_or(|t| now - t > hold()) {
                self.recent = RecordingAlarms::default();
            }
            self.recent.disk_guard_refusals +=
                counters.disk_guard_refusals - self.last.disk_guard_refusals;
            self.recent.disk_guard_stops += counters.disk_guard_stops - self.last.disk_guard_stops;
            self.recent.write_failures += counters.write_failures - self.last.write_failures;
            self.last_failure = Some(now);
        }
        self.last = counters;
        let since = self.last_failure.filter(|t| now - *t <= hold())?;
        let r = self.recent;
        Some(Condition {
            kind: AlarmKind::RecordingFailure,
            subject: "recordings".into(),
            severity: Severity::Minor,
            message: format!(
                "{} recordings refused or cut (disk guard: {} refused, {} stopped; write failures: {}), the last at {}",
                r.total(),
                r.disk_guard_refusals,
                r.disk_guard_stops,
                r.write_failures,
                since.to_rfc3339()
            ),
        })
    }
}

fn hold() -> chrono::Duration {
    chrono::Duration::from_std(RECORDING_HOLD).unwrap_or_else(|_| chrono::Duration::minutes(15))
}

/// A certificate expiring within `warn_days` (warning), or expired (critical); an unreadable
/// file is a warning too (the check cannot be done).
pub fn certificate_condition(
    path: &Path,
    read: Result<DateTime<Utc>, String>,
    now: DateTime<Utc>,
    warn_days: u32,
) -> Option<Condition> {
    let subject = path.display().to_string();
    let not_after = match read {
        Ok(t) => t,
        Err(e) => {
            return Some(Condition {
                kind: AlarmKind::CertificateExpiry,
                subject,
                severity: Severity::Warning,
                message: format!("cannot read the certificate's expiry: {e}"),
            })
        }
    };
    let left = not_after - now;
    if left <= chrono::Duration::zero() {
        return Some(Condition {
            kind: AlarmKind::CertificateExpiry,
            subject,
            severity: Severity::Critical,
            message: format!("the certificate expired on {}", not_after.to_rfc3339()),
        });
    }
    (left <= chrono::Duration::days(i64::from(warn_days))).then(|| Condition {
        kind: AlarmKind::CertificateExpiry,
        subject,
        severity: Severity::Warning,
        message: format!(
            "the certificate expires on {} (in {} days)",
            not_after.to_rfc3339(),
            left.num_days()
        ),
    })
}

/// What the engine's sources read.
#[derive(Debug, Clone)]
pub struct Watched {
    pub recordings_dir: PathBuf,
    pub min_free: u64,
    pub certificates: Vec<PathBuf>,
    pub warn_days: u32,
}

impl Watched {
    pub fn of(config: &crate::config::EngineConfig) -> Watched {
        let rec = config.recording.settings(&config.data_dir);
        Watched {
            recordings_dir: rec.dir,
            min_free: rec.min_free_bytes,
            certificates: config.alarms.certificates.clone(),
            warn_days: config.alarms.certificate_warning_days,
        }
    }
}

/// Reads the sources every `PERIOD` and reports them, until the task is aborted.
pub async fn run(watched: Watched, alarms: AlarmHandle) {
    let mut recordings = RecordingWatch::default();
    let mut every = tokio::time::interval(PERIOD);
    loop {
        every.tick().await;
        let now = Utc::now();
        let dir = watched.recordings_dir.clone();
        // The recordings directory appears with the first recording: until then, the disk
        // it will be on (its nearest existing parent).
        let free = tokio::task::spawn_blocking(move || {
            dir.ancestors()
                .find(|d| d.is_dir())
                .map(crate::recording::free_bytes)
        })
        .await
        .ok()
        .flatten()
        .and_then(Result::ok);
        let mut seen: Vec<Condition> = free
            .and_then(|f| disk_condition(&watched.recordings_dir, f, watched.min_free))
            .into_iter()
            .collect();
        seen.extend(recordings.update(now, crate::recording::alarms()));
        alarms.report("recordings", seen);

        let mut certs = Vec::new();
        for path in &watched.certificates {
            let read = match tokio::fs::read(path).await {
                Ok(pem) => super::cert::earliest_not_after(&pem).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            certs.extend(certificate_condition(path, read, now, watched.warn_days));
        }
        alarms.report("certificates", certs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::utc as t;

    #[test]
    fn the_disk_guard_raises_below_its_minimum_only() {
        let d = Path::new("/var/lib/svi/recordings");
        assert_eq!(disk_condition(d, 600 << 20, 500 << 20), None);
        let c = disk_condition(d, 100 << 20, 500 << 20).expect("low");
        assert_eq!(
            (c.kind, c.severity),
            (AlarmKind::DiskLow, Severity::Critical)
        );
        assert!(c.message.starts_with("100 MiB free"), "{}", c.message);
    }

    #[test]
    fn recording_failures_hold_for_a_while_then_clear() {
        let mut w = RecordingWatch::default();
        let zero = RecordingAlarms::default();
        assert_eq!(w.update(t("2026-12-07T10:00:00Z"), zero), None);
        let one = RecordingAlarms {
            write_failures: 1,
            ..zero
        };
        let c = w.update(t("2026-12-07T10:00:15Z"), one).expect("raised");
        assert!(
            c.message.starts_with("1 recordings refused or cut"),
            "{}",
            c.message
        );
        // Still within the hold, no new failure: still raised.
        assert!(w.update(t("2026-12-07T10:10:00Z"), one).is_some());
        // Past the hold: cleared.
        assert_eq!(w.update(t("2026-12-07T10:16:00Z"), one), None);
        // A new failure later counts from zero again.
        let two = RecordingAlarms {
            write_failures: 1,
            disk_guard_refusals: 1,
            ..zero
        };
        let c = w
            .update(t("2026-12-07T11:00:00Z"), two)
            .expect("raised again");
        assert!(c.message.contains("disk guard: 1 refused"), "{}", c.message);
        assert!(c.message.starts_with("1 recordings"), "{}", c.message);
    }

    #[test]
    fn certificates_warn_within_the_period_and_are_critical_once_expired() {
        let p = Path::new("/etc/svi/tls/cert.pem");
        let now = t("2026-12-07T10:00:00Z");
        let after = |s: &str| Ok(t(s));
        assert_eq!(
            certificate_condition(p, after("2027-02-01T00:00:00Z"), now, 30),
            None
        );
        let c = certificate_condition(p, after("2026-12-20T00:00:00Z"), now, 30).expect("soon");
        assert_eq!(c.severity, Severity::Warning);
        assert!(c.message.contains("in 12 days"), "{}", c.message);
        let c = certificate_condition(p, after("2026-12-01T00:00:00Z"), now, 30).expect("expired");
        assert_eq!(c.severity, Severity::Critical);
        let c = certificate_condition(p, Err("no such file".into()), now, 30).expect("unreadable");
        assert!(c.message.contains("no such file"), "{}", c.message);
    }
}
