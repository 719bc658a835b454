//! The call core: one call's control as a sans-IO state machine (STYLE rule 1), in the
//! shape of the ACD's (`acd::machine`).
//!
//! The driver feeds it what happens, each with the current time: SIP events for the call and
//! the legs it placed (`handle_sip`), media events of its streams (`handle_media`), the
//! outcome of what it asked for (streams opened, connector results, the call recording, a
//! saved message, the record stored), ACD actions, operator commands, and the expiry of its
//! next deadline (`handle_timeout`). After each, the driver drains [`CallCore::poll_output`]
//! (SIP to send, media commands, ACD inputs, connector calls, recordings, the record to
//! store at the end) and sleeps until the next input or [`CallCore::poll_timeout`].
//!
//! The core owns the flow interpreter; it reads no clock, opens no socket, spawns nothing.
//! Time: handlers take a monotonic `Instant`, but the state holds `Timestamp`s on a
//! `Timeline` anchored when the core is built (as the ACD does), so that the state is plain
//! data and means the same on another node.
//!
//! Reading order: [`io`] (what goes in and out), [`phase`] (the states), then one file per
//! concern: `answer` (the caller's INVITE and dialog), `flow` (the interpreter's effects),
//! `queue` (the ACD), `leg` (calls the engine places), `bridge` (relay, recording,
//! supervision), `transfer` (REFER and bridged transfers), `end` (hanging up, the record),
//! `view` (what the call shows operators, derived from its state), `origin` (a call that
//! starts with the engine's INVITE: [`CallCore::originate`]).

mod answer;
mod bridge;
mod callback;
mod end;
pub mod env;
mod flow;
pub mod io;
mod leg;
mod origin;
pub(crate) mod phase;
mod queue;
mod routing;
mod snapshot;
pub mod target;
mod transfer;
mod view;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use ivr_scripts::{CallInfo, ConnectorResult, DeskField, Input, Interpreter};
use sip::endpoint::Peer;
use sip::message::Request;

use crate::acd::{self, Timeline, Timestamp};
use crate::flows::{FlowSet, LoadedFlow};
use crate::media::{Codec, MediaEvent};
use crate::storage::{CallRecord, EndReason, Failover, QueueOutcome};
use pii::Pii;

pub use env::{CallEnv, ContactBook, NoContacts};
pub use io::{
    AcdOut, CallCommand, CommandError, CommandOutcome, MediaOut, MessageOut, Output, PlayId,
    RecordedFile, RecordingOut, ReqId, SavedMessage, SipIn, SipOut, StreamId, StreamOpened,
    SuperviseMode, TargetError,
};
pub use origin::{Originate, OriginateError};
use phase::{Caller, Phase, Step};
pub use snapshot::{CallSnapshot, PhaseMark, RestoreError};

/// The caller's stream is always the first one.
pub const CALLER_STREAM: StreamId = StreamId(0);

/// A call refused before it started: the answer to its INVITE and its record.
#[derive(Debug)]
pub struct Refused {
    pub response: sip::message::Response,
    pub record: Box<CallRecord>,
}

/// What the call record keeps of the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueueRecord {
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub queued_at: Option<Timestamp>,
    pub agent_answered_at: Option<Timestamp>,
    pub outcome: Option<QueueOutcome>,
}

/// The flow the call runs and where it is in it.
pub(crate) struct FlowRun {
    pub loaded: Arc<LoadedFlow>,
    pub interp: Interpreter,
}

/// The call's facts, fixed when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub id: String,
    pub sip_call_id: String,
    pub caller: Pii<String>,
    pub called: Pii<String>,
    pub started_at: Timestamp,
}

pub struct CallCore {
    env: CallEnv,
    clock: Timeline,
    facts: Facts,
    flow: FlowRun,
    caller: Caller,
    phase: Phase,
    answered_at: Option<Timestamp>,
    codec: Option<Codec>,
    queue: QueueRecord,
    /// What the flow's queue step lets the agent see of the call (personal data; not in
    /// the call record).
    desk: Pii<Vec<DeskField>>,
    recorded: Option<RecordedFile>,
    /// The legs the call placed, by stream (see `routing`).
    legs: BTreeMap<StreamId, leg::Leg>,
    /// A number the toll-fraud policy refused to dial (for the call record).
    dial_refused: Option<String>,
    /// The node the call was adopted from (`call::survival`), for its record.
    failover: Option<Failover>,
    io: Outbox,
}

/// The outputs waiting to be polled, and the ids the core hands out.
#[derive(Debug)]
pub(crate) struct Outbox {
    out: VecDeque<Output>,
    next_stream: u32,
    next_req: u64,
    next_play: u64,
}

impl Outbox {
    fn new() -> Self {
        Outbox {
            out: VecDeque::new(),
            next_stream: CALLER_STREAM.0 + 1,
            next_req: 1,
            next_play: 1,
        }
    }

    pub(crate) fn push(&mut self, output: Output) {
        self.out.push_back(output);
    }

