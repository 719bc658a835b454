//! One task per call (STYLE.md §5): the call actor owns the call's dialog, SDP session,
//! media stream and flow interpreter, and is reached through a channel.
//!
//! The actor is a driver: the decisions live in sans-IO cores (the flow interpreter, the
//! digit collector, SDP offer/answer, the dialog); the actor performs the effect the
//! interpreter asks for, waits on SIP, media and one deadline, and feeds the outcome back.
//! When the call ends, its record is written, and the dispatcher is told.

mod actor;
pub mod core;
mod info;
mod record;
mod signalling;
mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;

use sip::endpoint::{Peer, ServerTxId};
use sip::message::Request;
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::{mpsc, watch};

use crate::config::EngineConfig;
use crate::flows::FlowSet;
use crate::media::{MediaWorkers, PortAllocator, PromptStore};
use crate::storage::Storage;

pub use info::dtmf_from_info;
pub use signalling::{host, via};

/// What every call needs from the engine; cheap to clone.
#[derive(Clone)]
pub struct CallContext {
    pub config: Arc<EngineConfig>,
    pub sip: SipHandle,
    pub media: Arc<MediaWorkers>,
    pub ports: Arc<PortAllocator>,
    pub prompts: Arc<PromptStore>,
    pub flows: watch::Receiver<Arc<FlowSet>>,
    pub storage: Storage,
    /// Durable writes (through the replicated log when HA is on).
    pub writer: std::sync::Arc<dyn crate::replication::RecordWriter>,
    pub connectors: crate::connectors::Connectors,
    pub acd: crate::contact_center::AcdHandle,
    /// Where registered agent phones are.
    pub agent_contacts: watch::Receiver<crate::agents::Contacts>,
    /// To register the Call-IDs of the legs a call places (agent legs).
    pub control: mpsc::UnboundedSender<crate::dispatch::Control>,
    /// Our SIP address as written in Via and Contact (public IP, bound port).
    pub local_sip: SocketAddr,
    pub live: LiveCalls,
}

#[derive(Debug)]
pub enum CallInput {
    Sip(Box<SipEvent>),
    /// The engine is stopping: end the call (BYE if answered, 503 otherwise).
    Shutdown,
    /// `svi supervise`: start (calling `target`), change the mode, or stop (`mode` None).
    Supervise {
        mode: Option<SuperviseMode>,
        target: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
    /// `svi record pause|resume`.
    Recording {
        pause: bool,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// How a supervisor joins a bridged call (see `actor::supervise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuperviseMode {
    /// Hears both parties; nobody hears the supervisor.
    Listen,
    /// Hears both; the agent hears the supervisor, the caller does not.
    Whisper,
    /// Everyone hears everyone.
    Barge,
}

/// The calls in progress by engine call id (the id of their record), for operator
/// commands that act on one call.
pub type LiveCalls =
    Arc<std::sync::Mutex<std::collections::HashMap<String, mpsc::UnboundedSender<CallInput>>>>;

/// Starts the actor for a new INVITE; returns its input channel.
pub fn spawn(
    ctx: CallContext,
    tx: ServerTxId,
    invite: Request,
    from: Peer,
    call_id: String,
    ended: mpsc::UnboundedSender<String>,
) -> mpsc::UnboundedSender<CallInput> {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let me = input_tx.clone();
    tokio::spawn(async move {
        let writer = ctx.writer.clone();
        let record = actor::Call::new(ctx, tx, invite, from, me)
            .run(input_rx)
            .await;
        let id = record.id.clone();
        let (flow, reason, steps) = (record.flow.clone(), record.end_reason, record.path.len());
        if let Some(doc) = recording_index_entry(&record) {
            if let Err(e) = writer
                .put_doc(RECORDINGS_COLLECTION.into(), id.clone(), doc)
                .await
            {
                tracing::error!(call = %id, error = %e, "could not index the recording");
            }
        }
        if let Err(e) = writer.write_call(record).await {
            tracing::error!(call = %id, error = %e, "could not write the call record");
        }
        tracing::info!(call = %id, flow = flow.as_deref().unwrap_or("-"), reason = reason.as_str(), steps, "call ended");
        let _ = ended.send(call_id);
    });
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
