//! A backup on disk: a directory or a tar file holding the same names, with a `SHA256SUMS`
//! file (the `sha256sum -c` format) covering every other file.
//!
//! Names are few and fixed (`svi.db`, `manifest.json`, `recordings/<file>`,
//! `messages/<file>`); anything else in an archive, a link, a path with `..` or a duplicate
//! makes the whole archive refused before anything is restored. A tar is written as
//! `<name>.partial` and renamed once complete and synced, so a crash never leaves a
//! truncated backup under the final name.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{BackupError, FileEntry};

pub const SUMS: &str = "SHA256SUMS";
pub const MANIFEST: &str = "manifest.json";
pub const DATABASE: &str = "svi.db";

/// Whether `name` is one a backup may hold.
pub fn valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [one] => matches!(*one, DATABASE | MANIFEST | SUMS),
        [dir, file] => matches!(*dir, "recordings" | "messages") && plain_file_name(file),
        _ => false,
    }
}

/// A file name without directory, hidden prefix or unusual characters.
pub fn plain_file_name(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 200
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Copies `len` bytes from `from` to `to`, returning their SHA-256 (hex).
fn copy_hashed(from: &mut impl Read, to: &mut impl Write, len: u64) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut left = len;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank while being copied",
            ));
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 (hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = File::open(path).map_err(|e| BackupError::io(path, e))?;
    let len = f.metadata().map_err(|e| BackupError::io(path, e))?.len();
    let sha =
        copy_hashed(&mut f, &mut std::io::sink(), len).map_err(|e| BackupError::io(path, e))?;
    Ok((len, sha))
}

/// Where a backup is being written.
pub enum Writer {
    Dir {
        root: PathBuf,
        entries: Vec<FileEntry>,
    },
    Tar {
        builder: tar::Builder<BufWriter<File>>,
        partial: PathBuf,
        target: PathBuf,
        entries: Vec<FileEntry>,
    },
}

/// A `.tar` target is a tar file; anything else a directory.
pub fn is_tar(target: &Path) -> bool {
    target.extension().is_some_and(|e| e == "tar")
}

