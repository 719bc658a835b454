//! The recorder of one call: a task reading two legs' taps into a stereo WAV file.
//!
//! The task owns the [`Timeline`] (the sans-IO core) and is its thin driver: it pushes each
//! frame as it arrives, advances the timeline every 20 ms, and every `flush_every` hands the
//! accumulated samples and the [`WavWriter`] to one job on tokio's blocking pool, which
//! writes, syncs, checks the free space and hands the writer back. While a job runs, frames
//! keep being read into the next batch, so a slow disk delays the file, never the taps. No
//! thread is held per recording: a thousand recordings are a thousand idle tasks plus a
//! short blocking job each every two seconds.
//!
//! A failed write (read-only directory, disk full) or free space falling below the guard
//! ends the recording, never the call: the error is logged at error level with the file and
//! the OS error, counted in [`super::alarms`], the file is closed as well as it can be (its
//! header repaired), and the taps' receivers are closed so the media workers drop the taps.
//! `finish` then returns [`RecordingError::Interrupted`] with the partial recording.
//!
//! Dropping the [`RecorderHandle`] without `finish` ends the recording the same way as
//! `finish` (file completed, journal removed); only a crash of the process leaves a journal.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::journal::{remove_journal, wav_path, write_journal};
use super::timeline::{Channel, Timeline};
use super::wav::{repair_wav, WavWriter};
use super::{
    check_id, disk, RecordingError, RecordingInfo, RecordingSettings, DISK_GUARD_STOPS,
    WRITE_FAILURES,
};

/// How often the timeline is advanced: one media frame.
const TICK: Duration = Duration::from_millis(20);

/// Reads the free space of a directory (statvfs, or a test's stand-in).
type FreeSpace = Arc<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

/// Starts recordings.
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Starts recording `id` into `<dir>/<id>.wav`: caller frames on `left`, agent (or
    /// engine) frames on `right`, both 8 kHz mono 20 ms frames as the media taps deliver
    /// them. Writes the `journal` (the call's partial record) beside it first.
    ///
    /// Refuses with [`RecordingError::DiskGuard`] (and an alarm) when the free space is below
    /// `min_free_bytes`, with [`RecordingError::Io`] when the directory cannot be written,
    /// and with [`RecordingError::InvalidId`] for an id that is not a plain file name. The
    /// file work runs on the blocking pool; the recording starts at the time of the call.
    pub async fn start(
        settings: RecordingSettings,
        id: &str,
        journal: serde_json::Value,
        left: mpsc::Receiver<Vec<i16>>,
        right: mpsc::Receiver<Vec<i16>>,
    ) -> Result<RecorderHandle, RecordingError> {
        Self::start_with(
            settings,
            id,
            journal,
            left,
            right,
            Arc::new(|dir: &Path| disk::free_bytes(dir)),
        )
        .await
    }

    async fn start_with(
        settings: RecordingSettings,
        id: &str,
        journal: serde_json::Value,
        left: mpsc::Receiver<Vec<i16>>,
        right: mpsc::Receiver<Vec<i16>>,
        free_space: FreeSpace,
    ) -> Result<RecorderHandle, RecordingError> {
        check_id(id)?;
        let start = tokio::time::Instant::now().into_std();
        let job = {
            let settings = settings.clone();
            let id = id.to_owned();
            let free_space = Arc::clone(&free_space);
            move || open(&settings, &id, &journal, &free_space)
        };
        let writer = tokio::task::spawn_blocking(job)
            .await
            .map_err(|_| RecordingError::TaskGone)??;
        let path = writer.path().to_owned();
        tracing::info!(path = %path.display(), "recording started");
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let task = Task {
            id: id.to_owned(),
            path: path.clone(),
            settings,
            free_space,
            timeline: Timeline::new(start),
            writer: Some(writer),
            pending: Vec::new(),
            stopped: None,
        };
        let join = tokio::spawn(task.run(start, left, right, commands));
        Ok(RecorderHandle {
            commands: commands_tx,
            path,
            _task: join,
        })
    }
}

