//! The RFC 3261 §17 transaction layer as four sans-IO state machines.
//!
//! A transaction is one request and its responses. It exists so that the layers above never
//! see the unreliability of UDP: the client side retransmits the request until an answer
//! comes (or gives up after 64*T1), the server side answers each retransmitted request from
//! memory and, for an INVITE's non-2xx final, retransmits the response until the ACK arrives.
//!
//! - [`InviteClient`] (§17.1.1, Timers A, B, D + RFC 6026 Accepted/Timer M) — sends the ACK for
//!   300-699 itself ([`ack_for_non_2xx`]);
//! - [`NonInviteClient`] (§17.1.2, Timers E, F, K);
//! - [`InviteServer`] (§17.2.1, Timers G, H, I + RFC 6026 Accepted/Timer L);
//! - [`NonInviteServer`] (§17.2.2, Timer J);
//! - [`key`]: how a message finds its transaction (§17.1.3, §17.2.3, RFC 2543 fallback);
//! - [`timer`]: timers as an enum with deadlines in a table, and the T1/T2/T4 configuration.
//!
//! Each machine takes `now` with every input, never reads a clock, and is drained with
//! `poll_transmit` (bytes for the peer the owner associates with it), `poll_event` (what the
//! transaction user must learn) and `poll_timeout` (when to call `handle_timeout` next). On a
//! reliable transport (TCP) nothing is retransmitted and the linger timers D, I, J, K are zero:
//! the machine goes straight to Terminated. The owner (`crate::endpoint`) routes messages by
//! key and drops a machine once `is_terminated()`.

mod build;
mod invite_client;
mod invite_server;
pub mod key;
mod non_invite_client;
mod non_invite_server;
pub mod timer;

use std::time::Instant;

use bytes::Bytes;

use crate::message::{HeaderError, Response};

pub use build::{ack_for_non_2xx, cancel_for};
pub use invite_client::{InviteClient, InviteClientState, TIMER_D};
pub use invite_server::{AckDisposition, InviteServer, InviteServerState};
pub use key::{is_rfc3261_branch, ClientKey, ServerKey};
pub use non_invite_client::{NonInviteClient, NonInviteClientState};
pub use non_invite_server::{NonInviteServer, NonInviteServerState};
pub use timer::{TimerConfig, TimerTable};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the top Via has no branch parameter")]
    MissingBranch,
    #[error("missing Call-ID")]
    MissingCallId,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("a {status} response cannot be sent by a transaction in state {state}")]
    ResponseNotAllowed { status: u16, state: String },
}

/// Bytes a transaction wants sent to its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTransmit {
    pub bytes: Bytes,
    /// A copy of something sent before (counted apart in the endpoint's statistics).
    pub retransmission: bool,
}

/// What a client transaction tells its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response to pass up: provisional and final, plus 2xx retransmissions in Accepted.
    Response(Response),
    /// Timer B or F fired: no final response came.
    Timeout,
    /// The transport reported that the request could not be sent.
    TransportError,
}

/// What a server transaction tells its transaction user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// Timer H fired: the ACK for our non-2xx final never came.
    Timeout,
    /// The transport reported that a response could not be sent.
    TransportError,
}

/// Either kind of client transaction, so an owner can keep them in one table.
#[derive(Debug)]
pub enum ClientTransaction {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

/// Either kind of server transaction.
#[derive(Debug)]
pub enum ServerTransaction {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

macro_rules! dispatch {
    ($self:ident, $tx:ident => $e:expr) => {
        match $self {
            Self::Invite($tx) => $e,
            Self::NonInvite($tx) => $e,
        }
    };
}

impl ClientTransaction {
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        dispatch!(self, tx => tx.handle_response(now, response))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        dispatch!(self, tx => tx.handle_timeout(now))
    }

    pub fn handle_transport_error(&mut self) {
        dispatch!(self, tx => tx.handle_transport_error())
    }

    pub fn is_terminated(&self) -> bool {
        dispatch!(self, tx => tx.is_terminated())
    }

    pub fn poll_transmit(&mut self) -> Option<TxTransmit> {
        dispatch!(self, tx => tx.poll_transmit())
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        dispatch!(self, tx => tx.poll_event())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        dispatch!(self, tx => tx.poll_timeout())
    }
}

impl ServerTransaction {
    pub fn handle_retransmission(&mut self) {
        dispatch!(self, tx => tx.handle_retransmission())
    }

    pub fn send_response(&mut self, now: Instant, response: &Response) -> Result<(), TxError> {
        dispatch!(self, tx => tx.send_response(now, response))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        dispatch!(self, tx => tx.handle_timeout(now))
    }

    pub fn handle_transport_error(&mut self) {
        dispatch!(self, tx => tx.handle_transport_error())
    }

    pub fn is_terminated(&self) -> bool {
        dispatch!(self, tx => tx.is_terminated())
    }

    pub fn poll_transmit(&mut self) -> Option<TxTransmit> {
        dispatch!(self, tx => tx.poll_transmit())
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        dispatch!(self, tx => tx.poll_event())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        dispatch!(self, tx => tx.poll_timeout())
    }
}