impl Writer {
    /// Starts a backup at `target`: a new tar file, or a directory that is new or empty.
    pub fn create(target: &Path) -> Result<Writer, BackupError> {
        if target.exists() && !is_tar(target) {
            let empty = std::fs::read_dir(target)
                .map_err(|e| BackupError::io(target, e))?
                .next()
                .is_none();
            if !empty {
                return Err(BackupError::TargetExists(target.to_path_buf()));
            }
        } else if target.exists() {
            return Err(BackupError::TargetExists(target.to_path_buf()));
        }
        if is_tar(target) {
            let mut partial = target.as_os_str().to_owned();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&partial)
                .map_err(|e| BackupError::io(&partial, e))?;
            let mut builder = tar::Builder::new(BufWriter::new(file));
            builder.mode(tar::HeaderMode::Deterministic);
            Ok(Writer::Tar {
                builder,
                partial,
                target: target.to_path_buf(),
                entries: Vec::new(),
            })
        } else {
            std::fs::create_dir_all(target).map_err(|e| BackupError::io(target, e))?;
            Ok(Writer::Dir {
                root: target.to_path_buf(),
                entries: Vec::new(),
            })
        }
    }

    /// Adds the file at `src` under `name` (its size taken now: a file growing meanwhile is
    /// cut at that size, one shrinking is an error).
    pub fn add_file(&mut self, name: &str, src: &Path) -> Result<FileEntry, BackupError> {
        debug_assert!(valid_name(name), "{name}");
        let mut from = File::open(src).map_err(|e| BackupError::io(src, e))?;
        let len = from.metadata().map_err(|e| BackupError::io(src, e))?.len();
        self.add_reader(name, &mut from, len, src)
    }

    /// Adds `data` under `name`.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<FileEntry, BackupError> {
        let mut from = data;
        self.add_reader(name, &mut from, data.len() as u64, Path::new(name))
    }

    fn add_reader(
        &mut self,
        name: &str,
        from: &mut impl Read,
        len: u64,
        src: &Path,
    ) -> Result<FileEntry, BackupError> {
        let entry = match self {
            Writer::Dir { root, entries } => {
                let dest = root.join(name);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
                }
                let mut to =
                    BufWriter::new(File::create(&dest).map_err(|e| BackupError::io(&dest, e))?);
                let sha256 =
                    copy_hashed(from, &mut to, len).map_err(|e| BackupError::io(src, e))?;
                let file = to
                    .into_inner()
                    .map_err(|e| BackupError::io(&dest, e.into_error()))?;
                file.sync_all().map_err(|e| BackupError::io(&dest, e))?;
                let entry = FileEntry {
                    path: name.to_string(),
                    bytes: len,
                    sha256,
                };
                entries.push(entry.clone());
                entry
            }
            Writer::Tar {
                builder, entries, ..
            } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(len);
                header.set_mode(0o600);
                header.set_entry_type(tar::EntryType::Regular);
                let mut hashing = HashingReader {
                    inner: from.take(len),
                    hasher: Sha256::new(),
                    read: 0,
                };
                builder
                    .append_data(&mut header, name, &mut hashing)
                    .map_err(|e| BackupError::io(src, e))?;
                if hashing.read != len {
                    return Err(BackupError::io(
                        src,
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "file shrank while being copied",
                        ),
                    ));
                }
                let entry = FileEntry {
                    path: name.to_string(),
                    bytes: len,
                    sha256: hex::encode(hashing.hasher.finalize()),
                };
                entries.push(entry.clone());
                entry
            }
        };
        Ok(entry)
    }

    /// Writes `SHA256SUMS` over everything added, then completes the backup.
    pub fn finish(mut self) -> Result<PathBuf, BackupError> {
        let sums = match &self {
            Writer::Dir { entries, .. } | Writer::Tar { entries, .. } => sums_text(entries),
        };
        self.add_bytes(SUMS, sums.as_bytes())?;
        match self {
            Writer::Dir { root, .. } => {
                if let Ok(d) = File::open(&root) {
                    let _ = d.sync_all();
                }
                Ok(root)
            }
            Writer::Tar {
                builder,
                partial,
                target,
                ..
            } => {
                let out = builder
                    .into_inner()
                    .map_err(|e| BackupError::io(&partial, e))?;
                let file = out
                    .into_inner()
                    .map_err(|e| BackupError::io(&partial, e.into_error()))?;
                file.sync_all().map_err(|e| BackupError::io(&partial, e))?;
                std::fs::rename(&partial, &target).map_err(|e| BackupError::io(&target, e))?;
                if let Some(dir) = target.parent().and_then(|p| File::open(p).ok()) {
                    let _ = dir.sync_all();
                }
                Ok(target)
            }
        }
    }

    /// Removes what was written (a failed backup leaves nothing behind).
    pub fn abandon(self) {
        match self {
            Writer::Dir { root, entries } => {
                for e in entries {
                    let _ = std::fs::remove_file(root.join(&e.path));
                }
                for d in ["recordings", "messages"] {
                    let _ = std::fs::remove_dir(root.join(d));
                }
                let _ = std::fs::remove_dir(&root);
            }
            Writer::Tar { partial, .. } => {
                let _ = std::fs::remove_file(partial);
            }
        }
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

fn sums_text(entries: &[FileEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.path))
        .collect()
}

/// Parses `SHA256SUMS` (name -> hex digest), refusing unknown names and duplicates.
pub fn parse_sums(text: &str) -> Result<BTreeMap<String, String>, BackupError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || BackupError::Invalid(format!("{SUMS} line {}: `{line}`", i + 1));
        let (sha, name) = line.split_once("  ").ok_or_else(bad)?;
        let name = name.strip_prefix('*').unwrap_or(name);
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || !valid_name(name) {
            return Err(bad());
        }
        if out
            .insert(name.to_string(), sha.to_ascii_lowercase())
            .is_some()
        {
            return Err(BackupError::Invalid(format!(
                "{SUMS}: `{name}` listed twice"
            )));
        }
    }
    Ok(out)
}

