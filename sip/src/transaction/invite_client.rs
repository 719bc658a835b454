//! The INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as updated by RFC 6026 §7.2.
//!
//! ```text
//! Calling --1xx--> Proceeding --300-699 / send ACK--> Completed --Timer D--> Terminated
//!    |  \__ Timer A: retransmit, double A                ^ final again: re-send the ACK
//!    |  \__ Timer B: Timeout to TU, Terminated
//!    +--2xx (from Calling or Proceeding)--> Accepted --Timer M--> Terminated
//!                                              ^ 2xx again (retransmission, other fork): to TU
//! ```
//!
//! Why the Accepted state (RFC 6026): a 2xx ends the transaction for RFC 3261, so its
//! retransmissions, and 2xx from other forks, arrived "stray" and got lost. Kept for 64*T1,
//! the transaction passes them to the TU, which re-sends its ACK (the ACK for a 2xx belongs
//! to the dialog, §13.2.2.4). The ACK for a 300-699 is the transaction's own (§17.1.1.3).
//!
//! Over a reliable transport Timer A is never armed and Timer D is zero (§17.1.1.2).
//! Proceeding has no timer: a ringing call lasts until the TU CANCELs it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{Request, Response};

use super::build::ack_for_non_2xx;
use super::timer::{TimerConfig, TimerTable};
use super::{ClientEvent, TxError, TxTransmit};

/// Timer D for unreliable transports: "at least 32 seconds" (RFC 3261 Table 4), the time a
/// server may keep retransmitting its final response.
pub const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Request retransmission (unreliable transports only), doubling from T1.
    A,
    /// Transaction timeout in Calling: 64*T1.
    B,
    /// Linger in Completed to absorb final response retransmissions.
    D,
    /// Linger in Accepted to pass 2xx retransmissions up (RFC 6026): 64*T1.
    M,
}

#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    request: Request,
    request_bytes: Bytes,
    ack_bytes: Option<Bytes>,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable<Timer>,
    interval_a: Duration,
    transmits: VecDeque<TxTransmit>,
    events: VecDeque<ClientEvent>,
}

impl InviteClient {
    /// Starts the transaction: the request is queued for sending at once and Timers A and B
    /// are armed. The request must carry its final top Via (the branch is the key).
    pub fn new(
        now: Instant,
        request: Request,
        reliable: bool,
        config: TimerConfig,
    ) -> Result<Self, TxError> {
        // Validated here so that building the ACK later cannot fail on the INVITE's side.
        request.headers.top_via()?;
        request.headers.cseq()?;
        let request_bytes = Bytes::from(request.to_bytes());
        let mut tx = InviteClient {
            state: InviteClientState::Calling,
            request,
            request_bytes: request_bytes.clone(),
            ack_bytes: None,
            reliable,
            config,
            timers: TimerTable::default(),
            interval_a: config.t1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        tx.transmits.push_back(TxTransmit {
            bytes: request_bytes,
            retransmission: false,
        });
        if !reliable {
            tx.timers.set(Timer::A, now + config.t1);
        }
        tx.timers.set(Timer::B, now + config.transaction_timeout());
        Ok(tx)
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    pub fn handle_response(&mut self, now: Instant, response: Response) {
        use InviteClientState::*;
        match (self.state, response.status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timers.clear();
                self.events.push_back(ClientEvent::Response(response));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.timers.clear();
                self.timers
                    .set(Timer::M, now + self.config.transaction_timeout());
                self.events.push_back(ClientEvent::Response(response));
            }
            (Calling | Proceeding, _) => {
                self.timers.clear();
                match ack_for_non_2xx(&self.request, &response) {
                    Ok(ack) => {
                        let bytes = Bytes::from(ack.to_bytes());
                        self.transmits.push_back(TxTransmit {
                            bytes: bytes.clone(),
                            retransmission: false,
                        });
                        self.ack_bytes = Some(bytes);
                    }
                    // The response's To is validated by the parser; a hand-made one may lack it.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot build the ACK for a non-2xx final")
                    }
                }
                self.events.push_back(ClientEvent::Response(response));
                if self.reliable {
                    self.state = Terminated;
                } else {
                    self.state = Completed;
                    self.timers.set(Timer::D, now + TIMER_D);
                }
            }
            (Accepted, 200..=299) => self.events.push_back(ClientEvent::Response(response)),
            (Completed, 300..) => {
                if let Some(bytes) = &self.ack_bytes {
                    self.transmits.push_back(TxTransmit {
                        bytes: bytes.clone(),
                        retransmission: true,
                    });
                }
            }
            // Late provisionals, a 2xx after a non-2xx final, anything once terminated.
            _ => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::A if self.state == InviteClientState::Calling => {
                    self.transmits.push_back(TxTransmit {
                        bytes: self.request_bytes.clone(),
                        retransmission: true,
                    });
                    // Timer A doubles without a cap: Timer B ends the series (§17.1.1.2).
                    self.interval_a *= 2;
                    self.timers.set(Timer::A, now + self.interval_a);
                }
                Timer::B if self.state == InviteClientState::Calling => {
                    self.events.push_back(ClientEvent::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::M => self.terminate(),
                Timer::A | Timer::B => {}
            }
        }
    }

    /// The transport could not send to the peer (§17.1.1.2: inform the TU, terminate).
    pub fn handle_transport_error(&mut self) {
        if self.state != InviteClientState::Terminated {
            self.events.push_back(ClientEvent::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = InviteClientState::Terminated;
        self.timers.clear();
    }

    pub fn poll_transmit(&mut self) -> Option<TxTransmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}
