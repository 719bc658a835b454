//! The recording file: a canonical 44-byte-header WAV (8 kHz, 16-bit, stereo PCM), written
//! in place so that it is always playable.
//!
//! `hound` (used to read recordings back in tests) writes a zero data size until it is
//! finalized; a crash then leaves a file most players reject. This writer is plain `std::fs`:
//! audio is buffered in memory and, every `flush_every`, appended, the two sizes of the
//! header (RIFF and `data`) rewritten in place, and the file synced. Data goes first and the
//! header second, so after a crash the header is at most one interval stale and
//! [`repair_wav`] can always recompute it from the file length.
//!
//! All of this is blocking I/O: the recorder runs it on tokio's blocking pool.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{RecordingError, RecordingInfo};

/// Samples per second, per channel.
pub const SAMPLE_RATE: u32 = 8000;
/// Left: caller; right: agent or engine.
pub const CHANNELS: u16 = 2;
/// Bits per sample.
pub const BITS_PER_SAMPLE: u16 = 16;
/// Size of the header this writer produces; data follows at once.
pub const HEADER_LEN: u64 = 44;
/// Bytes of one stereo sample pair.
const BLOCK_ALIGN: u64 = CHANNELS as u64 * BITS_PER_SAMPLE as u64 / 8;
/// Largest data chunk whose RIFF size still fits in 32 bits, in whole sample pairs.
const MAX_DATA_LEN: u64 = (u32::MAX as u64 - (HEADER_LEN - 8)) / BLOCK_ALIGN * BLOCK_ALIGN;

