//! The recorder in virtual time with real files: tokio's paused clock jumps from one timer to
//! the next (and waits while blocking file jobs run), so nothing sleeps for real.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::AtomicU64;

use serde_json::json;

use super::*;
use crate::recording::journal::journal_path;
use crate::recording::wav::sha256_file;

const FRAME: Duration = Duration::from_millis(20);

fn settings(dir: &Path) -> RecordingSettings {
    RecordingSettings {
        flush_every: Duration::from_millis(500),
        min_free_bytes: 0,
        ..RecordingSettings::new(dir)
    }
}

/// The two taps of a call.
struct Taps {
    left: mpsc::Sender<Vec<i16>>,
    right: mpsc::Sender<Vec<i16>>,
}

fn taps() -> (Taps, mpsc::Receiver<Vec<i16>>, mpsc::Receiver<Vec<i16>>) {
    let (left, left_rx) = mpsc::channel(50);
    let (right, right_rx) = mpsc::channel(50);
    (Taps { left, right }, left_rx, right_rx)
}

impl Taps {
    /// `frames` frames on each channel, one every 20 ms (virtual); a closed tap is skipped.
    async fn talk(&self, frames: usize, left: i16, right: i16) {
        for _ in 0..frames {
            let _ = self.left.send(vec![left; 160]).await;
            let _ = self.right.send(vec![right; 160]).await;
            tokio::time::sleep(FRAME).await;
        }
    }
}

/// Interleaved samples of a WAV file, read by hound.
fn samples(path: &Path) -> Vec<i16> {
    let reader = hound::WavReader::open(path).expect("hound reads the recording");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("every sample reads")
}

/// Runs of equal values: (value, length).
fn runs(values: impl IntoIterator<Item = i16>) -> Vec<(i16, usize)> {
    let mut runs: Vec<(i16, usize)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => runs.push((v, 1)),
        }
    }
    runs
}

#[tokio::test(start_paused = true)]
async fn records_both_channels_aligned_and_removes_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (taps, left, right) = taps();
    let journal = json!({"call": "r1", "queue": "sales"});
    let handle = Recorder::start(settings(dir.path()), "r1", journal.clone(), left, right)
        .await
        .expect("recording starts");
    let journal_file = journal_path(dir.path(), "r1");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_file).expect("journal written"))
            .expect("journal is JSON");
    assert_eq!(written, journal);

    taps.talk(100, 1000, -1000).await;
    let info = handle.finish().await.expect("finished");
    assert_eq!(info.duration, Duration::from_secs(2));
    assert_eq!(info.paused, Duration::ZERO);
    let all = samples(&info.path);
    assert_eq!(runs(all.iter().step_by(2).copied()), vec![(1000, 16_000)]);
    assert_eq!(
        runs(all.iter().skip(1).step_by(2).copied()),
        vec![(-1000, 16_000)]
    );
    let (sha, bytes) = sha256_file(&info.path).expect("hash");
    assert_eq!((sha, bytes), (info.sha256.clone(), info.bytes));
    assert!(!journal_file.exists(), "finish removes the journal");
}

#[tokio::test(start_paused = true)]
async fn pause_writes_silence_for_both_channels_and_time_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (taps, left, right) = taps();
    let handle = Recorder::start(settings(dir.path()), "p1", json!({}), left, right)
        .await
        .expect("recording starts");
    taps.talk(50, 1000, -1000).await;
    handle.pause();
    tokio::task::yield_now().await;
    // The card number: never on disk.
    taps.talk(50, 4242, 4242).await;
    handle.resume();
    tokio::task::yield_now().await;
    taps.talk(50, 1000, -1000).await;
    let info = handle.finish().await.expect("finished");
    assert_eq!(info.duration, Duration::from_secs(3));
    assert_eq!(info.paused, Duration::from_secs(1));
    let all = samples(&info.path);
    let expected = |level: i16| vec![(level, 8000), (0, 8000), (level, 8000)];
    assert_eq!(runs(all.iter().step_by(2).copied()), expected(1000));
    assert_eq!(
        runs(all.iter().skip(1).step_by(2).copied()),
        expected(-1000)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unwritable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // Root ignores permissions: then use sysfs, where nobody creates files.
    let target = if std::fs::write(locked.join("probe"), b"").is_err() {
        locked.clone()
    } else if Path::new("/sys/kernel").is_dir() {
        PathBuf::from("/sys")
    } else {
        return;
    };
    let (_taps, left, right) = taps();
    let error = Recorder::start(settings(&target), "ro", json!({}), left, right)
        .await
        .expect_err("nothing can be written there");
    let text = error.to_string();
    assert!(matches!(error, RecordingError::Io { .. }), "{text}");
    assert!(text.contains("ro.wav"), "names the file: {text}");
    assert!(!target.join("ro.json").exists());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(start_paused = true)]
