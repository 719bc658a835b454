//! One stream of what happens in the engine: the calls' events (started, changed, ended)
//! and the ACD's (queued, answered, agent state changes...), as they come.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::acd::AcdEvent;
use crate::call::live::CallEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", content = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    Call(CallEvent),
    Acd(AcdEvent),
}

/// A subscription to both streams.
pub struct EngineEvents {
    calls: broadcast::Receiver<CallEvent>,
    acd: broadcast::Receiver<AcdEvent>,
}

impl EngineEvents {
    pub(super) fn new(
        calls: broadcast::Receiver<CallEvent>,
        acd: broadcast::Receiver<AcdEvent>,
    ) -> Self {
        EngineEvents { calls, acd }
    }

    /// The next event; `Ok(None)` once the engine has stopped; `Err(n)`: `n` events were
    /// missed (the subscriber fell behind by more than the backlog).
    pub async fn next(&mut self) -> Result<Option<EngineEvent>, u64> {
        let got = tokio::select! {
            r = self.calls.recv() => r.map(EngineEvent::Call),
            r = self.acd.recv() => r.map(EngineEvent::Acd),
        };
        match got {
            Ok(e) => Ok(Some(e)),
            Err(RecvError::Lagged(n)) => Err(n),
            Err(RecvError::Closed) => Ok(None),
        }
    }
}
