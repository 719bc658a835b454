//! The cluster port: accepts members, authenticates them, and answers their requests.
//!
//! Raft RPCs go to openraft; `Hello`, `Yield` and the recording messages go to the node
//! (`NodeHooks`). Before a vote request reaches openraft, the node may refuse it: an active
//! node never grants a vote (see `role.rs`: this is what makes "fenced before anyone else is
//! elected" hold even when the candidate can reach the active node).
//!
//! Who calls: with pinned certificates (`tls`), the member whose certificate the peer holds,
//! and the id it claims in the channel handshake must be that one; without, the id it
//! claims with the shared secret. What it may ask depends on it: the witness takes part in
//! raft but cannot fetch a recording nor write (`Request::allowed_for_witness`).
//!
//! Outsiders are bounded: a connection must finish the handshake within a deadline, at most
//! `MAX_HANDSHAKES` run at once and `MAX_HANDSHAKES_PER_SOURCE` from one address, and
//! authenticated sessions have their own budget (`MAX_SESSIONS`), so a flood of
//! unauthenticated connections from one place cannot crowd out the members' replication.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::raft::VoteResponse;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::tls::ClusterTls;
use super::wire::{self, Channel, WireError};
use super::{Link, NetState, PeerInfo, Reply, Request};
use crate::config::Secret;
use crate::recordings::Chunk;
use crate::types::{LogId, MemberKind, NodeId, Raft};

const MAX_HANDSHAKES: usize = 16;
const MAX_HANDSHAKES_PER_SOURCE: usize = 4;
const MAX_SESSIONS: usize = 64;

