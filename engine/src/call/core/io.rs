//! What goes in and out of the call core.
//!
//! | output                 | the driver does                                        | and reports back                |
//! |------------------------|--------------------------------------------------------|---------------------------------|
//! | `Sip(AnswerInvite)`    | answers the call's INVITE in its server transaction    | -                               |
//! | `Sip(Respond)`         | answers a request in the given server transaction      | -                               |
//! | `Sip(Request)`         | sends in a new client transaction                      | `SipIn::Response`/`Timeout` with the same [`ReqId`] |
//! | `Sip(Stateless)`       | sends outside any transaction (ACK to a 2xx)           | -                               |
//! | `Sip(Cancel)`          | cancels the INVITE sent as that [`ReqId`]              | -                               |
//! | `Sip(Route/Unroute)`   | routes a leg's Call-ID to this call, or stops          | -                               |
//! | `Media(Open)`          | opens an RTP stream (port pair)                        | `handle_stream_opened`          |
//! | `Media(..)`            | plays, stops, sends digits, routes audio, closes       | `MediaEvent`s of the stream     |
//! | `Acd(..)`              | joins, informs and leaves the ACD                      | `Action`s for this call         |
//! | `Connector`            | runs a lookup or an action (bounded by its timeout)    | `handle_connector`              |
//! | `Recording(..)`        | records the bridge (stereo WAV)                        | `handle_recording_started`/`finished` |
//! | `Message(..)`          | captures the caller's audio for a `record` step        | `handle_message_saved`          |
//! | `Record`               | stores the call's record (committed or spooled)        | `handle_record_stored`          |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pii::Pii;
use serde::{Deserialize, Serialize};
use sip::endpoint::{Peer, ServerTxId};
use sip::message::{Request, Response, SipMessage};

use crate::acd;
use crate::media::{DtmfDigit, Link, MediaParams, Prompt};
use crate::storage::CallRecord;

/// A media stream of the call: the caller's, or one of the legs the call placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(pub u32);

/// A request the core sent in a client transaction; its answers come back under this id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReqId(pub u64);

/// A playback on one stream; `PlaybackFinished` names it.
pub type PlayId = u64;

/// Something the core asks the driver to do, in order.
#[derive(Debug)]
pub enum Output {
    Sip(SipOut),
    Media(MediaOut),
    Acd(AcdOut),
    /// Run a connector; its result comes back through `handle_connector`. The parameters
    /// come from the call's variables: personal data, revealed to the connector alone.
    Connector {
        action: bool,
        name: String,
        params: Pii<serde_json::Map<String, serde_json::Value>>,
        timeout: Duration,
    },
    Recording(RecordingOut),
    Message(MessageOut),
    /// The call is ending: store its record. `caller_stream`'s counters complete it (RTP
    /// sent and received). The caller is told that the call ended (our 200 to its BYE, or
    /// our BYE) only after `handle_record_stored`; the streams close when the core is ended.
    Record {
        record: Box<CallRecord>,
        caller_stream: StreamId,
    },
}

#[derive(Debug)]
pub enum SipOut {
    /// An answer to the call's INVITE (its transaction is the driver's).
    AnswerInvite(Response),
    /// An answer in the server transaction of a request given to the core.
    Respond {
        tx: ServerTxId,
        response: Response,
    },
    /// A request to send in a new client transaction. The driver adds nothing: Via and
    /// Max-Forwards are set.
    Request {
        req: ReqId,
        request: Request,
        to: Peer,
    },
    /// A message outside any transaction (the ACK of a 2xx).
    Stateless {
        message: SipMessage,
        to: Peer,
    },
    /// CANCEL the INVITE sent as `req` (RFC 3261 §9.1; the transaction layer builds it).
    Cancel {
        req: ReqId,
    },
    /// Route the SIP events of `call_id` (a leg's) to this call until `Unroute`.
    Route {
        call_id: String,
    },
    Unroute {
        call_id: String,
    },
}

#[derive(Debug)]
pub enum MediaOut {
    /// A new RTP stream with default parameters.
    Open {
        stream: StreamId,
    },
    Params {
        stream: StreamId,
        params: MediaParams,
    },
    Play {
        stream: StreamId,
        id: PlayId,
        prompts: Vec<Prompt>,
    },
    StopPlayback {
        stream: StreamId,
    },
    SendDtmf {
        stream: StreamId,
        digit: DtmfDigit,
    },
    /// The caller's and the second party's streams relay each other's inbound audio (taps
    /// and feeds of `Link::Relay`, both ways).
    Bridge {
        caller: StreamId,
        peer: StreamId,
    },
    /// `from`'s inbound audio mixed into `to`'s outbound audio: a tap on `from` and a
    /// feed on `to`, named by the links, through a channel of `capacity` 20 ms frames.
    Route {
        from: StreamId,
        tap: Link,
        to: StreamId,
        feed: Link,
        capacity: usize,
    },
    /// Removes the tap and the feed of `link` on `stream`.
    Unroute {
        stream: StreamId,
        link: Link,
    },
    /// Ends the stream (its ports are freed, its leg's Call-ID no longer routed here).
    Close {
        stream: StreamId,
    },
}

