//! One recording copy: chunks appended to `<file>.part`, resumed from its length after any
//! interruption (a lost connection, a restart of either node), checked against the index's
//! size and SHA-256 when complete, then renamed to `<file>`. The source of the chunks is a
//! trait, so the whole sequence is tested without a network.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::Chunk;

/// Where chunks come from (another member over the cluster link, or a directory in tests).
pub(crate) trait ChunkSource {
    fn fetch(
        &mut self,
        file: &str,
        offset: u64,
        max: u32,
    ) -> impl Future<Output = Result<Chunk, String>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    /// The source refused or could not be reached; the partial copy is kept.
    #[error("recording {file}: {problem}")]
    Source { file: String, problem: String },
    /// The source sent something inconsistent; the partial copy is deleted if it cannot
    /// be trusted any more.
    #[error("recording {file}: bad chunk at offset {offset}: {problem}")]
    BadChunk {
        file: String,
        offset: u64,
        problem: String,
    },
    #[error("recording {file}: SHA-256 of the copy is {got}, the index says {expected}; the copy was deleted")]
    Mismatch {
        file: String,
        expected: String,
        got: String,
    },
    #[error("recording {file} is here but differs from the index (SHA-256 {got}, index {expected}); left as it is")]
    LocalDiffers {
        file: String,
        expected: String,
        got: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// The file was already here and matches the index.
    AlreadyHere,
    /// The file was completed; `fetched` bytes came over the link this time.
    Done { fetched: u64, total: u64 },
}

/// What the index says about the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// `<call id>.wav`, already checked with `plain_wav_name`.
    pub file: &'a str,
    /// Size in bytes; 0 when unknown.
    pub bytes: u64,
    /// Lowercase hex; `None` when the index has none (the size is then the only check).
    pub sha256: Option<&'a str>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 of a file, lowercase hex, on the blocking pool.
pub(crate) async fn sha256_file(path: &Path) -> Result<String, CopyError> {
    let p = path.to_path_buf();
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut f = std::fs::File::open(&p)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(hex::encode(h.finalize()));
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()));
    res.and_then(|r| r).map_err(io(path))
}

fn part_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!("{file}.part"))
}