/// What the server asks of the node for svi's own messages.
pub(crate) trait NodeHooks: Send + Sync + 'static {
    fn hello(&self) -> impl Future<Output = PeerInfo> + Send;
    /// `Some(answer)` refuses a vote request with that answer: this node is active, or the
    /// leader it follows may still hold its lease (`leader_link`).
    fn refuse_vote(&self) -> Option<VoteResponse<NodeId>>;
    /// Whether this node would vote now for a candidate with `last_log_id`, and its own
    /// last log id. Changes nothing (no term, no vote).
    fn pre_vote(
        &self,
        last_log_id: Option<LogId>,
    ) -> impl Future<Output = (bool, Option<LogId>)> + Send;
    fn yield_leadership(
        &self,
        to: NodeId,
    ) -> impl Future<Output = Result<Option<u64>, String>> + Send;
    fn take_over(&self) -> impl Future<Output = bool> + Send;
    /// A piece of one of this node's recordings (see `recordings::serve`).
    fn fetch_recording(
        &self,
        file: String,
        offset: u64,
        max: u32,
    ) -> impl Future<Output = Result<Chunk, String>> + Send;
    /// Adds `node` to the index entry of `call` (on the active node only).
    fn recording_present(
        &self,
        call: String,
        node: String,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Commits a write forwarded by member `from` (on the active node only).
    fn propose(
        &self,
        from: NodeId,
        cmd: crate::types::Command,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

pub(crate) struct Server<H> {
    pub(crate) me: NodeId,
    pub(crate) secret: Secret,
    pub(crate) members: BTreeMap<NodeId, MemberKind>,
    /// The members' cluster addresses (to check whether a leader that closed its
    /// connections still listens).
    pub(crate) addrs: BTreeMap<NodeId, String>,
    /// Source address of that check (see `client::Network::bind`).
    pub(crate) bind: Option<IpAddr>,
    /// How long that check may take.
    pub(crate) probe_timeout: Duration,
    /// Pinned member certificates (None: the shared-secret channel alone).
    pub(crate) tls: Option<Arc<ClusterTls>>,
    pub(crate) raft: Raft,
    pub(crate) state: Arc<NetState>,
    pub(crate) hooks: Arc<H>,
    pub(crate) handshake_timeout: Duration,
}

impl<H: NodeHooks> Server<H> {
    /// Serves until the task is aborted (aborting drops the connection tasks too).
    pub(crate) async fn run(self: Arc<Self>, listener: TcpListener) {
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let sources = Arc::new(Sources::default());
        let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "cluster port accept failed");
                            continue;
                        }
                    };
                    let Some(slot) = sources.take(peer.ip()) else {
                        tracing::warn!(%peer, "too many cluster handshakes from this address; closing");
                        continue;
                    };
                    let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "too many cluster handshakes in progress; closing");
                        continue;
                    };
                    let me = self.clone();
                    let sessions = sessions.clone();
                    conns.spawn(async move {
                        me.connection(stream, peer, (permit, slot), sessions).await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }

    async fn connection(
        &self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        handshake: (OwnedSemaphorePermit, SourceSlot),
        sessions: Arc<Semaphore>,
    ) {
        let _ = stream.set_nodelay(true);
        let hs = async {
            let (link, pinned): (Link, Option<NodeId>) = match &self.tls {
                Some(tls) => {
                    let (s, member) = tls.accept(stream).await.map_err(WireError::Tls)?;
                    (Box::new(s), Some(member))
                }
                None => (Box::new(stream), None),
            };
            // The claimed id must be a member, not us, and the pinned certificate's owner.
            wire::server(link, &self.secret, self.me, |id| {
                self.members.contains_key(&id)
                    && id != self.me
                    && pinned.is_none_or(|member| member == id)
            })
            .await
        };
        let (mut ch, from) = match tokio::time::timeout(self.handshake_timeout, hs).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                if e.is_refusal() {
                    self.state.count_auth_failure();
                    tracing::warn!(%peer, error = %e, "refused a cluster connection");
                }
                return;
            }
            Err(_) => return,
        };
        drop(handshake);
        let Ok(_session) = sessions.try_acquire_owned() else {
            tracing::warn!(%peer, "too many cluster sessions; closing");
            return;
        };
        // Whether this connection carries a leader's heartbeats: its end then counts towards
        // "the leader closed every connection" (`leader_link`).
        let mut leader_link = LinkGuard {
            server: self,
            leader: None,
        };
        while let Ok((json, bin)) = ch.recv().await {
            if self.state.isolated() {
                return;
            }
            let (reply, attachment) = match serde_json::from_slice::<Request>(&json) {
                Ok(req) => {
                    if leader_link.leader.is_none() && is_leader_message(&req) {
                        leader_link.leader = Some(from);
                        self.state.leader_link_opened(from);
                    }
                    self.handle(req, bin, from).await
                }
                Err(e) => (Reply::Refused(format!("bad request: {e}")), Vec::new()),
            };
            if self.state.isolated() || send(&mut ch, &reply, &attachment).await.is_err() {
                return;
            }
        }
    }

    /// The reply and its attachment (only recording chunks have one).
    async fn handle(&self, req: Request, attachment: Vec<u8>, from: NodeId) -> (Reply, Vec<u8>) {
        if self.members.get(&from) == Some(&MemberKind::Witness) && !req.allowed_for_witness() {
            tracing::warn!(member = from, "refused a request the witness may not make");
            return (
                Reply::Refused("not allowed for the witness".into()),
                Vec::new(),
            );
        }
        let reply = match req {
            Request::Hello => Reply::Hello(self.hooks.hello().await),
            Request::AppendEntries(rpc) => {
                if rpc.vote.is_committed() {
                    self.state.leader_contact(from);
                }
                Reply::AppendEntries(self.raft.append_entries(rpc).await)
            }
            Request::Vote(rpc) => match self.hooks.refuse_vote() {
                Some(answer) => {
                    tracing::info!(
                        candidate = from,
                        "vote refused: this node is active or follows a leader"
                    );
                    Reply::Vote(Ok(answer))
                }
                None => Reply::Vote(self.raft.vote(rpc).await),
            },
            Request::PreVote { last_log_id } => {
                let (granted, mine) = self.hooks.pre_vote(last_log_id).await;
                Reply::PreVote {
                    granted,
                    last_log_id: mine,
                }
            }
            Request::InstallSnapshot(mut rpc) => {
                self.state.leader_contact(from);
                rpc.data = attachment;
                Reply::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            Request::Yield => Reply::Yield(self.hooks.yield_leadership(from).await),
            Request::TakeOver => Reply::TakeOver(self.hooks.take_over().await),
            Request::FetchRecording { file, offset, max } => {
                return match self.hooks.fetch_recording(file, offset, max).await {
                    Ok(c) => (
                        Reply::Chunk {
                            total: c.total,
                            eof: c.eof,
                        },
                        c.bytes,
                    ),
                    Err(e) => (Reply::Refused(e), Vec::new()),
                };
            }
            Request::RecordingPresent { call, node } => {
                Reply::Present(self.hooks.recording_present(call, node).await)
            }
            Request::Propose(cmd) => Reply::Proposed(self.hooks.propose(from, cmd).await),
        };
        (reply, Vec::new())
    }
}