/// The canonical header for `data_len` bytes of audio.
fn header(data_len: u32) -> [u8; HEADER_LEN as usize] {
    let byte_rate = SAMPLE_RATE * u32::from(CHANNELS) * u32::from(BITS_PER_SAMPLE) / 8;
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(data_len.saturating_add(36)).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // WAVE_FORMAT_PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&(BLOCK_ALIGN as u16).to_le_bytes());
    h[34..36].copy_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Duration of `data_len` bytes of audio.
fn duration_of(data_len: u64) -> Duration {
    let pairs = data_len / BLOCK_ALIGN;
    Duration::from_nanos(pairs.saturating_mul(1_000_000_000) / u64::from(SAMPLE_RATE))
}

/// A recording being written.
#[derive(Debug)]
pub struct WavWriter {
    path: PathBuf,
    file: File,
    /// Interleaved samples not yet on disk, little-endian.
    pending: Vec<u8>,
    /// Bytes of audio on disk (after the header).
    written: u64,
    /// Pending bytes that trigger a flush from [`WavWriter::write`].
    flush_bytes: usize,
}

impl WavWriter {
    /// Creates `path` (which must not exist: a recording is never overwritten) with an empty
    /// header, synced. `write` flushes by itself every `flush_every` of audio.
    pub fn create(path: &Path, flush_every: Duration) -> Result<Self, RecordingError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| RecordingError::io(path, e))?;
        Self::on_file(path, file, flush_every)
    }

    /// A writer over an open, empty file, named `path` in errors.
    pub(crate) fn on_file(
        path: &Path,
        mut file: File,
        flush_every: Duration,
    ) -> Result<Self, RecordingError> {
        let io = |e| RecordingError::io(path, e);
        file.write_all(&header(0)).map_err(io)?;
        file.sync_all().map_err(io)?;
        let pairs = flush_every.as_millis() * u128::from(SAMPLE_RATE) / 1000;
        let flush_bytes = usize::try_from(pairs * u128::from(BLOCK_ALIGN))
            .unwrap_or(usize::MAX)
            .max(BLOCK_ALIGN as usize);
        Ok(WavWriter {
            path: path.to_owned(),
            file,
            pending: Vec::with_capacity(flush_bytes.min(1 << 20)),
            written: 0,
            flush_bytes,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Audio accepted so far (on disk or pending).
    pub fn duration(&self) -> Duration {
        duration_of(self.written + self.pending.len() as u64)
    }

    /// Appends interleaved samples (left, right, left, ...), flushing when a whole
    /// interval is pending.
    pub fn write(&mut self, interleaved: &[i16]) -> Result<(), RecordingError> {
        self.pending.reserve(interleaved.len() * 2);
        for sample in interleaved {
            self.pending.extend_from_slice(&sample.to_le_bytes());
        }
        if self.pending.len() >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending whole sample pairs, then the header's sizes, and syncs, so that
    /// the file on disk is complete up to here even if the process dies next.
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        let whole = self.pending.len() / BLOCK_ALIGN as usize * BLOCK_ALIGN as usize;
        if self.written + whole as u64 > MAX_DATA_LEN {
            return Err(RecordingError::TooLong {
                path: self.path.clone(),
            });
        }
        let io = |e| RecordingError::io(&self.path, e);
        if whole > 0 {
            self.file
                .seek(SeekFrom::Start(HEADER_LEN + self.written))
                .map_err(io)?;
            self.file.write_all(&self.pending[..whole]).map_err(io)?;
            self.pending.drain(..whole);
            self.written += whole as u64;
        }
        // Lossless: `written` never exceeds MAX_DATA_LEN, which fits in 32 bits.
        let data_len = u32::try_from(self.written).unwrap_or(u32::MAX);
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(&header(data_len)).map_err(io)?;
        // Data only: the size changes are covered by sync_data too (it syncs the metadata
        // needed to read the data back), and the timestamps are not worth a second write.
        self.file.sync_data().map_err(io)
    }

    /// Writes what is pending, the final header, syncs everything and hashes the file.
    pub fn finish(mut self) -> Result<RecordingInfo, RecordingError> {
        self.flush()?;
        self.file
            .sync_all()
            .map_err(|e| RecordingError::io(&self.path, e))?;
        drop(self.file);
        let (sha256, bytes) = sha256_file(&self.path)?;
        Ok(RecordingInfo {
            duration: duration_of(self.written),
            path: self.path,
            bytes,
            sha256,
            paused: Duration::ZERO,
        })
    }
}

/// SHA-256 (lowercase hex) and length of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), RecordingError> {
    let io = |e| RecordingError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Where the audio of a file starts, as far as its header tells.
enum Layout {
    /// A readable RIFF header in svi's format; audio starts at `data_at`.
    Ours { data_at: u64 },
    /// A readable RIFF header of another format: not ours to touch.
    Foreign,
    /// No readable header (crash while it was first written, or damage): the file is
    /// assumed to be svi's canonical layout.
    Garbled,
}

/// Reads the chunk list of a RIFF header.
fn layout(prefix: &[u8]) -> Layout {
    let tag = |at: usize| prefix.get(at..at + 4);
    let u32_at = |at: usize| {
        prefix
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u16_at = |at: usize| {
        prefix
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    if tag(0) != Some(b"RIFF") || tag(8) != Some(b"WAVE") {
        return Layout::Garbled;
    }
    let mut at = 12usize;
    let mut format_ok = None;
    while let (Some(id), Some(size)) = (tag(at), u32_at(at + 4)) {
        let body = at + 8;
        match id {
            b"fmt " => {
                let ours = u16_at(body) == Some(1)
                    && u16_at(body + 2) == Some(CHANNELS)
                    && u32_at(body + 4) == Some(SAMPLE_RATE)
                    && u16_at(body + 14) == Some(BITS_PER_SAMPLE);
                format_ok = Some(ours);
            }
            b"data" => {
                return match format_ok {
                    Some(true) => Layout::Ours {
                        data_at: body as u64,
                    },
                    Some(false) => Layout::Foreign,
                    None => Layout::Garbled,
                };
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s)?.checked_add(s & 1))
        else {
            break;
        };
        at = next;
    }
    match format_ok {
        Some(false) => Layout::Foreign,
        _ => Layout::Garbled,
    }
}

/// Makes a recording left unfinished (crash, failed write) a valid WAV file: sizes
/// recomputed from the file length, a trailing partial sample pair cut, a missing or
/// unreadable header rebuilt as svi's (a missing file becomes an empty recording); then
/// syncs and hashes it. A WAV of another format is refused and left untouched.
pub fn repair_wav(path: &Path) -> Result<RecordingInfo, RecordingError> {
    let io = |e| RecordingError::io(path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut prefix = Vec::with_capacity(4096);
    (&mut file)
        .take(4096)
        .read_to_end(&mut prefix)
        .map_err(io)?;
    let (data_at, rebuild) = match layout(&prefix) {
        Layout::Ours { data_at } => (data_at, false),
        Layout::Foreign => {
            return Err(RecordingError::Format {
                path: path.to_owned(),
            })
        }
        Layout::Garbled => (HEADER_LEN, true),
    };
    let data_len = (len.saturating_sub(data_at) / BLOCK_ALIGN * BLOCK_ALIGN).min(MAX_DATA_LEN);
    if data_at + data_len != len {
        file.set_len(data_at + data_len).map_err(io)?;
    }
    // Lossless: capped at MAX_DATA_LEN above.
    let data_len32 = u32::try_from(data_len).unwrap_or(u32::MAX);
    if rebuild {
        tracing::warn!(path = %path.display(), "recording header unreadable: rebuilt");
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header(data_len32)).map_err(io)?;
    } else {
        let riff = u32::try_from(data_at - 8 + data_len).unwrap_or(u32::MAX);
        file.seek(SeekFrom::Start(4)).map_err(io)?;
        file.write_all(&riff.to_le_bytes()).map_err(io)?;
        file.seek(SeekFrom::Start(data_at - 4)).map_err(io)?;
        file.write_all(&data_len32.to_le_bytes()).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    drop(file);
    let (sha256, bytes) = sha256_file(path)?;
    Ok(RecordingInfo {
        path: path.to_owned(),
        duration: duration_of(data_len),
        bytes,
        sha256,
        paused: Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: usize = SAMPLE_RATE as usize;

    /// `seconds` of stereo audio, left and right at constant levels.
    fn stereo(seconds: f64, left: i16, right: i16) -> Vec<i16> {
        let pairs = (seconds * SECOND as f64) as usize;
        (0..pairs).flat_map(|_| [left, right]).collect()
    }

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let reader = hound::WavReader::open(path).expect("hound reads the file");
        let spec = reader.spec();
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .expect("every sample reads");
        (spec, samples)
    }

    #[test]
    fn a_finished_file_is_a_valid_stereo_wav_with_its_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.wav");
        let mut writer = WavWriter::create(&path, Duration::from_secs(1)).expect("create");
        writer.write(&stereo(2.5, 1000, -1000)).expect("write");
        assert_eq!(writer.duration(), Duration::from_millis(2500));
        let info = writer.finish().expect("finish");
        assert_eq!(info.duration, Duration::from_millis(2500));
        assert_eq!(
            info.bytes,
            HEADER_LEN + 2 * SECOND as u64 * 4 + SECOND as u64 * 2
        );
        let bytes = std::fs::read(&path).expect("read back");
        assert_eq!(info.sha256, hex::encode(Sha256::digest(&bytes)));
        let (spec, samples) = read(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(samples, stereo(2.5, 1000, -1000));
        assert!(
            WavWriter::create(&path, Duration::from_secs(1)).is_err(),
            "a recording is never overwritten"
        );
    }

    #[test]
    fn the_header_follows_each_flush() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("b.wav");
        let mut writer = WavWriter::create(&path, Duration::from_secs(1)).expect("create");
        writer.write(&stereo(0.5, 1, 2)).expect("write");
        assert_eq!(read(&path).1.len(), 0, "nothing flushed yet");
        writer.write(&stereo(0.75, 1, 2)).expect("write");
        // 1.25 s reached the 1 s interval: everything pending went out.
        assert_eq!(read(&path).1.len(), 2 * 10_000);
        drop(writer);
    }

    #[test]
    fn repair_recomputes_sizes_cuts_partial_pairs_and_rebuilds_headers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.wav");
        let mut writer = WavWriter::create(&path, Duration::from_secs(1)).expect("create");
        writer.write(&stereo(1.0, 5, -5)).expect("write");
        writer.flush().expect("flush");
        drop(writer);
        // A crash in the middle of the next append: audio past the header's sizes, the
        // last pair cut in half.
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        let tail: Vec<u8> = stereo(0.5, 5, -5)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .chain([1, 2, 3])
            .collect();
        file.write_all(&tail).expect("append");
        drop(file);
        let info = repair_wav(&path).expect("repair");
        assert_eq!(info.duration, Duration::from_millis(1500));
        assert_eq!(read(&path).1, stereo(1.5, 5, -5));

        // Header zeroed (crash during the very first write): rebuilt.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[..HEADER_LEN as usize].fill(0);
        std::fs::write(&path, &bytes).expect("write");
        let info = repair_wav(&path).expect("repair");
        assert_eq!(info.duration, Duration::from_millis(1500));
        let (spec, samples) = read(&path);
        assert_eq!(spec.channels, 2);
        assert_eq!(samples, stereo(1.5, 5, -5));

        // A file cut inside its header becomes an empty recording.
        std::fs::write(&path, b"RIFF\x00\x00").expect("write");
        let info = repair_wav(&path).expect("repair");
        assert_eq!((info.duration, info.bytes), (Duration::ZERO, HEADER_LEN));
        assert!(read(&path).1.is_empty());
    }

    #[test]
    fn repair_refuses_other_formats() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mono.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).expect("create");
        writer.write_sample(7i16).expect("write");
        writer.finalize().expect("finalize");
        let before = std::fs::read(&path).expect("read");
        assert!(matches!(
            repair_wav(&path),
            Err(RecordingError::Format { .. })
        ));
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "left untouched"
        );
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_file() {
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return; // Not Linux: nothing to simulate a full disk with.
        };
        let path = Path::new("/recordings/on-a-full-disk.wav");
        let error = WavWriter::on_file(path, full, Duration::from_secs(1))
            .expect_err("/dev/full accepts no byte");
        let text = error.to_string();
        assert!(text.contains("on-a-full-disk.wav"), "{text}");
        assert!(
            matches!(&error, RecordingError::Io { source, .. } if source.raw_os_error() == Some(28)),
            "ENOSPC: {text}"
        );
    }
}
