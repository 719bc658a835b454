//! A call in progress as the handle lists it: what the call publishes about itself
//! (`live::CallView`), completed by what the ACD knows better (the queue, the position in
//! it and the agent, from the ACD's own snapshot), and its duration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::acd::{AcdSnapshot, CallState};
use crate::call::live::{CallPhase, CallView};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInProgress {
    #[serde(flatten)]
    pub call: CallView,
    /// Time since the INVITE arrived, in milliseconds.
    pub duration_ms: u64,
}

/// The calls' views with the ACD's queue, position, agent and phase for the calls it holds.
pub(super) fn merge(
    views: Vec<CallView>,
    acd: &AcdSnapshot,
    now: DateTime<Utc>,
) -> Vec<CallInProgress> {
    views
        .into_iter()
        .map(|mut view| {
            if let Some(q) = acd.calls.iter().find(|q| q.call.as_str() == view.id) {
                view.queue = Some(q.queue.as_str().to_string());
                view.position = q.position;
                if let Some(agent) = q.agent() {
                    view.agent = Some(agent.as_str().to_string());
                }
                view.phase = match q.state {
                    CallState::Waiting | CallState::RetryWait => CallPhase::Queued,
                    CallState::Offered { .. } => CallPhase::AgentRinging,
                    // The bridge is the call's own news (it may fail after the answer).
                    CallState::Dialing { .. } | CallState::Talking { .. } => view.phase,
                };
            }
            let duration_ms = (now - view.started_at).num_milliseconds().max(0) as u64;
            CallInProgress {
                call: view,
                duration_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{CallId, Priority, QueueId, QueuedCallSnapshot};
    use pii::Pii;
    use std::time::Duration;

    fn view(id: &str, started: DateTime<Utc>) -> CallView {
        CallView {
            id: id.into(),
            caller: Pii::new("1001".into()),
            called: Pii::new("service".into()),
            phase: CallPhase::Flow,
            flow: Some("demo".into()),
            flow_version: Some("v1".into()),
            step: Some("support".into()),
            queue: Some("support".into()),
            position: Some(3),
            agent: None,
            started_at: started,
            answered_at: Some(started),
            bridged_at: None,
            desk: Pii::default(),
        }
    }

    #[test]
    fn the_acd_gives_queue_position_and_phase_the_call_gives_the_rest() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let acd = AcdSnapshot {
            calls: vec![QueuedCallSnapshot {
                call: CallId::from("c1"),
                queue: QueueId::from("support"),
                priority: Priority::Normal,
                state: CallState::Waiting,
                position: Some(1),
                waited: Duration::from_secs(4),
                callback: false,
            }],
            ..AcdSnapshot::default()
        };
        let now = t0 + chrono::Duration::milliseconds(12_500);
        let out = merge(vec![view("c1", t0), view("c2", t0)], &acd, now);
        assert_eq!(out[0].call.position, Some(1), "the ACD's position wins");
        assert_eq!(out[0].call.phase, CallPhase::Queued);
        assert_eq!(out[0].duration_ms, 12_500);
        assert_eq!(
            out[1].call.position,
            Some(3),
            "not in the ACD: as published"
        );
        assert_eq!(out[1].call.phase, CallPhase::Flow);
        let json = serde_json::to_value(&out[0]).expect("json");
        assert_eq!(json["step"], "support");
        assert_eq!(json["duration_ms"], 12_500);
        assert_eq!(json["queue"], "support");
    }
}
