//! The cluster network: raft RPCs (append-entries, vote, snapshot chunks) and a few svi
//! messages (hello, yield, recording chunks) between members, over TCP on the cluster port,
//! inside TLS when the members' certificates are pinned.
//!
//! - `tls`: each member's certificate, pinned by fingerprint; who a peer is;
//! - `wire`: the authenticated channel (shared-secret handshake, MAC on every frame);
//! - `client`: one connection per openraft client, every call under a deadline;
//! - `server`: the listener, which hands raft RPCs to openraft and svi messages to the node,
//!   within what the calling member may ask.
//!
//! A lean framed protocol rather than HTTP: raft needs request/response on a long-lived
//! connection and nothing else, so axum/reqwest would add two stacks for no feature. The
//! messages are JSON (the same serde types openraft defines), snapshot and recording bytes
//! ride as a raw attachment.

pub(crate) mod client;
pub(crate) mod leader_link;
pub(crate) mod server;
pub(crate) mod tls;
pub(crate) mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use leader_link::LeaderLink;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::types::{NodeId, TypeConfig};

/// The byte stream under a channel: TCP, or TLS over TCP.
pub(crate) trait LinkIo: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> LinkIo for T {}
pub(crate) type Link = Box<dyn LinkIo>;

/// A request from one member to another.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// Who are you, are you initialised, is your configuration the same as mine?
    Hello,
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// The chunk's bytes travel as the frame's attachment (`data` is empty here).
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Sent to the leader by a node being promoted: stop being active and let me win.
    Yield,
    /// Sent by a witness that had to lead: please promote yourself (`witness` handover).
    TakeOver,
    /// Up to `max` bytes of the recording `file` (a plain `<call id>.wav` name in the
    /// recordings directory) from `offset`; answered by `Reply::Chunk` with the bytes as
    /// attachment (see `recordings`).
    FetchRecording {
        file: String,
        offset: u64,
        max: u32,
    },
    /// Sent to the leader by a node that now holds the recording of `call`: add `node` to
    /// the index entry's `present_on` (a standby cannot write to the log itself).
    RecordingPresent {
        call: String,
        node: String,
    },
    /// Sent to the leader by a full node that is not active: commit this write (the records
    /// of the calls it finishes, its spooled writes; see `writer`).
    Propose(crate::types::Command),
    /// Would you vote for a candidate with this last log id now? Asked by a standby before
    /// it raises its term (`campaign`): the answer changes nothing on the voter.
    PreVote {
        last_log_id: Option<crate::types::LogId>,
    },
}

