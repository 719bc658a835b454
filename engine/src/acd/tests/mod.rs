//! Scenario tests of the ACD core in virtual time: a `Sim` owns the core, a start instant
//! and the current instant; it jumps time forward, fires due deadlines and collects every
//! action and event, so a test reads as a script of what happens on the floor.

mod agents;
mod persist;
mod property;
mod queueing;
mod routing;
mod snapshot;
mod stats;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

pub(super) fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub(super) fn c(id: &str) -> CallId {
    CallId::from(id)
}

pub(super) fn a(id: &str) -> AgentId {
    AgentId::from(id)
}

pub(super) fn q(id: &str) -> QueueId {
    QueueId::from(id)
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) struct Sim {
    pub acd: Acd,
    pub t0: Instant,
    pub now: Instant,
    pub actions: Vec<Action>,
    pub events: Vec<AcdEvent>,
}

impl Sim {
    pub fn new(queues: Vec<QueueConfig>, agents: Vec<AgentConfig>) -> Sim {
        let t0 = Instant::now();
        let acd = Acd::new(t0, wall(), AcdConfig { queues, agents }).expect("valid config");
        Sim {
            acd,
            t0,
            now: t0,
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(x) = self.acd.poll_action() {
            self.actions.push(x);
        }
        while let Some(e) = self.acd.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves the clock to `t0 + at`, firing every deadline on the way, in order.
    pub fn at(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(due) = self.acd.poll_timeout() {
            if due > target {
                break;
            }
            self.now = due.max(self.now);
            self.acd.handle_timeout(self.now);
            self.drain();
        }
        self.now = target.max(self.now);
        self.acd.handle_timeout(self.now);
        self.drain();
    }

    pub fn input(&mut self, input: Input) -> Result<(), AcdError> {
        let r = self.acd.handle_input(self.now, input);
        self.drain();
        r
    }

    pub fn ok(&mut self, input: Input) {
        let shown = format!("{input:?}");
        if let Err(e) = self.input(input) {
            panic!("{shown} refused: {e}");
        }
    }

    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub fn arrive(&mut self, call: &str, queue: &str, priority: Priority) {
        self.ok(Input::CallArrived {
            call: c(call),
            queue: q(queue),
            priority,
            max_wait: None,
        });
    }

    pub fn login(&mut self, agent: &str) {
        self.ok(Input::AgentLogin { agent: a(agent) });
    }

    pub fn answer(&mut self, call: &str, agent: &str) {
        self.ok(Input::AgentAnswered {
            call: c(call),
            agent: a(agent),
        });
    }

    pub fn end(&mut self, call: &str) {
        self.ok(Input::CallEnded { call: c(call) });
    }

    pub fn state(&self, agent: &str) -> AgentState {
        self.acd
            .agents(self.now)
            .into_iter()
            .find(|s| s.id == a(agent))
            .map(|s| s.state)
            .expect("known agent")
    }

    /// The agents rung for `call` among the actions taken so far (then forgotten).
    pub fn rung(&mut self, call: &str) -> Vec<String> {
        self.take()
            .into_iter()
            .filter_map(|x| match x {
                Action::RingAgent {
                    call: cc, agent, ..
                }
                | Action::CallbackCall {
                    call: cc, agent, ..
                } if cc == c(call) => Some(agent.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Every (call, agent) offer in the actions taken so far, in order (then forgotten).
    pub fn offers(&mut self) -> Vec<(String, String)> {
        self.take()
            .into_iter()
            .filter_map(|x| match x {
                Action::RingAgent { call, agent, .. }
                | Action::CallbackCall { call, agent, .. } => {
                    Some((call.to_string(), agent.to_string()))
                }
                _ => None,
            })
            .collect()
    }
}

/// A support queue and agents with a `support` skill at the given levels.
pub(super) fn support(strategy: Strategy, levels: &[(&str, u8)]) -> Sim {
    let queue = QueueConfig::new("support", "Support")
        .require("support", 1)
        .strategy(strategy);
    let agents = levels
        .iter()
        .map(|(id, l)| AgentConfig::new(id, id, &format!("sip:{id}@pbx")).skill("support", *l))
        .collect();
    Sim::new(vec![queue], agents)
}
