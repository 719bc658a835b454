//! Calls in progress as operators see them: each call publishes a [`CallView`] (flow, step,
//! queue, agent, times) and takes typed [`CallCommand`]s, through one registry,
//! [`LiveCalls`].
//!
//! A call registers when its driver starts ([`LiveCalls::register`]) and keeps the returned
//! [`LiveCall`] for its lifetime; ending it ([`LiveCall::end`], or dropping it) takes the
//! call out of the registry and announces the end. The view is derived from the call
//! core's state (`CallCore::view`), and the driver republishes it after every input
//! ([`LiveCall::set`]): a change is also a [`CallEvent`] on the registry's broadcast
//! channel. Readers (the `EngineHandle`) copy the views on demand, so a call never waits for
//! a reader, and a reader never reaches into a call: commands go through the call's own
//! input channel and come back as a typed [`CommandOutcome`] or [`CommandError`].
//!
//! What the ACD knows better (a queued call's position, the agent ringing or talking) is
//! merged in by the handle from the ACD's own snapshot; the view holds what the call knows.
//!
//! Why a mutex: the map changes twice per call (start, end) and is read on operator demand.
//! A `std::sync::Mutex` held for one map operation, never across an await, costs less than
//! a registry task and a channel round trip; a call's own updates do not take it (each view
//! is the call's `watch` channel).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use ivr_scripts::DeskField;
use pii::Pii;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, watch};

pub use super::core::{CallCommand, CommandError, CommandOutcome, SuperviseMode};
use crate::storage::EndReason;

/// Where a call is, as far as the call itself knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    /// The engine's call id (the key of its call record and recording).
    pub id: String,
    /// Calling and called numbers (personal data: serialised for operators, never logged).
    pub caller: Pii<String>,
    pub called: Pii<String>,
    pub phase: CallPhase,
    /// The flow serving the call, its version, and the step it is at.
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    pub step: Option<String>,
    /// The queue the call waits in (or last waited in), its 1-based position there, and
    /// the agent ringing or on the call.
    pub queue: Option<String>,
    pub position: Option<u32>,
    pub agent: Option<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// When an agent answered the call.
    pub bridged_at: Option<DateTime<Utc>>,
    /// What the flow lets the agent see of the caller (the queue step's `desk` values),
    /// once the call was queued.
    #[serde(default, skip_serializing_if = "no_desk")]
    pub desk: Pii<Vec<DeskField>>,
}

fn no_desk(desk: &Pii<Vec<DeskField>>) -> bool {
    desk.reveal().is_empty()
}

/// A call's phase, coarse enough for a wallboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// The INVITE is being served; not answered yet.
    Setup,
    /// A call the engine placed: the called number rings.
    Dialing,
    /// In its flow (menus, messages, lookups...).
    Flow,
    /// Waiting in an ACD queue.
    Queued,
    /// An agent's phone rings for it.
    AgentRinging,
    /// Talking to an agent or to a transfer target.
    Bridged,
    /// Hanging up: waiting for the last answers before the record is written.
    Ending,
}

/// A change seen by the registry, for event streams (wallboards, the admin API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    Started(CallView),
    Changed(CallView),
    Ended {
        call: String,
        /// `None` when the call's task ended without saying why.
        reason: Option<EndReason>,
    },
}

/// A command on its way to a call, with the channel its answer comes back on.
#[derive(Debug)]
pub struct CallRequest {
    pub command: CallCommand,
    pub reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
}

/// Why a command did not take effect: it reached no call, or the call refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    #[error("no call `{0}` in progress")]
    NotFound(String),
    #[error("call {0} has ended")]
    Ended(String),
    #[error(transparent)]
    Refused(#[from] CommandError),
}

/// Hands a request to the call's task; false if the task is gone (the request is dropped).
type Deliver = Box<dyn Fn(CallRequest) -> bool + Send + Sync>;

struct Entry {
    view: watch::Receiver<CallView>,
    deliver: Arc<Deliver>,
}

/// The registry of calls in progress (cheap to clone).
#[derive(Clone)]
pub struct LiveCalls {
    calls: Arc<Mutex<HashMap<String, Entry>>>,
    events: broadcast::Sender<CallEvent>,
}

/// Events kept for a slow subscriber before it misses some (and is told so by `Lagged`).
const EVENT_BACKLOG: usize = 1024;

impl Default for LiveCalls {
    fn default() -> Self {
        LiveCalls {
            calls: Arc::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }
}

impl LiveCalls {
    /// A poisoned lock means a panic while holding it for a map operation; the map itself
    /// is still consistent (each operation is one insert, remove or read).
    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new call with its first view; `deliver` hands it operator commands.
    pub fn register(
        &self,
        view: CallView,
        deliver: impl Fn(CallRequest) -> bool + Send + Sync + 'static,
    ) -> LiveCall {
        let id = view.id.clone();
        let (tx, rx) = watch::channel(view.clone());
        self.map().insert(
            id.clone(),
            Entry {
                view: rx,
                deliver: Arc::new(Box::new(deliver)),
            },
        );
        let _ = self.events.send(CallEvent::Started(view));
        LiveCall {
            id,
            view: tx,
            registry: self.clone(),
            ended: false,
        }
    }

    /// The views of the calls in progress, oldest first.
    pub fn views(&self) -> Vec<CallView> {
        let mut v: Vec<CallView> = self
            .map()
            .values()
            .map(|e| e.view.borrow().clone())
            .collect();
        v.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        v
    }

    pub fn view(&self, call: &str) -> Option<CallView> {
        self.map().get(call).map(|e| e.view.borrow().clone())
    }

    pub fn contains(&self, call: &str) -> bool {
        self.map().contains_key(call)
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }

