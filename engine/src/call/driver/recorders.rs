//! The driver's recorders: the bridge's recording (a stereo file fed by taps on both
//! streams) and a `record` step's message (the caller's audio, kept in memory, written
//! once).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{now, Capture, Driver, RECORD_TAP_CAPACITY};
use crate::call::core::{MessageOut, RecordedFile, RecordingOut, SavedMessage, StreamId};
use crate::call::message::{Message, TAP_CAPACITY};
use crate::media::Link;
use crate::recording::{Recorder, RecordingError};
use crate::storage::CallRecord;

impl Driver {
    pub(super) async fn recording(&mut self, out: RecordingOut) {
        match out {
            RecordingOut::Start {
                left,
                right,
                journal,
            } => {
                let started = self.start_recording(left, right, *journal).await;
                self.core.handle_recording_started(now(), started);
            }
            RecordingOut::Pause => {
                if let Some(r) = &self.recorder {
                    r.pause();
                }
            }
            RecordingOut::Resume => {
                if let Some(r) = &self.recorder {
                    r.resume();
                }
            }
            RecordingOut::Stop => {
                let file = self.stop_recording().await;
                self.core.handle_recording_finished(now(), file);
            }
        }
    }

    /// Taps both streams into a recorder: the caller left, the second party right.
    async fn start_recording(
        &mut self,
        left: StreamId,
        right: StreamId,
        journal: CallRecord,
    ) -> Result<String, String> {
        let settings = self
            .ctx
            .config
            .recording
            .settings(&self.ctx.config.data_dir);
        let (left_tx, left_rx) = mpsc::channel(RECORD_TAP_CAPACITY);
        let (right_tx, right_rx) = mpsc::channel(RECORD_TAP_CAPACITY);
        let tapped = match (self.streams.get(&left), self.streams.get(&right)) {
            (Some(l), Some(r)) => {
                l.port.add_tap(Link::Record, left_tx).is_ok()
                    && r.port.add_tap(Link::Record, right_tx).is_ok()
            }
            _ => false,
        };
        if !tapped {
            self.remove_record_taps();
            return Err("the bridge's streams are gone".into());
        }
        let journal = serde_json::to_value(journal).unwrap_or(serde_json::Value::Null);
        let id = self.core.id().to_string();
        match Recorder::start(settings, &id, journal, left_rx, right_rx).await {
            Ok(handle) => {
                let file = handle.path().display().to_string();
                tracing::info!(call = %id, %file, "recording file opened");
                self.recorder = Some(handle);
                Ok(file)
            }
            Err(e) => {
                self.remove_record_taps();
                Err(e.to_string())
            }
        }
    }

    fn remove_record_taps(&self) {
        for s in self.streams.values() {
            let _ = s.port.remove_tap(Link::Record);
        }
    }

    /// Completes the recording: the file is finished and hashed. A recording cut short
    /// (disk full, read-only) keeps what was written.
    async fn stop_recording(&mut self) -> Option<RecordedFile> {
        let handle = self.recorder.take()?;
        self.remove_record_taps();
        let info = match handle.finish().await {
            Ok(info) => Some(info),
            Err(RecordingError::Interrupted { source, partial }) => {
                tracing::warn!(call = %self.core.id(), error = %source, "the recording was cut short");
                partial
            }
            Err(e) => {
                tracing::error!(call = %self.core.id(), error = %e, "the recording is lost");
                None
            }
        };
        info.map(|i| RecordedFile {
            path: i.path.display().to_string(),
            sha256: i.sha256,
            duration_ms: i.duration.as_millis() as u64,
        })
    }

    pub(super) async fn message(&mut self, out: MessageOut) {
        match out {
            MessageOut::Start {
                stream,
                path,
                max_length,
            } => {
                let (tx, rx) = mpsc::channel(TAP_CAPACITY);
                let tapped = self
                    .streams
                    .get(&stream)
                    .is_some_and(|s| s.port.add_tap(Link::Relay, tx).is_ok());
                let mut message = Message::new(path, max_length)
                    .with_disk_guard(self.ctx.config.recording.min_free_bytes);
                message.started = Some(Instant::now());
                self.capture = Some(Capture {
                    stream,
                    message,
                    frames: tapped.then_some(rx),
                });
            }
            MessageOut::Save => {
                let Some(mut capture) = self.capture.take() else {
                    return;
                };
                if let Some(s) = self.streams.get(&capture.stream) {
                    let _ = s.port.remove_tap(Link::Relay);
                }
                if let Some(mut frames) = capture.frames.take() {
                    while let Ok(f) = frames.try_recv() {
                        capture.message.push(&f);
                    }
                }
                capture
                    .message
                    .pad_to(Instant::now(), Duration::from_millis(20));
                let saved = capture
                    .message
                    .save()
                    .await
                    .map(|(path, duration)| SavedMessage { path, duration });
                self.core.handle_message_saved(now(), saved);
            }
        }
    }
}
