//! The ACD driver: one task owns the sans-IO `acd::Acd`, feeds it inputs (from call actors,
//! the agent registrar and the `EngineHandle`) and the time, and routes each action to the
//! call actor it concerns. ACD events are logged, broadcast to subscribers (wallboards, the
//! admin API) and persisted through the replicated writer, in batches, as documents of the
//! `acd_events` collection: the queue reports (`acd::report`, `svi stats`) come from them.
//!
//! Watchers of the live figures get an [`AcdSnapshot`] on a `watch` channel, computed only
//! while someone watches and at most every [`SNAPSHOT_EVERY`], so the routing path pays
//! nothing for a wallboard nobody looks at.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::acd::{
    Acd, AcdConfig, AcdError, AcdEvent, AcdSnapshot, Action, AgentId, AgentState, CallId,
    EventKind, Input,
};
use crate::replication::RecordWriter;

/// The most often the watched snapshot is recomputed.
pub const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// ACD events kept for a slow subscriber before it misses some.
const EVENT_BACKLOG: usize = 1024;

pub enum AcdCommand {
    Input(Input),
    /// An input whose refusal is reported back (operator commands).
    Checked {
        input: Input,
        reply: oneshot::Sender<Result<(), AcdError>>,
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
    /// A watcher arrived: publish the snapshot now.
    Refresh,
    Snapshot {
        reply: oneshot::Sender<AcdSnapshot>,
    },
}

/// Why an operator's input did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdCommandError {
    #[error(transparent)]
    Refused(#[from] AcdError),
    #[error("the ACD is not running")]
    Stopped,
}

/// Cheap to clone: every call actor and the dispatcher hold one.
#[derive(Clone, Debug)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<AcdCommand>,
    events: broadcast::Sender<AcdEvent>,
    /// Shared with the task, which publishes only while a receiver exists.
    snapshots: Arc<watch::Sender<Arc<AcdSnapshot>>>,
    on_call: watch::Receiver<BTreeSet<AgentId>>,
}

impl AcdHandle {
    /// Whether `agent` is on a call now (reserved for one, ringing or talking).
    pub fn on_call(&self, agent: &str) -> bool {
        self.on_call.borrow().contains(&AgentId::from(agent))
    }

    pub fn input(&self, input: Input) {
        let _ = self.tx.send(AcdCommand::Input(input));
    }

    /// An input from an operator: the ACD's refusal comes back typed.
    pub async fn input_checked(&self, input: Input) -> Result<(), AcdCommandError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(AcdCommand::Checked { input, reply })
            .map_err(|_| AcdCommandError::Stopped)?;
        Ok(rx.await.map_err(|_| AcdCommandError::Stopped)??)
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

    /// Queues, agents and calls now; `None` if the ACD task is gone.
    pub async fn snapshot(&self) -> Option<AcdSnapshot> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(AcdCommand::Snapshot { reply }).ok()?;
        rx.await.ok()
    }

    /// Every ACD event from now on (a subscriber that falls behind by more than the backlog
    /// is told how many it missed).
    pub fn events(&self) -> broadcast::Receiver<AcdEvent> {
        self.events.subscribe()
    }

    /// The live figures, republished after each change (at most every `SNAPSHOT_EVERY`).
    pub fn watch(&self) -> watch::Receiver<Arc<AcdSnapshot>> {
        let rx = self.snapshots.subscribe();
        // Wake the task so the first value is current, not the one of the last watcher.
        let _ = self.tx.send(AcdCommand::Refresh);
        rx
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
    let (persist_tx, persist_rx) = mpsc::unbounded_channel();
    let events = broadcast::channel(EVENT_BACKLOG).0;
    let snapshots = Arc::new(watch::channel(Arc::new(AcdSnapshot::default())).0);
    let (on_call_tx, on_call) = watch::channel(BTreeSet::new());
    tokio::spawn(persist_events(writer, node, persist_rx));
    let out = Outputs {
        persist: persist_tx,
        events: events.clone(),
        snapshots: snapshots.clone(),
        on_call: on_call_tx,
    };
    tokio::spawn(run(acd, rx, out));
    Ok(AcdHandle {
        tx,
        events,
        snapshots,
        on_call,
    })
}

/// Where the task's events and snapshots go.
struct Outputs {
    persist: mpsc::UnboundedSender<AcdEvent>,
    events: broadcast::Sender<AcdEvent>,
    snapshots: Arc<watch::Sender<Arc<AcdSnapshot>>>,
    /// The agents on a call (for the registrar: a new source cannot take their calls).
    on_call: watch::Sender<BTreeSet<AgentId>>,
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

/// While watched and nothing changed, the snapshot is still refreshed this often (waits and
/// times in state grow).
const SNAPSHOT_IDLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

async fn run(mut acd: Acd, mut commands: mpsc::UnboundedReceiver<AcdCommand>, out: Outputs) {
    let mut calls: HashMap<CallId, mpsc::UnboundedSender<Action>> = HashMap::new();
    // The last publication of the watched snapshot, and whether anything changed since.
    let mut published: Option<Instant> = None;
    let mut dirty = true;
    loop {
        let timer = async {
            match acd.poll_timeout() {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let publish_due = match (out.snapshots.receiver_count() > 0, published) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, Some(t)) if dirty => Some(t + SNAPSHOT_EVERY),
            (true, Some(t)) => Some(t + SNAPSHOT_IDLE_EVERY),
        };
        let publish = async {
            match publish_due {
                Some(t) => tokio::time::sleep_until(t).await,
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
                        let _ = reply.send(acd.handle_input(now, input));
                        dirty = true;
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
                        let _ = reply.send(acd.snapshot(now));
                        None
                    }
                    Some(AcdCommand::Refresh) => {
                        published = None;
                        None
                    }
                };
                if let Some(input) = input {
                    dirty = true;
                    if let Err(e) = acd.handle_input(now, input) {
                        tracing::warn!(error = %e, "ACD input refused");
                    }
                }
            }
            _ = timer => {
                dirty = true;
                acd.handle_timeout(Instant::now().into_std());
            }
            _ = publish => {
                let now = Instant::now();
                out.snapshots.send_replace(Arc::new(acd.snapshot(now.into_std())));
                published = Some(now);
                dirty = false;
            }
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
            if let EventKind::AgentStateChanged { agent, state } = &ev.kind {
                let busy = matches!(
                    state,
                    AgentState::Reserved { .. }
                        | AgentState::Ringing { .. }
                        | AgentState::Talking { .. }
                );
                out.on_call.send_if_modified(|set| match busy {
                    true => set.insert(agent.clone()),
                    false => set.remove(agent),
                });
            }
            // No subscriber is the usual case, not an error.
            let _ = out.events.send(ev.clone());
            let _ = out.persist.send(ev);
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
