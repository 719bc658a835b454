//! The leg table and which leg an event is for. Legs live in the core's table by their
//! stream; the phase names those it uses (a bridged transfer's target, the queue's agents
//! and the caller dialled back, the bridged party and its supervisor), and a leg's events
//! mean what its place in the phase says (`on_leg_event`). A leg the phase lets go of is
//! retired: its stream closes at once, its signalling finishes on its own (a CANCEL's
//! answer, a 200 that crosses it, a BYE's answer) and then it leaves the table.

use std::time::Instant;

use sip::endpoint::ServerTxId;
use sip::message::{Method, Request, Response};

use super::io::{MediaOut, Output, ReqId, SipOut, StreamId, StreamOpened};
use super::leg::{Leg, LegEvent};
use super::phase::{Caller, CallerLeg, LegPurpose, Phase, Queued, Step, Wait};
use super::target::LegTarget;
use super::CallCore;
use crate::media::MediaEvent;

/// Where a leg sits in the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// A bridged transfer's target, ringing.
    Ringing,
    /// An agent leg of the queued call.
    Agent,
    /// The caller, dialled back.
    Customer,
    /// The bridged second party.
    Peer,
    Supervisor,
    /// The number a call the engine places rings.
    Callee,
}

impl CallCore {
    /// Where the phase uses `stream`'s leg (None: retired, or not a leg).
    pub(super) fn slot(&self, stream: StreamId) -> Option<Slot> {
        match &self.phase {
            Phase::Flow(Step::Ringing { leg, .. }) if *leg == stream => Some(Slot::Ringing),
            Phase::Queued(q) if q.agents.contains(&stream) => Some(Slot::Agent),
            Phase::Queued(Queued {
                wait: Wait::Dialing { customer, .. },
                ..
            }) if *customer == stream => Some(Slot::Customer),
            Phase::Bridged(b) if b.peer == stream => Some(Slot::Peer),
            Phase::Bridged(b) if b.supervision.leg() == Some(stream) => Some(Slot::Supervisor),
            Phase::Dialing(d) if d.leg == stream => Some(Slot::Callee),
            _ => None,
        }
    }

    pub(super) fn leg(&self, stream: StreamId) -> Option<&Leg> {
        self.legs.get(&stream)
    }

    pub(super) fn is_answered_leg(&self, stream: StreamId) -> bool {
        self.leg(stream).is_some_and(Leg::is_answered)
    }

    /// Opens a new leg (in the table); its INVITE goes when its stream is open.
    pub(super) fn place_leg(
        &mut self,
        target: LegTarget,
        purpose: LegPurpose,
        from_user: String,
    ) -> StreamId {
        tracing::info!(call = %self.facts.id, ?purpose, "second leg placed");
        let leg = Leg::open(&mut self.io, target, purpose, from_user);
        let stream = leg.stream;
        self.legs.insert(stream, leg);
        stream
    }

    /// An answered leg becomes the call's caller side: its dialog, SDP session and stream
    /// (its Call-ID stays routed here). A caller called back, the number a placed call
    /// rang. False, and nothing changes, if the leg is not answered.
    pub(super) fn leg_becomes_caller(&mut self, stream: StreamId) -> bool {
        let Some((dialog, sdp)) = self.leg(stream).and_then(|l| l.answered_parts()) else {
            return false;
        };
        let Some(leg) = self.legs.remove(&stream) else {
            return false;
        };
        self.caller = Caller {
            peer: leg.target.peer,
            stream,
            sdp,
            leg: CallerLeg::Answered {
                dialog: Box::new(dialog),
                awaiting_ack_sdp: false,
            },
        };
        true
    }

    /// Hangs up `stream`'s leg (CANCEL or BYE) and retires it. The phase no longer names it.
    pub(super) fn hang_up(&mut self, now: Instant, stream: StreamId) {
        if let Some(leg) = self.legs.get_mut(&stream) {
            leg.hang_up(now, &self.env, &mut self.io);
        }
        self.retire(stream);
    }

    /// The phase lets go of a leg: its stream closes; the leg leaves the table once its
    /// signalling is over.
    pub(super) fn retire(&mut self, stream: StreamId) {
        if self.legs.contains_key(&stream) {
            self.push(Output::Media(MediaOut::Close { stream }));
        }
        self.tidy();
    }