    pub(crate) fn new_stream(&mut self) -> StreamId {
        let s = StreamId(self.next_stream);
        self.next_stream += 1;
        s
    }

    pub(crate) fn new_req(&mut self) -> ReqId {
        let r = ReqId(self.next_req);
        self.next_req += 1;
        r
    }

    pub(crate) fn new_play(&mut self) -> PlayId {
        let p = self.next_play;
        self.next_play += 1;
        p
    }
}

/// How long the call waits for the answer to its BYE before closing anyway (the
/// transaction keeps retransmitting on its own).
pub const BYE_WAIT: Duration = Duration::from_secs(2);

impl CallCore {
    /// A call for this INVITE, from `from`. `media` is the caller's stream
    /// ([`CALLER_STREAM`]), opened by the driver before: its local RTP address, or why it
    /// could not be opened. `flows` holds the flow the called number selects. The first
    /// outputs (answer, first prompts...) are ready to poll.
    pub fn new(
        now: Instant,
        wall: SystemTime,
        env: CallEnv,
        flows: &FlowSet,
        invite: Request,
        from: Peer,
        media: StreamOpened,
    ) -> Result<CallCore, Refused> {
        let clock = Timeline::new(now, wall);
        let facts = Facts::of(&invite, clock.stamp(now));
        let flow = flows.get(env.config.flow_for(facts.called.reveal()));
        let setup = answer::Setup {
            env: &env,
            facts: &facts,
            clock: &clock,
            now,
        };
        let (flow, caller) = setup.accept(flow, invite, from, media)?;
        let mut core = CallCore {
            env,
            clock,
            facts,
            flow,
            caller,
            phase: Phase::Flow(Step::Running),
            answered_at: None,
            codec: None,
            queue: QueueRecord::default(),
            desk: Pii::default(),
            recorded: None,
            legs: BTreeMap::new(),
            dial_refused: None,
            failover: None,
            io: Outbox::new(),
        };
        core.start(now);
        Ok(core)
    }

    /// The engine's id of the call (its record's).
    pub fn id(&self) -> &str {
        &self.facts.id
    }

    /// The SIP events of the call's dialog and of the legs it placed.
    pub fn handle_sip(&mut self, now: Instant, event: SipIn) {
        if self.is_ended() {
            return;
        }
        if self.is_over() {
            // Only legs finishing their signalling care.
            return match event {
                SipIn::Response { req, response } => self.response(now, req, response),
                SipIn::Timeout { req } => self.request_timeout(now, req),
                SipIn::Request { tx, request, .. }
                    if request.headers.call_id() != Some(self.caller_call_id()) =>
                {
                    self.leg_request(now, tx, request)
                }
                _ => {}
            };
        }
        match event {
            SipIn::Request { tx, request, from } => self.request(now, tx, request, from),
            SipIn::Response { req, response } => self.response(now, req, response),
            SipIn::Timeout { req } => self.request_timeout(now, req),
            SipIn::Cancelled => self.cancelled(now),
            SipIn::AckTimeout => {
                tracing::warn!(call = %self.facts.id, "our 200 OK was never acknowledged; ending the call");
                self.end(now, EndReason::AckTimeout);
            }
        }
    }

    /// An event of one of the call's media streams.
    pub fn handle_media(&mut self, now: Instant, stream: StreamId, event: MediaEvent) {
        if self.is_over() {
            return;
        }
        if stream == self.caller.stream {
            self.caller_media(now, event);
        } else {
            self.leg_media(now, stream, event);
        }
    }

    /// A stream the core asked for is open (its local RTP address), or could not be.
    pub fn handle_stream_opened(&mut self, now: Instant, stream: StreamId, opened: StreamOpened) {
        self.leg_opened(now, stream, opened);
    }

    /// An action of the ACD for this call.
    pub fn handle_acd(&mut self, now: Instant, action: acd::Action) {
        if !self.is_over() {
            self.acd_action(now, action);
        }
    }

