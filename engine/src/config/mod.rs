//! The engine's configuration: the TOML file model and its validation.
//!
//! Every value is checked once, here, into typed fields; an error names the file, the key
//! and what is wrong (`svi.toml: sip.listen: "5060" is not IP:PORT`). Relative paths are
//! resolved against the directory of the configuration file.
//!
//! One file per section, each with its raw (as written) form and its checked form:
//! `sip` (`[sip]`, `[rtp]`, with the edge's TLS, limits and authentication in `edge`), `flows` (`[prompts]`, `[flows]`, `[[routes]]`), `trunks`,
//! `acd` (`[[queues]]`, `[[agents]]`), `recording`, `connectors` (`[[data_sources]]`,
//! `[[actions]]`, `[[connections]]`), `backup`, `alarms` (`[alarms]`, `[alarms.mail]`),
//! `admin`, `callout` (`[alarm_callout]`), `central`. This file holds the whole file's shape and puts
//! the sections together.
//! `[ha]` is kept as written: the binary checks it with the `ha` crate.

mod acd;
mod admin;
mod alarms;
mod backup;
mod callout;
mod central;
mod connectors;
mod edge;
mod flows;
mod recording;
mod sip;
mod srtp;
#[cfg(test)]
mod tests;
mod trunks;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use acd::REGISTERED;
pub use admin::AdminConfig;
pub use backup::BackupConfig;
pub use callout::AlarmCalloutConfig;
pub use central::CentralConfig;
pub use connectors::ConnectorConfig;
pub use flows::Route;
pub use recording::{RecordPolicy, RecordingConfig};
pub use sip::{parse_port_range, RtpConfig, SipConfig, SipTransport, TlsSettings};
pub use trunks::TrunkConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: {key}: {problem}")]
    Value {
        file: PathBuf,
        key: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    node: RawNode,
    #[serde(default)]
    sip: sip::RawSip,
    #[serde(default)]
    rtp: sip::RawRtp,
    #[serde(default)]
    prompts: flows::RawPrompts,
    #[serde(default)]
    flows: flows::RawFlows,
    #[serde(default)]
    routes: Vec<flows::RawRoute>,
    #[serde(default)]
    trunks: Vec<trunks::RawTrunk>,
    #[serde(default)]
    queues: Vec<acd::RawQueue>,
    #[serde(default)]
    agents: Vec<acd::RawAgent>,
    /// The HA pair: read by the binary (the engine does not know the `ha` crate).
    ha: Option<toml::Table>,
    #[serde(default)]
    data_sources: Vec<connectors::RawConnector>,
    #[serde(default)]
    actions: Vec<connectors::RawConnector>,
    #[serde(default)]
    connections: Vec<connectors::RawConnector>,
    #[serde(default)]
    recording: recording::RawRecording,
    #[serde(default)]
    backup: backup::RawBackup,
    #[serde(default)]
    alarms: alarms::RawAlarms,
    #[serde(default)]
    admin: admin::RawAdmin,
    alarm_callout: Option<callout::RawAlarmCallout>,
    central: Option<central::RawCentral>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    data_dir: Option<String>,
    /// Set in the package's template: refuses to run until the file was edited.
    #[serde(default)]
    unconfigured: bool,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub file: PathBuf,
    pub node_name: String,
    pub data_dir: PathBuf,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub prompts_dir: PathBuf,
    pub default_language: String,
    pub flows_dir: PathBuf,
    pub routes: Vec<Route>,
    pub default_flow: String,
    pub trunks: Vec<TrunkConfig>,
    /// Queue ids flows may name (the ACD serves them).
    pub queues: Vec<String>,
    /// Queues and agents for the ACD.
    pub acd: crate::acd::AcdConfig,
    /// Digest passwords of agents whose phones register with the engine.
    pub agent_passwords: std::collections::BTreeMap<String, String>,
    /// `agents[].srtp`: the SRTP policy of legs to each agent's phone, when set.
    pub agent_srtp: std::collections::BTreeMap<String, ::sip::sdp::SrtpPolicy>,
    /// The `[ha]` section as written (validated by the binary with the `ha` crate).
    pub ha: Option<toml::Table>,
    /// Connectors for `lookup` and `action` steps.
    pub data_sources: Vec<ConnectorConfig>,
    pub actions: Vec<ConnectorConfig>,
    /// Named backends shared by connectors (`[[connections]]`: kinds `sql`, `rest`).
    pub connections: Vec<ConnectorConfig>,
    pub recording: RecordingConfig,
    pub backup: BackupConfig,
    pub alarms: crate::alarm::AlarmsConfig,
    /// The admin REST API (`svi run` serves it; the engine itself does not).
    pub admin: AdminConfig,
    /// Calls to the on-duty numbers for access-control alarms (None: never).
    pub alarm_callout: Option<AlarmCalloutConfig>,
    /// The export to the shared PostgreSQL of central reporting (None: off).
    pub central: Option<CentralConfig>,
}

