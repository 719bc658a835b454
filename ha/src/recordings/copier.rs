//! The background copier of a full node: finds the index entries whose `present_on` lacks
//! this node, copies their files one at a time, and has the entries updated.
//!
//! When: a pass runs every `SCAN_EVERY`, and soon after the node applies new log entries
//! (a new index entry arrives that way), at most once per `MIN_GAP`. A pass is one SQL
//! query for the keys lacking this node, then one file after another.
//!
//! From whom: the other full members, those the entry names first (its `origin` first).
//! Entries name nodes by `[node] name`; members are raft ids: the names are learned from
//! each member's `Hello` answer.
//!
//! Failures: a file that could not be copied (no member has it, the link is down, the
//! SHA-256 differs) is retried after a delay that doubles from `RETRY_MIN` to `RETRY_MAX`;
//! the partial copy is kept unless it cannot be trusted, so the next try resumes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fetch::{copy_file, ChunkSource, Copied, CopyError, Expected};
use super::{plain_wav_name, Chunk, IndexEntry, CHUNK, COLLECTION};
use crate::config::RecordingStore;
use crate::network::client::PeerClient;
use crate::network::{Reply, Request};
use crate::node::HaNode;
use crate::types::{MemberKind, NodeId, NodeInfo};

const SCAN_EVERY: Duration = Duration::from_secs(5);
const MIN_GAP: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Deadline of one chunk request (connect, handshake, read, transfer).
const CHUNK_TTL: Duration = Duration::from_secs(10);
/// Pause between two chunks: caps a copy at about 10 MiB/s (a one-hour recording, 115 MB,
/// in a dozen seconds), leaving the disk and the link to calls and replication.
const CHUNK_GAP: Duration = Duration::from_millis(25);

/// Runs until the task is aborted (`HaNode::shutdown`).
pub(crate) async fn run(node: Arc<HaNode>, store: RecordingStore) {
    let mut copier = Copier {
        node,
        store,
        names: BTreeMap::new(),
        retry: HashMap::new(),
        down: BTreeSet::new(),
    };
    let mut tick = tokio::time::interval(SCAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        // Re-read each time: a forced promotion replaces the raft instance.
        let mut metrics = copier.node.raft().await.ok().map(|r| r.metrics());
        let seen = metrics.as_ref().and_then(|m| applied(&m.borrow()));
        let began = Instant::now();
        copier.pass().await;
        tokio::select! {
            _ = tick.tick() => {}
            _ = applied_moved(&mut metrics, seen) => {
                tokio::time::sleep_until(began + MIN_GAP).await;
            }
        }
    }
}

type Metrics = openraft::RaftMetrics<NodeId, NodeInfo>;

fn applied(m: &Metrics) -> Option<u64> {
    m.last_applied.map(|l| l.index)
}

