//! Snapshot files: whole copies of the engine database under `DATA_DIR/raft-snapshots/`.
//!
//! One snapshot is current at a time: `current.json` names its file and holds its openraft
//! metadata. A new snapshot (built here or received from the leader) is fsynced, then
//! `current.json` is replaced atomically (write temp, fsync, rename, fsync directory), then
//! older files are deleted. File names are ours (`snap-<index>-<random>.db`): the snapshot id
//! sent by a peer never becomes a path. Deleting a file that a sender still streams is fine
//! on Unix: the open descriptor keeps it alive.
//!
//! `SnapshotFile` is openraft's `SnapshotData`: a tokio file that remembers its path, so
//! that installing a received snapshot can `ATTACH` it.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::Mutex;

use crate::types::SnapshotMeta;

/// openraft's snapshot data: an open file and its path.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: tokio::fs::File,
}

impl SnapshotFile {
    pub(crate) async fn open(path: &Path) -> io::Result<SnapshotFile> {
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            file: tokio::fs::File::open(path).await?,
        })
    }

    pub(crate) async fn create(path: &Path) -> io::Result<SnapshotFile> {
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            file: tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
                .await?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn sync(&self) -> io::Result<()> {
        self.file.sync_all().await
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

#[derive(Serialize, Deserialize)]
struct Current {
    file: String,
    meta: SnapshotMeta,
}

/// The snapshot directory. Its lock orders publications (a build may finish while a
/// received snapshot is being installed).
#[derive(Debug)]
pub(crate) struct SnapshotDir {
    dir: PathBuf,
    lock: Mutex<()>,
}

fn index_of(meta: &SnapshotMeta) -> Option<u64> {
    meta.last_log_id.map(|l| l.index)
}

impl SnapshotDir {
    /// Opens the directory and removes leftovers of interrupted builds and transfers.
    pub(crate) fn open(data_dir: &Path) -> io::Result<SnapshotDir> {
        let dir = data_dir.join("raft-snapshots");
        std::fs::create_dir_all(&dir)?;
        for e in std::fs::read_dir(&dir)? {
            let name = e?.file_name().to_string_lossy().to_string();
            if name.starts_with("tmp-") {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
        Ok(SnapshotDir {
            dir,
            lock: Mutex::new(()),
        })
    }

    /// A fresh path for a file being built or received (cleaned at next start if abandoned).
    pub(crate) fn temp_path(&self) -> PathBuf {
        self.dir
            .join(format!("tmp-{:016x}.db", rand::random::<u64>()))
    }

    pub(crate) fn contains(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path())
    }

    /// The current snapshot's metadata and file.
    pub(crate) async fn current(&self) -> io::Result<Option<(SnapshotMeta, PathBuf)>> {
        match tokio::fs::read(self.dir.join("current.json")).await {
            Ok(b) => {
                let c: Current = serde_json::from_slice(&b).map_err(io::Error::other)?;
                Ok(Some((c.meta, self.dir.join(c.file))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes `file` (inside this directory, fsynced) the current snapshot unless the current
    /// one is newer; returns the current snapshot afterwards.
    pub(crate) async fn publish(
        &self,
        meta: SnapshotMeta,
        file: &Path,
    ) -> io::Result<(SnapshotMeta, PathBuf)> {
        let _g = self.lock.lock().await;
        if let Some((cur, cur_path)) = self.current().await? {
            if index_of(&cur) >= index_of(&meta) && cur_path.exists() {
                let _ = tokio::fs::remove_file(file).await;
                return Ok((cur, cur_path));
            }
        }
        let name = format!(
            "snap-{}-{:08x}.db",
            index_of(&meta).unwrap_or(0),
            rand::random::<u32>()
        );
        let final_path = self.dir.join(&name);
        tokio::fs::rename(file, &final_path).await?;
        let tmp = self.dir.join("tmp-current.json");
        let body = serde_json::to_vec(&Current {
            file: name.clone(),
            meta: meta.clone(),
        })
        .map_err(io::Error::other)?;
        let f = tokio::fs::File::create(&tmp).await?;
        {
            use tokio::io::AsyncWriteExt;
            let mut f = f;
            f.write_all(&body).await?;
            f.sync_all().await?;
        }
        tokio::fs::rename(&tmp, self.dir.join("current.json")).await?;
        tokio::fs::File::open(&self.dir).await?.sync_all().await?;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with("snap-") && n != name {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok((meta, final_path))
    }
}