    /// Hands `command` to the call and waits for its answer.
    pub async fn command(
        &self,
        call: &str,
        command: CallCommand,
    ) -> Result<CommandOutcome, CommandFailure> {
        let deliver = self
            .map()
            .get(call)
            .map(|e| e.deliver.clone())
            .ok_or_else(|| CommandFailure::NotFound(call.to_string()))?;
        let (reply, answer) = oneshot::channel();
        if !deliver(CallRequest { command, reply }) {
            return Err(CommandFailure::Ended(call.to_string()));
        }
        match answer.await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(CommandFailure::Ended(call.to_string())),
        }
    }
}

/// A call's registration, held by the call for its lifetime.
pub struct LiveCall {
    id: String,
    view: watch::Sender<CallView>,
    registry: LiveCalls,
    ended: bool,
}

impl LiveCall {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Changes the view; readers and subscribers see it if anything changed (nothing once
    /// the call has ended).
    pub fn update(&self, change: impl FnOnce(&mut CallView)) {
        if self.ended {
            return;
        }
        let changed = self.view.send_if_modified(|v| {
            let before = v.clone();
            change(v);
            *v != before
        });
        if changed {
            let _ = self
                .registry
                .events
                .send(CallEvent::Changed(self.view.borrow().clone()));
        }
    }

    /// Publishes the call's new view (nothing happens if it did not change).
    pub fn set(&self, view: CallView) {
        self.update(|v| *v = view);
    }

    /// The call is over: out of the registry, its end announced (once).
    pub fn end(&mut self, reason: EndReason) {
        self.close(Some(reason));
    }

    fn close(&mut self, reason: Option<EndReason>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.registry.map().remove(&self.id);
        let _ = self.registry.events.send(CallEvent::Ended {
            call: self.id.clone(),
            reason,
        });
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        self.close(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str) -> CallView {
        CallView {
            id: id.into(),
            caller: Pii::new("+33612345678".into()),
            called: Pii::new("service".into()),
            phase: CallPhase::Setup,
            flow: None,
            flow_version: None,
            step: None,
            queue: None,
            position: None,
            agent: None,
            started_at: DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            answered_at: None,
            bridged_at: None,
            desk: Pii::default(),
        }
    }

    #[tokio::test]
    async fn a_call_is_listed_from_start_to_end_and_each_change_is_an_event() {
        let live = LiveCalls::default();
        let mut events = live.subscribe();
        let mut call = live.register(view("c1"), |_| false);
        assert_eq!(live.views().len(), 1);
        let mut next = view("c1");
        next.phase = CallPhase::Flow;
        next.step = Some("main_menu".into());
        call.set(next.clone());
        call.set(next.clone()); // no change, no event
        next.phase = CallPhase::Queued;
        next.queue = Some("support".into());
        call.set(next);
        call.update(|v| v.position = Some(2));
        let seen = live.view("c1").expect("listed");
        assert_eq!(seen.phase, CallPhase::Queued);
        assert_eq!(seen.step.as_deref(), Some("main_menu"));
        assert_eq!(seen.position, Some(2));
        call.end(EndReason::CallerHangup);
        assert!(live.is_empty());
        let mut kinds = Vec::new();
        while let Ok(e) = events.try_recv() {
            kinds.push(match e {
                CallEvent::Started(_) => "started".to_string(),
                CallEvent::Changed(v) => format!("changed:{:?}", v.phase),
                CallEvent::Ended { reason, .. } => format!("ended:{reason:?}"),
            });
        }
        assert_eq!(
            kinds,
            [
                "started",
                "changed:Flow",
                "changed:Queued",
                "changed:Queued",
                "ended:Some(CallerHangup)"
            ]
        );
    }

    #[tokio::test]
    async fn a_dropped_registration_leaves_the_registry() {
        let live = LiveCalls::default();
        let mut events = live.subscribe();
        drop(live.register(view("c1"), |_| false));
        assert!(live.is_empty());
        let last = std::iter::from_fn(|| events.try_recv().ok()).last();
        assert_eq!(
            last,
            Some(CallEvent::Ended {
                call: "c1".into(),
                reason: None
            })
        );
    }

    #[tokio::test]
    async fn commands_reach_the_call_and_come_back_typed() {
        let live = LiveCalls::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CallRequest>();
        let _call = live.register(view("c1"), move |r| tx.send(r).is_ok());
        let answering = tokio::spawn(async move {
            let r = rx.recv().await.expect("request");
            assert_eq!(r.command, CallCommand::Recording { pause: true });
            let _ = r.reply.send(Err(CommandError::NotRecorded));
            let r = rx.recv().await.expect("request");
            let _ = r.reply.send(Ok(CommandOutcome::HangingUp));
        });
        assert_eq!(
            live.command("c1", CallCommand::Recording { pause: true })
                .await,
            Err(CommandFailure::Refused(CommandError::NotRecorded))
        );
        assert_eq!(
            live.command("c1", CallCommand::Hangup).await,
            Ok(CommandOutcome::HangingUp)
        );
        assert_eq!(
            live.command("c9", CallCommand::Hangup).await,
            Err(CommandFailure::NotFound("c9".into()))
        );
        answering.await.expect("answered");
        // The call's task is gone: its registration still stands, the command cannot land.
        assert_eq!(
            live.command("c1", CallCommand::Hangup).await,
            Err(CommandFailure::Ended("c1".into()))
        );
    }

    #[test]
    fn views_serialise_with_the_numbers_for_operators_and_log_without_them() {
        let v = view("c1");
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["caller"], "+33612345678");
        assert_eq!(json["phase"], "setup");
        let logged = format!("{v:?}");
        assert!(!logged.contains("612345678"), "{logged}");
    }
}