/// Extracts a tar backup into the empty directory `dest`: regular files with valid names
/// only, each once.
pub fn extract_tar(src: &Path, dest: &Path) -> Result<(), BackupError> {
    let file = File::open(src).map_err(|e| BackupError::io(src, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut seen = std::collections::BTreeSet::new();
    for entry in archive.entries().map_err(|e| BackupError::io(src, e))? {
        let mut entry = entry.map_err(|e| BackupError::io(src, e))?;
        let path = entry.path().map_err(|e| BackupError::io(src, e))?;
        let name = path.to_string_lossy().to_string();
        if entry.header().entry_type() != tar::EntryType::Regular || !valid_name(&name) {
            return Err(BackupError::Invalid(format!(
                "{}: unexpected entry `{name}` (not an svi backup, or altered)",
                src.display()
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(BackupError::Invalid(format!(
                "{}: `{name}` appears twice",
                src.display()
            )));
        }
        let out = dest.join(&name);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent, e))?;
        }
        let len = entry.header().size().map_err(|e| BackupError::io(src, e))?;
        let mut to = BufWriter::new(File::create(&out).map_err(|e| BackupError::io(&out, e))?);
        copy_hashed(&mut entry, &mut to, len).map_err(|e| BackupError::io(src, e))?;
        to.flush().map_err(|e| BackupError::io(&out, e))?;
    }
    Ok(())
}

/// Checks every file `SHA256SUMS` lists under `root` against its digest; returns the
/// entries (name, size, digest). Files not listed are ignored (never restored).
pub fn verify_dir(root: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let sums_path = root.join(SUMS);
    let text = std::fs::read_to_string(&sums_path).map_err(|e| BackupError::io(&sums_path, e))?;
    let sums = parse_sums(&text)?;
    for needed in [DATABASE, MANIFEST] {
        if !sums.contains_key(needed) {
            return Err(BackupError::Invalid(format!(
                "{SUMS} does not list {needed}"
            )));
        }
    }
    let mut out = Vec::with_capacity(sums.len());
    for (name, want) in sums {
        let path = root.join(&name);
        if std::fs::symlink_metadata(&path)
            .map(|m| !m.file_type().is_file())
            .unwrap_or(true)
        {
            return Err(BackupError::Invalid(format!(
                "{}: missing or not a regular file",
                path.display()
            )));
        }
        let (bytes, got) = hash_file(&path)?;
        if got != want {
            return Err(BackupError::Checksum { file: name });
        }
        out.push(FileEntry {
            path: name,
            bytes,
            sha256: got,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_a_closed_set() {
        for ok in [
            "svi.db",
            "manifest.json",
            "SHA256SUMS",
            "recordings/c1.wav",
            "messages/m@x.wav",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/svi.db",
            "../svi.db",
            "recordings/../svi.db",
            "recordings/.hidden",
            "recordings/a/b.wav",
            "other/x",
            "recordings/",
            "svi.db/x",
            "recordings/a b.wav",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn sums_refuse_bad_lines_and_duplicates() {
        let sha = "a".repeat(64);
        assert!(parse_sums(&format!("{sha}  svi.db\n{sha}  *manifest.json\n")).is_ok());
        for bad in [
            format!("{sha} svi.db"),
            format!("{sha}  ../etc/passwd"),
            format!("{}  svi.db", "z".repeat(64)),
            format!("{sha}  svi.db\n{sha}  svi.db"),
        ] {
            assert!(parse_sums(&bad).is_err(), "{bad}");
        }
    }

    fn write_backup(target: &Path) {
        let src = tempfile::tempdir().expect("src");
        let wav = src.path().join("c1.wav");
        std::fs::write(&wav, b"RIFF....WAVE").expect("wav");
        let mut w = Writer::create(target).expect("create");
        w.add_bytes(DATABASE, b"db").expect("db");
        w.add_file("recordings/c1.wav", &wav).expect("wav");
        w.add_bytes(MANIFEST, b"{}").expect("manifest");
        w.finish().expect("finish");
    }

    #[test]
    fn a_tar_and_a_directory_hold_the_same_verified_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let tar_path = dir.path().join("b.tar");
        write_backup(&tar_path);
        assert!(!dir.path().join("b.tar.partial").exists());
        let out = dir.path().join("x");
        std::fs::create_dir(&out).expect("out");
        extract_tar(&tar_path, &out).expect("extract");
        let from_tar = verify_dir(&out).expect("verify tar");
        let as_dir = dir.path().join("d");
        write_backup(&as_dir);
        let from_dir = verify_dir(&as_dir).expect("verify dir");
        assert_eq!(from_tar, from_dir);
        assert_eq!(from_dir.len(), 3);
        // `sha256sum -c` reads the same file.
        let sums = std::fs::read_to_string(as_dir.join(SUMS)).expect("sums");
        assert!(sums.contains("  recordings/c1.wav\n"), "{sums}");
    }

    #[test]
    fn an_altered_file_or_entry_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("d");
        write_backup(&d);
        std::fs::write(d.join("recordings/c1.wav"), b"RIFF....WAVF").expect("alter");
        assert!(matches!(
            verify_dir(&d),
            Err(BackupError::Checksum { file }) if file == "recordings/c1.wav"
        ));
        // A tar with a path escaping the directory is refused before anything is written
        // outside it.
        let evil = dir.path().join("evil.tar");
        {
            let mut b = tar::Builder::new(File::create(&evil).expect("evil"));
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            // `append_data` refuses `..`; write the raw name as an attacker would.
            h.as_old_mut().name[..9].copy_from_slice(b"../x.wav\0");
            h.set_cksum();
            b.append(&h, &b"hi"[..]).expect("append");
            b.finish().expect("finish");
        }
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out");
        let err = extract_tar(&evil, &out).expect_err("refused");
        assert!(err.to_string().contains("unexpected entry"), "{err}");
        assert!(!dir.path().join("x.wav").exists());
        // Writing over an existing backup is refused.
        assert!(matches!(
            Writer::create(&d),
            Err(BackupError::TargetExists(_))
        ));
    }
}