    /// The ACD stopped while the call waits in it.
    pub fn handle_acd_lost(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Queued(_)) {
            tracing::error!(call = %self.facts.id, "the ACD stopped");
            self.end(now, EndReason::Error);
        }
    }

    /// The result of the lookup or action the flow asked for.
    pub fn handle_connector(&mut self, now: Instant, result: ConnectorResult) {
        if let Phase::Flow(Step::Connector { action }) = self.phase {
            let input = if action {
                Input::ActionResult(result)
            } else {
                Input::LookupResult(result)
            };
            self.resume(now, input);
        }
    }

    /// The call recording started in this file (or why it did not).
    pub fn handle_recording_started(&mut self, now: Instant, started: Result<String, String>) {
        self.recording_started(now, started);
    }

    /// The call recording is complete (None: lost).
    pub fn handle_recording_finished(&mut self, now: Instant, file: Option<RecordedFile>) {
        self.recorded = file;
        if let Phase::Ending(e) = &mut self.phase {
            e.recording = false;
        }
        self.try_finish(now);
    }

    /// The message of a `record` step is written (or why it is not).
    pub fn handle_message_saved(&mut self, now: Instant, saved: Result<SavedMessage, String>) {
        self.message_saved(now, saved);
    }

    /// An operator's command; the reply says what was done.
    pub fn handle_command(
        &mut self,
        now: Instant,
        command: CallCommand,
    ) -> Result<CommandOutcome, CommandError> {
        if matches!(self.phase, Phase::Ending(_) | Phase::Ended) {
            return Err(CommandError::Ending);
        }
        match command {
            CallCommand::Supervise { mode, target } => self.supervise(now, mode, target),
            CallCommand::Recording { pause } => self.pause_recording(pause),
            CallCommand::Hangup => {
                tracing::info!(call = %self.facts.id, "hung up by an operator");
                if !self.is_answered() {
                    self.reject(now, 480, Some("hung up by an operator".into()));
                }
                self.end(now, EndReason::OperatorHangup);
                Ok(CommandOutcome::HangingUp)
            }
        }
    }

    /// The record of `Output::Record` is stored (committed, or in the writer's durable
    /// spool): the caller is told that the call ended.
    pub fn handle_record_stored(&mut self, now: Instant) {
        self.record_stored(now);
    }

    /// The engine is stopping: end the call (BYE if answered, 503 otherwise).
    pub fn handle_shutdown(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Ending(_) | Phase::Ended) {
            return;
        }
        if !self.is_answered() {
            self.reject(now, 503, Some("shutting down".into()));
        }
        self.end(now, EndReason::Shutdown);
    }

    /// The clock passed [`CallCore::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let at = self.clock.stamp(now);
        self.legs_timeout(now);
        if matches!(self.phase, Phase::Flow(_)) {
            return self.step_timeout(now, at);
        }
        if let Phase::Dialing(d) = &self.phase {
            if d.deadline <= at {
                return self.ring_timeout(now);
            }
        }
        if let Phase::Ending(e) = &mut self.phase {
            if e.bye.is_some() && e.deadline <= at {
                e.bye = None;
                self.try_finish(now);
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.io.out.pop_front()
    }

    /// When [`CallCore::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let at = match &self.phase {
            Phase::Flow(step) => step_deadline(step),
            Phase::Ending(e) => e.bye.map(|_| e.deadline),
            Phase::Dialing(d) => Some(d.deadline),
            _ => None,
        };
        let legs = self.legs.values().filter_map(leg::Leg::poll_timeout);
        at.map(|t| self.clock.instant(t))
            .into_iter()
            .chain(legs)
            .min()
    }

    /// The record is stored and the caller told ([`Output::Record`], then
    /// `handle_record_stored`); legs may still finish their signalling.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// Nothing more will happen: the record is out and every leg is done.
    pub fn is_ended(&self) -> bool {
        self.is_over() && self.legs.is_empty()
    }

    fn is_answered(&self) -> bool {
        self.answered_at.is_some()
    }

    fn stamp(&self, now: Instant) -> Timestamp {
        self.clock.stamp(now)
    }

    fn wall(&self, now: Instant) -> DateTime<Utc> {
        date(self.stamp(now))
    }

    fn push(&mut self, output: Output) {
        self.io.push(output);
    }

    fn new_req(&mut self) -> ReqId {
        self.io.new_req()
    }

    fn new_play(&mut self) -> PlayId {
        self.io.new_play()
    }

    /// The call's current language (the flow's `language` steps included).
    fn language(&self) -> String {
        self.flow.interp.state().language().to_string()
    }
}

fn step_deadline(step: &Step) -> Option<Timestamp> {
    match step {
        Step::Collecting { collector, .. } => collector.deadline(),
        Step::Message(phase::Message::Capturing { until, .. }) => Some(*until),
        Step::Referring { deadline, .. } | Step::Ringing { deadline, .. } => Some(*deadline),
        _ => None,
    }
}

pub(crate) fn date(t: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from(t.to_system_time())
}

impl Facts {
    fn of(invite: &Request, started_at: Timestamp) -> Facts {
        let caller = invite
            .headers
            .from_addr()
            .ok()
            .and_then(|f| f.uri.user().map(str::to_string))
            .unwrap_or_default();
        let called = invite
            .uri
            .user()
            .map(str::to_string)
            .or_else(|| {
                invite
                    .headers
                    .to_addr()
                    .ok()
                    .and_then(|t| t.uri.user().map(str::to_string))
            })
            .unwrap_or_default();
        Facts {
            id: format!("{:016x}", rand::random::<u64>()),
            sip_call_id: invite.headers.call_id().unwrap_or_default().to_string(),
            caller: Pii::new(caller),
            called: Pii::new(called),
            started_at,
        }
    }

    fn call_info(&self) -> CallInfo {
        CallInfo {
            caller: self.caller.clone(),
            called: self.called.clone(),
            call_id: self.id.clone(),
            language: None,
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
        })
    }
}