/// A message only a leader sends: its heartbeats and entries (with a committed vote).
fn is_leader_message(req: &Request) -> bool {
    matches!(req, Request::AppendEntries(rpc) if rpc.vote.is_committed())
}

/// Reports the end of a connection that carried a leader's heartbeats, however it ends;
/// when it was the leader's last one, checks whether the leader still listens.
struct LinkGuard<'a, H> {
    server: &'a Server<H>,
    leader: Option<NodeId>,
}

impl<H> Drop for LinkGuard<'_, H> {
    fn drop(&mut self) {
        let Some(leader) = self.leader else { return };
        let server = self.server;
        if !server.state.leader_link_closed(leader) {
            return;
        }
        let (Some(addr), Ok(rt)) = (
            server.addrs.get(&leader).cloned(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let (state, bind, within) = (server.state.clone(), server.bind, server.probe_timeout);
        let heard = state.last_leader_contact();
        rt.spawn(async move {
            // Twice: a dying process may close its connections a moment before its port.
            for again in [true, false] {
                if super::client::refuses(&addr, bind, within).await {
                    tracing::info!(
                        leader,
                        "the leader closed its connections and its port refuses: it is gone"
                    );
                    state.leader_refused(leader);
                    return;
                }
                if !again {
                    return;
                }
                tokio::time::sleep(within / 5).await;
                if state.last_leader_contact() != heard {
                    return;
                }
            }
        });
    }
}

/// Handshakes in progress per source address (`MAX_HANDSHAKES_PER_SOURCE`).
#[derive(Default)]
struct Sources(Mutex<HashMap<IpAddr, usize>>);

/// One handshake slot of a source, given back when dropped.
pub(crate) struct SourceSlot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(ip).or_default();
        if *n >= MAX_HANDSHAKES_PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.sources.0.lock() {
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

async fn send(ch: &mut Channel<Link>, reply: &Reply, attachment: &[u8]) -> Result<(), WireError> {
    let json = serde_json::to_vec(reply).map_err(|e| WireError::Io(std::io::Error::other(e)))?;
    ch.send(&json, attachment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_holds_at_most_its_share_of_the_handshake_slots() {
        let sources = Arc::new(Sources::default());
        let flood: IpAddr = "192.0.2.66".parse().expect("ip");
        let member: IpAddr = "192.0.2.12".parse().expect("ip");
        let held: Vec<SourceSlot> = (0..MAX_HANDSHAKES_PER_SOURCE)
            .map(|_| sources.take(flood).expect("a slot"))
            .collect();
        assert!(
            sources.take(flood).is_none(),
            "one more from the flooding host"
        );
        let _member = sources
            .take(member)
            .expect("another host still gets a slot");
        drop(held);
        assert!(sources.take(flood).is_some(), "slots come back when done");
    }
}
