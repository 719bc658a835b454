//! The call's states as data: each phase carries what it needs, and nothing else says
//! where the call is.
//!
//! ```text
//!            (INVITE) ──> Flow ─┬──> Queued ──(Bridge)──> Bridged ──┐
//!                         ^     │      │  ^                         │
//!                         │     │      │  └─(callback: caller away, │
//!                         │     │      │     dialled back)          │
//!                         └─────┴──────┘ (overflow, transfer failed)│
//!                               │                                   v
//!                               └──(bridged transfer answered)──> Bridged ──> Ending ──> Ended
//! ```
//!
//! Every phase can end (`Ending`): the caller or the second party hangs up, the flow ends,
//! the engine shuts down. `Ending` waits for what must finish before the record is
//! written (our BYE's answer, the call recording, a message being saved).

use std::path::PathBuf;
use std::time::Duration;

use sip::auth::DigestClient;
use sip::dialog::Dialog;
use sip::endpoint::Peer;
use sip::message::Request;
use sip::sdp::{SdpSession, SessionDescription};

use super::io::{PlayId, ReqId, StreamId, SuperviseMode};
use super::target::LegTarget;
use crate::acd::{AgentId, Timestamp};
use crate::collect::DigitCollector;
use crate::storage::EndReason;

/// The caller's side: the INVITE's source, its media stream and offer/answer state.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Where in-dialog requests go (the INVITE's source; after a callback, the line the
    /// caller was dialled back on).
    pub peer: Peer,
    pub stream: StreamId,
    pub sdp: SdpSession,
    pub leg: CallerLeg,
}

#[derive(Debug, Clone)]
pub(crate) enum CallerLeg {
    /// Our final answer to the INVITE is still to come.
    Offered { invite: Box<Request>, offer: Offer },
    /// We answered 200: the dialog is up.
    Answered {
        dialog: Box<Dialog>,
        /// Our offer went in the 200 (the INVITE had none); its answer comes in the ACK.
        awaiting_ack_sdp: bool,
    },
    /// No dialog with the caller: refused, or hung up to be called back.
    Closed,
}

#[derive(Debug, Clone)]
pub(crate) enum Offer {
    /// Our answer to the INVITE's offer, sent in the 200.
    Answer(Box<SessionDescription>),
    /// The INVITE had no offer: ours goes in the 200, the answer comes in the ACK.
    Late,
}

#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// The flow runs a step.
    Flow(Step),
    /// In an ACD queue (the caller on the line or away for a callback).
    Queued(Queued),
    /// The caller and a second party (an agent, a bridged-transfer target) talk.
    Bridged(Box<Bridge>),
    Ending(Ending),
    Ended,
}

/// What the current flow step waits for.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Between two effects (never seen between two inputs).
    Running,
    Playing {
        play: PlayId,
        barge_in: bool,
    },
    /// Digits, while and after `prompt` plays (None once it ended).
    Collecting {
        prompt: Option<PlayId>,
        collector: DigitCollector<Timestamp>,
    },
    /// A `record` step.
    Message(Message),
    /// A lookup or an action runs.
    Connector {
        action: bool,
    },
    /// A blind transfer: our REFER is out; its answer and NOTIFYs tell the outcome.
    Referring {
        req: ReqId,
        deadline: Timestamp,
    },
    /// A queue's exit message plays; the engine hangs up when it ends.
    Farewell {
        play: PlayId,
    },
    /// A bridged transfer: the target rings, the caller hears ringback.
    Ringing {
        leg: Box<Leg>,
        deadline: Timestamp,
        ringback: PlayId,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Message {
    /// The step's prompts and beep play; capture starts when they end.
    Prompting {
        prompt: PlayId,
        path: PathBuf,
        max_length: Duration,
        terminator: Option<char>,
    },
    /// The caller's audio is captured until the terminator, `until`, or a hangup.
    Capturing {
        until: Timestamp,
        terminator: Option<char>,
    },
    /// The file is being written; `RecordDone` follows.
    Saving,
}

#[derive(Debug, Clone)]
pub(crate) struct Queued {
    /// Agent legs the ACD asked for (several with ring-all); at most one answered, which
    /// waits for the ACD's `Bridge`.
    pub agents: Vec<Leg>,
    pub wait: Wait,
}

/// Where the caller is while the call waits in the ACD.
#[derive(Debug, Clone)]
pub(crate) enum Wait {
    /// On the line, hearing `music` (or an announcement; None: silence).
    Listening { music: Option<PlayId> },
    /// Hearing the callback confirmation; hung up when it ends.
    Confirming { prompt: PlayId },
    /// Hung up to be called back; `attempts` failed so far.
    Away { attempts: u32 },
    /// An agent answered the callback; the caller is dialled on `customer`.
    Dialing { attempts: u32, customer: Box<Leg> },
    /// The caller answered the callback: the ACD's `Bridge` comes next.
    Reconnected,
}

#[derive(Debug, Clone)]
pub(crate) struct Bridge {
    pub peer: Leg,
    pub recording: CallRecording,
    pub supervision: Supervision,
    /// The second party's previous digit (feature codes such as `*7`).
    pub last_digit: Option<char>,
}

/// The bridge's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallRecording {
    /// Not recorded (the policy's draw, or the recorder refused).
    Off,
    /// Asked of the driver; its outcome is pending.
    Starting,
    On {
        paused: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Supervision {
    Off,
    /// The supervisor's phone rings.
    Calling {
        leg: Box<Leg>,
        mode: SuperviseMode,
    },
    /// The supervisor answered; its audio is wired per `mode`.
    Live {
        leg: Box<Leg>,
        mode: SuperviseMode,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Ending {
    pub reason: EndReason,
    /// Our BYE to the caller, until answered or `deadline`.
    pub bye: Option<ReqId>,
    pub deadline: Timestamp,
    /// The call recording is being completed.
    pub recording: bool,
    /// A message left before hanging up is being saved (voicemail behaviour).
    pub message: bool,
}

/// Why the engine placed a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegPurpose {
    /// The ACD rings this agent for the queued call.
    Agent(AgentId),
    /// A `transfer` step in `bridged` mode.
    Transfer,
    /// A supervisor listening, whispering or barging in.
    Supervisor,
    /// The caller, called back.
    Customer,
}

/// A call the engine places as a B2BUA, bridged through its own media streams.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    pub stream: StreamId,
    pub purpose: LegPurpose,
    /// The leg's own SIP Call-ID.
    pub call_id: String,
    pub target: LegTarget,
    pub state: LegState,
}

#[derive(Debug, Clone)]
pub(crate) enum LegState {
    /// Its media stream opens; the INVITE goes once the port is known.
    Opening { from_user: String },
    Inviting {
        sdp: Box<SdpSession>,
        invite: Box<Request>,
        req: ReqId,
        /// Credentials answering the PBX's challenges (built from the target's trunk).
        digest: Option<Box<DigestClient>>,
        challenges: u8,
    },
    Answered {
        sdp: Box<SdpSession>,
        dialog: Box<Dialog>,
        /// The INVITE, whose retransmitted 2xx are acknowledged again.
        req: ReqId,
    },
    /// Over: it hung up, failed or was hung up.
    Ended,
}

impl Leg {
    pub(crate) fn is_answered(&self) -> bool {
        matches!(self.state, LegState::Answered { .. })
    }

    pub(crate) fn agent(&self) -> Option<&AgentId> {
        match &self.purpose {
            LegPurpose::Agent(a) => Some(a),
            _ => None,
        }
    }
}
