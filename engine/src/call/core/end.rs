//! Hanging up, whatever ends the call: the phase it was in lets go of what it holds (the
//! ACD, the legs, the supervisor, the recording, a message being left); once nothing is
//! pending any more the record goes out to be stored (`Output::Record`), and only once the
//! driver says it is stored (`handle_record_stored`) does the caller learn that the call
//! ended: our 200 to its BYE, or our BYE if the call was answered and the caller is still
//! there. Our BYE's answer is then awaited for at most [`BYE_WAIT`](super::BYE_WAIT).
//! A crash at any moment thus loses no record of a call the caller saw end.

use std::time::Instant;

use ivr_scripts::Input;
use sip::endpoint::ServerTxId;
use sip::message::{HeaderName, Method, Request};

use super::answer::Setup;
use super::io::{AcdOut, MediaOut, MessageOut, Output, SipOut};
use super::phase::{Ending, Message, Phase, RecordState, Step, Wait};
use super::{date, CallCore, Facts, QueueRecord, BYE_WAIT};
use crate::acd::Timestamp;
use crate::flows::LoadedFlow;
use crate::storage::{CallRecord, EndReason};

impl CallCore {
    /// Another node adopted the call (`call::survival`): this node lets it go without a
    /// word to anyone and writes no record: the dialogs, the media and the record are the
    /// other node's now. Only this node's ACD forgets the call.
    pub fn handle_moved(&mut self, _now: Instant) {
        if matches!(self.phase, Phase::Ending(_) | Phase::Ended) {
            return;
        }
        tracing::info!(call = %self.facts.id, "call adopted by another node: let go here");
        if matches!(self.phase, Phase::Queued(_)) {
            self.push(Output::Acd(AcdOut::Leave));
        }
        self.legs.clear();
        self.phase = Phase::Ended;
    }

    /// Ends the call for `reason` (once: later calls do nothing).
    pub(super) fn end(&mut self, now: Instant, reason: EndReason) {
        let phase = std::mem::replace(&mut self.phase, Phase::Ended);
        let mut ending = Ending {
            reason,
            recording: false,
            message: false,
            record: RecordState::Pending,
            reply: None,
            bye_due: false,
            bye: None,
            deadline: self.stamp(now) + BYE_WAIT,
        };
        match phase {
            Phase::Ending(e) => {
                self.phase = Phase::Ending(e);
                return;
            }
            Phase::Ended => return,
            // The number rings: CANCEL (its signalling finishes on its own).
            Phase::Dialing(d) => self.hang_up(now, d.leg),
            Phase::Flow(step) => self.end_step(now, step, &mut ending),
            Phase::Queued(q) => self.leave_queue(now, q, reason),
            Phase::Bridged(b) => ending.recording = self.end_bridge(now, *b, reason),
        }
        if reason == EndReason::CallerHangup {
            self.flow.interp.resume(self.wall(now), Input::CallerHangup);
        } else if self.is_answered() {
            // The caller hears nothing more from the flow while the record is stored.
            let stream = self.caller.stream;
            self.push(Output::Media(MediaOut::StopPlayback { stream }));
            ending.bye_due = true;
        }
        self.phase = Phase::Ending(ending);
        self.try_finish(now);
    }

    /// The caller's BYE: the call ends, and our 200 waits for the record to be stored.
    pub(super) fn caller_bye(&mut self, now: Instant, tx: Option<ServerTxId>, req: &Request) {
        match &mut self.phase {
            Phase::Queued(q) if matches!(q.wait, Wait::Confirming { .. }) => {
                // Hung up during the confirmation: the callback stands, the call goes on.
                self.respond_caller(tx, req, 200);
                return self.caller_leaves_for_callback(now, false);
            }
            Phase::Ending(e) if e.record != RecordState::Stored => {
                // The caller leaves while the call ends: no BYE for it any more.
                e.bye_due = false;
            }
            // A BYE crossing ours: the record is stored already.
            Phase::Ending(_) | Phase::Ended => return self.respond_caller(tx, req, 200),
            _ => self.end(now, EndReason::CallerHangup),
        }
        let reply = tx.map(|tx| (tx, self.caller_response(req, 200)));
        if let Phase::Ending(e) = &mut self.phase {
            e.reply = reply;
        }
    }

    /// What the flow step in progress leaves behind.
    fn end_step(&mut self, now: Instant, step: Step, ending: &mut Ending) {
        match step {
            // A message left before hanging up is kept (voicemail behaviour).
            Step::Message(Message::Capturing { .. })
                if ending.reason == EndReason::CallerHangup =>
            {
                self.push(Output::Message(MessageOut::Save));
                ending.message = true;
            }
            Step::Ringing { leg, .. } => self.hang_up(now, leg),
            _ => {}
        }
    }