/// Resolves once the node has applied past `seen` (never without metrics).
async fn applied_moved(metrics: &mut Option<watch::Receiver<Metrics>>, seen: Option<u64>) {
    if let Some(m) = metrics {
        if m.wait_for(|m| applied(m) != seen).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

struct Copier {
    node: Arc<HaNode>,
    store: RecordingStore,
    /// Member id -> `[node] name`, from their `Hello`.
    names: BTreeMap<NodeId, String>,
    /// Call id -> (failures so far, not before).
    retry: HashMap<String, (u32, Instant)>,
    /// Members that could not be reached during this pass: not tried again before the
    /// next one (a host that is down would cost a timeout per file).
    down: BTreeSet<NodeId>,
}

impl Copier {
    async fn pass(&mut self) {
        let me = self.store.node_name.clone();
        let keys = match self
            .node
            .storage()
            .doc_keys_lacking(COLLECTION, "$.present_on", &me)
            .await
        {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "recording copy: cannot read the index");
                return;
            }
        };
        let now = Instant::now();
        self.down.clear();
        let wanted: HashSet<&String> = keys.iter().collect();
        self.retry.retain(|k, _| wanted.contains(k));
        for key in keys {
            if self.retry.get(&key).is_some_and(|(_, at)| *at > now) {
                continue;
            }
            match self.one(&key).await {
                Ok(()) => {
                    self.retry.remove(&key);
                }
                Err(()) => {
                    let n = self.retry.get(&key).map_or(0, |(n, _)| *n);
                    let delay = RETRY_MIN.saturating_mul(1 << n.min(10)).min(RETRY_MAX);
                    self.retry.insert(key, (n + 1, Instant::now() + delay));
                }
            }
        }
    }

    /// Copies the recording of `call` if needed, then updates its index entry. Errors are
    /// logged here.
    async fn one(&mut self, call: &str) -> Result<(), ()> {
        let storage = self.node.storage();
        let entry = match storage.get_doc(COLLECTION, call).await {
            Ok(Some(text)) => serde_json::from_str::<IndexEntry>(&text).map_err(|e| {
                tracing::error!(call, error = %e, "recording index entry unreadable; not copied");
            })?,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(call, error = %e, "recording copy: cannot read the index");
                return Err(());
            }
        };
        let me = self.store.node_name.clone();
        if entry.present_on.contains(&me) {
            return Ok(());
        }
        let file = plain_wav_name(&entry.file).map_err(|e| {
            tracing::error!(call, error = %e, "recording index entry names no valid file; not copied");
        })?;
        let want = Expected {
            file,
            bytes: entry.bytes,
            sha256: entry.sha256.as_deref(),
        };
        let started = Instant::now();
        let mut copied = None;
        let mut refused = false;
        // Already here (copied before the index was updated, or this node's own file):
        // checked without asking anyone.
        if self.store.dir.join(file).exists() {
            match copy_file(&mut NoSource, &self.store.dir, want, CHUNK).await {
                Ok(c) => copied = Some((self.node.id(), c)),
                Err(e) => {
                    tracing::error!(call, error = %e, "recording copy: the file here does not match the index");
                    return Err(());
                }
            }
        }
        if copied.is_none() {
            // The disk guard of every writer of audio (the alarm is raised there).
            let _ = tokio::fs::create_dir_all(&self.store.dir).await;
            let guard = engine::recording::disk_guard(
                &self.store.dir,
                self.store.min_free_bytes,
                "recording copy",
            );
            if guard.is_err() {
                return Err(());
            }
        }
        let sources = match copied {
            Some(_) => Vec::new(),
            None => self.sources(&entry).await,
        };
        for (id, addr) in sources {
            let mut src = Remote {
                client: self.node.client(id, &addr),
                first: true,
                unreachable: false,
            };
            match copy_file(&mut src, &self.store.dir, want, CHUNK).await {
                Ok(c) => {
                    copied = Some((id, c));
                    break;
                }
                Err(e @ (CopyError::Mismatch { .. } | CopyError::LocalDiffers { .. })) => {
                    tracing::error!(call, from = id, error = %e, "recording copy failed; will retry");
                    return Err(());
                }
                Err(e @ CopyError::Io { .. }) => {
                    tracing::error!(call, error = %e, "recording copy: cannot write here; will retry");
                    return Err(());
                }
                Err(e) => {
                    if src.unreachable {
                        self.down.insert(id);
                    } else {
                        refused = true;
                    }
                    tracing::debug!(call, from = id, error = %e, "recording not copied from this member");
                }
            }
        }
        let Some((from, copied)) = copied else {
            // A member answered without the file: worth a warning (it may be lost). None
            // answered: the other node is down, which its own alarms already say.
            if refused {
                tracing::warn!(
                    call,
                    file,
                    "recording copy: no member could send it; will retry"
                );
            } else {
                tracing::debug!(
                    call,
                    file,
                    "recording copy: no member reachable; will retry"
                );
            }
            return Err(());
        };
        if let Copied::Done { fetched, total } = copied {
            tracing::info!(
                call,
                file,
                from,
                bytes = total,
                fetched,
                ms = started.elapsed().as_millis() as u64,
                "recording copied"
            );
        }
        match self.node.recording_present(call, &me).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(call, error = %e, "recording index not updated yet; will retry");
                Err(())
            }
        }
    }

    /// The other full members with their cluster addresses: those the entry names first
    /// (its origin first), then the rest (an index update may have been lost).
    async fn sources(&mut self, entry: &IndexEntry) -> Vec<(NodeId, String)> {
        let me = self.node.id();
        let peers: Vec<(NodeId, String)> = self
            .node
            .members()
            .into_iter()
            .filter(|(id, info)| {
                *id != me && info.kind == MemberKind::Full && !self.down.contains(id)
            })
            .map(|(id, info)| (id, info.cluster_addr))
            .collect();
        for (id, addr) in &peers {
            if !self.names.contains_key(id) {
                if let Some(name) = self.node.peer_name(*id, addr).await {
                    self.names.insert(*id, name);
                }
            }
        }
        let rank = |id: &NodeId| {
            let name = self.names.get(id);
            if name.is_some() && name == entry.origin.as_ref() {
                0
            } else if name.is_some_and(|n| entry.present_on.contains(n)) {
                1
            } else {
                2
            }
        };
        let mut peers = peers;
        peers.sort_by_key(|(id, _)| rank(id));
        peers
    }
}

/// For a file already here: `copy_file` checks it without fetching anything.
struct NoSource;

impl ChunkSource for NoSource {
    async fn fetch(&mut self, file: &str, _: u64, _: u32) -> Result<Chunk, String> {
        Err(format!("{file} is not here"))
    }
}

/// Chunks from another member over the cluster link, one request at a time, paced.
struct Remote {
    client: PeerClient,
    first: bool,
    /// The last request failed on the link (not refused by the member).
    unreachable: bool,
}

impl ChunkSource for Remote {
    async fn fetch(&mut self, file: &str, offset: u64, max: u32) -> Result<Chunk, String> {
        if !self.first {
            tokio::time::sleep(CHUNK_GAP).await;
        }
        self.first = false;
        let req = Request::FetchRecording {
            file: file.into(),
            offset,
            max,
        };
        match self.client.call(&req, &[], CHUNK_TTL).await {
            Ok((Reply::Chunk { total, eof }, bytes)) => Ok(Chunk { total, eof, bytes }),
            Ok((Reply::Refused(e), _)) => Err(e),
            Ok(_) => Err("unexpected reply".into()),
            Err(e) => {
                self.unreachable = true;
                Err(e.to_string())
            }
        }
    }
}