#[derive(Debug)]
pub enum AcdOut {
    /// The call enters the ACD with this `CallArrived`; actions for it follow.
    Join(acd::Input),
    Input(acd::Input),
    /// No more actions for this call.
    Leave,
}

#[derive(Debug)]
pub enum RecordingOut {
    /// Record the bridge: `left` (the caller) and `right` (the second party) as a stereo
    /// file. `journal` is what the record would say if the engine died now.
    Start {
        left: StreamId,
        right: StreamId,
        journal: Box<CallRecord>,
    },
    Pause,
    Resume,
    /// Complete the file; `handle_recording_finished` follows.
    Stop,
}

#[derive(Debug)]
pub enum MessageOut {
    /// Capture `stream`'s inbound audio (a `record` step) for `path`, at most `max_length`.
    Start {
        stream: StreamId,
        path: PathBuf,
        max_length: Duration,
    },
    /// Stop capturing and write the file; `handle_message_saved` follows.
    Save,
}

/// The call recording as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordedFile {
    pub path: String,
    pub sha256: String,
    pub duration_ms: u64,
}

/// A message saved by a `record` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMessage {
    pub path: PathBuf,
    pub duration: Duration,
}

/// SIP as the core sees it: the transport's events with client transactions named by the
/// core's own [`ReqId`]s.
#[derive(Debug)]
pub enum SipIn {
    Request {
        tx: Option<ServerTxId>,
        request: Request,
        from: Peer,
    },
    Response {
        req: ReqId,
        response: Response,
    },
    /// No final answer to `req` (Timer B or F).
    Timeout {
        req: ReqId,
    },
    /// The caller cancelled its INVITE.
    Cancelled,
    /// Our 2xx to the INVITE was never acknowledged.
    AckTimeout,
}

/// How a supervisor joins a bridged call (see `bridge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuperviseMode {
    /// Hears both parties; nobody hears the supervisor.
    Listen,
    /// Hears both; the agent hears the supervisor, the caller does not.
    Whisper,
    /// Everyone hears everyone.
    Barge,
}

/// An operator's command to one call (through the live-call registry, `call::live`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CallCommand {
    /// Start supervising (calling `target`), change the mode, or stop (`mode` None).
    Supervise {
        mode: Option<SuperviseMode>,
        target: Option<String>,
    },
    /// Pause (`true`) or resume the call's recording.
    Recording { pause: bool },
    /// End the call (BYE to whoever is on it).
    Hangup,
}

/// What a call did with a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The supervisor's phone is being called.
    SupervisorCalled {
        target: String,
        mode: SuperviseMode,
    },
    SupervisionChanged {
        mode: SuperviseMode,
    },
    SupervisionStopped,
    RecordingPaused,
    RecordingResumed,
    /// The call is ending (BYE, or 480 before the answer).
    HangingUp,
}

/// Why a command to a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "refusal", content = "detail", rename_all = "snake_case")]
pub enum CommandError {
    #[error("the call is not bridged to an agent")]
    NotBridged,
    #[error("the call is not supervised")]
    NotSupervised,
    #[error("give the supervisor's extension or SIP URI")]
    NoSupervisor,
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("the call is not being recorded")]
    NotRecorded,
    #[error("the call is ending")]
    Ending,
}

/// Why a leg cannot be placed to a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "target", content = "detail", rename_all = "snake_case")]
pub enum TargetError {
    #[error("`{0}` is not a number, an extension or a SIP URI")]
    NotANumber(String),
    #[error("tel: URIs need a SIP URI or a number to route through the PBX")]
    Tel,
    #[error("{0} is not a SIP URI")]
    NotSip(String),
    #[error("`{0}` is not an IP address (no DNS for targets)")]
    NotAnIp(String),
    #[error("{0} is outside sip.allowed_networks")]
    NotAllowed(std::net::IpAddr),
    #[error("trunk `{trunk}`: {error}")]
    Trunk { trunk: String, error: String },
    #[error("the agent's phone is not registered")]
    Unregistered,
    #[error("the call already has a second leg")]
    Busy,
    #[error("no trunk is configured to dial numbers through")]
    NoTrunk,
}

/// Where the local end of a stream is (its RTP address as bound).
pub type StreamOpened = Result<SocketAddr, String>;