    /// BYE to the caller, if the dialog is up; its answer is awaited (bounded).
    fn bye_caller(&mut self) -> Option<super::ReqId> {
        let (mut bye, peer) = self.caller_request(Method::Bye)?;
        bye.headers.push(
            HeaderName::Reason,
            "SIP;cause=200;text=\"Call completed by the IVR\"",
        );
        Some(self.send(bye, peer))
    }

    /// A response to our BYE to the caller while ending.
    pub(super) fn bye_answered(&mut self, now: Instant, req: super::ReqId) -> bool {
        let Phase::Ending(e) = &mut self.phase else {
            return false;
        };
        if e.bye != Some(req) {
            return false;
        }
        e.bye = None;
        self.try_finish(now);
        true
    }

    /// The driver stored the record (`Output::Record`): the caller may now learn that the
    /// call ended.
    pub(super) fn record_stored(&mut self, now: Instant) {
        let Phase::Ending(e) = &mut self.phase else {
            return;
        };
        if e.record != RecordState::Storing {
            return;
        }
        e.record = RecordState::Stored;
        let reply = e.reply.take();
        let bye_due = std::mem::take(&mut e.bye_due);
        if let Some((tx, response)) = reply {
            self.push(Output::Sip(SipOut::Respond { tx, response }));
        }
        let bye = if bye_due { self.bye_caller() } else { None };
        let deadline = self.stamp(now) + BYE_WAIT;
        if let Phase::Ending(e) = &mut self.phase {
            e.bye = bye;
            e.deadline = deadline;
        }
        self.try_finish(now);
    }

    /// Moves the end on: the record out once nothing it waits for is pending; the call
    /// over once the record is stored and our BYE answered (or given up on).
    pub(super) fn try_finish(&mut self, now: Instant) {
        let Phase::Ending(e) = &mut self.phase else {
            return;
        };
        match e.record {
            RecordState::Pending if !e.recording && !e.message => {
                e.record = RecordState::Storing;
                let reason = e.reason;
                let record = self.record(now, reason);
                self.push(Output::Record {
                    record: Box::new(record),
                    caller_stream: self.caller.stream,
                });
            }
            RecordState::Stored if e.bye.is_none() => self.phase = Phase::Ended,
            _ => {}
        }
    }

    /// The call's record as it stands (`reason`, ended now).
    pub(super) fn record(&self, now: Instant, reason: EndReason) -> CallRecord {
        let mut r = base_record(
            &self.facts,
            Some(&self.flow.loaded),
            &self.env.config.node_name,
            reason,
            self.stamp(now),
        );
        r.path = self.flow.interp.path().to_vec();
        r.answered_at = self.answered_at.map(date);
        r.codec = self.codec.map(|c| c.to_string());
        let QueueRecord {
            queue,
            agent,
            queued_at,
            agent_answered_at,
            outcome,
        } = self.queue.clone();
        r.queue = queue;
        r.agent = agent;
        r.queued_at = queued_at.map(date);
        r.agent_answered_at = agent_answered_at.map(date);
        r.queue_outcome = outcome;
        if let Some(f) = &self.recorded {
            r.recording = Some(f.path.clone());
            r.recording_sha256 = Some(f.sha256.clone());
            r.recording_ms = Some(f.duration_ms);
        }
        r.dial_refused = self.dial_refused.clone();
        r.failover = self.failover.clone();
        r
    }
}

/// The record of a call refused before it started.
pub(super) fn record_of(
    setup: &Setup<'_>,
    flow: Option<&LoadedFlow>,
    reason: EndReason,
) -> CallRecord {
    let now = setup.clock().stamp(setup.now);
    base_record(setup.facts, flow, &setup.env.config.node_name, reason, now)
}

fn base_record(
    facts: &Facts,
    flow: Option<&LoadedFlow>,
    node: &str,
    reason: EndReason,
    ended_at: Timestamp,
) -> CallRecord {
    CallRecord {
        id: facts.id.clone(),
        sip_call_id: facts.sip_call_id.clone(),
        started_at: date(facts.started_at),
        answered_at: None,
        ended_at: date(ended_at),
        caller: facts.caller.reveal().clone(),
        called: facts.called.reveal().clone(),
        flow: flow.map(|f| f.flow.name().to_string()),
        flow_version: flow.map(|f| f.version.clone()),
        path: Vec::new(),
        end_reason: reason,
        codec: None,
        node: node.to_string(),
        rtp_sent: 0,
        rtp_received: 0,
        queue: None,
        agent: None,
        queued_at: None,
        agent_answered_at: None,
        queue_outcome: None,
        recording: None,
        recording_sha256: None,
        recording_ms: None,
        dial_refused: None,
        failover: None,
    }
}