    /// Drops the retired legs whose signalling is over, and their routes.
    pub(super) fn tidy(&mut self) {
        let over: Vec<StreamId> = self
            .legs
            .values()
            .filter(|l| l.is_done() && self.slot(l.stream).is_none())
            .map(|l| l.stream)
            .collect();
        for stream in over {
            if let Some(leg) = self.legs.remove(&stream) {
                if let Some(call_id) = leg.call_id() {
                    let call_id = call_id.to_string();
                    self.push(Output::Sip(SipOut::Unroute { call_id }));
                }
            }
        }
    }

    /// A leg's stream is open: its INVITE goes. A stream nobody waits for any more closes.
    pub(super) fn leg_opened(&mut self, now: Instant, stream: StreamId, opened: StreamOpened) {
        let in_use = self.slot(stream).is_some();
        let Some(leg) = self.legs.get_mut(&stream).filter(|_| in_use) else {
            self.push(Output::Media(MediaOut::Close { stream }));
            return self.tidy();
        };
        match opened {
            Ok(local) => leg.invite(now, &self.env, &mut self.io, local),
            Err(e) => {
                tracing::warn!(call = %self.facts.id, error = %e, "no media stream for the leg");
                let failed = LegEvent::Failed {
                    status: 503,
                    why: format!("no media stream: {e}"),
                };
                self.leg_events(now, stream, vec![failed]);
            }
        }
    }

    /// The leg of `stream` did something: each event means what its slot says.
    fn leg_events(&mut self, now: Instant, stream: StreamId, events: Vec<LegEvent>) {
        for event in events {
            if let LegEvent::MediaUpdated(n) = &event {
                let params = self.env.leg_params(n);
                self.push(Output::Media(MediaOut::Params { stream, params }));
                continue;
            }
            match self.slot(stream) {
                Some(Slot::Ringing) => self.transfer_leg_event(now, stream, event),
                Some(Slot::Agent) => self.agent_leg_event(now, stream, event),
                Some(Slot::Customer) => self.customer_leg_event(now, stream, event),
                Some(Slot::Supervisor) => self.supervisor_leg_event(now, stream, event),
                Some(Slot::Peer) => self.peer_leg_event(now, event),
                Some(Slot::Callee) => self.callee_leg_event(now, stream, event),
                // Retired: nothing it does matters any more.
                None => {}
            }
        }
        self.tidy();
    }

    /// The leg whose Call-ID a message carries.
    fn leg_of_call_id(&self, call_id: Option<&str>) -> Option<StreamId> {
        let call_id = call_id?;
        self.legs
            .values()
            .find(|l| l.call_id() == Some(call_id))
            .map(|l| l.stream)
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
        let Some(stream) = self.leg_of_call_id(response.headers.call_id()) else {
            return;
        };
        let Some(leg) = self.legs.get_mut(&stream) else {
            return;
        };
        let events = leg.on_response(now, &self.env, &mut self.io, &response);
        self.leg_events(now, stream, events);
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
        let Some(leg) = self.legs.values_mut().find(|l| l.owns(req)) else {
            return;
        };
        let stream = leg.stream;
        let events = leg.on_timeout(now, &self.env, &mut self.io, req);
        self.leg_events(now, stream, events);
    }

    /// A request in one of the legs' dialogs (by Call-ID).
    pub(super) fn leg_request(&mut self, now: Instant, tx: Option<ServerTxId>, req: Request) {
        let Some(stream) = self.leg_of_call_id(req.headers.call_id()) else {
            if let (Some(tx), true) = (tx, req.method != Method::Ack) {
                let response = Response::for_request(&req, 481);
                self.push(Output::Sip(SipOut::Respond { tx, response }));
            }
            return;
        };
        let Some(leg) = self.legs.get_mut(&stream) else {
            return;
        };
        let events = leg.on_request(now, &self.env, &mut self.io, tx, &req);
        self.leg_events(now, stream, events);
    }

    /// The legs' own deadlines that passed.
    pub(super) fn legs_timeout(&mut self, now: Instant) {
        let due: Vec<StreamId> = self
            .legs
            .values()
            .filter(|l| l.poll_timeout().is_some_and(|t| t <= now))
            .map(|l| l.stream)
            .collect();
        for stream in due {
            if let Some(leg) = self.legs.get_mut(&stream) {
                let events = leg.on_timer(now, &self.env, &mut self.io);
                self.leg_events(now, stream, events);
            }
        }
    }

    /// An event of a leg's stream.
    pub(super) fn leg_media(&mut self, now: Instant, stream: StreamId, event: MediaEvent) {
        // Only the bridged party's stream matters (its digits, its silence).
        if let Some(Slot::Peer) = self.slot(stream) {
            self.peer_media(now, event);
        }
    }
}