/// What every section's parser needs: the file (for errors) and the base of relative paths.
struct Ctx<'a> {
    file: &'a Path,
    base: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            file: self.file.to_path_buf(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

impl EngineConfig {
    /// Reads and validates a configuration file.
    pub fn load(file: &Path) -> Result<EngineConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        EngineConfig::parse(&text, file, base)
    }

    /// Validates configuration text; `file` names it in errors, `base` resolves relative paths.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<EngineConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let cx = Ctx { file, base };
        if raw.node.unconfigured {
            return Err(cx.err(
                "node.unconfigured",
                "this is the package's template: set it up for this site (sip.listen, sip.allowed_networks, agents, trunks; see docs/operations.md), then remove `unconfigured = true`",
            ));
        }

        let sip = sip::parse_sip(&cx, raw.sip)?;
        let rtp = sip::parse_rtp(&cx, raw.rtp, sip.listen)?;
        let default_language = flows::default_language(&cx, &raw.prompts)?;
        let routes = flows::routes(&cx, raw.routes)?;
        let trunks = trunks::parse(&cx, raw.trunks)?;
        let acd = acd::parse(&cx, raw.queues, raw.agents)?;
        let data_dir = cx.path(raw.node.data_dir.as_deref().unwrap_or("svi-data"));
        let recording = recording::parse(&cx, raw.recording, acd.record_queues)?;
        let data_sources = connectors::parse(&cx, "data_sources", raw.data_sources)?;
        let alarm_callout = callout::parse(&cx, raw.alarm_callout, &data_sources)?;

        Ok(EngineConfig {
            file: file.to_path_buf(),
            node_name: raw.node.name.unwrap_or_else(|| "svi".into()),
            data_dir,
            sip,
            rtp,
            prompts_dir: cx.path(raw.prompts.dir.as_deref().unwrap_or("prompts")),
            default_language,
            flows_dir: cx.path(raw.flows.dir.as_deref().unwrap_or("flows")),
            routes,
            default_flow: raw.flows.default.unwrap_or_else(|| "demo".into()),
            trunks,
            queues: acd.queues,
            acd: acd.acd,
            agent_passwords: acd.agent_passwords,
            agent_srtp: acd.agent_srtp,
            ha: raw.ha,
            data_sources,
            actions: connectors::parse(&cx, "actions", raw.actions)?,
            connections: connectors::parse(&cx, "connections", raw.connections)?,
            recording,
            backup: backup::parse(&cx, raw.backup)?,
            alarms: alarms::parse(&cx, raw.alarms)?,
            admin: admin::parse(&cx, raw.admin)?,
            alarm_callout,
            central: central::parse(&cx, raw.central)?,
        })
    }

    /// Refuses a configuration that cannot serve SIP safely: without `sip.allowed_networks`
    /// the engine would take requests from nobody (the list is required, fail closed).
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        if self.sip.allowed.is_empty() {
            return Err(ConfigError::Value {
                file: self.file.clone(),
                key: "sip.allowed_networks".into(),
                problem: sip::ALLOWED_NETWORKS_NEEDED.into(),
            });
        }
        Ok(())
    }

    /// The flow for a called number: the first matching route, else the default flow.
    pub fn flow_for(&self, called: &str) -> &str {
        self.routes
            .iter()
            .find(|r| r.matches(called))
            .map(|r| r.flow.as_str())
            .unwrap_or(&self.default_flow)
    }
}

/// Test configurations: `text` with loopback allowed (`sip.allowed_networks` is required),
/// added to its `[sip]` table or as one.
#[cfg(test)]
pub(crate) fn with_loopback_allowed(text: &str) -> String {
    const ALLOW: &str = "allowed_networks = [\"127.0.0.0/8\", \"::1/128\"]\n";
    if text.contains("allowed_networks") {
        text.to_string()
    } else if text.contains("[sip]\n") {
        text.replacen("[sip]\n", &format!("[sip]\n{ALLOW}"), 1)
    } else {
        format!("{text}\n[sip]\n{ALLOW}")
    }
}