/// Guard, WAV, journal: blocking, on the pool.
fn open(
    settings: &RecordingSettings,
    id: &str,
    journal: &serde_json::Value,
    free_space: &FreeSpace,
) -> Result<WavWriter, RecordingError> {
    let dir = &settings.dir;
    std::fs::create_dir_all(dir).map_err(|e| RecordingError::io(dir, e))?;
    disk::guard_with(
        dir,
        settings.min_free_bytes,
        "recording",
        free_space.as_ref(),
    )?;
    let path = wav_path(dir, id);
    let writer = WavWriter::create(&path, settings.flush_every)?;
    if let Err(error) = write_journal(dir, id, journal) {
        // Without a journal a crash would lose the call: no recording then.
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    Ok(writer)
}

enum Command {
    Pause,
    Resume,
    Finish(oneshot::Sender<Result<RecordingInfo, RecordingError>>),
}

/// The running recording of a call.
#[derive(Debug)]
pub struct RecorderHandle {
    commands: mpsc::UnboundedSender<Command>,
    path: PathBuf,
    // Not awaited: the task reports through `finish`, and ends by itself on drop.
    _task: JoinHandle<()>,
}

impl RecorderHandle {
    /// The WAV file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Pauses: silence on both channels from now until `resume` (card numbers).
    pub fn pause(&self) {
        // A recorder that already stopped has nothing to pause.
        let _ = self.commands.send(Command::Pause);
    }

    /// Resumes after `pause`.
    pub fn resume(&self) {
        let _ = self.commands.send(Command::Resume);
    }

    /// Ends the recording now: the last audio, the final header, fsync, the SHA-256; the
    /// journal is removed. If the recording had stopped early (write failure, disk guard)
    /// the result is [`RecordingError::Interrupted`], carrying the partial recording when
    /// its file could be closed; the journal is removed then too, since the call itself
    /// ended normally.
    pub async fn finish(self) -> Result<RecordingInfo, RecordingError> {
        let (reply, result) = oneshot::channel();
        self.commands
            .send(Command::Finish(reply))
            .map_err(|_| RecordingError::TaskGone)?;
        result.await.map_err(|_| RecordingError::TaskGone)?
    }
}

/// A flush job's outcome.
enum Flushed {
    /// Written; the writer comes back for the next one.
    Written(WavWriter),
    /// Written, but free space fell below the guard: the recording stops, and the still
    /// usable writer completes the file.
    LowDisk {
        error: RecordingError,
        writer: WavWriter,
    },
    /// The write failed: the recording stops, the file is repaired from what reached it.
    Failed(RecordingError),
}

struct Task {
    id: String,
    path: PathBuf,
    settings: RecordingSettings,
    free_space: FreeSpace,
    timeline: Timeline,
    /// `None` while a flush job holds it, or once the recording stopped.
    writer: Option<WavWriter>,
    /// Samples for the next flush.
    pending: Vec<i16>,
    /// Why the recording stopped early, and what was saved.
    stopped: Option<(RecordingError, Option<RecordingInfo>)>,
}

impl Task {
    async fn run(
        mut self,
        start: Instant,
        mut left: mpsc::Receiver<Vec<i16>>,
        mut right: mpsc::Receiver<Vec<i16>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_flush = start + self.settings.flush_every;
        let mut flushing: Option<JoinHandle<Flushed>> = None;
        let (mut left_open, mut right_open) = (true, true);
        let reply = loop {
            let recording = self.stopped.is_none();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Pause) => self.timeline.pause(now()),
                    Some(Command::Resume) => self.timeline.resume(now()),
                    Some(Command::Finish(reply)) => break Some(reply),
                    None => break None,
                },
                frame = left.recv(), if recording && left_open => match frame {
                    Some(pcm) => self.timeline.push(Channel::Left, &pcm, now()),
                    // The tap was removed: the channel goes on as silence.
                    None => left_open = false,
                },
                frame = right.recv(), if recording && right_open => match frame {
                    Some(pcm) => self.timeline.push(Channel::Right, &pcm, now()),
                    None => right_open = false,
                },
                _ = ticks.tick(), if recording => {
                    let now = now();
                    self.timeline.advance(now, &mut self.pending);
                    if now >= next_flush {
                        if let Some(writer) = self.writer.take() {
                            next_flush = now + self.settings.flush_every;
                            flushing = Some(self.flush_job(writer));
                        }
                    }
                }
                flushed = wait(&mut flushing), if flushing.is_some() => {
                    flushing = None;
                    self.flushed(flushed).await;
                    if self.stopped.is_some() {
                        // The media workers see the taps closed and drop them.
                        left.close();
                        right.close();
                    }
                }
            }
        };
        if flushing.is_some() {
            let flushed = wait(&mut flushing).await;
            self.flushed(flushed).await;
        }
        let result = self.finish(now()).await;
        match reply {
            Some(reply) => {
                // The caller may have given up waiting: the result is logged anyway.
                let _ = reply.send(result);
            }
            None => {
                if let Err(error) = result {
                    tracing::debug!(path = %self.path.display(), %error, "recording ended without finish");
                }
            }
        }
    }

    /// Writes the pending samples and checks the free space, on the blocking pool.
    fn flush_job(&mut self, mut writer: WavWriter) -> JoinHandle<Flushed> {
        let samples = std::mem::take(&mut self.pending);
        let free_space = Arc::clone(&self.free_space);
        let dir = self.settings.dir.clone();
        let min = self.settings.min_free_bytes;
        tokio::task::spawn_blocking(move || {
            if let Err(error) = writer.write(&samples).and_then(|()| writer.flush()) {
                return Flushed::Failed(error);
            }
            match free_space(&dir) {
                Ok(free) if free < min => Flushed::LowDisk {
                    error: RecordingError::DiskGuard { free, min },
                    writer,
                },
                _ => Flushed::Written(writer),
            }
        })
    }

    /// Takes a flush job's outcome; on failure, stops the recording and closes the file.
    async fn flushed(&mut self, flushed: Flushed) {
        let (error, writer) = match flushed {
            Flushed::Written(writer) => {
                self.writer = Some(writer);
                return;
            }
            Flushed::LowDisk { error, writer } => (error, Some(writer)),
            Flushed::Failed(error) => (error, None),
        };
        match &error {
            RecordingError::DiskGuard { free, min } => {
                DISK_GUARD_STOPS.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    path = %self.path.display(),
                    free,
                    min,
                    "ALARM recording stopped: free space below the minimum"
                );
            }
            _ => {
                WRITE_FAILURES.fetch_add(1, Ordering::Relaxed);
                tracing::error!(path = %self.path.display(), %error, "ALARM recording stopped: write failed");
            }
        }
        let path = self.path.clone();
        let partial = blocking(move || match writer {
            Some(writer) => writer.finish(),
            None => repair_wav(&path),
        })
        .await;
        let partial = match partial {
            Ok(info) => Some(RecordingInfo {
                paused: self.timeline.paused(now()),
                ..info
            }),
            Err(close_error) => {
                tracing::error!(path = %self.path.display(), error = %close_error, "cannot close the interrupted recording");
                None
            }
        };
        self.pending = Vec::new();
        self.stopped = Some((error, partial));
    }

    /// Completes the file (or reports why it stopped) and removes the journal.
    async fn finish(&mut self, now: Instant) -> Result<RecordingInfo, RecordingError> {
        let result = match (self.stopped.take(), self.writer.take()) {
            (Some((error, partial)), _) => Err(RecordingError::Interrupted {
                source: Box::new(error),
                partial,
            }),
            (None, Some(mut writer)) => {
                let mut samples = std::mem::take(&mut self.pending);
                self.timeline.finish(now, &mut samples);
                let done = blocking(move || {
                    writer.write(&samples)?;
                    writer.finish()
                })
                .await;
                match done {
                    Ok(info) => Ok(RecordingInfo {
                        paused: self.timeline.paused(now),
                        ..info
                    }),
                    Err(error) => {
                        WRITE_FAILURES.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(path = %self.path.display(), %error, "ALARM recording end failed");
                        let path = self.path.clone();
                        let partial = blocking(move || repair_wav(&path)).await.ok();
                        Err(RecordingError::Interrupted {
                            source: Box::new(error),
                            partial,
                        })
                    }
                }
            }
            (None, None) => Err(RecordingError::TaskGone),
        };
        let dir = self.settings.dir.clone();
        let id = self.id.clone();
        if let Err(error) = blocking(move || remove_journal(&dir, &id)).await {
            tracing::error!(%error, "cannot remove the recording journal");
        }
        match &result {
            Ok(info) => tracing::info!(
                path = %info.path.display(),
                duration = ?info.duration,
                paused = ?info.paused,
                stats = ?self.timeline.stats(),
                "recording finished"
            ),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "recording ended early")
            }
        }
        result
    }
}

/// The awaited outcome of the flush job in flight (never called without one).
async fn wait(flushing: &mut Option<JoinHandle<Flushed>>) -> Flushed {
    match flushing.as_mut() {
        Some(job) => job.await.unwrap_or_else(|_| {
            // The job panicked: treated as a failed write.
            Flushed::Failed(RecordingError::TaskGone)
        }),
        None => std::future::pending().await,
    }
}

/// Runs blocking file work on the pool.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, RecordingError> + Send + 'static,
) -> Result<T, RecordingError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| RecordingError::TaskGone)?
}

/// The task's clock: tokio's, so that tests run in virtual time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests;
