//! What the call shows operators ([`CallView`]), derived from its state: nothing here is
//! kept up to date on the side. The driver republishes the view after each input.

use ivr_scripts::Position;

use super::phase::{Phase, Wait};
use super::{date, CallCore};
use crate::call::live::{CallPhase, CallView};

impl CallCore {
    /// The call as the live-call registry lists it (the queue position is the ACD's, merged
    /// in by the handle).
    pub fn view(&self) -> CallView {
        let (phase, agent) = match &self.phase {
            Phase::Dialing(_) => (CallPhase::Dialing, None),
            Phase::Flow(_) if self.answered_at.is_none() => (CallPhase::Setup, None),
            Phase::Flow(_) => (CallPhase::Flow, None),
            Phase::Queued(q) => match q.agents.iter().find_map(|s| self.leg_agent(s)) {
                Some(agent) => (CallPhase::AgentRinging, Some(agent)),
                None if matches!(q.wait, Wait::Dialing { .. } | Wait::Reconnected) => {
                    (CallPhase::AgentRinging, None)
                }
                None => (CallPhase::Queued, None),
            },
            Phase::Bridged(b) => (CallPhase::Bridged, self.leg_agent(&b.peer)),
            Phase::Ending(_) | Phase::Ended => (CallPhase::Ending, None),
        };
        let queue = match &self.phase {
            Phase::Queued(_) | Phase::Bridged(_) => self.queue.queue.clone(),
            _ => None,
        };
        let step = match self.flow.interp.state().position() {
            Position::Step { step } => Some(step.clone()),
            _ => None,
        };
        CallView {
            id: self.facts.id.clone(),
            caller: self.facts.caller.clone(),
            called: self.facts.called.clone(),
            phase,
            flow: Some(self.flow.loaded.flow.name().to_string()),
            flow_version: Some(self.flow.loaded.version.clone()),
            step,
            queue,
            position: None,
            agent,
            started_at: date(self.facts.started_at),
            answered_at: self.answered_at.map(date),
            bridged_at: self.queue.agent_answered_at.map(date),
            desk: self.desk.clone(),
        }
    }

    /// The agent a leg of the call rings or talks to.
    fn leg_agent(&self, stream: &super::StreamId) -> Option<String> {
        self.legs
            .get(stream)
            .and_then(|l| l.agent())
            .map(|a| a.as_str().to_string())
    }
}