/// Copies `want.file` into `dir` from `source`, `chunk` bytes per request.
pub(crate) async fn copy_file(
    source: &mut impl ChunkSource,
    dir: &Path,
    want: Expected<'_>,
    chunk: u32,
) -> Result<Copied, CopyError> {
    let file = want.file;
    let target = dir.join(file);
    if tokio::fs::try_exists(&target).await.map_err(io(&target))? {
        let got = sha256_file(&target).await?;
        return match want.sha256 {
            Some(expected) if !expected.eq_ignore_ascii_case(&got) => {
                Err(CopyError::LocalDiffers {
                    file: file.into(),
                    expected: expected.into(),
                    got,
                })
            }
            _ => Ok(Copied::AlreadyHere),
        };
    }
    tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    let part = part_path(dir, file);
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .map_err(io(&part))?;
    let mut have = out.metadata().await.map_err(io(&part))?.len();
    let start = have;
    let mut total = None;
    if have > 0 {
        tracing::debug!(file, offset = have, "resuming a recording copy");
    }
    loop {
        let c = source
            .fetch(file, have, chunk)
            .await
            .map_err(|problem| CopyError::Source {
                file: file.into(),
                problem,
            })?;
        let bad = |problem: String| CopyError::BadChunk {
            file: file.into(),
            offset: have,
            problem,
        };
        if want.bytes != 0 && c.total != want.bytes {
            return Err(CopyError::Source {
                file: file.into(),
                problem: format!(
                    "the source's file has {} bytes, the index says {}",
                    c.total, want.bytes
                ),
            });
        }
        if *total.get_or_insert(c.total) != c.total {
            drop(out);
            remove(&part).await;
            return Err(bad("the file's size changed during the copy".into()));
        }
        if have > c.total {
            drop(out);
            remove(&part).await;
            return Err(bad(format!(
                "the partial copy is longer than the file ({} bytes)",
                c.total
            )));
        }
        let end = have + c.bytes.len() as u64;
        if c.bytes.len() > chunk as usize || end > c.total {
            return Err(bad(format!("{} bytes is more than asked", c.bytes.len())));
        }
        if c.eof != (end == c.total) || (c.bytes.is_empty() && end < c.total) {
            return Err(bad(format!(
                "truncated: {} bytes, the file has {} (eof {})",
                c.bytes.len(),
                c.total,
                c.eof
            )));
        }
        out.write_all(&c.bytes).await.map_err(io(&part))?;
        // tokio's file finishes a write in the background: wait for it, so that the part
        // file's length is what was written before the next request (or an interruption).
        out.flush().await.map_err(io(&part))?;
        have = end;
        tracing::debug!(
            file,
            offset = have,
            total = c.total,
            "recording copy progress"
        );
        if have == c.total {
            break;
        }
    }
    out.sync_all().await.map_err(io(&part))?;
    drop(out);
    let got = sha256_file(&part).await?;
    match want.sha256 {
        Some(expected) if !expected.eq_ignore_ascii_case(&got) => {
            remove(&part).await;
            return Err(CopyError::Mismatch {
                file: file.into(),
                expected: expected.into(),
                got,
            });
        }
        Some(_) => {}
        None => tracing::warn!(
            file,
            "recording copied without a SHA-256 in the index to check"
        ),
    }
    tokio::fs::rename(&part, &target)
        .await
        .map_err(io(&target))?;
    // The rename is durable once the directory is synced (best effort: not every file
    // system allows opening a directory).
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
    Ok(Copied::Done {
        fetched: have - start,
        total: have,
    })
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete a partial recording copy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_chunk;
    use super::*;

    /// Serves a directory like a member would; fails after `fail_after` requests if set
    /// (a connection lost mid-copy), and records the offsets asked.
    struct DirSource {
        dir: PathBuf,
        fail_after: Option<usize>,
        offsets: Vec<u64>,
        /// Cuts every reply to this many bytes (a misbehaving peer).
        cut: Option<usize>,
    }

    impl DirSource {
        fn new(dir: &Path) -> DirSource {
            DirSource {
                dir: dir.to_path_buf(),
                fail_after: None,
                offsets: Vec::new(),
                cut: None,
            }
        }
    }

    impl ChunkSource for DirSource {
        async fn fetch(&mut self, file: &str, offset: u64, max: u32) -> Result<Chunk, String> {
            if self.fail_after == Some(self.offsets.len()) {
                return Err("connection lost".into());
            }
            self.offsets.push(offset);
            let mut c = read_chunk(&self.dir, file, offset, max).await?;
            if let Some(n) = self.cut {
                c.bytes.truncate(n);
            }
            Ok(c)
        }
    }

    fn audio(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    struct Dirs {
        _tmp: tempfile::TempDir,
        from: PathBuf,
        to: PathBuf,
        sha: String,
    }

    fn dirs(content: &[u8]) -> Dirs {
        let tmp = tempfile::tempdir().expect("tmp");
        let (from, to) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&from).expect("a");
        std::fs::write(from.join("c1.wav"), content).expect("write");
        Dirs {
            _tmp: tmp,
            from,
            to,
            sha: hex::encode(Sha256::digest(content)),
        }
    }

    fn want<'a>(d: &'a Dirs, len: usize) -> Expected<'a> {
        Expected {
            file: "c1.wav",
            bytes: len as u64,
            sha256: Some(&d.sha),
        }
    }

    #[tokio::test]
    async fn an_interrupted_copy_resumes_where_it_stopped() {
        let content = audio(10_000);
        let d = dirs(&content);
        let mut src = DirSource::new(&d.from);
        src.fail_after = Some(3);
        let e = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect_err("interrupted");
        assert!(matches!(e, CopyError::Source { .. }), "{e}");
        let part = d.to.join("c1.wav.part");
        assert_eq!(std::fs::metadata(&part).expect("part").len(), 3 * 1024);
        assert!(!d.to.join("c1.wav").exists());

        // A new source (a new connection, or after a restart): it asks from 3 KiB on.
        let mut src = DirSource::new(&d.from);
        let done = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect("resumed");
        assert_eq!(
            done,
            Copied::Done {
                fetched: 10_000 - 3 * 1024,
                total: 10_000
            }
        );
        assert_eq!(src.offsets.first(), Some(&(3 * 1024)));
        assert_eq!(std::fs::read(d.to.join("c1.wav")).expect("copy"), content);
        assert!(!part.exists());

        // Already there and intact: nothing is fetched.
        let mut src = DirSource::new(&d.from);
        let again = copy_file(&mut src, &d.to, want(&d, content.len()), 1024).await;
        assert_eq!(again.expect("again"), Copied::AlreadyHere);
        assert!(src.offsets.is_empty());
    }

    #[tokio::test]
    async fn a_sha_mismatch_deletes_the_copy() {
        let content = audio(3000);
        let mut d = dirs(&content);
        d.sha = hex::encode(Sha256::digest(b"something else"));
        let mut src = DirSource::new(&d.from);
        let e = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect_err("mismatch");
        assert!(matches!(e, CopyError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("c1.wav"), "{e}");
        assert!(!d.to.join("c1.wav").exists());
        assert!(!d.to.join("c1.wav.part").exists());
    }

    #[tokio::test]
    async fn a_corrupt_partial_copy_is_caught_by_the_sha_then_redone() {
        let content = audio(5000);
        let d = dirs(&content);
        std::fs::create_dir_all(&d.to).expect("b");
        // A partial copy whose bytes differ from the source's (e.g. a disk error).
        std::fs::write(d.to.join("c1.wav.part"), vec![0u8; 2048]).expect("part");
        let mut src = DirSource::new(&d.from);
        let e = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect_err("mismatch");
        assert!(matches!(e, CopyError::Mismatch { .. }), "{e}");
        let done = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect("second try");
        assert_eq!(
            done,
            Copied::Done {
                fetched: 5000,
                total: 5000
            }
        );
        assert_eq!(std::fs::read(d.to.join("c1.wav")).expect("copy"), content);
    }

    #[tokio::test]
    async fn truncated_chunks_and_size_disagreements_are_errors() {
        let content = audio(5000);
        let d = dirs(&content);
        let mut src = DirSource::new(&d.from);
        src.cut = Some(0);
        let e = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect_err("empty chunk");
        assert!(e.to_string().contains("truncated"), "{e}");

        let mut src = DirSource::new(&d.from);
        let e = copy_file(&mut src, &d.to, want(&d, 4000), 1024)
            .await
            .expect_err("size");
        assert!(e.to_string().contains("index says 4000"), "{e}");

        // A partial copy longer than the file: deleted, the next try starts over.
        std::fs::write(d.to.join("c1.wav.part"), vec![0u8; 6000]).expect("part");
        let mut src = DirSource::new(&d.from);
        let e = copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect_err("too long");
        assert!(matches!(e, CopyError::BadChunk { .. }), "{e}");
        assert!(!d.to.join("c1.wav.part").exists());
        copy_file(&mut src, &d.to, want(&d, content.len()), 1024)
            .await
            .expect("starts over");
        assert_eq!(std::fs::read(d.to.join("c1.wav")).expect("copy"), content);
    }
}
