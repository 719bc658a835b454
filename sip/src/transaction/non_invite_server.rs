//! The non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).
//!
//! ```text
//! Trying --1xx from TU--> Proceeding --200-699 from TU--> Completed --Timer J--> Terminated
//!   request again: absorbed   | request again:              | request again:
//!   (nothing sent yet)        | re-send last provisional    | re-send the final
//! ```
//!
//! There is no retransmission timer on this side: the client retransmits, the server answers
//! each retransmission from its memory. Timer J (64*T1 on unreliable transports, zero on
//! reliable ones) keeps that memory for as long as the client may still be retransmitting.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::message::Response;

use super::timer::{TimerConfig, TimerTable};
use super::{ServerEvent, TxError, TxTransmit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Linger in Completed: 64*T1 (unreliable only).
    J,
}

#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable<Timer>,
    last_response: Option<Bytes>,
    transmits: VecDeque<TxTransmit>,
    events: VecDeque<ServerEvent>,
}

impl NonInviteServer {
    pub fn new(reliable: bool, config: TimerConfig) -> Self {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            reliable,
            config,
            timers: TimerTable::default(),
            last_response: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    /// A retransmission of the request: re-send the last response if there is one.
    pub fn handle_retransmission(&mut self) {
        if let Some(bytes) = self.last_response.clone() {
            self.transmits.push_back(TxTransmit {
                bytes,
                retransmission: true,
            });
        }
    }

    pub fn send_response(&mut self, now: Instant, response: &Response) -> Result<(), TxError> {
        match self.state {
            NonInviteServerState::Trying | NonInviteServerState::Proceeding => {}
            // §17.2.2: further finals from the TU are discarded in Completed.
            state => {
                return Err(TxError::ResponseNotAllowed {
                    status: response.status,
                    state: format!("{state:?}"),
                })
            }
        }
        let bytes = Bytes::from(response.to_bytes());
        self.last_response = Some(bytes.clone());
        self.transmits.push_back(TxTransmit {
            bytes,
            retransmission: false,
        });
        if response.is_provisional() {
            self.state = NonInviteServerState::Proceeding;
        } else if self.reliable {
            self.terminate();
        } else {
            self.state = NonInviteServerState::Completed;
            self.timers
                .set(Timer::J, now + self.config.transaction_timeout());
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Timer::J) = self.timers.pop_expired(now) {
            self.terminate();
        }
    }

    /// The transport could not deliver a response (§17.2.2: inform the TU, terminate).
    pub fn handle_transport_error(&mut self) {
        if self.state != NonInviteServerState::Terminated {
            self.events.push_back(ServerEvent::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = NonInviteServerState::Terminated;
        self.timers.clear();
    }

    pub fn poll_transmit(&mut self) -> Option<TxTransmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}
