//! The alarm call-out: an alarm raised on the access-control system makes the engine call
//! the on-duty numbers in turn (`[alarm_callout]`), each call running the call-out flow
//! (which says the alarm and takes the acknowledgement by DTMF, sent back to the
//! access-control system by the flow's own action), until the alarm is acknowledged or
//! every round is done. Every step is in the audit log (`alarm.callout`, `alarm.call`,
//! `alarm.acknowledged`, `alarm.unacknowledged`). No `[alarm_callout]` section: no task,
//! no call (fail closed).
//!
//! [`machine`] decides (sans-IO); [`run`] is its thin driver: it polls the configured data
//! source (the access-control `recent_alarms` operation, oldest open alarm first), places
//! calls through [`EngineHandle::originate`], writes the audit entries, and stores handled
//! alarms in the replicated [`store`]. Only the active node polls: a standby leaves alarms
//! to the node that takes calls. A push from the access-control system (the webhook,
//! [`EngineHandle::alarm_pushed`]) makes it poll at once.

pub mod machine;
pub mod store;
pub mod webhook;

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditEntry, AuditLog};
use crate::call::{CallEnded, Originate};
use crate::config::AlarmCalloutConfig;
use crate::connectors::Connectors;
use crate::handle::EngineHandle;
use crate::replication::Serving;
use crate::storage::EndReason;
use machine::{Action, Alarm, CallOutcome, Callout, Plan};
use store::HandledAlarms;

/// How long the poll of the alarm source may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the audit log says acts: the engine itself.
const ACTOR: &str = "system:alarm-callout";

/// What the task uses of the engine.
pub struct CalloutContext {
    pub config: AlarmCalloutConfig,
    pub connectors: Connectors,
    pub engine: EngineHandle,
    pub audit: AuditLog,
    pub serving: Serving,
    pub handled: HandledAlarms,
}

/// Runs the call-out until the engine stops; each message on `pushes` is an alarm the
/// access-control system pushed (already authenticated).
pub async fn run(cx: CalloutContext, mut pushes: mpsc::UnboundedReceiver<()>) {
    let plan = Plan {
        numbers: cx.config.numbers.len(),
        rounds: cx.config.rounds,
        retry_after: cx.config.retry_after,
        poll_every: cx.config.poll_every,
    };
    let mut machine = Callout::new(Instant::now(), plan);
    tracing::info!(source = %cx.config.source, flow = %cx.config.flow, numbers = cx.config.numbers.len(), "alarm call-out on");
    loop {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Poll if !cx.serving.now() => machine.handle_standby(Instant::now()),
                Action::Poll => {
                    let found = poll(&cx).await;
                    if let Ok(Some(alarm)) = &found {
                        if !machine.knows(&alarm.id) && handled_already(&cx, &alarm.id).await {
                            machine.handle_known(&alarm.id);
                        }
                    }
                    machine.handle_poll(Instant::now(), found);
                }
                Action::Call { alarm, number } => {
                    let outcome = call(&cx, &alarm, number).await;
                    machine.handle_call(Instant::now(), outcome);
                }
                Action::Audit(a) => audit(&cx, a).await,
                Action::Remember { alarm, how } => {
                    if let Err(e) = cx.handled.remember(&alarm, how).await {
                        tracing::error!(error = %e, %alarm, "alarm call-out: handled alarm not stored; a restart may call it out again");
                    }
                }
            }
        }
        let Some(at) = machine.poll_timeout() else {
            // Every input comes from an action above: nothing to wait for.
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            Some(()) = pushes.recv() => {
                tracing::info!("alarm call-out: alarm pushed, polling now");
                machine.handle_push(Instant::now());
            }
        }
        machine.handle_timeout(Instant::now());
    }
}

/// Whether the store has `alarm` handled (by this node before a restart, or by the other
/// node). A store that cannot be read does not stop a call-out.
async fn handled_already(cx: &CalloutContext, alarm: &str) -> bool {
    match cx.handled.get(alarm).await {
        Ok(Some(h)) => {
            tracing::info!(%alarm, how = ?h.how, node = %h.node, "alarm call-out: alarm handled already, not called out");
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, %alarm, "alarm call-out: cannot tell whether the alarm was handled; calling it out");
            false
        }
    }
}

/// The oldest open alarm, as the data source answers.
async fn poll(cx: &CalloutContext) -> Result<Option<Alarm>, String> {
    let params = serde_json::Map::new();
    let record = cx
        .connectors
        .lookup(&cx.config.source, &params, POLL_TIMEOUT)
        .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    let text = |k: &str| match record.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let id = text("alarm").ok_or_else(|| {
        format!(
            "data source `{}`: the record has no `alarm` (its id)",
            cx.config.source
        )
    })?;
    Ok(Some(Alarm {
        id,
        door: text("door"),
    }))
}

/// Places the call to on-duty number `number` and waits for its end.
async fn call(cx: &CalloutContext, alarm: &str, number: usize) -> CallOutcome {
    let Some(to) = cx.config.numbers.get(number) else {
        return CallOutcome::Failed(format!("no on-duty number {}", number + 1));
    };
    let order = Originate {
        flow: cx.config.flow.clone(),
        number: to.clone(),
        ring_timeout: cx.config.ring_timeout,
        caller_id: cx.config.caller_id.clone(),
    };
    let placed = match cx.engine.originate(order).await {
        Ok(placed) => placed,
        Err(e) => {
            tracing::warn!(%alarm, number = number + 1, error = %e, "alarm call-out: call not placed");
            return CallOutcome::Failed(e.to_string());
        }
    };
    tracing::info!(%alarm, number = number + 1, call = %placed.call, "alarm call-out: calling");
    outcome(placed.ended.await)
}

fn outcome(ended: Result<CallEnded, oneshot::error::RecvError>) -> CallOutcome {
    match ended {
        Ok(CallEnded { answered: true, .. }) => CallOutcome::Answered,
        Ok(CallEnded {
            reason: EndReason::NoAnswer,
            ..
        }) => CallOutcome::NotAnswered("not answered".into()),
        Ok(CallEnded { reason, .. }) => CallOutcome::Failed(reason.as_str().to_string()),
        Err(_) => CallOutcome::Failed("the call ended without a record".into()),
    }
}

/// Appends the entry, then says so in the log (a line a test or an operator can wait for).
async fn audit(cx: &CalloutContext, a: machine::Audit) {
    let entry = AuditEntry::now(
        ACTOR,
        format!("alarm.{}", a.what),
        format!("alarm:{}", a.alarm),
        format!("alarm call-out ({})", cx.config.source),
        a.outcome,
        a.detail,
    );
    cx.audit.record(entry).await;
    tracing::info!(alarm = %a.alarm, outcome = ?a.outcome, "alarm call-out: {}", a.what);
}
