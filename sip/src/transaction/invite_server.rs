//! The INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as updated by RFC 6026 §7.1.
//!
//! ```text
//! Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
//!   | INVITE again: re-send the      | Timer G: re-send final, G = min(2G, T2)
//!   | last provisional               | Timer H (64*T1): no ACK came, tell the TU, Terminated
//!   +--2xx from TU--> Accepted --Timer L (64*T1)--> Terminated
//!                       INVITE again: absorbed; ACK: to the TU; 2xx from TU: sent
//! ```
//!
//! Why Accepted (RFC 6026): under RFC 3261 the transaction ended with the 2xx, so a
//! retransmitted INVITE arriving after it looked like a new request and could start a second
//! call. The 2xx itself is retransmitted by the UAS core until the dialog's ACK arrives
//! (§13.3.1.4); the transaction only carries those retransmissions to the wire.
//!
//! The `100 Trying` (§17.2.1: unless the TU answers within 200 ms) is a provisional response
//! like any other: the owner passes it to [`InviteServer::send_response`] at creation.
//! Over a reliable transport Timer G is never armed and Timer I is zero.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Response;

use super::timer::{TimerConfig, TimerTable};
use super::{ServerEvent, TxError, TxTransmit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Final response retransmission (unreliable only), doubling from T1 up to T2.
    G,
    /// Wait for the ACK of a non-2xx final: 64*T1.
    H,
    /// Linger in Confirmed to absorb ACK retransmissions: T4 (unreliable only).
    I,
    /// Linger in Accepted to absorb INVITE retransmissions: 64*T1 (RFC 6026).
    L,
}

/// What became of an ACK given to the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDisposition {
    /// The ACK of our non-2xx final (or a retransmission of it): consumed here.
    Absorbed,
    /// An ACK reaching the transaction in Accepted: it acknowledges a 2xx, the TU's business.
    PassToTu,
}

#[derive(Debug)]
pub struct InviteServer {
    state: InviteServerState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable<Timer>,
    interval_g: Duration,
    last_provisional: Option<Bytes>,
    last_final: Option<Bytes>,
    transmits: VecDeque<TxTransmit>,
    events: VecDeque<ServerEvent>,
}

impl InviteServer {
    /// A transaction for an INVITE just received. It sends nothing by itself: the owner gives
    /// it the `100 Trying` and the TU's responses.
    pub fn new(reliable: bool, config: TimerConfig) -> Self {
        InviteServer {
            state: InviteServerState::Proceeding,
            reliable,
            config,
            timers: TimerTable::default(),
            interval_g: config.t1,
            last_provisional: None,
            last_final: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> InviteServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    /// A retransmission of the INVITE: re-send the last response, or absorb it.
    pub fn handle_retransmission(&mut self) {
        let last = match self.state {
            InviteServerState::Proceeding => self.last_provisional.clone(),
            InviteServerState::Completed => self.last_final.clone(),
            _ => None,
        };
        if let Some(bytes) = last {
            self.transmits.push_back(TxTransmit {
                bytes,
                retransmission: true,
            });
        }
    }

    /// An ACK matching this transaction.
    pub fn handle_ack(&mut self, now: Instant) -> AckDisposition {
        match self.state {
            InviteServerState::Completed => {
                self.timers.clear();
                if self.reliable {
                    self.terminate();
                } else {
                    self.state = InviteServerState::Confirmed;
                    self.timers.set(Timer::I, now + self.config.t4);
                }
                AckDisposition::Absorbed
            }
            InviteServerState::Accepted => AckDisposition::PassToTu,
            // Confirmed: a retransmitted ACK. Proceeding: an ACK before any final is bogus.
            _ => AckDisposition::Absorbed,
        }
    }

    /// A response from the TU (or the owner's 100 Trying).
    pub fn send_response(&mut self, now: Instant, response: &Response) -> Result<(), TxError> {
        let bytes = Bytes::from(response.to_bytes());
        match (self.state, response.status) {
            (InviteServerState::Proceeding, 100..=199) => {
                self.last_provisional = Some(bytes.clone());
            }
            (InviteServerState::Proceeding, 200..=299) => {
                self.state = InviteServerState::Accepted;
                self.timers
                    .set(Timer::L, now + self.config.transaction_timeout());
            }
            // RFC 6026: retransmissions of the 2xx by the UAS core go out as they come.
            (InviteServerState::Accepted, 200..=299) => {
                self.transmits.push_back(TxTransmit {
                    bytes,
                    retransmission: true,
                });
                return Ok(());
            }
            (InviteServerState::Proceeding, _) => {
                self.state = InviteServerState::Completed;
                self.last_final = Some(bytes.clone());
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.interval_g);
                }
                self.timers
                    .set(Timer::H, now + self.config.transaction_timeout());
            }
            (state, status) => {
                return Err(TxError::ResponseNotAllowed {
                    status,
                    state: format!("{state:?}"),
                })
            }
        }
        self.transmits.push_back(TxTransmit {
            bytes,
            retransmission: false,
        });
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::G, InviteServerState::Completed) => {
                    if let Some(bytes) = self.last_final.clone() {
                        self.transmits.push_back(TxTransmit {
                            bytes,
                            retransmission: true,
                        });
                    }
                    self.interval_g = (self.interval_g * 2).min(self.config.t2);
                    self.timers.set(Timer::G, now + self.interval_g);
                }
                (Timer::H, InviteServerState::Completed) => {
                    self.events.push_back(ServerEvent::Timeout);
                    self.terminate();
                }
                (Timer::I, _) | (Timer::L, _) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not deliver a response (§17.2.1: inform the TU, terminate).
    pub fn handle_transport_error(&mut self) {
        if self.state != InviteServerState::Terminated {
            self.events.push_back(ServerEvent::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = InviteServerState::Terminated;
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
