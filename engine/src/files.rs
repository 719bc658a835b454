//! Files the engine writes are its own: call records, recordings, messages, the raft log
//! and keys hold personal data or secrets, so nothing it creates is readable by other local
//! users. The binary sets the process umask to 077 at start ([`restrict_umask`]), so every
//! file is created 0600 and every directory 0700 from the first byte (a chmod afterwards
//! leaves a window); directories that must be private even when they already exist (where
//! the control socket and the TLS key live) go through [`create_private_dir`].
//!
//! The open-file limit: every call holds sockets and files, and so does every TCP or TLS
//! connection. The usual soft limit (1,024) is below what the default `sip.max_calls` needs,
//! and running out shows as calls refused for no visible reason. [`ensure_open_files`]
//! raises the soft limit at start to what the configuration needs, or refuses to start.

use std::path::Path;

use crate::config::{EngineConfig, SipTransport};

/// Descriptors a call may hold: RTP and RTCP sockets for two legs, a recording and its
/// journal.
const FILES_PER_CALL: u64 = 6;
/// Listeners, databases and their journals, logs, connector and cluster connections.
const FILES_BASE: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(
        "the open-file limit is {limit} (hard limit {hard}) but sip.max_calls = {max_calls} and \
         the TCP/TLS connection caps need {needed}: raise it (ulimit -n, LimitNOFILE= in a \
         systemd unit) or lower sip.max_calls or sip.tcp_max_connections"
    )]
    TooFewFiles {
        limit: u64,
        hard: u64,
        needed: u64,
        max_calls: usize,
    },
    #[error("cannot raise the open-file limit to {needed}: {source}")]
    Raise { needed: u64, source: std::io::Error },
}

/// The file descriptors `config` may need at its peak.
pub fn open_files_needed(config: &EngineConfig) -> u64 {
    let streams = config
        .sip
        .transports
        .iter()
        .filter(|t| matches!(t, SipTransport::Tcp | SipTransport::Tls))
        .count() as u64;
    (config.sip.max_calls as u64)
        .saturating_mul(FILES_PER_CALL)
        .saturating_add(streams.saturating_mul(config.sip.stream_limits.max_connections as u64))
        .saturating_add(FILES_BASE)
}

/// Raises the soft open-file limit to what `config` needs; the limit now in force.
#[cfg(unix)]
pub fn ensure_open_files(config: &EngineConfig) -> Result<u64, FilesError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let needed = open_files_needed(config);
    let now = getrlimit(Resource::Nofile);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= needed {
        return Ok(current);
    }
    let hard = now.maximum.unwrap_or(u64::MAX);
    if hard < needed {
        return Err(FilesError::TooFewFiles {
            limit: current,
            hard,
            needed,
            max_calls: config.sip.max_calls,
        });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: now.maximum,
        },
    )
    .map_err(|e| FilesError::Raise {
        needed,
        source: e.into(),
    })?;
    Ok(needed)
}

#[cfg(not(unix))]
pub fn ensure_open_files(config: &EngineConfig) -> Result<u64, FilesError> {
    Ok(open_files_needed(config))
}

/// Makes files created from now on private to the process's user (umask 077); returns the
/// previous mask.
#[cfg(unix)]
pub fn restrict_umask() -> u32 {
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    #[allow(clippy::useless_conversion)] // `RawMode` is u16 on some Unix systems.
    old.as_raw_mode().into()
}

#[cfg(not(unix))]
pub fn restrict_umask() -> u32 {
    0
}

/// A private key file: mode 0600 from its creation, synced.
pub use sip::transport::tls::write_private;

/// Creates `dir` (and its parents) with mode 0700, and takes group and other permissions
/// away from it when it already exists.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Binds a Unix socket at `path`, its directory made private first (so the socket is never
/// reachable by other local users, with no chmod afterwards), a stale socket replaced.
#[cfg(unix)]
pub fn bind_private_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let _ = std::fs::remove_file(path);
    tokio::net::UnixListener::bind(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dirs_are_made_and_fixed() {
        let root = tempfile::tempdir().expect("dir");
        let fresh = root.path().join("a/b");
        create_private_dir(&fresh).expect("created");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        let open = root.path().join("open");
        std::fs::create_dir(&open).expect("dir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(&open).expect("fixed");
        assert_eq!(mode(&open), 0o700);
    }
}
