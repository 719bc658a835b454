//! Queue and agent configuration, as the administrator writes it.
//!
//! Which agents serve a queue follows from skills alone: an agent serves a queue when it holds
//! every skill the queue requires at or above the required level (a queue that requires no
//! skill is served by every agent). There is no second, hand-kept membership list to drift
//! out of step with the skills.
//!
//! Overflow targets are data the engine interprets, except a target queue, which the core
//! handles itself (moving a call between two of its own queues is one atomic decision, and
//! one replicated change).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::AcdError;
use super::types::{ms, opt_ms, AgentId, QueueId, Skill};

/// Skill levels run from 1 (novice) to 10 (expert).
pub const MAX_LEVEL: u8 = 10;

/// How a queue picks among ready agents for its head call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle for the longest time (fair share of work).
    #[default]
    LongestIdle,
    /// The best level on the queue's required skills (sum of levels), then the longest idle.
    BestSkill,
    /// The next ready agent after the last one offered a call, in agent-id order.
    RoundRobin,
    /// Every ready agent rings at once; the first to answer takes the call.
    RingAll,
}

/// Where the engine sends a call that leaves the ACD unanswered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitTarget {
    /// Back to the call's flow: the `queue` step's overflow branch
    /// (`QueueOutcome::Overflow`), or the named step when one is given.
    Flow { step: Option<String> },
    /// Play this prompt, then hang up.
    Message { prompt: String },
}

/// What to do with a call that waited too long, found the queue full or found no agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowTarget {
    /// Move the call to another queue (the core does this itself). A queue the call already
    /// visited, or an unknown one, falls back to the flow so that overflow never loops.
    Queue(QueueId),
    Flow {
        step: Option<String>,
    },
    Message {
        prompt: String,
    },
}

impl Default for OverflowTarget {
    fn default() -> Self {
        OverflowTarget::Flow { step: None }
    }
}

impl OverflowTarget {
    /// The exit, for every target but a queue.
    pub fn exit(&self) -> Option<ExitTarget> {
        match self {
            OverflowTarget::Queue(_) => None,
            OverflowTarget::Flow { step } => Some(ExitTarget::Flow { step: step.clone() }),
            OverflowTarget::Message { prompt } => Some(ExitTarget::Message {
                prompt: prompt.clone(),
            }),
        }
    }
}

/// Periodic position and expected-wait announcements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceConfig {
    /// The period; every caller waiting at least this long hears one announcement per period.
    #[serde(with = "ms")]
    pub every: Duration,
    /// Also announce the position to each caller as it joins the queue.
    #[serde(default)]
    pub on_arrival: bool,
}

/// Callback offer: the caller keys a digit, hangs up and keeps their place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackConfig {
    /// Attempts to reach the caller before giving up (at least 1).
    pub max_attempts: u32,
    /// Delay before the entry competes again after the caller did not answer.
    #[serde(with = "ms")]
    pub retry_after: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub id: QueueId,
    pub name: String,
    /// Required skills: skill -> minimum level.
    #[serde(default)]
    pub skills: BTreeMap<Skill, u8>,
    #[serde(default)]
    pub strategy: Strategy,
    /// How long an agent's phone rings before the call goes back to its place.
    #[serde(with = "ms", default = "default_ring_timeout")]
    pub ring_timeout: Duration,
    /// After-call work time, unless the agent has their own.
    #[serde(with = "ms", default)]
    pub wrap_up: Duration,
    /// Service-level threshold: answered within this wait counts as "within service level".
    #[serde(with = "ms", default = "default_service_level")]
    pub service_level: Duration,
    /// Handle time assumed for expected-wait estimates until real calls have been measured.
    #[serde(with = "ms", default = "default_handle_time")]
    pub expected_handle_time: Duration,
    #[serde(with = "opt_ms", default)]
    pub max_wait: Option<Duration>,
    #[serde(default)]
    pub on_max_wait: OverflowTarget,
    /// Waiting entries (callbacks included) beyond which an arriving call overflows.
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub on_full: OverflowTarget,
    /// When set, a call arriving while no agent serving the queue is logged in overflows.
    #[serde(default)]
    pub on_no_agents: Option<OverflowTarget>,
    #[serde(default)]
    pub announce: Option<AnnounceConfig>,
    #[serde(default)]
    pub callback: Option<CallbackConfig>,
}

fn default_ring_timeout() -> Duration {
    Duration::from_secs(20)
}

fn default_service_level() -> Duration {
    Duration::from_secs(20)
}

fn default_handle_time() -> Duration {
    Duration::from_secs(180)
}

impl QueueConfig {
    /// A queue with the defaults: longest idle, 20 s ring timeout, no wrap-up, no limits.
    pub fn new(id: &str, name: &str) -> Self {
        QueueConfig {
            id: QueueId::from(id),
            name: name.to_owned(),
            skills: BTreeMap::new(),
            strategy: Strategy::default(),
            ring_timeout: default_ring_timeout(),
            wrap_up: Duration::ZERO,
            service_level: default_service_level(),
            expected_handle_time: default_handle_time(),
            max_wait: None,
            on_max_wait: OverflowTarget::default(),
            max_length: None,
            on_full: OverflowTarget::default(),
            on_no_agents: None,
            announce: None,
            callback: None,
        }
    }

