//! Call control: one sans-IO core per call ([`core::CallCore`]: typed phases, the flow
//! interpreter, SIP dialogs and legs, the queue, the bridge) driven by one task per call
//! (`driver`), which owns the call's channels and media streams and does only I/O
//! (STYLE.md rules 1, 2 and 5).
//!
//! - `core`: the state machine and its tests in virtual time; read its module doc first;
//! - `driver`: the task that feeds the core and performs its outputs (`recorders`: the
//!   bridge's recording and a message being left);
//! - `media`: the streams a driver opens (the media workers, or a test's stand-in);
//! - `route`: the dispatcher's routes to a call and its legs, as guards;
//! - `message`: a message left in a `record` step, written as WAV;
//! - `signalling`, `transfer`: SIP helpers (Via/Contact, sipfrag); DTMF in SIP INFO is
//!   `sip::info`.

pub mod core;
mod driver;
pub mod media;
mod message;
pub mod route;
mod signalling;
mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;

use sip::endpoint::{Peer, ServerTxId};
use sip::message::Request;
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::EngineConfig;
use crate::flows::FlowSet;
use crate::media::PromptStore;

pub use self::core::{CallCommand, CommandError, SuperviseMode};
pub use media::{MediaPort, StreamPort, WorkerMedia};
pub use route::{Route, RouteGuard, Routes};
pub use signalling::{host, via};

/// What every call needs from the engine; cheap to clone.
#[derive(Clone)]
pub struct CallContext {
    pub config: Arc<EngineConfig>,
    pub sip: SipHandle,
    pub media: Arc<dyn MediaPort>,
    pub prompts: Arc<PromptStore>,
    pub flows: watch::Receiver<Arc<FlowSet>>,
    /// Durable writes (through the replicated log when HA is on).
    pub writer: std::sync::Arc<dyn crate::replication::RecordWriter>,
    pub connectors: crate::connectors::Connectors,
    pub acd: crate::acd::AcdHandle,
    /// Where registered agent phones are.
    pub agent_contacts: watch::Receiver<crate::agents::Contacts>,
    /// The dispatcher's routes to the legs calls place.
    pub routes: Routes,
    /// Our SIP address as written in Via and Contact (public IP, bound port).
    pub local_sip: SocketAddr,
    pub live: LiveCalls,
}

#[derive(Debug)]
pub enum CallInput {
    Sip(Box<SipEvent>),
    /// The engine is stopping: end the call (BYE if answered, 503 otherwise).
    Shutdown,
    /// An operator's command; the reply says what was done or why not.
    Command {
        command: CallCommand,
        reply: oneshot::Sender<Result<String, CommandError>>,
    },
}

/// The calls in progress by engine call id (the id of their record), for operator
/// commands that act on one call.
pub type LiveCalls =
    Arc<std::sync::Mutex<std::collections::HashMap<String, mpsc::UnboundedSender<CallInput>>>>;

/// Starts the task of a new call for this INVITE; returns its input channel. The call's
/// Call-ID, which the dispatcher routes to it, is released when the task ends.
pub fn spawn(
    ctx: CallContext,
    tx: ServerTxId,
    invite: Request,
    from: Peer,
    call_id: String,
) -> mpsc::UnboundedSender<CallInput> {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let me = input_tx.clone();
    let route = ctx.routes.call(call_id);
    tokio::spawn(driver::run(ctx, tx, invite, from, input_rx, me, route));
    input_tx
}

/// The replicated recording index: one document per recording, keyed by call id.
pub const RECORDINGS_COLLECTION: &str = "recordings";

/// The recording's index entry: where the file is (`present_on`, node names; the HA pair
/// copies it to the other node and adds it there), its size and SHA-256.
pub fn recording_index_entry(record: &crate::storage::CallRecord) -> Option<serde_json::Value> {
    let path = record.recording.as_ref()?;
    let file = std::path::Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().to_string())?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Some(serde_json::json!({
        "call": record.id,
        "file": file,
        "bytes": bytes,
        "sha256": record.recording_sha256,
        "duration_ms": record.recording_ms,
        "recorded_at": record.ended_at,
        "origin": record.node,
        "present_on": [record.node],
    }))
}
