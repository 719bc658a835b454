//! Backups of a node's data: `svi backup`, the `[backup]` schedule, and what `svi restore`
//! needs to read one back.
//!
//! A backup holds a consistent copy of the engine database (`svi.db`: call records, the
//! replicated documents such as the ACD events and the recording index, and the raft
//! pointers), taken hot with `VACUUM INTO` (one read transaction: the copy is the database
//! as of one instant, while calls go on and writes continue), optionally the recording
//! files its index names and the recorded messages, a `manifest.json` (what, when, from
//! which node and schema version, counts) and a `SHA256SUMS` over everything
//! (`archive`). The raft log is not in it: every committed entry is already applied to the
//! copy, whose pointers say up to where; a restored node starts from that point.
//!
//! - `archive`: the files, their names and checksums, directory or tar;
//! - `restore`: unpacking and checking a backup, preparing its database for a node;
//! - `schedule`: the `[backup]` schedule and retention run by the active node.

pub mod archive;
pub mod restore;
pub mod schedule;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::storage::backup::Contents;
use crate::storage::{Storage, StorageError};

/// The manifest's format tag; a backup with another one is refused.
pub const FORMAT: &str = "svi-backup 1";

/// The collections of replicated documents that are history (left out by
/// `svi restore --without-history`, like the call records). A collection of events or of
/// audit entries belongs here.
pub const HISTORY_COLLECTIONS: &[&str] = &[
    crate::acd::driver::EVENTS_COLLECTION,
    crate::audit::COLLECTION,
];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0} already exists: give a new file or an empty directory")]
    TargetExists(PathBuf),
    #[error("not a valid svi backup: {0}")]
    Invalid(String),
    #[error("checksum mismatch for {file}: the backup is damaged or was altered")]
    Checksum { file: String },
    #[error("the backup task stopped: {0}")]
    Task(String),
}

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BackupError {
        BackupError::Io {
            path: path.into(),
            source,
        }
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub svi_version: String,
    /// `[node] name` of the node the backup was taken on.
    pub node: String,
    /// `PRAGMA user_version` of `svi.db` in the backup.
    pub schema_version: u32,
    pub contents: Contents,
    pub recordings: bool,
    /// Recording files the index names that were not on the node's disk.
    #[serde(default)]
    pub missing_recordings: Vec<String>,
    /// Every file but the manifest and `SHA256SUMS`.
    pub files: Vec<FileEntry>,
}

/// What to back up and from where.
#[derive(Debug, Clone)]
pub struct Source {
    pub node: String,
    pub data_dir: PathBuf,
    /// The node's recordings directory (`[recording] dir`, or `DATA_DIR/recordings`).
    pub recordings_dir: PathBuf,
    /// Include the recording files and the recorded messages.
    pub recordings: bool,
}

/// Takes a backup of `storage` (the engine database, open or not in a running engine) and,
/// if asked, of the recordings, to `target` (a `.tar` file or a new or empty directory).
pub async fn create(
    storage: &Storage,
    source: &Source,
    target: &Path,
) -> Result<Manifest, BackupError> {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
    // The copy is made beside the target (same file system, and not /tmp: it may be large).
    let staging = tempfile::Builder::new()
        .prefix(".svi-backup-")
        .tempdir_in(parent)
        .map_err(|e| BackupError::io(parent, e))?;
    let copy = staging.path().join(archive::DATABASE);
    storage.snapshot_into(&copy).await?;
    let schema_version = crate::storage::migrate::file_version(&copy).await?;
    let contents = crate::storage::backup::contents(&copy).await?;
    let indexed = if source.recordings {
        crate::storage::backup::doc_files(&copy, crate::recording::index::COLLECTION).await?
    } else {
        Vec::new()
    };
    let source = source.clone();
    let target = target.to_path_buf();
    let task = tokio::task::spawn_blocking(move || {
        write(&source, &copy, &indexed, schema_version, contents, &target)
    });
    let manifest = task.await.map_err(|e| BackupError::Task(e.to_string()))??;
    drop(staging);
    Ok(manifest)
}

/// Writes the archive (blocking file I/O).
fn write(
    source: &Source,
    db_copy: &Path,
    indexed: &[String],
    schema_version: u32,
    contents: Contents,
    target: &Path,
) -> Result<Manifest, BackupError> {
    let mut w = archive::Writer::create(target)?;
    let mut manifest = Manifest {
        format: FORMAT.into(),
        created_at: chrono::Utc::now(),
        svi_version: env!("CARGO_PKG_VERSION").into(),
        node: source.node.clone(),
        schema_version,
        contents,
        recordings: source.recordings,
        missing_recordings: Vec::new(),
        files: Vec::new(),
    };
    let result = (|| {
        manifest.files.push(w.add_file(archive::DATABASE, db_copy)?);
        for file in indexed {
            let path = source.recordings_dir.join(file);
            if !archive::plain_file_name(file) || !path.is_file() {
                manifest.missing_recordings.push(file.clone());
                continue;
            }
            manifest
                .files
                .push(w.add_file(&format!("recordings/{file}"), &path)?);
        }
        if source.recordings {
            for path in wav_files(&source.data_dir.join("messages"))? {
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    manifest
                        .files
                        .push(w.add_file(&format!("messages/{name}"), &path)?);
                }
            }
        }
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Invalid(e.to_string()))?;
        w.add_bytes(archive::MANIFEST, &text)?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            w.finish()?;
            Ok(manifest)
        }
        Err(e) => {
            w.abandon();
            Err(e)
        }
    }
}

/// The `.wav` files directly in `dir` with plain names, sorted (none if it does not exist).
fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io(dir, e)),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "wav")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(archive::plain_file_name)
        })
        .collect();
    out.sort();
    Ok(out)
}