    pub fn require(mut self, skill: &str, min_level: u8) -> Self {
        self.skills.insert(Skill::from(skill), min_level);
        self
    }

    pub fn strategy(mut self, s: Strategy) -> Self {
        self.strategy = s;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        let bad = |what: &str| AcdError::InvalidQueue {
            queue: self.id.clone(),
            reason: what.to_owned(),
        };
        if self.skills.values().any(|l| !(1..=MAX_LEVEL).contains(l)) {
            return Err(bad("skill levels must be 1 to 10"));
        }
        if self.ring_timeout.is_zero() {
            return Err(bad("ring_timeout must be positive"));
        }
        // A shorter period would flood callers and the media path with prompts.
        if let Some(a) = &self.announce {
            if a.every < Duration::from_secs(1) {
                return Err(bad("announce.every must be at least one second"));
            }
        }
        if let Some(c) = &self.callback {
            if c.max_attempts == 0 {
                return Err(bad("callback.max_attempts must be at least 1"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    /// Where to ring the agent: an extension on the PBX or a SIP URI.
    pub contact: String,
    /// Skill -> level (1 to 10).
    #[serde(default)]
    pub skills: BTreeMap<Skill, u8>,
    /// After-call work time overriding the queue's.
    #[serde(with = "opt_ms", default)]
    pub wrap_up: Option<Duration>,
}

impl AgentConfig {
    pub fn new(id: &str, name: &str, contact: &str) -> Self {
        AgentConfig {
            id: AgentId::from(id),
            name: name.to_owned(),
            contact: contact.to_owned(),
            skills: BTreeMap::new(),
            wrap_up: None,
        }
    }

    pub fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.insert(Skill::from(skill), level);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        if self.skills.values().any(|l| !(1..=MAX_LEVEL).contains(l)) {
            return Err(AcdError::InvalidAgent {
                agent: self.id.clone(),
                reason: "skill levels must be 1 to 10".into(),
            });
        }
        Ok(())
    }

    /// The agent's score for a queue: `None` if it lacks a required skill or level, else the
    /// sum of its levels on the required skills (what `best_skill` ranks by).
    pub fn score(&self, queue: &QueueConfig) -> Option<u32> {
        let mut score = 0u32;
        for (skill, min) in &queue.skills {
            let level = *self.skills.get(skill)?;
            if level < *min {
                return None;
            }
            score = score.saturating_add(u32::from(level));
        }
        Some(score)
    }
}

/// The whole ACD configuration, loaded with the engine's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcdConfig {
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_requires_every_skill_at_level() {
        let q = QueueConfig::new("support", "Support")
            .require("printers", 3)
            .require("french", 1);
        let a = AgentConfig::new("1001", "Ann", "1001")
            .skill("printers", 5)
            .skill("french", 2);
        assert_eq!(a.score(&q), Some(7));
        let b = AgentConfig::new("1002", "Bob", "1002").skill("printers", 5);
        assert_eq!(b.score(&q), None);
        let c = b.clone().skill("french", 1).skill("printers", 2);
        assert_eq!(c.score(&q), None);
        assert_eq!(c.score(&QueueConfig::new("any", "Any")), Some(0));
    }

    #[test]
    fn validation_rejects_bad_levels_and_periods() {
        assert!(QueueConfig::new("q", "Q")
            .require("x", 11)
            .validate()
            .is_err());
        let mut q = QueueConfig::new("q", "Q");
        q.announce = Some(AnnounceConfig {
            every: Duration::from_millis(10),
            on_arrival: false,
        });
        assert!(q.validate().is_err());
        assert!(AgentConfig::new("a", "A", "a")
            .skill("x", 0)
            .validate()
            .is_err());
    }

    #[test]
    fn config_reads_from_toml_with_defaults() {
        let cfg: AcdConfig = toml::from_str(
            r#"
            [[queues]]
            id = "support"
            name = "Support"
            strategy = "best_skill"
            skills = { printers = 3 }
            max_wait = 300000
            on_max_wait = { queue = "overflow" }
            on_full = { message = { prompt = "busy" } }

            [[agents]]
            id = "1001"
            name = "Ann"
            contact = "sip:1001@pbx"
            skills = { printers = 5 }
            "#,
        )
        .expect("valid config");
        let q = &cfg.queues[0];
        assert_eq!(q.strategy, Strategy::BestSkill);
        assert_eq!(q.ring_timeout, Duration::from_secs(20));
        assert_eq!(
            q.on_max_wait,
            OverflowTarget::Queue(QueueId::from("overflow"))
        );
        assert_eq!(cfg.agents[0].score(q), Some(5));
    }
}
