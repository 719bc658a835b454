//! The ACD driver: one task owns the sans-IO `acd::Acd`, feeds it inputs (from call actors,
//! the agent registrar and the CLI) and the time, and routes each action to the call actor
//! it concerns. ACD events are logged and persisted through the replicated writer, in
//! batches, as documents of the `acd_events` collection: `svi stats` computes the queue
//! statistics from them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::acd::{
    Acd, AcdConfig, AcdError, AcdEvent, Action, AgentSnapshot, CallId, Input, QueueSnapshot,
};
use crate::replication::RecordWriter;

pub enum AcdCommand {
    Input(Input),
    /// An input whose refusal is reported back (operator commands).
    Checked {
        input: Input,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A call enters a queue; the ACD's actions for it come back on `actions`.
    Join {
        input: Input,
        call: CallId,
        actions: mpsc::UnboundedSender<Action>,
    },
    /// The call actor is gone (after its last input).
    Leave {
        call: CallId,
    },
    Snapshot {
        reply: oneshot::Sender<(Vec<QueueSnapshot>, Vec<AgentSnapshot>)>,
    },
}

/// Cheap to clone: every call actor and the dispatcher hold one.
#[derive(Clone, Debug)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<AcdCommand>,
}

impl AcdHandle {
    pub fn input(&self, input: Input) {
        let _ = self.tx.send(AcdCommand::Input(input));
    }

    /// An input from an operator: the ACD's refusal comes back as a message.
    pub async fn input_checked(&self, input: Input) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(AcdCommand::Checked { input, reply })
            .map_err(|_| "the ACD is not running".to_string())?;
        rx.await.map_err(|_| "the ACD is not running".to_string())?
    }

    pub fn join(&self, call: CallId, input: Input) -> mpsc::UnboundedReceiver<Action> {
        let (actions, rx) = mpsc::unbounded_channel();
        let _ = self.tx.send(AcdCommand::Join {
            input,
            call,
            actions,
        });
        rx
    }

    pub fn leave(&self, call: CallId) {
        let _ = self.tx.send(AcdCommand::Leave { call });
    }

    pub async fn snapshot(&self) -> Option<(Vec<QueueSnapshot>, Vec<AgentSnapshot>)> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(AcdCommand::Snapshot { reply }).ok()?;
        rx.await.ok()
    }
}

fn call_of(a: &Action) -> &CallId {
    match a {
        Action::Hold { call, .. }
        | Action::Announce { call, .. }
        | Action::RingAgent { call, .. }
        | Action::CancelRing { call, .. }
        | Action::Bridge { call, .. }
        | Action::Moved { call, .. }
        | Action::Overflow { call, .. }
        | Action::CallbackAccepted { call }
        | Action::CallbackCall { call, .. } => call,
    }
}

/// Builds the ACD from the configuration (refusing an invalid one) and starts its task.
/// The collection of the persisted ACD events; keys sort by time
/// (`<first event's unix ms, 13 digits>-<node>-<batch number>`).
pub const EVENTS_COLLECTION: &str = "acd_events";

/// How long events gather before their batch is written, and the most in one batch.
const EVENT_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);
const EVENT_BATCH_MAX: usize = 500;

pub fn start(
    config: AcdConfig,
    writer: Arc<dyn RecordWriter>,
    node: String,
) -> Result<AcdHandle, AcdError> {
    let acd = Acd::new(Instant::now().into_std(), SystemTime::now(), config)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    tokio::spawn(persist_events(writer, node, events_rx));
    tokio::spawn(run(acd, rx, events_tx));
    Ok(AcdHandle { tx })
}