impl Request {
    /// What the witness may ask: take part in raft and hand over leadership. Not fetch a
    /// recording, nor write, nor ask to be made active (it holds no call data to serve).
    pub(crate) fn allowed_for_witness(&self) -> bool {
        match self {
            Request::Hello
            | Request::AppendEntries(_)
            | Request::Vote(_)
            | Request::InstallSnapshot(_)
            | Request::PreVote { .. }
            | Request::TakeOver => true,
            Request::Yield
            | Request::FetchRecording { .. }
            | Request::RecordingPresent { .. }
            | Request::Propose(_) => false,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    Hello(PeerInfo),
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The yielding leader's last log index (the promoted node waits to have it).
    Yield(Result<Option<u64>, String>),
    /// Whether the node started promoting itself.
    TakeOver(bool),
    /// A piece of a recording: the attachment holds the bytes from the requested offset;
    /// `total` is the file's size, `eof` says the piece ends the file.
    Chunk {
        total: u64,
        eof: bool,
    },
    /// The index entry was updated (or already said so).
    Present(Result<(), String>),
    /// The forwarded write is committed (or why not).
    Proposed(Result<(), String>),
    /// The answer to a pre-vote, with the voter's last log id.
    PreVote {
        granted: bool,
        last_log_id: Option<crate::types::LogId>,
    },
    /// The request could not be handled (e.g. raft is shutting down).
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerInfo {
    pub node: NodeId,
    /// Has a vote or log entries: part of a formed cluster.
    pub initialized: bool,
    /// `HaConfig::digest`: members and timings must match across the cluster.
    pub digest: String,
    /// `[node] name`, as the recording index names nodes (absent on the witness).
    #[serde(default)]
    pub name: Option<String>,
    /// The newest raft log format the member reads (`log_format`; absent, so 0, on a
    /// release before group commit).
    #[serde(default)]
    pub log_format: u32,
}

/// State shared by the client side, the server and the node: counters, the leader's last
/// message and connections (`LeaderLink`), and the partition hook used by tests.
#[derive(Debug)]
pub(crate) struct NetState {
    isolated: AtomicBool,
    auth_failures: tokio::sync::watch::Sender<u64>,
    // Std mutexes around plain values: held for one read or write, never across an await.
    leader: Mutex<LeaderLink>,
    /// Woken when the leader's last connection closes (the standby may campaign sooner).
    leader_lost: tokio::sync::Notify,
    longer_log_reported: Mutex<Option<Instant>>,
}

impl NetState {
    pub(crate) fn new() -> NetState {
        NetState {
            isolated: AtomicBool::new(false),
            auth_failures: tokio::sync::watch::channel(0).0,
            leader: Mutex::new(LeaderLink::default()),
            leader_lost: tokio::sync::Notify::new(),
            longer_log_reported: Mutex::new(None),
        }
    }

    /// Drops all traffic to and from this node while set (simulated partition).
    #[cfg(test)]
    pub(crate) fn set_isolated(&self, on: bool) {
        self.isolated.store(on, Ordering::SeqCst);
    }

    pub(crate) fn isolated(&self) -> bool {
        self.isolated.load(Ordering::SeqCst)
    }

    pub(crate) fn count_auth_failure(&self) {
        self.auth_failures.send_modify(|n| *n += 1);
    }

    /// Connections refused (or peers rejected) for a bad secret or an unknown id, so far.
    pub(crate) fn auth_failures(&self) -> tokio::sync::watch::Receiver<u64> {
        self.auth_failures.subscribe()
    }

    /// A leader (`from`) sent entries, a heartbeat or a snapshot chunk to this node.
    pub(crate) fn leader_contact(&self, from: NodeId) {
        if let Ok(mut l) = self.leader.lock() {
            l.contact(from, Instant::now());
        }
    }

    /// A connection started carrying `from`'s heartbeats.
    pub(crate) fn leader_link_opened(&self, from: NodeId) {
        if let Ok(mut l) = self.leader.lock() {
            l.opened(from);
        }
    }

    /// A connection that carried `from`'s heartbeats closed; true when it was the last one.
    pub(crate) fn leader_link_closed(&self, from: NodeId) -> bool {
        self.leader
            .lock()
            .is_ok_and(|mut l| l.closed(from, Instant::now()))
    }

    /// A connection to `from`'s cluster port was refused (after its links closed).
    pub(crate) fn leader_refused(&self, from: NodeId) {
        let lost = match self.leader.lock() {
            Ok(mut l) => {
                l.refused(from, Instant::now());
                l.lost()
            }
            Err(_) => false,
        };
        if lost {
            self.leader_lost.notify_waiters();
        }
    }

    /// Resolves when the leader's process is found gone (`leader_link`).
    pub(crate) async fn leader_link_lost(&self) {
        self.leader_lost.notified().await
    }

    /// When a leader last sent entries, a heartbeat or a snapshot chunk to this node.
    pub(crate) fn last_leader_contact(&self) -> Option<Instant> {
        self.leader.lock().ok().and_then(|l| l.heard())
    }

    /// The leader heard last has closed every connection to this node since, and its port
    /// then refused a connection.
    pub(crate) fn leader_gone(&self) -> bool {
        self.leader.lock().is_ok_and(|l| l.lost())
    }

    /// Whether this node may vote for a new leader now (see `leader_link`).
    pub(crate) fn may_vote(&self, t: &crate::config::Timings) -> bool {
        self.leader
            .lock()
            .is_ok_and(|l| l.may_vote(Instant::now(), t))
    }

    pub(crate) fn longer_log_reported(&self) {
        if let Ok(mut t) = self.longer_log_reported.lock() {
            *t = Some(Instant::now());
        }
    }

    /// When a voter last answered a vote request of this node with a longer log than the
    /// one the request carried (so that voter, not this node, can be elected).
    pub(crate) fn last_longer_log_report(&self) -> Option<Instant> {
        self.longer_log_reported.lock().ok().and_then(|t| *t)
    }
}
