//! Recording copies between the full nodes of a pair: every recording ends up on both nodes,
//! and the replicated recording index says where each file is.
//!
//! The engine records a call on the node that took it (`<recordings dir>/<call id>.wav`)
//! and then writes the call's index entry through the replicated log (collection
//! `recordings`, keyed by call id: `file`, `bytes`, `sha256`, `origin`, `present_on`...).
//! Each full node runs a copier (`copier`) that looks for entries whose `present_on` lacks
//! its own name (`[node] name`), fetches the file from a member that has it over the
//! cluster link (`Request::FetchRecording`, chunks of `CHUNK` bytes, served by `serve`),
//! checks the SHA-256 against the index, and has the entry updated with its name.
//!
//! - `serve`: the server side: plain `<name>.wav` names only, from the recordings directory.
//! - `fetch`: one file copy as a resumable, verifiable sequence of chunks into
//!   `<file>.part`, independent of the network (tested with a local source).
//! - `copier`: the background loop: which file, from whom, retries, and the index update.
//!
//! Why a copy on the standby and not a shared disk: a pair must survive the loss of either
//! machine with its disks; the cluster link is already authenticated (HMAC per frame) and
//! between the two nodes.
//!
//! The index update is a `Put` of the whole entry with this node's name added to
//! `present_on` as a set (read-modify-write on the active node, which alone writes to the
//! log: a standby asks it with `Request::RecordingPresent`). Re-applying it is harmless, and
//! only the node lacking a file ever adds itself, so two writers cannot race on one entry.

mod copier;
mod fetch;
mod serve;

use crate::shared::Shared;
use crate::types::{Command, Raft};

pub(crate) use copier::run as run_copier;
pub(crate) use serve::read_chunk;

pub(crate) use engine::recording::index::COLLECTION;
pub(crate) use engine::recording::IndexEntry;

/// Bytes asked per fetch: small enough that a copy never holds the cluster link or the disk
/// for long, so calls and replication are not disturbed.
pub(crate) const CHUNK: u32 = 256 * 1024;

/// The most a server sends in one reply, whatever was asked (the frame limit is 8 MiB).
pub(crate) const MAX_CHUNK: u32 = 1024 * 1024;

/// A piece of a recording as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The file's size on the server.
    pub total: u64,
    /// The piece ends the file.
    pub eof: bool,
    pub bytes: Vec<u8>,
}

/// Checks a recording file name from the network or the index: a plain `<name>.wav` in the
/// recordings directory, never a path.
pub(crate) fn plain_wav_name(file: &str) -> Result<&str, String> {
    let ok = file.len() > ".wav".len()
        && file.len() <= 255
        && file.ends_with(".wav")
        && !file.starts_with('.')
        && !file.contains(['/', '\\', '\0'])
        && !file.contains("..");
    if ok {
        Ok(file)
    } else {
        Err(format!(
            "`{}` is not a recording file name (a plain `<call id>.wav`)",
            file.escape_debug()
        ))
    }
}

/// On the active node: rewrites the index entry of `call` with `node` in `present_on`.
pub(crate) async fn mark_present(
    shared: &Shared,
    raft: &Raft,
    call: &str,
    node: &str,
) -> Result<(), String> {
    let text = shared
        .storage
        .get_doc(COLLECTION, call)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no recording index entry for call {call}"))?;
    let mut entry: IndexEntry =
        serde_json::from_str(&text).map_err(|e| format!("index entry of call {call}: {e}"))?;
    if !entry.add_presence(node) {
        return Ok(());
    }
    let cmd = Command::Put {
        collection: COLLECTION.into(),
        key: call.into(),
        value: entry.to_doc(),
    };
    crate::shared::propose_with(shared, raft, cmd)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_wav_names_pass() {
        for good in ["c1.wav", "2026-11-21_abc.wav", "a.b.wav"] {
            assert_eq!(plain_wav_name(good), Ok(good));
        }
        for bad in [
            "",
            ".wav",
            "../x.wav",
            "a/b.wav",
            "/etc/passwd",
            "x..wav",
            "c1.json",
            "c1.wav.part",
            ".hidden.wav",
            "a\\b.wav",
            "a\0.wav",
        ] {
            assert!(plain_wav_name(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
