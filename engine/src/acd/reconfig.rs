//! Configuration changes while calls wait: adding, changing and removing queues and agents.
//!
//! A change can alter which agents serve which queues and how each queue orders its ready
//! agents, so the indexes are rebuilt from the records (O(Q·A), rare) and every waiting call
//! is routed again. Live state is never lost: an agent keeps its state and current call when
//! its skills change; a queue keeps its waiting calls when its rules change. Removal is
//! refused while a queue holds calls or an agent is logged in.

use super::config::{AgentConfig, QueueConfig};
use super::error::AcdError;
use super::index::Index;
use super::machine::Acd;
use super::model::{Agent, AgentState, Queue};
use super::timers::TimerKey;
use super::types::{AgentId, QueueId, Timestamp};

impl Acd {
    pub(crate) fn upsert_queue(
        &mut self,
        now: Timestamp,
        cfg: QueueConfig,
    ) -> Result<(), AcdError> {
        cfg.validate()?;
        let id = cfg.id.clone();
        let every = cfg.announce.as_ref().map(|a| a.every);
        match self.st.queues.get_mut(&id) {
            Some(q) => q.config = cfg,
            None => {
                self.st.queues.insert(id.clone(), Queue::new(cfg));
            }
        }
        self.reindex(now);
        let waiting = self
            .ix
            .queues
            .get(&id)
            .is_some_and(|qi| !qi.waiting.is_empty());
        let round = TimerKey::Announce(id);
        if let (Some(every), true, None) = (every, waiting, self.st.timers.get(&round)) {
            self.st.timers.set(round, now + every);
        }
        Ok(())
    }

    pub(crate) fn remove_queue(&mut self, now: Timestamp, id: &QueueId) -> Result<(), AcdError> {
        if !self.st.queues.contains_key(id) {
            return Err(AcdError::UnknownQueue(id.clone()));
        }
        if self.st.calls.values().any(|c| &c.queue == id) {
            return Err(AcdError::QueueInUse(id.clone()));
        }
        self.st.queues.remove(id);
        self.st.timers.cancel(&TimerKey::Announce(id.clone()));
        self.reindex(now);
        Ok(())
    }

    pub(crate) fn upsert_agent(
        &mut self,
        now: Timestamp,
        cfg: AgentConfig,
    ) -> Result<(), AcdError> {
        cfg.validate()?;
        match self.st.agents.get_mut(&cfg.id) {
            Some(a) => a.config = cfg,
            None => {
                self.st.agents.insert(cfg.id.clone(), Agent::new(cfg, now));
            }
        }
        self.reindex(now);
        Ok(())
    }

    pub(crate) fn remove_agent(&mut self, now: Timestamp, id: &AgentId) -> Result<(), AcdError> {
        let state = self.agent_state(id)?;
        if *state != AgentState::LoggedOut {
            return Err(AcdError::AgentState {
                agent: id.clone(),
                state: state.name(),
                action: "be removed",
            });
        }
        self.st.agents.remove(id);
        self.reindex(now);
        Ok(())
    }

    fn reindex(&mut self, now: Timestamp) {
        self.ix = Index::build(&self.st.queues, &self.st.agents, &self.st.calls);
        self.redispatch_all(now);
    }
}
