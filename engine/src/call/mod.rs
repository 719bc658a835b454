//! Call control: one sans-IO core per call ([`core::CallCore`]: typed phases, the flow
//! interpreter, SIP dialogs and legs, the queue, the bridge) driven by one task per call
//! (`driver`), which owns the call's channels and media streams and does only I/O
//! (STYLE.md rules 1, 2 and 5).
//!
//! - `core`: the state machine and its tests in virtual time; read its module doc first;
//! - `driver`: the task that feeds the core and performs its outputs (`recorders`: the
//!   bridge's recording and a message being left);
//! - `live`: the registry of calls in progress (each call's view, operators' commands);
//! - `media`: the streams a driver opens (the media workers, or a test's stand-in);
//! - `route`: the dispatcher's routes to a call and its legs, as guards;
//! - `message`: a message left in a `record` step, written as WAV;
//! - `survival`: each call's snapshot replicated while it is up, and the calls a node
//!   that becomes active adopts (`[ha] call_survival`);
//! - `signalling`, `transfer`: SIP helpers (Via/Contact, sipfrag); DTMF in SIP INFO is
//!   `sip::info`.

pub mod core;
mod driver;
pub mod live;
pub mod media;
mod message;
pub mod route;
mod signalling;
pub mod survival;
mod transfer;

use std::sync::Arc;

use sip::endpoint::{Peer, ServerTxId};
use sip::message::Request;
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::EngineConfig;
use crate::flows::FlowSet;
use crate::media::PromptStore;

pub use self::core::{
    CallCommand, CommandError, CommandOutcome, Originate, OriginateError, SuperviseMode,
};
pub use media::{MediaPort, StreamPort, WorkerMedia};
pub use route::{Route, RouteGuard, Routes};
pub use signalling::{host, via, LocalSip};

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
    /// Our SIP addresses as written in Via and Contact (public IP, bound ports).
    pub local_sip: signalling::LocalSip,
    /// The calls in progress: each call publishes its view there and takes commands.
    pub live: live::LiveCalls,
    /// With `[ha] call_survival`: each call's replica.
    pub survival: Option<survival::Survival>,
}

#[derive(Debug)]
pub enum CallInput {
    Sip(Box<SipEvent>),
    /// The engine is stopping: end the call (BYE if answered, 503 otherwise).
    Shutdown,
    /// An operator's command through the live-call registry; the reply says what was done
    /// or why not.
    Command(live::CallRequest),
}

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

/// Starts the task of a call the engine places. `key` is the dispatcher's name for the
/// call (it has no Call-ID of its own until its number rings), released when the task
/// ends; `reply` gets the call's id, or why it was not placed.
pub fn originate(
    ctx: CallContext,
    order: Originate,
    key: String,
    reply: oneshot::Sender<Result<Originated, OriginateError>>,
) -> mpsc::UnboundedSender<CallInput> {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let me = input_tx.clone();
    let route = ctx.routes.call(key);
    tokio::spawn(driver::run_originated(
        ctx, order, input_rx, me, route, reply,
    ));
    input_tx
}

/// A call the engine placed: its id (its record's), and how it ends.
#[derive(Debug)]
pub struct Originated {
    pub call: String,
    /// Told once the call's record is written.
    pub ended: oneshot::Receiver<CallEnded>,
}

/// How a call the engine placed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEnded {
    pub reason: crate::storage::EndReason,
    /// The number answered (`reason` then says how the call ended after that).
    pub answered: bool,
}
