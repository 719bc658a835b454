//! Calling another member: a lazily (re)connected authenticated channel per client (inside
//! TLS to the certificate pinned for that member, when pins are configured), and openraft's
//! `RaftNetwork` on top of it.
//!
//! openraft creates one client per replication stream and per election, and calls it with
//! `&mut self`, so a client owns its connection and needs no lock: one request in flight.
//! Every call runs under a deadline (openraft's TTL for raft RPCs, the caller's for svi
//! messages) that covers connect, handshake, request and reply; any failure drops the
//! connection so that the next call starts clean.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use tokio::net::{TcpSocket, TcpStream};

use super::tls::ClusterTls;
use super::wire::{self, Channel, WireError};
use super::{Link, NetState, Reply, Request};
use crate::config::Secret;
use crate::types::{NodeId, NodeInfo, TypeConfig};

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("node {0} unreachable: {1}")]
    Unreachable(NodeId, String),
    #[error("node {0}: {1}")]
    Failed(NodeId, String),
    #[error("node {0} did not answer within {1:?}")]
    Timeout(NodeId, Duration),
    #[error("node {0} sent an unexpected reply")]
    Unexpected(NodeId),
}

/// The longest pause between two attempts to reach an unreachable node.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// Pauses between attempts to reach an unreachable node: `first`, doubling up to `MAX_RETRY`.
fn backoff(first: Duration) -> impl Iterator<Item = Duration> + Send + 'static {
    let first = first.clamp(Duration::from_millis(1), MAX_RETRY);
    std::iter::successors(Some(first), |d| Some((*d * 2).min(MAX_RETRY)))
}

/// Builds clients; cheap to clone.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) me: NodeId,
    pub(crate) secret: Secret,
    pub(crate) state: Arc<NetState>,
    /// First pause before retrying an unreachable node (doubling up to `MAX_RETRY`).
    pub(crate) retry: Duration,
    /// Source address of outgoing connections: the cluster port's address when it is a
    /// specific one, so that the members' traffic leaves from the cluster network (and a
    /// firewall rule on that address covers both directions).
    pub(crate) bind: Option<IpAddr>,
    /// TLS with pinned member certificates (None: the shared-secret channel alone).
    pub(crate) tls: Option<Arc<ClusterTls>>,
}

impl Network {
    pub(crate) fn client(&self, target: NodeId, addr: &str) -> PeerClient {
        PeerClient {
            net: self.clone(),
            target,
            addr: addr.to_string(),
            conn: None,
        }
    }
}

pub(crate) struct PeerClient {
    net: Network,
    target: NodeId,
    addr: String,
    conn: Option<Channel<Link>>,
}

