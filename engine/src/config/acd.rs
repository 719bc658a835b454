//! `[[queues]]` and `[[agents]]`: ids and the registrar's passwords are checked here, the ACD
//! settings by `acd::QueueConfig` and `acd::AgentConfig`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::recording::RecordPolicy;
use super::{ConfigError, Ctx};

/// A queue as written: `id` checked here, the ACD settings by `acd::QueueConfig`.
#[derive(Debug, Deserialize)]
pub(super) struct RawQueue {
    id: String,
    #[serde(flatten)]
    rest: toml::Table,
}

/// An agent as written: the registrar's password here, the ACD settings by
/// `acd::AgentConfig` (`contact` defaults to the phone registered with the engine).
#[derive(Debug, Deserialize)]
pub(super) struct RawAgent {
    id: String,
    password: Option<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// The shortest agent password accepted.
pub const MIN_AGENT_PASSWORD: usize = 8;

/// The `contact` of an agent whose phone registers with the engine (the default).
pub const REGISTERED: &str = "registered";

/// What the queue and agent sections give the engine.
pub(super) struct Acd {
    /// Queue ids flows may name.
    pub queues: Vec<String>,
    pub acd: crate::acd::AcdConfig,
    pub agent_passwords: BTreeMap<String, String>,
    /// `agents[].srtp`: the SRTP policy of legs to the agent's phone.
    pub agent_srtp: BTreeMap<String, sip::sdp::SrtpPolicy>,
    /// `queues[].record`: the recording policy of calls bridged from each queue.
    pub record_queues: BTreeMap<String, RecordPolicy>,
}

pub(super) fn parse(
    cx: &Ctx<'_>,
    raw_queues: Vec<RawQueue>,
    raw_agents: Vec<RawAgent>,
) -> Result<Acd, ConfigError> {
    let mut queues = Vec::new();
    let mut record_queues = BTreeMap::new();
    let mut acd = crate::acd::AcdConfig::default();
    for (i, q) in raw_queues.into_iter().enumerate() {
        if q.id.is_empty()
            || !q
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(cx.err(
                &format!("queues[{i}].id"),
                format!("`{}` must be letters, digits, `_` or `-`", q.id),
            ));
        }
        if queues.contains(&q.id) {
            return Err(cx.err(
                &format!("queues[{i}].id"),
                format!("`{}` is defined twice", q.id),
            ));
        }
        let mut table = q.rest;
        if let Some(v) = table.remove("record") {
            let policy =
                RecordPolicy::parse(&v).map_err(|e| cx.err(&format!("queues[{i}].record"), e))?;
            record_queues.insert(q.id.clone(), policy);
        }
        table.insert("id".into(), toml::Value::String(q.id.clone()));
        table
            .entry("name")
            .or_insert_with(|| toml::Value::String(q.id.clone()));
        let queue: crate::acd::QueueConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    cx.err(&format!("queues[{i}]"), e.message().to_string())
                })?;
        acd.queues.push(queue);
        queues.push(q.id);
    }
    let mut agent_passwords = BTreeMap::new();
    let mut agent_srtp = BTreeMap::new();
    for (i, a) in raw_agents.into_iter().enumerate() {
        let mut table = a.rest;
        if let Some(v) = table.remove("srtp") {
            let key = format!("agents[{i}].srtp");
            let text = v
                .as_str()
                .ok_or_else(|| cx.err(&key, "must be \"off\", \"optional\" or \"required\""))?;
            if let Some(policy) = super::srtp::parse_policy(cx, &key, Some(text))? {
                agent_srtp.insert(a.id.clone(), policy);
            }
        }
        table.insert("id".into(), toml::Value::String(a.id.clone()));
        table
            .entry("name")
            .or_insert_with(|| toml::Value::String(a.id.clone()));
        table
            .entry("contact")
            .or_insert_with(|| toml::Value::String(REGISTERED.into()));
        let agent: crate::acd::AgentConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    cx.err(&format!("agents[{i}]"), e.message().to_string())
                })?;
        if acd
            .agents
            .iter()
            .any(|o: &crate::acd::AgentConfig| o.id == agent.id)
        {
            return Err(cx.err(
                &format!("agents[{i}].id"),
                format!("`{}` is defined twice", a.id),
            ));
        }
        if let Some(p) = a.password {
            let n = p.chars().count();
            if n < MIN_AGENT_PASSWORD {
                return Err(cx.err(
                    &format!("agents[{i}].password"),
                    format!(
                        "is {n} characters; at least {MIN_AGENT_PASSWORD} are needed (one captured \
                         REGISTER lets anyone try passwords offline)"
                    ),
                ));
            }
            agent_passwords.insert(a.id.clone(), p);
        } else if agent.contact == REGISTERED {
            return Err(cx.err(
                &format!("agents[{i}].password"),
                "is needed for a phone that registers with the engine (or give a `contact`)",
            ));
        }
        acd.agents.push(agent);
    }
    Ok(Acd {
        queues,
        acd,
        agent_passwords,
        agent_srtp,
        record_queues,
    })
}
