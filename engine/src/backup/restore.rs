//! Reading a backup back (`svi restore`), up to the point where the replicated state takes
//! over (the `ha` crate then makes the node a standby of its pair or a new single node).
//!
//! Order, so that a bad backup changes nothing and a good one loses nothing:
//! 1. `open`: unpack a tar into a staging directory inside the data directory, check every
//!    file against `SHA256SUMS` and the manifest; any doubt refuses the whole backup;
//! 2. `prepare_database`: copy `svi.db` to the staging directory, migrate it to this
//!    release's schema (a newer one is refused), and with `--without-history` drop the call
//!    records and the history collections;
//! 3. `set_aside`: move the node's current database, raft log and snapshots to
//!    `DATA_DIR/pre-restore-<time>/` (deleted by the operator, never by svi);
//! 4. `place`: move the prepared database in, copy the recordings and messages.

use std::path::{Path, PathBuf};

use super::{archive, BackupError, FileEntry, Manifest, FORMAT, HISTORY_COLLECTIONS};
use crate::storage::backup::Stripped;
use crate::storage::migrate;

/// The files of the data directory a restore replaces (moved aside first).
const REPLACED: &[&str] = &[
    "svi.db",
    "svi.db-wal",
    "svi.db-shm",
    "raft-log.db",
    "raft-log.db-wal",
    "raft-log.db-shm",
    "raft-snapshots",
];

/// A checked backup, readable under `root`.
pub struct Opened {
    pub root: PathBuf,
    pub manifest: Manifest,
    pub files: Vec<FileEntry>,
    /// The unpacked tar (removed when dropped).
    _staging: Option<tempfile::TempDir>,
}

/// Opens and checks the backup at `src` (a directory or a `.tar`); a tar is unpacked in a
/// staging directory under `staging_parent`.
pub fn open(src: &Path, staging_parent: &Path) -> Result<Opened, BackupError> {
    let (root, staging) = if src.is_dir() {
        (src.to_path_buf(), None)
    } else if src.is_file() {
        std::fs::create_dir_all(staging_parent).map_err(|e| BackupError::io(staging_parent, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".svi-restore-")
            .tempdir_in(staging_parent)
            .map_err(|e| BackupError::io(staging_parent, e))?;
        archive::extract_tar(src, staging.path())?;
        (staging.path().to_path_buf(), Some(staging))
    } else {
        return Err(BackupError::io(
            src,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    };
    let files = archive::verify_dir(&root)?;
    let manifest_path = root.join(archive::MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|e| BackupError::io(&manifest_path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Invalid(format!("{}: {e}", archive::MANIFEST)))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Invalid(format!(
            "format `{}` (this release reads `{FORMAT}`)",
            manifest.format
        )));
    }
    for f in &manifest.files {
        if !files.contains(f) {
            return Err(BackupError::Invalid(format!(
                "{} lists {} with other content than {}",
                archive::MANIFEST,
                f.path,
                archive::SUMS
            )));
        }
    }
    Ok(Opened {
        root,
        manifest,
        files,
        _staging: staging,
    })
}

/// The database a restore will place, ready.
pub struct Prepared {
    pub db: PathBuf,
    /// The backup's schema version (migrated to this release's).
    pub from_version: u32,
    pub stripped: Option<Stripped>,
}

/// Copies the backup's database to `dest`, brings it to this release's schema and, with
/// `without_history`, removes the call records and history collections.
pub async fn prepare_database(
    opened: &Opened,
    dest: &Path,
    without_history: bool,
) -> Result<Prepared, BackupError> {
    let src = opened.root.join(archive::DATABASE);
    std::fs::copy(&src, dest).map_err(|e| BackupError::io(dest, e))?;
    let from_version = migrate::migrate_file(dest, &migrate::ENGINE_DB).await?;
    let stripped = if without_history {
        Some(crate::storage::backup::strip_history(dest, HISTORY_COLLECTIONS).await?)
    } else {
        None
    };
    Ok(Prepared {
        db: dest.to_path_buf(),
        from_version,
        stripped,
    })
}

/// Moves the node's database, raft log and snapshots to a new `pre-restore-<time>`
/// directory; returns it.
pub fn set_aside(data_dir: &Path) -> Result<PathBuf, BackupError> {
    let at = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = data_dir.join(format!("pre-restore-{at}"));
    std::fs::create_dir_all(&aside).map_err(|e| BackupError::io(&aside, e))?;
    for name in REPLACED {
        let from = data_dir.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name)).map_err(|e| BackupError::io(&from, e))?;
        }
    }
    Ok(aside)
}

/// What `place` copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub recordings: usize,
    pub messages: usize,
    /// Files already there with the same content.
    pub unchanged: usize,
    /// Files already there with other content, moved to the aside directory first.
    pub replaced: usize,
}

/// Moves the prepared database into `data_dir` and copies the backup's recordings and
/// messages into place. A file already present with other content is moved to `aside`.
pub fn place(
    opened: &Opened,
    prepared: &Prepared,
    data_dir: &Path,
    recordings_dir: &Path,
    aside: &Path,
) -> Result<Placed, BackupError> {
    let db = data_dir.join(archive::DATABASE);
    std::fs::rename(&prepared.db, &db).map_err(|e| BackupError::io(&db, e))?;
    let mut placed = Placed::default();
    for f in &opened.files {
        let (dir, count) = match f.path.split_once('/') {
            Some(("recordings", _)) => (recordings_dir.to_path_buf(), &mut placed.recordings),
            Some(("messages", _)) => (data_dir.join("messages"), &mut placed.messages),
            _ => continue,
        };
        let name = f.path.rsplit('/').next().unwrap_or_default();
        let dest = dir.join(name);
        if dest.exists() {
            let (_, sha) = archive::hash_file(&dest)?;
            if sha == f.sha256 {
                placed.unchanged += 1;
                continue;
            }
            let keep = aside.join(&f.path);
            if let Some(p) = keep.parent() {
                std::fs::create_dir_all(p).map_err(|e| BackupError::io(p, e))?;
            }
            std::fs::rename(&dest, &keep).map_err(|e| BackupError::io(&dest, e))?;
            placed.replaced += 1;
        }
        std::fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
        let tmp = dir.join(format!(".{name}.restoring"));
        std::fs::copy(opened.root.join(&f.path), &tmp).map_err(|e| BackupError::io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| BackupError::io(&dest, e))?;
        *count += 1;
    }
    Ok(placed)
}