async fn the_disk_guard_refuses_to_start_with_an_alarm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_taps, left, right) = taps();
    let before = crate::recording::alarms().disk_guard_refusals;
    let guarded = RecordingSettings {
        min_free_bytes: u64::MAX,
        ..settings(dir.path())
    };
    let error = Recorder::start(guarded, "g1", json!({}), left, right)
        .await
        .expect_err("no disk has that much free space");
    assert!(
        matches!(error, RecordingError::DiskGuard { min: u64::MAX, .. }),
        "{error}"
    );
    assert!(crate::recording::alarms().disk_guard_refusals > before);
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "no file created"
    );
}

#[tokio::test(start_paused = true)]
async fn crossing_the_disk_guard_stops_cleanly_and_keeps_the_audio() {
    let dir = tempfile::tempdir().expect("temp dir");
    let free = Arc::new(AtomicU64::new(u64::MAX));
    let probe = {
        let free = Arc::clone(&free);
        Arc::new(move |_: &Path| Ok(free.load(Ordering::Relaxed))) as FreeSpace
    };
    let (taps, left, right) = taps();
    let guarded = RecordingSettings {
        min_free_bytes: 1_000_000,
        ..settings(dir.path())
    };
    let before = crate::recording::alarms().disk_guard_stops;
    let handle = Recorder::start_with(guarded, "g2", json!({}), left, right, probe)
        .await
        .expect("recording starts");
    taps.talk(50, 1000, -1000).await;
    free.store(10, Ordering::Relaxed);
    taps.talk(50, 1000, -1000).await;
    assert!(
        taps.left.is_closed(),
        "the tap is released once the recording stops"
    );
    assert!(crate::recording::alarms().disk_guard_stops > before);

    let error = handle.finish().await.expect_err("stopped early");
    let RecordingError::Interrupted { source, partial } = error else {
        panic!("not interrupted: {error}");
    };
    assert!(matches!(
        *source,
        RecordingError::DiskGuard { free: 10, .. }
    ));
    let partial = partial.expect("the audio before the stop is saved");
    assert!(
        partial.duration >= Duration::from_millis(900)
            && partial.duration <= Duration::from_millis(1600),
        "{:?}",
        partial.duration
    );
    let all = samples(&partial.path);
    assert_eq!(all.len() as u64, partial.duration.as_millis() as u64 * 16);
    assert!(all.iter().step_by(2).all(|&s| s == 1000));
    assert!(!journal_path(dir.path(), "g2").exists());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_completes_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (taps, left, right) = taps();
    let handle = Recorder::start(settings(dir.path()), "d1", json!({}), left, right)
        .await
        .expect("recording starts");
    taps.talk(25, 7, -7).await;
    let path = handle.path().to_owned();
    drop(handle);
    let journal = journal_path(dir.path(), "d1");
    for _ in 0..100 {
        if !journal.exists() {
            break;
        }
        tokio::time::sleep(FRAME).await;
    }
    assert!(!journal.exists(), "the task ended the recording");
    let all = samples(&path);
    assert_eq!(all.len(), 2 * 4000);
}

#[tokio::test(start_paused = true)]
async fn ids_that_are_not_file_names_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_taps, left, right) = taps();
    let error = Recorder::start(settings(dir.path()), "../escape", json!({}), left, right)
        .await
        .expect_err("refused");
    assert!(matches!(error, RecordingError::InvalidId(_)));
}
