//! A call's whole state as data ([`CallSnapshot`], `serde`), complete enough to rebuild its
//! core on another node and continue: the caller's dialog (Call-ID, tags, CSeq both ways,
//! route set, remote target, transport) and SDP session (local and remote media, the
//! negotiated codec and telephone-event type), the flow's position and variables, the queue
//! (name, priority, position), every leg the call placed (its INVITE client, dialog and SDP
//! session), the bridge with its recording (file, start, paused) and supervision.
//!
//! Time: deadlines are `Timestamp`s (wall-clock milliseconds), so they mean the same on the
//! node that restores the call; leg clients save their timers as time left. What is not
//! here, and why: the media streams (ports and sockets are the node's: a driver that
//! restores a call opens new ones and re-anchors the legs' media with a re-INVITE) and
//! server transactions in flight (they do not survive their node; the peer retransmits).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ivr_scripts::{DeskField, Interpreter};
use serde::{Deserialize, Serialize};

use super::leg::{Leg, SavedLeg};
use super::phase::{CallRecording, Caller, Phase, Step, Supervision, Wait};
use super::{
    CallCore, CallEnv, Facts, FlowRun, Outbox, QueueRecord, RecordedFile, StreamId, Timeline,
    Timestamp,
};
use crate::flows::FlowSet;
use crate::media::Codec;
use pii::Pii;

/// A call as data (see the module documentation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallSnapshot {
    pub id: String,
    pub sip_call_id: String,
    /// Caller and called numbers: personal data, as in the call's record.
    pub caller: String,
    pub called: String,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub flow: String,
    pub flow_version: String,
    /// The interpreter's position and variables.
    pub interpreter: ivr_scripts::CallState,
    pub codec: Option<Codec>,
    pub(crate) queue: QueueRecord,
    /// The values the flow lets the agent see (absent in snapshots of older versions).
    #[serde(default)]
    pub desk: Pii<Vec<DeskField>>,
    pub recorded: Option<RecordedFile>,
    /// A number the dial plan refused (for the call record).
    #[serde(default)]
    pub dial_refused: Option<String>,
    /// Set by the node that adopted the call (`call::survival::adoptable`).
    #[serde(default)]
    pub failover: Option<crate::storage::Failover>,
    pub(crate) caller_side: Caller,
    pub(crate) phase: Phase,
    pub(crate) legs: Vec<SavedLeg>,
    /// The next stream, request and playback ids.
    pub(crate) next: (u32, u64, u64),
}

/// Where a call is, coarsely: its phase, what that phase waits for, and the flow's step.
/// A change of mark is a change of phase, which `call::survival` replicates at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseMark {
    pub phase: &'static str,
    pub waits: &'static str,
    pub step: Option<String>,
    /// Legs placed (an agent's phone ringing, a transfer target, a supervisor).
    pub legs: usize,
}

/// Why a snapshot cannot become a call here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("flow `{0}` is not loaded here")]
    FlowMissing(String),
    #[error("flow `{flow}` is at version {here} here, the call ran {call}")]
    FlowVersion {
        flow: String,
        call: String,
        here: String,
    },
    #[error(transparent)]
    Interpreter(#[from] ivr_scripts::InterpError),
}

