//! The UAS core's retransmission of a 2xx to an INVITE until its ACK arrives (RFC 3261
//! §13.3.1.4), done here so that every transaction user gets it right.
//!
//! The 2xx is outside the INVITE transaction (the ACK for it is a transaction of its own,
//! end to end), so neither the transaction nor the transport ensures it arrives. The UAS
//! re-sends it at T1, 2T1, 4T1... capped at T2 and, per §13.3.1.4, regardless of the
//! transport: a proxy between us and the caller may forward over UDP even when we got the
//! INVITE over TCP. With no ACK after 64*T1 the TU is told (`AckTimeout`) and should end the
//! dialog with a BYE. The ACK is recognised by Call-ID, CSeq number and To tag ([`AckKey`]).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{Headers, Request};
use crate::transaction::{TimerConfig, TimerTable};

use super::{Peer, ServerTxId};

/// What identifies the ACK of one 2xx: the Call-ID, the To tag we put in the 2xx (our local
/// tag) and the INVITE's CSeq number, which the ACK repeats (§13.2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    call_id: String,
    cseq: u32,
    to_tag: String,
}

impl AckKey {
    fn of(headers: &Headers) -> Option<AckKey> {
        Some(AckKey {
            call_id: headers.call_id()?.to_string(),
            cseq: headers.cseq().ok()?.seq,
            to_tag: headers
                .to_addr()
                .ok()?
                .tag()
                .unwrap_or_default()
                .to_string(),
        })
    }

    pub(crate) fn of_response(headers: &Headers) -> Option<AckKey> {
        Self::of(headers)
    }

    pub(crate) fn of_ack(ack: &Request) -> Option<AckKey> {
        Self::of(&ack.headers)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Retransmit,
    GiveUp,
}

/// What a timer step asks of the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckWaitStep {
    Retransmit(Bytes),
    GiveUp,
}

#[derive(Debug)]
pub(crate) struct AckWait {
    pub(crate) tx: ServerTxId,
    pub(crate) peer: Peer,
    pub(crate) key: AckKey,
    bytes: Bytes,
    interval: Duration,
    t2: Duration,
    timers: TimerTable<Timer>,
}

impl AckWait {
    /// Starts waiting after the first 2xx went out at `now`.
    pub(crate) fn new(
        now: Instant,
        tx: ServerTxId,
        peer: Peer,
        key: AckKey,
        bytes: Bytes,
        config: TimerConfig,
    ) -> Self {
        let mut timers = TimerTable::default();
        timers.set(Timer::Retransmit, now + config.t1);
        timers.set(Timer::GiveUp, now + config.transaction_timeout());
        AckWait {
            tx,
            peer,
            key,
            bytes,
            interval: config.t1,
            t2: config.t2,
            timers,
        }
    }

    /// Runs the expired timers; `GiveUp` is the last step.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<AckWaitStep> {
        let mut steps = Vec::new();
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Retransmit => {
                    steps.push(AckWaitStep::Retransmit(self.bytes.clone()));
                    self.interval = (self.interval * 2).min(self.t2);
                    self.timers.set(Timer::Retransmit, now + self.interval);
                }
                Timer::GiveUp => {
                    self.timers.clear();
                    steps.push(AckWaitStep::GiveUp);
                    break;
                }
            }
        }
        steps
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}
