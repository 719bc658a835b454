//! The transaction layer the engine drives: one sans-IO [`Endpoint`] owns every transaction of
//! a SIP stack and the behaviour RFC 3261 expects of any element, so that the transaction user
//! (the engine's UA core) sees requests and answers, never retransmissions.
//!
//! The driver feeds it datagrams (and framed TCP messages) with [`Endpoint::handle_datagram`],
//! the TU calls `send_request`/`send_response`/`send_stateless`/`cancel`, and both drain it:
//! `poll_transmit` (bytes and the [`Peer`] to send them to), `poll_event` ([`EndpointEvent`]s
//! for the TU), `poll_timeout` (when to call `handle_timeout`). It never reads the clock.
//!
//! Done here without the TU (see the module files for the RFC sections):
//! - `inbound`: matching to transactions, absorbing retransmissions, `100 Trying` for
//!   INVITE, CANCEL (200 + [`EndpointEvent::Cancelled`], or 481), 400/505 for unparseable
//!   requests, dropping stray responses;
//! - `routing`: `received`/`rport` stamping and response routing (§18.2, RFC 3581);
//! - `ack_wait`: 2xx retransmission until the ACK (§13.3.1.4), [`EndpointEvent::AckTimeout`];
//! - `outbound`: client transactions, branch generation, CANCEL construction (§9.1);
//! - `schedule`: the table of deadlines over all machines; `ids`: branches, tags, Call-IDs.
//!
//! Not done here: answers that need the TU's knowledge (405, 501, 416, 420, 415, 481 for
//! in-dialog requests, 483 for Max-Forwards 0), dialogs (`crate::dialog`), DNS resolution.

mod ack_wait;
mod counts;
mod ids;
mod inbound;
mod outbound;
mod routing;
mod schedule;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{HeaderName, Request, Response};
use crate::transaction::{ClientKey, ClientTransaction, ServerKey, ServerTransaction, TimerConfig};

use ack_wait::{AckKey, AckWait};
use schedule::{Schedule, Slot};

pub use counts::{MethodCounts, StatusCounts};
pub use ids::{new_branch, new_call_id, new_tag};
pub use routing::NextHop;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Reliable transports skip retransmissions and linger timers (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// A stream (one connection per peer, responses on the request's connection).
    pub fn is_stream(self) -> bool {
        self.is_reliable()
    }

    /// The `transport` URI parameter naming it (`None` for UDP, the default).
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
        }
    }

    /// The transport token of a Via header.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// The other end of a message: transport and socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Bytes to send to a peer (one datagram, or one message on the TCP connection to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerTxId(u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientTxId(u64);

impl ServerTxId {
    /// An id no endpoint handed out, for tests of a transaction user without an endpoint.
    pub fn for_tests(n: u64) -> Self {
        ServerTxId(n | 1 << 63)
    }
}

impl fmt::Display for ServerTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stx{}", self.0)
    }
}

impl fmt::Display for ClientTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctx{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Value of the `User-Agent` header added to requests and the `Server` header added to
    /// responses that have none; empty: add nothing.
    pub user_agent: String,
    /// Answer every UDP request to its source port, as if it asked with `;rport`
    /// (RFC 3581); see `routing::stamp_received`.
    pub force_rport: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        let t = TimerConfig::default();
        EndpointConfig {
            t1: t.t1,
            t2: t.t2,
            t4: t.t4,
            user_agent: "svi".to_string(),
            force_rport: false,
        }
    }
}

