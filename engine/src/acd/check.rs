//! Consistency checks of the state, in O(n): run on every restore (a replicated state is
//! input like any other, and a standby must refuse one that would strand a call or an agent)
//! and after every step of the randomised scenario tests.
//!
//! The invariants:
//! - an agent is in at most one call, and that call points back at it: reserved and ringing
//!   agents are offered a live call; a talking agent's call is talking (or dialling a
//!   callback) with that agent; every offered call has agents and a ring timer;
//! - every call's queue exists; a wrap-up has its timer; a callback retry has its timer;
//! - (full audit only) the indexes equal a rebuild from the records, and no queue holds both
//!   a waiting call and a ready agent that serves it.

use super::error::AcdError;
use super::index::Index;
use std::collections::BTreeSet;

use super::machine::Acd;
use super::model::{AgentState, CallState};
use super::timers::TimerKey;

impl Acd {
    /// Every invariant, indexes included. O(Q·A + C log C): for tests and for operators
    /// (after a restore, or from an admin command), not for every input.
    pub fn audit(&self) -> Result<(), AcdError> {
        self.check_records().map_err(AcdError::Inconsistent)?;
        let rebuilt = Index::build(&self.st.queues, &self.st.agents, &self.st.calls);
        if rebuilt != self.ix {
            return Err(AcdError::Inconsistent(
                "routing indexes differ from the records".into(),
            ));
        }
        for (qid, qi) in &self.ix.queues {
            if !qi.waiting.is_empty() && !qi.ready.is_empty() {
                return Err(AcdError::Inconsistent(format!(
                    "queue {qid} has waiting calls and ready agents"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn check_records(&self) -> Result<(), String> {
        let mut places = BTreeSet::new();
        for (cid, c) in &self.st.calls {
            // Two calls at one place would overwrite each other in the waiting order.
            if !places.insert(c.seq) {
                return Err(format!("call {cid} shares its place with another call"));
            }
            if !self.st.queues.contains_key(&c.queue) {
                return Err(format!("call {cid} is in unknown queue {}", c.queue));
            }
            if c.seq >= self.st.next_seq {
                return Err(format!("call {cid} has a sequence number not yet issued"));
            }
            match &c.state {
                CallState::Offered { agents } => {
                    if agents.is_empty() {
                        return Err(format!("call {cid} is offered to nobody"));
                    }
                    for a in agents {
                        let offered = self.st.agents.get(a).and_then(|a| a.state.offered());
                        if offered != Some(cid) {
                            return Err(format!("call {cid} offered to {a}, who is not reserved"));
                        }
                    }
                    if self.st.timers.get(&TimerKey::Ring(cid.clone())).is_none() {
                        return Err(format!("call {cid} is offered without a ring timer"));
                    }
                }
                CallState::Talking { agent, .. } | CallState::Dialing { agent } => {
                    let state = self.st.agents.get(agent).map(|a| &a.state);
                    if state != Some(&AgentState::Talking { call: cid.clone() }) {
                        return Err(format!("call {cid} talks to {agent}, who is not on it"));
                    }
                }
                CallState::RetryWait => {
                    let timer = TimerKey::CallbackRetry(cid.clone());
                    if !c.is_callback() || self.st.timers.get(&timer).is_none() {
                        return Err(format!("callback {cid} waits for a retry that never comes"));
                    }
                }
                CallState::Waiting => {}
            }
        }
        for (aid, a) in &self.st.agents {
            match &a.state {
                AgentState::Reserved { call } | AgentState::Ringing { call } => {
                    let ok = matches!(
                        self.st.calls.get(call).map(|c| &c.state),
                        Some(CallState::Offered { agents }) if agents.contains(aid)
                    );
                    if !ok {
                        return Err(format!("agent {aid} is reserved for {call}, not offered"));
                    }
                }
                AgentState::Talking { call } => {
                    let ok = matches!(
                        self.st.calls.get(call).map(|c| &c.state),
                        Some(CallState::Talking { agent, .. } | CallState::Dialing { agent })
                            if agent == aid
                    );
                    if !ok {
                        return Err(format!("agent {aid} talks on {call}, which is not theirs"));
                    }
                }
                AgentState::WrapUp { .. } => {
                    if self.st.timers.get(&TimerKey::WrapUp(aid.clone())).is_none() {
                        return Err(format!("agent {aid} is in wrap-up without an end"));
                    }
                }
                AgentState::LoggedOut | AgentState::Ready | AgentState::NotReady { .. } => {}
            }
        }
        Ok(())
    }
}
