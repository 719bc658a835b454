//! What goes in and out of the ACD core: [`Input`]s from the driver, [`Action`]s to it.
//!
//! | action            | the driver does                                   | and reports            |
//! |-------------------|---------------------------------------------------|------------------------|
//! | `Hold`            | plays the queue's music to the caller             | -                      |
//! | `Announce`        | plays position / expected wait over the music     | -                      |
//! | `RingAgent`       | calls the agent's contact (caller keeps music)    | `AgentRinging` (optional), `AgentAnswered` or `RingFailed` |
//! | `CancelRing`      | cancels that agent's ringing leg                  | -                      |
//! | `Bridge`          | stops the music and bridges caller and agent      | `CallEnded` at hang-up |
//! | `Moved`           | switches to the new queue's music and prompts     | -                      |
//! | `Overflow`        | takes the call out of the ACD to its exit target  | -                      |
//! | `CallbackAccepted`| confirms to the caller and hangs up their leg     | -                      |
//! | `CallbackCall`    | calls the agent; once answered, dials the caller  | `AgentAnswered`, then `CallbackResult` |
//!
//! Inputs are plain data (serde) so that the driver can log them and a replica can replay
//! them. The core's own ring timer makes `RingFailed { NoAnswer }` optional: the driver sends
//! it only when the PBX gives up first.

use std::time::Duration;

use ivr_scripts::Priority;
use serde::{Deserialize, Serialize};

use super::config::{AgentConfig, ExitTarget, QueueConfig};
use super::types::{ms, opt_ms, AgentId, CallId, QueueId};

/// Why a call left (or moved out of) a queue unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowReason {
    MaxWait,
    QueueFull,
    NoAgents,
}

/// Why an offered agent did not take the call. The agent is made not ready in every case:
/// a phone that did not answer, refused or cannot be reached would fail the next call too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingFailure {
    NoAnswer,
    /// The agent declined (486/603).
    Rejected,
    /// The leg failed: unreachable, unregistered, no common codec... (the reason is logged).
    Failed(String),
}

impl RingFailure {
    /// The not-ready reason the agent is given.
    pub fn reason(&self) -> String {
        match self {
            RingFailure::NoAnswer => "no answer".into(),
            RingFailure::Rejected => "rejected".into(),
            RingFailure::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// How dialling the caller back went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackResult {
    Connected,
    NoAnswer,
    Failed(String),
}

/// Something the driver tells the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// A flow's `queue` step: the call enters `queue`. `max_wait` overrides the queue's.
    CallArrived {
        call: CallId,
        queue: QueueId,
        priority: Priority,
        #[serde(with = "opt_ms", default)]
        max_wait: Option<Duration>,
    },
    /// The caller hung up while waiting or while an agent was ringing (or a callback entry
    /// was cancelled). On a call already talking this is taken as `CallEnded`.
    CallAbandoned {
        call: CallId,
    },
    AgentLogin {
        agent: AgentId,
    },
    /// Ready for calls; also ends wrap-up early. While busy, cancels a pending pause.
    AgentReady {
        agent: AgentId,
    },
    /// Not ready. While reserved or ringing the offer is withdrawn (the call keeps its
    /// place); while talking or in wrap-up, the pause applies when the work is done.
    AgentPause {
        agent: AgentId,
        reason: String,
    },
    /// Like a pause, then logged out.
    AgentLogout {
        agent: AgentId,
    },
    /// The agent's phone rings (a provisional response): reserved -> ringing.
    AgentRinging {
        call: CallId,
        agent: AgentId,
    },
    AgentAnswered {
        call: CallId,
        agent: AgentId,
    },
    RingFailed {
        call: CallId,
        agent: AgentId,
        failure: RingFailure,
    },
    /// The bridged call is over (either side hung up): the agent goes to wrap-up.
    CallEnded {
        call: CallId,
    },
    /// The caller keyed the callback digit: leave the media path, keep the place.
    CallbackRequested {
        call: CallId,
    },
    CallbackResult {
        call: CallId,
        result: CallbackResult,
    },
    /// Adds or replaces a queue (routing indexes rebuilt, waiting calls re-dispatched).
    UpsertQueue(QueueConfig),
    /// Removes a queue that holds no call.
    RemoveQueue {
        queue: QueueId,
    },
    /// Adds or replaces an agent's configuration; its live state is kept.
    UpsertAgent(AgentConfig),
    /// Removes a logged-out agent.
    RemoveAgent {
        agent: AgentId,
    },
}

/// Something the core asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Hold {
        call: CallId,
        queue: QueueId,
    },
    Announce {
        call: CallId,
        queue: QueueId,
        /// 1 = next in line.
        position: u32,
        /// `None` while no agent serving the queue is staffed (nothing to estimate from).
        #[serde(with = "opt_ms")]
        expected_wait: Option<Duration>,
    },
    RingAgent {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        contact: String,
        /// The core's own ring timeout (informative: the core enforces it).
        #[serde(with = "ms")]
        timeout: Duration,
    },
    CancelRing {
        call: CallId,
        agent: AgentId,
    },
    Bridge {
        call: CallId,
        agent: AgentId,
    },
    Moved {
        call: CallId,
        from: QueueId,
        to: QueueId,
    },
    Overflow {
        call: CallId,
        queue: QueueId,
        reason: OverflowReason,
        target: ExitTarget,
    },
    CallbackAccepted {
        call: CallId,
    },
    CallbackCall {
        call: CallId,
        queue: QueueId,
        agent: AgentId,
        contact: String,
    },
}
