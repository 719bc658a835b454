//! Which leg a SIP or media event is for: legs sit in the phase that placed them (a
//! bridged transfer's target, the queue's agents and the caller dialled back, the bridged
//! party and its supervisor); events find them by request, Call-ID or stream, and what an
//! event means is decided by the phase (`on_leg_event`).

use std::time::Instant;

use sip::endpoint::ServerTxId;
use sip::message::{Method, Request, Response};

use super::io::{MediaOut, Output, ReqId, SipOut, StreamId, StreamOpened};
use super::leg::LegEvent;
use super::phase::{Leg, LegPurpose, Phase, Step, Supervision, Wait};
use super::target::LegTarget;
use super::CallCore;
use crate::media::MediaEvent;

/// Where a leg sits in the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// A bridged transfer's target, ringing.
    Ringing,
    /// An agent leg of the queued call.
    Agent(usize),
    /// The caller, dialled back.
    Customer,
    /// The bridged second party.
    Peer,
    Supervisor,
}

/// The legs of the phase, with their slots.
pub(super) fn legs(phase: &Phase) -> Vec<(Slot, &Leg)> {
    let mut v = Vec::new();
    match phase {
        Phase::Flow(Step::Ringing { leg, .. }) => v.push((Slot::Ringing, &**leg)),
        Phase::Queued(q) => {
            v.extend(
                q.agents
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (Slot::Agent(i), l)),
            );
            if let Wait::Dialing { customer, .. } = &q.wait {
                v.push((Slot::Customer, &**customer));
            }
        }
        Phase::Bridged(b) => {
            v.push((Slot::Peer, &b.peer));
            if let Supervision::Calling { leg, .. } | Supervision::Live { leg, .. } = &b.supervision
            {
                v.push((Slot::Supervisor, &**leg));
            }
        }
        _ => {}
    }
    v
}

pub(super) fn leg_in(phase: &mut Phase, slot: Slot) -> Option<&mut Leg> {
    match (phase, slot) {
        (Phase::Flow(Step::Ringing { leg, .. }), Slot::Ringing) => Some(leg),
        (Phase::Queued(q), Slot::Agent(i)) => q.agents.get_mut(i),
        (Phase::Queued(q), Slot::Customer) => match &mut q.wait {
            Wait::Dialing { customer, .. } => Some(customer),
            _ => None,
        },
        (Phase::Bridged(b), Slot::Peer) => Some(&mut b.peer),
        (Phase::Bridged(b), Slot::Supervisor) => match &mut b.supervision {
            Supervision::Calling { leg, .. } | Supervision::Live { leg, .. } => Some(leg),
            Supervision::Off => None,
        },
        _ => None,
    }
}

impl CallCore {
    fn find_leg(&self, pred: impl Fn(&Leg) -> bool) -> Option<Slot> {
        legs(&self.phase)
            .into_iter()
            .find(|(_, l)| pred(l))
            .map(|(s, _)| s)
    }

    /// Opens a new leg; its INVITE goes when its stream is open.
    pub(super) fn place_leg(
        &mut self,
        target: LegTarget,
        purpose: LegPurpose,
        from_user: String,
    ) -> Leg {
        tracing::info!(call = %self.facts.id, ?purpose, "second leg placed");
        Leg::open(&mut self.io, target, purpose, from_user)
    }

    pub(super) fn hang_up(&mut self, _now: Instant, leg: &mut Leg) {
        leg.hang_up(&self.env, &mut self.io);
    }

