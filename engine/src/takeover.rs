//! What a node does each time it becomes active (at start for a single node): the agents
//! take back their last replicated states and phone bindings (`acd::driver::restore_agents`,
//! `agent_bindings`), so a node taking over rings agents at once.

use tokio::sync::{mpsc, watch};

use crate::acd::AcdHandle;
use crate::dispatch::DispatcherInput;
use crate::storage::Storage;

/// Agents' states are taken back from the last day of replicated ACD events.
const AGENT_HISTORY_MS: u64 = 24 * 3600 * 1000;

/// Watches `active` and takes over at each rise, until the engine stops.
pub(crate) fn spawn(
    acd: AcdHandle,
    storage: Storage,
    to_dispatcher: mpsc::UnboundedSender<DispatcherInput>,
    mut active: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut was = false;
        loop {
            let now = *active.borrow_and_update();
            if now && !was {
                let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
                let since = now_ms.saturating_sub(AGENT_HISTORY_MS);
                crate::acd::driver::restore_agents(&acd, &storage, since).await;
                let bindings =
                    crate::agent_bindings::load(&storage, std::time::Instant::now()).await;
                if !bindings.is_empty() {
                    let _ = to_dispatcher.send(DispatcherInput::AgentBindings(bindings));
                }
            }
            was = now;
            if active.changed().await.is_err() {
                return;
            }
        }
    });
}
