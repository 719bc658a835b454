//! The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).
//!
//! ```text
//! Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
//!   Timer E: retransmit; E = min(2E, T2) in Trying, T2 in Proceeding
//!   Timer F (64*T1, in Trying or Proceeding): Timeout to TU, Terminated
//! ```
//!
//! Unlike an INVITE, a non-INVITE request is retransmitted even after a provisional answer
//! (at T2 pace), because the final answer is expected within 64*T1 and Timer F stays armed.
//! Completed only absorbs retransmitted finals, for T4 on unreliable transports and not at all
//! on reliable ones (Timers E not armed, K zero).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{Request, Response};

use super::timer::{TimerConfig, TimerTable};
use super::{ClientEvent, TxError, TxTransmit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Request retransmission (unreliable transports only).
    E,
    /// Transaction timeout: 64*T1.
    F,
    /// Linger in Completed: T4 (unreliable only).
    K,
}

#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    request: Request,
    request_bytes: Bytes,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable<Timer>,
    interval_e: Duration,
    transmits: VecDeque<TxTransmit>,
    events: VecDeque<ClientEvent>,
}

impl NonInviteClient {
    /// Starts the transaction: the request is queued for sending and Timers E and F armed.
    pub fn new(
        now: Instant,
        request: Request,
        reliable: bool,
        config: TimerConfig,
    ) -> Result<Self, TxError> {
        request.headers.top_via()?;
        let request_bytes = Bytes::from(request.to_bytes());
        let mut tx = NonInviteClient {
            state: NonInviteClientState::Trying,
            request,
            request_bytes: request_bytes.clone(),
            reliable,
            config,
            timers: TimerTable::default(),
            interval_e: config.t1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        tx.transmits.push_back(TxTransmit {
            bytes: request_bytes,
            retransmission: false,
        });
        if !reliable {
            tx.timers.set(Timer::E, now + config.t1);
        }
        tx.timers.set(Timer::F, now + config.transaction_timeout());
        Ok(tx)
    }

    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    pub fn handle_response(&mut self, now: Instant, response: Response) {
        use NonInviteClientState::*;
        match self.state {
            Trying | Proceeding if response.is_provisional() => {
                self.state = Proceeding;
                self.events.push_back(ClientEvent::Response(response));
            }
            Trying | Proceeding => {
                self.timers.clear();
                self.events.push_back(ClientEvent::Response(response));
                if self.reliable {
                    self.terminate();
                } else {
                    self.state = Completed;
                    self.timers.set(Timer::K, now + self.config.t4);
                }
            }
            // Completed absorbs retransmitted finals; nothing reaches a terminated transaction.
            Completed | Terminated => {}
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        use NonInviteClientState::*;
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::E, Trying | Proceeding) => {
                    self.transmits.push_back(TxTransmit {
                        bytes: self.request_bytes.clone(),
                        retransmission: true,
                    });
                    self.interval_e = if self.state == Trying {
                        (self.interval_e * 2).min(self.config.t2)
                    } else {
                        self.config.t2
                    };
                    self.timers.set(Timer::E, now + self.interval_e);
                }
                (Timer::F, Trying | Proceeding) => {
                    self.events.push_back(ClientEvent::Timeout);
                    self.terminate();
                }
                (Timer::K, _) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send to the peer (§17.1.2.2: inform the TU, terminate).
    pub fn handle_transport_error(&mut self) {
        if self.state != NonInviteClientState::Terminated {
            self.events.push_back(ClientEvent::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = NonInviteClientState::Terminated;
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
