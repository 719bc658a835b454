//! The write spool: an append-only, fsynced file of the writes this node acknowledged but
//! could not commit yet (not active, no quorum, a leader change). It is what makes "the
//! writer acknowledged it" mean "it survives a `kill -9` or a power cut".
//!
//! Frame: `len: u32 BE`, `check: [u8; 8]` (the first bytes of the payload's SHA-256), then
//! `len` bytes of JSON: `Entry::Write { seq, command }` or `Entry::Done { seq }`. A write is
//! acknowledged once its frame is fsynced; `Done` frames are not fsynced (a lost one only
//! means the write is proposed again, and every command is idempotent). Opening reads every
//! whole frame and stops at the first torn or corrupt one (a write that was never
//! acknowledged), cutting the file there. When no write is pending the file is emptied;
//! with writes pending and many `Done` frames, it is rewritten with the pending ones only
//! (a new file, fsynced, renamed over the old one, the directory fsynced).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::Command;

/// A spool file larger than this with writes pending is rewritten without its `Done`s.
const COMPACT_ABOVE: u64 = 4 * 1024 * 1024;
/// A frame larger than this is corrupt (a call record is a few KiB).
const MAX_FRAME: u32 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("write spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write spool {path}: {source}")]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Write { seq: u64, command: Command },
    Done { seq: u64 },
}

/// The spool file and the writes still pending in it (also kept in memory, in order).
pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    len: u64,
    next_seq: u64,
    pending: BTreeMap<u64, Command>,
}

fn check(payload: &[u8]) -> [u8; 8] {
    let h = Sha256::digest(payload);
    let mut c = [0u8; 8];
    c.copy_from_slice(&h[..8]);
    c
}

fn frame(entry: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(entry)?;
    let mut f = Vec::with_capacity(12 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&check(&payload));
    f.extend_from_slice(&payload);
    Ok(f)
}