    /// A leg's stream is open: its INVITE goes. A stream nobody waits for any more closes.
    pub(super) fn leg_opened(&mut self, now: Instant, stream: StreamId, opened: StreamOpened) {
        let Some(slot) = self.find_leg(|l| l.stream == stream) else {
            self.push(Output::Media(MediaOut::Close { stream }));
            return;
        };
        let failed = {
            let CallCore {
                phase,
                env,
                io,
                facts,
                ..
            } = self;
            let Some(leg) = leg_in(phase, slot) else {
                return;
            };
            match opened {
                Ok(local) => {
                    leg.invite(env, io, local);
                    return;
                }
                Err(e) => {
                    tracing::warn!(call = %facts.id, error = %e, "no media stream for the leg");
                    leg.hang_up(env, io);
                    LegEvent::Failed {
                        status: 503,
                        why: format!("no media stream: {e}"),
                    }
                }
            }
        };
        self.on_leg_event(now, slot, failed);
    }

    /// A response to a request the core sent.
    pub(super) fn response(&mut self, now: Instant, req: ReqId, response: Response) {
        if response.status >= 200 && self.bye_answered(now, req) {
            return;
        }
        if let Phase::Flow(Step::Referring { req: refer, .. }) = self.phase {
            if refer == req {
                if response.status >= 300 {
                    let why = format!("REFER refused: {} {}", response.status, response.reason);
                    self.transfer_failed(now, why);
                }
                return;
            }
        }
        let Some(slot) = self.find_leg(|l| l.owns(req)) else {
            return;
        };
        let CallCore { phase, env, io, .. } = self;
        let Some(leg) = leg_in(phase, slot) else {
            return;
        };
        let event = leg.on_response(env, io, &response);
        self.on_leg_event(now, slot, event);
    }

    /// No final answer to a request the core sent.
    pub(super) fn request_timeout(&mut self, now: Instant, req: ReqId) {
        if self.bye_answered(now, req) {
            return;
        }
        if let Phase::Flow(Step::Referring { req: refer, .. }) = self.phase {
            if refer == req {
                return self.transfer_failed(now, "no answer to the REFER".into());
            }
        }
        let Some(slot) = self.find_leg(|l| l.owns(req)) else {
            return;
        };
        let CallCore { phase, io, .. } = self;
        if leg_in(phase, slot).is_some_and(|leg| leg.on_timeout(io, req)) {
            let failed = LegEvent::Failed {
                status: 408,
                why: "no answer from the called party".into(),
            };
            self.on_leg_event(now, slot, failed);
        }
    }

    /// What a leg's answer or failure means, by where the leg is.
    fn on_leg_event(&mut self, now: Instant, slot: Slot, event: LegEvent) {
        match slot {
            Slot::Ringing => self.transfer_leg_event(now, event),
            Slot::Agent(i) => self.agent_leg_event(now, i, event),
            Slot::Customer => self.customer_leg_event(now, event),
            Slot::Supervisor => self.supervisor_leg_event(now, event),
            // The bridged party's INVITE is answered already: only retransmissions.
            Slot::Peer => {}
        }
    }

    /// A request in one of the legs' dialogs (by Call-ID).
    pub(super) fn leg_request(&mut self, now: Instant, tx: Option<ServerTxId>, req: Request) {
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let Some(slot) = self.find_leg(|l| l.call_id == call_id) else {
            if let (Some(tx), true) = (tx, req.method != Method::Ack) {
                let response = Response::for_request(&req, 481);
                self.push(Output::Sip(SipOut::Respond { tx, response }));
            }
            return;
        };
        let CallCore { phase, env, io, .. } = self;
        let Some(leg) = leg_in(phase, slot) else {
            return;
        };
        let Some(what) = leg.on_request(env, io, tx, &req) else {
            return;
        };
        match slot {
            Slot::Peer => self.peer_request(now, what),
            Slot::Supervisor => self.supervisor_request(now, what),
            Slot::Agent(i) => self.agent_request(now, i, what),
            Slot::Ringing | Slot::Customer => {}
        }
    }

    /// An event of a leg's stream.
    pub(super) fn leg_media(&mut self, now: Instant, stream: StreamId, event: MediaEvent) {
        // Only the bridged party's stream matters (its digits, its silence).
        if let Some(Slot::Peer) = self.find_leg(|l| l.stream == stream) {
            self.peer_media(now, event);
        }
    }
}