impl CallCore {
    /// The call's [`PhaseMark`]; `None` while it cannot be adopted by another node: not
    /// answered yet (no dialog to re-INVITE), or ending.
    pub fn phase_mark(&self) -> Option<PhaseMark> {
        self.answered_at?;
        let (phase, waits) = match &self.phase {
            Phase::Dialing(_) | Phase::Ending(_) | Phase::Ended => return None,
            Phase::Flow(step) => (
                "flow",
                match step {
                    Step::Running => "running",
                    Step::Playing { .. } => "playing",
                    Step::Collecting { .. } => "collecting",
                    Step::Message(_) => "message",
                    Step::Connector { .. } => "connector",
                    Step::Referring { .. } => "referring",
                    Step::Farewell { .. } => "farewell",
                    Step::Ringing { .. } => "ringing",
                },
            ),
            Phase::Queued(q) => (
                "queued",
                match q.wait {
                    Wait::Listening { .. } => "listening",
                    Wait::Confirming { .. } => "confirming",
                    Wait::Away { .. } => "away",
                    Wait::Dialing { .. } => "dialing",
                    Wait::Reconnected => "reconnected",
                },
            ),
            Phase::Bridged(b) => (
                "bridged",
                match (&b.recording, &b.supervision) {
                    (CallRecording::On { .. }, Supervision::Off) => "recorded",
                    (_, Supervision::Off) => "talking",
                    (CallRecording::On { .. }, _) => "recorded, supervised",
                    (_, _) => "supervised",
                },
            ),
        };
        let step = match self.flow.interp.state().position() {
            ivr_scripts::Position::Step { step } => Some(step.clone()),
            _ => None,
        };
        Some(PhaseMark {
            phase,
            waits,
            step,
            legs: self.legs.len(),
        })
    }

    /// The call as data, at `now` (after the driver drained the outputs, as it does before
    /// waiting: outputs not polled yet are not part of it).
    pub fn snapshot(&self, now: Instant) -> CallSnapshot {
        let loaded = &self.flow.loaded;
        CallSnapshot {
            id: self.facts.id.clone(),
            sip_call_id: self.facts.sip_call_id.clone(),
            caller: self.facts.caller.reveal().clone(),
            called: self.facts.called.reveal().clone(),
            started_at: self.facts.started_at,
            answered_at: self.answered_at,
            flow: loaded.flow.name().to_string(),
            flow_version: loaded.version.clone(),
            interpreter: self.flow.interp.state().clone(),
            codec: self.codec,
            queue: self.queue.clone(),
            desk: self.desk.clone(),
            recorded: self.recorded.clone(),
            dial_refused: self.dial_refused.clone(),
            failover: self.failover.clone(),
            caller_side: self.caller.clone(),
            phase: self.phase.clone(),
            legs: self.legs.values().map(|l| l.save(now)).collect(),
            next: (self.io.next_stream, self.io.next_req, self.io.next_play),
        }
    }

    /// Rebuilds a call from its snapshot, on the flow version it ran (`flows` must hold
    /// it). `now` and `wall` anchor the new core's clock, as for a new call.
    pub fn restore(
        now: Instant,
        wall: SystemTime,
        env: CallEnv,
        flows: &FlowSet,
        snapshot: CallSnapshot,
    ) -> Result<CallCore, RestoreError> {
        let loaded = flows
            .get(&snapshot.flow)
            .ok_or_else(|| RestoreError::FlowMissing(snapshot.flow.clone()))?;
        if loaded.version != snapshot.flow_version {
            return Err(RestoreError::FlowVersion {
                flow: snapshot.flow,
                call: snapshot.flow_version,
                here: loaded.version.clone(),
            });
        }
        let interp = Interpreter::from_state(Arc::clone(&loaded.flow), snapshot.interpreter)?;
        let legs: BTreeMap<StreamId, Leg> = snapshot
            .legs
            .into_iter()
            .map(|saved| (saved.stream, Leg::restore(saved, &env, now)))
            .collect();
        let (next_stream, next_req, next_play) = snapshot.next;
        let mut io = Outbox::new();
        io.next_stream = next_stream;
        io.next_req = next_req;
        io.next_play = next_play;
        Ok(CallCore {
            env,
            clock: Timeline::new(now, wall),
            facts: Facts {
                id: snapshot.id,
                sip_call_id: snapshot.sip_call_id,
                caller: Pii::new(snapshot.caller),
                called: Pii::new(snapshot.called),
                started_at: snapshot.started_at,
            },
            flow: FlowRun { loaded, interp },
            caller: snapshot.caller_side,
            phase: snapshot.phase,
            answered_at: snapshot.answered_at,
            codec: snapshot.codec,
            queue: snapshot.queue,
            desk: snapshot.desk,
            recorded: snapshot.recorded,
            dial_refused: snapshot.dial_refused,
            failover: snapshot.failover,
            legs,
            io,
        })
    }
}