/// The whole frames at the start of `bytes` and where they end.
fn read_frames(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 12 {
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[at..at + 4]);
        let len = u32::from_be_bytes(len);
        if len > MAX_FRAME || bytes.len() < at + 12 + len as usize {
            break;
        }
        let payload = &bytes[at + 12..at + 12 + len as usize];
        if bytes[at + 4..at + 12] != check(payload) {
            break;
        }
        match serde_json::from_slice::<Entry>(payload) {
            Ok(e) => entries.push(e),
            Err(_) => break,
        }
        at += 12 + len as usize;
    }
    (entries, at)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl Spool {
    /// Opens (creating) the spool at `path` and reads the writes still pending.
    pub(crate) fn open(path: &Path) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (entries, whole) = read_frames(&bytes);
        if whole < bytes.len() {
            tracing::warn!(
                spool = %path.display(),
                dropped_bytes = bytes.len() - whole,
                "write spool ends with a torn frame (a write cut before it was acknowledged); cut off"
            );
            file.set_len(whole as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let mut pending = BTreeMap::new();
        let mut next_seq = 1;
        for e in entries {
            match e {
                Entry::Write { seq, command } => {
                    next_seq = next_seq.max(seq + 1);
                    pending.insert(seq, command);
                }
                Entry::Done { seq } => {
                    pending.remove(&seq);
                }
            }
        }
        let mut spool = Spool {
            path: path.to_path_buf(),
            file,
            len: whole as u64,
            next_seq,
            pending,
        };
        spool.compact()?;
        Ok(spool)
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn append(&mut self, entry: &Entry, sync: bool) -> Result<(), SpoolError> {
        let bytes = frame(entry).map_err(|source| SpoolError::Encode {
            path: self.path.clone(),
            source,
        })?;
        self.file.write_all(&bytes).map_err(|e| self.io(e))?;
        if sync {
            self.file.sync_data().map_err(|e| self.io(e))?;
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends a write and fsyncs it: from the return on, it survives a crash.
    pub(crate) fn push(&mut self, command: Command) -> Result<u64, SpoolError> {
        let seq = self.next_seq;
        let entry = Entry::Write { seq, command };
        if let Err(e) = self.append(&entry, true) {
            // The frame may be half written: cut it so the next append starts clean.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.next_seq += 1;
        if let Entry::Write { command, .. } = entry {
            self.pending.insert(seq, command);
        }
        Ok(seq)
    }

    /// The write `seq` is committed: forget it.
    #[cfg(test)]
    pub(crate) fn done(&mut self, seq: u64) -> Result<(), SpoolError> {
        self.done_all([seq])
    }

    /// The writes `seqs` are committed (one batch): forget them, compacting once.
    pub(crate) fn done_all(
        &mut self,
        seqs: impl IntoIterator<Item = u64>,
    ) -> Result<(), SpoolError> {
        for seq in seqs {
            if self.pending.remove(&seq).is_some() {
                self.append(&Entry::Done { seq }, false)?;
            }
        }
        self.compact()
    }

    /// The writes still pending, oldest first.
    pub(crate) fn pending(&self) -> Vec<(u64, Command)> {
        self.pending.iter().map(|(s, c)| (*s, c.clone())).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Empties the file when nothing is pending; rewrites it with the pending writes only
    /// when it grew large.
    fn compact(&mut self) -> Result<(), SpoolError> {
        if self.pending.is_empty() {
            if self.len > 0 {
                self.file.set_len(0).map_err(|e| self.io(e))?;
                self.file.sync_all().map_err(|e| self.io(e))?;
                self.len = 0;
            }
            return Ok(());
        }
        if self.len <= COMPACT_ABOVE {
            return Ok(());
        }
        let tmp = self.path.with_extension("compact");
        let mut bytes = Vec::new();
        for (seq, command) in &self.pending {
            let entry = Entry::Write {
                seq: *seq,
                command: command.clone(),
            };
            bytes.extend(frame(&entry).map_err(|source| SpoolError::Encode {
                path: self.path.clone(),
                source,
            })?);
        }
        let io = |e| self.io(e);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        sync_dir(&self.path).map_err(io)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        self.len = bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> Command {
        Command::Put {
            collection: "c".into(),
            key: key.into(),
            value: serde_json::json!({ "k": key }),
        }
    }

    fn keys(s: &Spool) -> Vec<String> {
        s.pending()
            .into_iter()
            .map(|(_, c)| format!("{c:?}"))
            .collect()
    }

    #[test]
    fn pending_writes_survive_a_reopen_and_done_ones_do_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("spool/writes.log");
        let mut s = Spool::open(&path).expect("open");
        let a = s.push(put("a")).expect("a");
        s.push(put("b")).expect("b");
        s.done(a).expect("done a");
        drop(s);
        let mut s = Spool::open(&path).expect("reopen");
        assert_eq!(keys(&s), vec!["Put(c/b)"]);
        let c = s.push(put("c")).expect("c");
        assert!(c > a, "sequence numbers keep growing across reopenings");
        for (seq, _) in s.pending() {
            s.done(seq).expect("done");
        }
        assert!(s.is_empty());
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            0,
            "emptied when nothing is pending"
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_and_what_precedes_it_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("writes.log");
        let mut s = Spool::open(&path).expect("open");
        s.push(put("a")).expect("a");
        s.push(put("b")).expect("b");
        drop(s);
        let whole = std::fs::read(&path).expect("read");
        // A crash in the middle of the second frame.
        std::fs::write(&path, &whole[..whole.len() - 5]).expect("tear");
        let mut s = Spool::open(&path).expect("reopen torn");
        assert_eq!(keys(&s), vec!["Put(c/a)"]);
        s.push(put("c")).expect("append after the cut");
        drop(s);
        let s = Spool::open(&path).expect("reopen");
        assert_eq!(keys(&s), vec!["Put(c/a)", "Put(c/c)"]);
        drop(s);
        // A flipped byte in a payload: that frame and everything after it are dropped.
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes.len() - 3;
        bytes[at] ^= 0xff;
        std::fs::write(&path, &bytes).expect("corrupt");
        let s = Spool::open(&path).expect("reopen corrupt");
        assert_eq!(keys(&s), vec!["Put(c/a)"]);
    }

    #[test]
    fn a_large_spool_with_writes_pending_is_rewritten_without_its_dones() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("writes.log");
        let mut s = Spool::open(&path).expect("open");
        s.push(put("kept")).expect("kept");
        let big = "x".repeat(64 * 1024);
        for _ in 0..80 {
            let seq = s
                .push(Command::Put {
                    collection: "c".into(),
                    key: "big".into(),
                    value: serde_json::json!(big),
                })
                .expect("big");
            s.done(seq).expect("done");
        }
        let len = std::fs::metadata(&path).expect("meta").len();
        assert!(len < COMPACT_ABOVE, "rewritten: {len} bytes");
        drop(s);
        let s = Spool::open(&path).expect("reopen");
        assert_eq!(keys(&s), vec!["Put(c/kept)"]);
    }
}