/// Writes the ACD's events in batches (one replicated write per batch).
async fn persist_events(
    writer: Arc<dyn RecordWriter>,
    node: String,
    mut events: mpsc::UnboundedReceiver<AcdEvent>,
) {
    let mut batch_no: u64 = 0;
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        let window = tokio::time::sleep(EVENT_BATCH_WINDOW);
        tokio::pin!(window);
        while batch.len() < EVENT_BATCH_MAX {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => batch.push(ev),
                    None => break,
                },
                _ = &mut window => break,
            }
        }
        batch_no += 1;
        let key = format!("{:013}-{node}-{batch_no:08}", batch[0].at.as_unix_ms());
        match serde_json::to_value(&batch) {
            Ok(value) => {
                match writer
                    .put_doc(EVENTS_COLLECTION.to_string(), key, value)
                    .await
                {
                    Ok(()) => {
                        tracing::debug!(events = batch.len(), "ACD events sent to the writer")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, events = batch.len(), "ACD events not persisted")
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "ACD events not serialisable"),
        }
    }
}

async fn run(
    mut acd: Acd,
    mut commands: mpsc::UnboundedReceiver<AcdCommand>,
    persist: mpsc::UnboundedSender<AcdEvent>,
) {
    let mut calls: HashMap<CallId, mpsc::UnboundedSender<Action>> = HashMap::new();
    loop {
        let timer = async {
            match acd.poll_timeout() {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = commands.recv() => {
                let now = Instant::now().into_std();
                let input = match cmd {
                    None => return,
                    Some(AcdCommand::Input(i)) => Some(i),
                    Some(AcdCommand::Checked { input, reply }) => {
                        let _ = reply.send(acd.handle_input(now, input).map_err(|e| e.to_string()));
                        None
                    }
                    Some(AcdCommand::Join { input, call, actions }) => {
                        calls.insert(call, actions);
                        Some(input)
                    }
                    Some(AcdCommand::Leave { call }) => {
                        calls.remove(&call);
                        None
                    }
                    Some(AcdCommand::Snapshot { reply }) => {
                        let _ = reply.send((acd.queues(now), acd.agents()));
                        None
                    }
                };
                if let Some(input) = input {
                    if let Err(e) = acd.handle_input(now, input) {
                        tracing::warn!(error = %e, "ACD input refused");
                    }
                }
            }
            _ = timer => acd.handle_timeout(Instant::now().into_std()),
        }
        while let Some(action) = acd.poll_action() {
            match calls.get(call_of(&action)) {
                Some(tx) => {
                    let _ = tx.send(action);
                }
                None => tracing::debug!(?action, "ACD action for a call that is gone"),
            }
        }
        while let Some(ev) = acd.poll_event() {
            tracing::info!(event = ?ev.kind, "acd");
            let _ = persist.send(ev);
        }
    }
}

/// The agents' last states in the persisted ACD events (newest wins), for the node that
/// becomes active (or restarts): calls in progress did not survive, so an agent that was
/// on a call is ready again; paused and logged-out agents stay so.
pub async fn restore_agents(acd: &AcdHandle, storage: &crate::storage::Storage, since_ms: u64) {
    let from = format!("{since_ms:013}");
    let docs = match storage
        .docs_in_range(EVENTS_COLLECTION, &from, "9999999999999")
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "agent states not restored: ACD events unreadable");
            return;
        }
    };
    let mut last: HashMap<crate::acd::AgentId, crate::acd::AgentState> = HashMap::new();
    for (_, value) in docs {
        let Ok(batch) = serde_json::from_str::<Vec<AcdEvent>>(&value) else {
            continue;
        };
        for ev in batch {
            if let crate::acd::EventKind::AgentStateChanged { agent, state } = ev.kind {
                last.insert(agent, state);
            }
        }
    }
    let mut restored = 0;
    for (agent, state) in last {
        use crate::acd::AgentState as S;
        let inputs = match state {
            S::LoggedOut => vec![Input::AgentLogout { agent }],
            S::NotReady { reason } => vec![
                Input::AgentLogin {
                    agent: agent.clone(),
                },
                Input::AgentPause { agent, reason },
            ],
            _ => vec![
                Input::AgentLogin {
                    agent: agent.clone(),
                },
                Input::AgentReady { agent },
            ],
        };
        for input in inputs {
            // Already in that state (e.g. the phone registered here first): nothing to do.
            let _ = acd.input_checked(input).await;
        }
        restored += 1;
    }
    if restored > 0 {
        tracing::info!(
            agents = restored,
            "agent states restored from the replicated ACD events"
        );
    }
}