impl PeerClient {
    /// One request/reply under `ttl`.
    pub(crate) async fn call(
        &mut self,
        req: &Request,
        attachment: &[u8],
        ttl: Duration,
    ) -> Result<(Reply, Vec<u8>), CallError> {
        if self.net.state.isolated() {
            return Err(CallError::Unreachable(
                self.target,
                "isolated (test hook)".into(),
            ));
        }
        let fresh = self.conn.is_none();
        let res = tokio::time::timeout(ttl, self.call_inner(req, attachment)).await;
        let err = match res {
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) => e,
            Err(_) => CallError::Timeout(self.target, ttl),
        };
        self.conn = None;
        // A connection made for this call that fails at once (refused, closed before or right
        // after the handshake: "early eof") means the peer cannot be reached now, not a
        // broken exchange worth retrying at once: openraft then backs off (`backoff`) instead
        // of reconnecting every few milliseconds.
        Err(match err {
            CallError::Failed(target, why) if fresh => CallError::Unreachable(target, why),
            e => e,
        })
    }

    async fn call_inner(
        &mut self,
        req: &Request,
        attachment: &[u8],
    ) -> Result<(Reply, Vec<u8>), CallError> {
        let target = self.target;
        let failed = |e: WireError| CallError::Failed(target, e.to_string());
        if self.conn.is_none() {
            let stream = connect(&self.addr, self.net.bind)
                .await
                .map_err(|e| CallError::Unreachable(target, e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let link: Link = match &self.net.tls {
                Some(tls) => Box::new(tls.connect(target, stream).await.map_err(|e| {
                    // rustls reports a refused certificate as invalid data.
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.net.state.count_auth_failure();
                        tracing::warn!(peer = target, error = %e, "cluster peer refused: its certificate is not the one pinned for it");
                    }
                    CallError::Failed(target, format!("TLS: {e}"))
                })?),
                None => Box::new(stream),
            };
            let ch = wire::client(link, &self.net.secret, self.net.me, target)
                .await
                .map_err(|e| {
                    if matches!(e, WireError::BadProof) {
                        self.net.state.count_auth_failure();
                        tracing::warn!(
                            peer = target,
                            "cluster peer failed authentication (shared secret differs?)"
                        );
                    }
                    failed(e)
                })?;
            self.conn = Some(ch);
        }
        let Some(ch) = self.conn.as_mut() else {
            return Err(CallError::Unreachable(target, "no connection".into()));
        };
        let json = serde_json::to_vec(req).map_err(|e| CallError::Failed(target, e.to_string()))?;
        ch.send(&json, attachment).await.map_err(failed)?;
        let (json, bin) = ch.recv().await.map_err(failed)?;
        let reply: Reply =
            serde_json::from_slice(&json).map_err(|e| CallError::Failed(target, e.to_string()))?;
        Ok((reply, bin))
    }

    fn rpc_err<E: std::error::Error>(&self, e: CallError) -> RPCError<NodeId, NodeInfo, E> {
        match e {
            CallError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

/// Whether a TCP connection to `addr` is refused within `within` (nothing listens there).
/// A connection that opens is closed at once; a timeout is not a refusal.
pub(crate) async fn refuses(addr: &str, bind: Option<IpAddr>, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(within, connect(addr, bind)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Connects to `addr` (`host:port`), from `bind` when given and of the same family.
async fn connect(addr: &str, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = bind else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        let socket = match (ip, target) {
            (IpAddr::V4(_), SocketAddr::V4(_)) => TcpSocket::new_v4()?,
            (IpAddr::V6(_), SocketAddr::V6(_)) => TcpSocket::new_v6()?,
            _ => continue,
        };
        socket.bind(SocketAddr::new(ip, 0))?;
        match socket.connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e),
        // No address of the bind address's family: let the system choose the source.
        None => TcpStream::connect(addr).await,
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        self.client(target, &node.cluster_addr)
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let (reply, _) = self
            .call(&Request::AppendEntries(rpc), &[], option.hard_ttl())
            .await
            .map_err(|e| self.rpc_err(e))?;
        match reply {
            Reply::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.rpc_err(CallError::Unexpected(self.target))),
        }
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let data = std::mem::take(&mut rpc.data);
        let (reply, _) = self
            .call(&Request::InstallSnapshot(rpc), &data, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_err(e))?;
        match reply {
            Reply::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.rpc_err(CallError::Unexpected(self.target))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let mine = rpc.last_log_id;
        let (reply, _) = self
            .call(&Request::Vote(rpc), &[], option.hard_ttl())
            .await
            .map_err(|e| self.rpc_err(e))?;
        match reply {
            Reply::Vote(Ok(r)) => {
                if r.last_log_id > mine {
                    self.net.state.longer_log_reported();
                }
                Ok(r)
            }
            Reply::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.rpc_err(CallError::Unexpected(self.target))),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(backoff(self.net.retry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_of_an_unreachable_node_double_up_to_a_second() {
        let ms: Vec<u128> = backoff(Duration::from_millis(50))
            .take(8)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[tokio::test]
    async fn a_peer_that_closes_a_fresh_connection_is_unreachable_not_a_broken_exchange() {
        // A listener that accepts and closes at once (a member whose port answers but which
        // drops every connection: "early eof" in the handshake).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepter = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let net = Network {
            me: 1,
            secret: Secret::new("a-secret-of-16-characters"),
            state: Arc::new(NetState::new()),
            retry: Duration::from_millis(50),
            bind: None,
            tls: None,
        };
        let mut c = net.client(2, &addr.to_string());
        let err = c
            .call(&Request::Hello, &[], Duration::from_secs(5))
            .await
            .err()
            .expect("the peer closes the connection");
        assert!(matches!(err, CallError::Unreachable(2, _)), "{err}");
        accepter.abort();
    }

    #[tokio::test]
    async fn a_port_refuses_only_once_nothing_listens() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let within = Duration::from_secs(5);
        assert!(!refuses(&addr, None, within).await, "it listens");
        drop(listener);
        assert!(refuses(&addr, None, within).await, "nothing listens");
    }
}
