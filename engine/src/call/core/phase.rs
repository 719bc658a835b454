//! The call's states as data: each phase carries what it needs, and nothing else says
//! where the call is.
//!
//! ```text
//! (originate) ──> Dialing ──(answered)──┐
//!                                       v
//!            (INVITE) ──> Flow ─┬──> Queued ──(Bridge)──> Bridged ──┐
//!                         ^     │      │  ^                         │
//!                         │     │      │  └─(callback: caller away, │
//!                         │     │      │     dialled back)          │
//!                         └─────┴──────┘ (overflow, transfer failed)│
//!                               │                                   v
//!                               └──(bridged transfer answered)──> Bridged ──> Ending ──> Ended
//! ```
//!
//! A call the engine places starts `Dialing`: its number rings on a leg; when it answers,
//! that leg becomes the caller side and the flow runs as for an inbound call.
//! Every phase can end (`Ending`): the caller or the second party hangs up, the flow ends,
//! the engine shuts down. `Ending` waits for what must finish before the record is
//! written (the call recording, a message being saved), then for the record to be stored,
//! and only then tells the caller (our 200 to its BYE, or our BYE, whose answer it awaits).
//!
//! Legs (the calls the engine places) live in the core's leg table, by their stream; a
//! phase names the legs it uses and says what they are for. Everything here is plain data
//! (`serde`): it is most of a call's snapshot.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sip::dialog::Dialog;
use sip::endpoint::{Peer, ServerTxId};
use sip::message::{Request, Response};
use sip::sdp::{SdpSession, SessionDescription};

use super::io::{PlayId, ReqId, StreamId, SuperviseMode};
use crate::acd::{AgentId, Priority, QueueId, Timestamp};
use crate::collect::DigitCollector;
use crate::storage::EndReason;

/// The caller's side: the INVITE's source, its media stream and offer/answer state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Caller {
    /// Where in-dialog requests go (the INVITE's source; after a callback, the line the
    /// caller was dialled back on).
    pub peer: Peer,
    pub stream: StreamId,
    pub sdp: SdpSession,
    pub leg: CallerLeg,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum CallerLeg {
    /// Our final answer to the INVITE is still to come.
    Offered {
        #[serde(with = "super::wire::request")]
        invite: Box<Request>,
        offer: Offer,
    },
    /// We answered 200: the dialog is up.
    Answered {
        dialog: Box<Dialog>,
        /// Our offer went in the 200 (the INVITE had none); its answer comes in the ACK.
        awaiting_ack_sdp: bool,
    },
    /// No dialog with the caller: refused, or hung up to be called back.
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Offer {
    /// Our answer to the INVITE's offer, sent in the 200.
    Answer(Box<SessionDescription>),
    /// The INVITE had no offer: ours goes in the 200, the answer comes in the ACK.
    Late,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// A call the engine places: its number rings on `leg` until `deadline`.
    Dialing(Dialing),
    /// The flow runs a step.
    Flow(Step),
    /// In an ACD queue (the caller on the line or away for a callback).
    Queued(Queued),
    /// The caller and a second party (an agent, a bridged-transfer target) talk.
    Bridged(Box<Bridge>),
    Ending(Ending),
    Ended,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Dialing {
    pub leg: StreamId,
    /// When the number has rung long enough.
    pub deadline: Timestamp,
}

/// What the current flow step waits for.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
        leg: StreamId,
        deadline: Timestamp,
        ringback: PlayId,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub queue: QueueId,
    pub priority: Priority,
    /// The caller's place in line as last announced (1: next).
    pub position: Option<u32>,
    /// Agent legs the ACD asked for (several with ring-all); at most one answered, which
    /// waits for the ACD's `Bridge`.
    pub agents: Vec<StreamId>,
    pub wait: Wait,
}

/// Where the caller is while the call waits in the ACD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Wait {
    /// On the line, hearing `music` (or an announcement; None: silence).
    Listening { music: Option<PlayId> },
    /// Hearing the callback confirmation; hung up when it ends.
    Confirming { prompt: PlayId },
    /// Hung up to be called back; `attempts` failed so far.
    Away { attempts: u32 },
    /// An agent answered the callback; the caller is dialled on `customer`.
    Dialing { attempts: u32, customer: StreamId },
    /// The caller answered the callback: the ACD's `Bridge` comes next.
    Reconnected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Bridge {
    pub peer: StreamId,
    pub recording: CallRecording,
    pub supervision: Supervision,
    /// The second party's previous digit (feature codes such as `*7`).
    pub last_digit: Option<char>,
}

/// The bridge's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CallRecording {
    /// Not recorded (the policy's draw, or the recorder refused).
    Off,
    /// Asked of the driver; its outcome is pending.
    Starting,
    On {
        file: String,
        /// When the recording started (its offset in the call).
        since: Timestamp,
        paused: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Supervision {
    Off,
    /// The supervisor's phone rings.
    Calling {
        leg: StreamId,
        mode: SuperviseMode,
    },
    /// The supervisor answered; its audio is wired per `mode`.
    Live {
        leg: StreamId,
        mode: SuperviseMode,
    },
}

impl Supervision {
    /// The supervisor's leg, if any.
    pub(crate) fn leg(&self) -> Option<StreamId> {
        match self {
            Supervision::Calling { leg, .. } | Supervision::Live { leg, .. } => Some(*leg),
            Supervision::Off => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ending {
    pub reason: EndReason,
    /// The call recording is being completed.
    pub recording: bool,
    /// A message left before hanging up is being saved (voicemail behaviour).
    pub message: bool,
    /// Where the call's record is. The caller learns that the call ended (our 200 to its
    /// BYE, or our BYE) only once it is `Stored`: a crash after that loses no record of a
    /// call the caller saw end.
    pub record: RecordState,
    /// Our 200 to the caller's BYE, held until the record is stored. Not in a snapshot:
    /// its server transaction does not survive the node (the caller retransmits its BYE).
    #[serde(skip)]
    pub reply: Option<(ServerTxId, Response)>,
    /// The caller is still on the line and gets our BYE once the record is stored.
    pub bye_due: bool,
    /// Our BYE to the caller, until answered or `deadline`.
    pub bye: Option<ReqId>,
    pub deadline: Timestamp,
}

/// The call's record while the call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RecordState {
    /// Waiting for the recording or a message to complete it.
    Pending,
    /// Handed to the driver (`Output::Record`); `handle_record_stored` follows.
    Storing,
    /// Durable: committed, or in the writer's local spool.
    Stored,
}

/// Why the engine placed a leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LegPurpose {
    /// The ACD rings this agent for the queued call.
    Agent(AgentId),
    /// A `transfer` step in `bridged` mode.
    Transfer,
    /// A supervisor listening, whispering or barging in.
    Supervisor,
    /// The caller, called back.
    Customer,
    /// The number a call the engine places rings (see `origin`).
    Callee,
}