impl EndpointConfig {
    pub fn timers(&self) -> TimerConfig {
        TimerConfig {
            t1: self.t1,
            t2: self.t2,
            t4: self.t4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A new request for the transaction user. `tx` is None for an ACK (ACKs to 2xx have no
    /// transaction). The top Via already carries `received`/`rport` (§18.2.1, RFC 3581), so
    /// `Response::for_request` copies what the routing needs.
    Request {
        tx: Option<ServerTxId>,
        request: Request,
        from: Peer,
    },
    /// A response to one of our client transactions (provisional and final; for INVITE also
    /// retransmitted 2xx and 2xx from other forks, so the TU can (re-)send its ACK).
    Response { tx: ClientTxId, response: Response },
    /// Timer B/F fired (or a transport error was reported): the request got no final answer.
    Timeout { tx: ClientTxId },
    /// A CANCEL matched a pending INVITE server transaction: the endpoint already answered the
    /// CANCEL with 200; the TU must now answer the INVITE (487) and clean up.
    Cancelled { tx: ServerTxId },
    /// We answered an INVITE with 2xx and no ACK came within 64*T1 (RFC 3261 §13.3.1.4): the TU
    /// should end the dialog (BYE).
    AckTimeout { tx: ServerTxId },
}

/// Counters for metrics and logs, and the number of live machines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Unparseable requests answered 400/505.
    pub malformed_answered: u64,
    /// Unparseable datagrams dropped (responses, or requests without a usable Via, or ACKs).
    pub malformed_dropped: u64,
    /// Responses matching no client transaction, dropped.
    pub stray_responses: u64,
    /// Retransmitted requests and responses consumed by their transaction.
    pub retransmissions_absorbed: u64,
    /// Retransmissions we sent (requests, final responses, 2xx awaiting their ACK, ACKs).
    pub retransmissions_sent: u64,
    pub client_transactions: usize,
    pub server_transactions: usize,
    /// 2xx responses being retransmitted until their ACK.
    pub awaiting_ack: usize,
    /// Entries the transaction tables have room for (their capacity): memory held for a
    /// past peak shows here after `handle_timeout` gave it back.
    pub table_room: usize,
    /// Call-IDs the transport keeps for live transactions (set by `transport`, 0 here).
    pub call_id_entries: usize,
    /// Requests received (retransmissions included), by method.
    pub requests_received: MethodCounts,
    /// Responses sent by the TU (and our 100 Trying), by status code; their retransmissions
    /// are not counted again.
    pub responses_sent: StatusCounts,
    /// Responses received (retransmissions and strays included), by status code.
    pub responses_received: StatusCounts,
}

/// A CANCEL the TU asked for: sent once the INVITE got a provisional response (§9.1).
#[derive(Debug)]
enum CancelState {
    WaitingForProvisional { id: u64, cancel: Box<Request> },
    Sent { id: u64 },
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientTransaction,
    key: ClientKey,
    peer: Peer,
    cancel: Option<CancelState>,
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerTransaction,
    key: ServerKey,
    /// Where responses go (§18.2.2).
    peer: Peer,
    /// The To tag of our last response (a CANCEL's 200 repeats it; an RFC 2543 ACK carries it).
    response_to_tag: Option<String>,
    /// A CANCEL already reported this INVITE as `Cancelled` (a second CANCEL only gets 200).
    cancelled: bool,
}

/// The transaction layer: see the module documentation.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    timers: TimerConfig,
    next_id: u64,
    clients: HashMap<u64, ClientEntry>,
    client_keys: HashMap<ClientKey, u64>,
    servers: HashMap<u64, ServerEntry>,
    server_keys: HashMap<ServerKey, u64>,
    ack_waits: HashMap<u64, AckWait>,
    ack_keys: HashMap<AckKey, u64>,
    schedule: Schedule,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EndpointEvent>,
    stats: EndpointStats,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            timers: config.timers(),
            config,
            next_id: 1,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            ack_waits: HashMap::new(),
            ack_keys: HashMap::new(),
            schedule: Schedule::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.next()
    }

    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            client_transactions: self.clients.len(),
            server_transactions: self.servers.len(),
            awaiting_ack: self.ack_waits.len(),
            table_room: self.clients.capacity()
                + self.client_keys.capacity()
                + self.servers.capacity()
                + self.server_keys.capacity()
                + self.ack_waits.capacity()
                + self.ack_keys.capacity(),
            ..self.stats
        }
    }

    /// The client transaction is still running (it may yet report `Timeout`).
    pub fn client_alive(&self, tx: ClientTxId) -> bool {
        self.clients.contains_key(&tx.0)
    }

    /// The server transaction is still running, or its 2xx still awaits the ACK (it may yet
    /// report `Cancelled` or `AckTimeout`).
    pub fn server_alive(&self, tx: ServerTxId) -> bool {
        self.servers.contains_key(&tx.0) || self.ack_waits.contains_key(&tx.0)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for slot in self.schedule.take_due(now) {
            match slot {
                Slot::Client(id) => {
                    if let Some(entry) = self.clients.get_mut(&id) {
                        entry.tx.handle_timeout(now);
                    }
                    self.drain_client(now, id);
                }
                Slot::Server(id) => {
                    if let Some(entry) = self.servers.get_mut(&id) {
                        entry.tx.handle_timeout(now);
                    }
                    self.drain_server(id);
                }
                Slot::AckWait(id) => self.run_ack_wait(now, id),
            }
        }
        self.compact();
    }

    /// Gives back the tables' room once a peak has passed. A hash table keeps the capacity of
    /// its largest size: after a burst of calls (128,000 INVITE and BYE transactions alive at
    /// 2,000 calls/s over Timer L and Timer J) the tables would hold megabytes of empty slots
    /// for good.
    /// A table is shrunk to twice its size when it is less than a quarter full, so the cost
    /// of a shrink is paid at most once per halving, not per transaction.
    fn compact(&mut self) {
        shrink_sparse(&mut self.clients);
        shrink_sparse(&mut self.client_keys);
        shrink_sparse(&mut self.servers);
        shrink_sparse(&mut self.server_keys);
        shrink_sparse(&mut self.ack_waits);
        shrink_sparse(&mut self.ack_keys);
        self.schedule.compact();
        shrink_sparse_deque(&mut self.transmits);
        shrink_sparse_deque(&mut self.events);
    }

    /// The driver could not reach `peer` (TCP connect or write failure, or an ICMP error it
    /// trusts): every transaction towards it fails (§17.1.1.2, §17.2.1). Client transactions
    /// report `Timeout`, 2xx awaiting an ACK from it report `AckTimeout`.
    pub fn handle_transport_error(&mut self, now: Instant, peer: Peer) {
        let clients: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, e)| e.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in clients {
            if let Some(entry) = self.clients.get_mut(&id) {
                entry.tx.handle_transport_error();
            }
            self.drain_client(now, id);
        }
        let servers: Vec<u64> = self
            .servers
            .iter()
            .filter(|(_, e)| e.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in servers {
            if let Some(entry) = self.servers.get_mut(&id) {
                entry.tx.handle_transport_error();
            }
            self.drain_server(id);
        }
        let waits: Vec<u64> = self
            .ack_waits
            .iter()
            .filter(|(_, w)| w.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in waits {
            if let Some(wait) = self.remove_ack_wait(id) {
                self.events
                    .push_back(EndpointEvent::AckTimeout { tx: wait.tx });
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn push_transmit(&mut self, peer: Peer, bytes: Bytes, retransmission: bool) {
        if retransmission {
            self.stats.retransmissions_sent += 1;
        }
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// Adds `Server` to a response we send, when configured and absent.
    fn add_server_header(&self, response: &mut Response) {
        if !self.config.user_agent.is_empty() && response.headers.get(&HeaderName::Server).is_none()
        {
            response
                .headers
                .push(HeaderName::Server, self.config.user_agent.clone());
        }
    }

    /// Moves a client transaction's output to the endpoint queues, re-schedules it and drops
    /// it once terminated.
    fn drain_client(&mut self, now: Instant, id: u64) {
        let Some(entry) = self.clients.get_mut(&id) else {
            return;
        };
        let peer = entry.peer;
        let mut out = Vec::new();
        while let Some(t) = entry.tx.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = entry.tx.poll_event() {
            events.push(e);
        }
        let deadline = entry.tx.poll_timeout();
        let terminated = entry.tx.is_terminated();
        for t in out {
            self.push_transmit(peer, t.bytes, t.retransmission);
        }
        for event in events {
            self.client_event(now, id, event);
        }
        if terminated {
            self.schedule.update(Slot::Client(id), None);
            if let Some(entry) = self.clients.remove(&id) {
                self.client_keys.remove(&entry.key);
            }
        } else {
            self.schedule.update(Slot::Client(id), deadline);
        }
    }

    fn drain_server(&mut self, id: u64) {
        let Some(entry) = self.servers.get_mut(&id) else {
            return;
        };
        let peer = entry.peer;
        let mut out = Vec::new();
        while let Some(t) = entry.tx.poll_transmit() {
            out.push(t);
        }
        while let Some(e) = entry.tx.poll_event() {
            // The TU has nothing to do: the transaction is over and the call, if any, failed
            // before it was established.
            tracing::debug!(tx = %ServerTxId(id), event = ?e, "server transaction failed");
        }
        let deadline = entry.tx.poll_timeout();
        let terminated = entry.tx.is_terminated();
        for t in out {
            self.push_transmit(peer, t.bytes, t.retransmission);
        }
        if terminated {
            self.schedule.update(Slot::Server(id), None);
            if let Some(entry) = self.servers.remove(&id) {
                self.server_keys.remove(&entry.key);
            }
        } else {
            self.schedule.update(Slot::Server(id), deadline);
        }
    }

    fn run_ack_wait(&mut self, now: Instant, id: u64) {
        let Some(wait) = self.ack_waits.get_mut(&id) else {
            return;
        };
        let peer = wait.peer;
        let steps = wait.handle_timeout(now);
        let deadline = wait.poll_timeout();
        for step in steps {
            match step {
                ack_wait::AckWaitStep::Retransmit(bytes) => self.push_transmit(peer, bytes, true),
                ack_wait::AckWaitStep::GiveUp => {
                    if let Some(wait) = self.remove_ack_wait(id) {
                        self.events
                            .push_back(EndpointEvent::AckTimeout { tx: wait.tx });
                    }
                    return;
                }
            }
        }
        self.schedule.update(Slot::AckWait(id), deadline);
    }

    fn remove_ack_wait(&mut self, id: u64) -> Option<AckWait> {
        let wait = self.ack_waits.remove(&id)?;
        self.ack_keys.remove(&wait.key);
        self.schedule.update(Slot::AckWait(id), None);
        Some(wait)
    }
}

/// Tables smaller than this are left alone: their room costs little and shrinking them
/// would only make the next calls grow them again.
const SHRINK_ABOVE: usize = 1024;

/// Shrinks `map` to twice its length when it is less than a quarter full.
pub(crate) fn shrink_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > SHRINK_ABOVE && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

fn shrink_sparse_deque<T>(queue: &mut VecDeque<T>) {
    if queue.capacity() > SHRINK_ABOVE && queue.len() * 4 < queue.capacity() {
        queue.shrink_to(queue.len() * 2);
    }
}
