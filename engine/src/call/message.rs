//! A message of a `record` step (not the call recording of `crate::recording`): the
//! caller's audio, collected by the driver from the media stream's inbound tap from the
//! moment the core starts the capture until it saves it (terminator key, maximum length or
//! hangup: the core decides), then written as an 8 kHz 16-bit mono WAV file. A message is
//! bounded by `max_length`, so it is kept in memory and written once, off the async threads.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

/// Frames buffered between the media worker and the call (5 s).
pub const TAP_CAPACITY: usize = 250;

pub struct Message {
    pub started: Option<Instant>,
    pub max_length: Duration,
    pub path: PathBuf,
    pcm: Vec<i16>,
    /// The disk guard: no message is written below this much free space.
    min_free_bytes: u64,
}

impl Message {
    pub fn new(path: PathBuf, max_length: Duration) -> Self {
        Message {
            started: None,
            max_length,
            path,
            pcm: Vec::new(),
            min_free_bytes: 0,
        }
    }

    /// Refuses to write the message when the disk holds less than `bytes` free (the guard
    /// recordings use, with the same alarm).
    pub fn with_disk_guard(mut self, bytes: u64) -> Self {
        self.min_free_bytes = bytes;
        self
    }

    fn max_samples(&self) -> usize {
        (self.max_length.as_millis() as usize).saturating_mul(8)
    }

    pub fn push(&mut self, frame: &[i16]) {
        let room = self.max_samples().saturating_sub(self.pcm.len());
        self.pcm.extend_from_slice(&frame[..frame.len().min(room)]);
    }

    /// Pads with silence up to the time elapsed since the start at `now`, less `slack`: a
    /// phone that stops sending (silence suppression, a lost burst) still yields a message
    /// as long as the caller spoke.
    pub fn pad_to(&mut self, now: Instant, slack: Duration) {
        let Some(start) = self.started else { return };
        let elapsed = now.saturating_duration_since(start).saturating_sub(slack);
        let target = ((elapsed.as_millis() as usize).saturating_mul(8)).min(self.max_samples());
        if target > self.pcm.len() {
            self.pcm.resize(target, 0);
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.pcm.len() as u64 / 8)
    }

    /// Writes the WAV file; returns its path and length.
    pub async fn save(self) -> Result<(PathBuf, Duration), String> {
        let duration = self.duration();
        let path = self.path.clone();
        let pcm = self.pcm;
        let min_free = self.min_free_bytes;
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                crate::recording::disk_guard(dir, min_free, "message")
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(&path, spec)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for s in pcm {
                w.write_sample(s)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            w.finalize().map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok((self.path, duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_and_written_as_wav() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut r = Message::new(dir.path().join("m/1.wav"), Duration::from_millis(100));
        for _ in 0..10 {
            r.push(&[1000; 160]);
        }
        assert_eq!(
            r.duration(),
            Duration::from_millis(100),
            "capped at max_length"
        );
        let (path, d) = r.save().await.expect("save");
        let wav = hound::WavReader::open(&path).expect("wav");
        assert_eq!(
            (wav.spec().sample_rate, wav.spec().channels, wav.duration()),
            (8000, 1, 800)
        );
        assert_eq!(d, Duration::from_millis(100));
    }

    #[tokio::test]
    async fn no_message_is_written_on_a_disk_below_the_guard() {
        let dir = tempfile::tempdir().expect("tmp");
        let before = crate::recording::alarms().disk_guard_refusals;
        let mut r = Message::new(dir.path().join("m/2.wav"), Duration::from_secs(1))
            .with_disk_guard(u64::MAX);
        r.push(&[1000; 160]);
        let e = r.save().await.expect_err("refused");
        assert!(e.contains("bytes free, below"), "{e}");
        assert!(!dir.path().join("m/2.wav").exists());
        assert!(
            crate::recording::alarms().disk_guard_refusals > before,
            "an alarm"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gaps_in_the_callers_audio_become_silence() {
        let mut r = Message::new(PathBuf::from("unused.wav"), Duration::from_secs(10));
        let t0 = Instant::now();
        r.started = Some(t0);
        r.push(&[500; 160]);
        r.pad_to(t0 + Duration::from_millis(1000), Duration::from_millis(40));
        assert_eq!(r.duration(), Duration::from_millis(960));
        r.push(&[500; 160]);
        assert_eq!(r.duration(), Duration::from_millis(980));
    }
}
