//! The `[ha]` section of the engine's configuration file, read into an `HaConfig`: members
//! (with their pinned certificates), the cluster port, the secret (inline or from the
//! environment), timings and the alarm webhook. Without `[ha]` the node is a one-voter
//! cluster (`HaConfig::single`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use engine::alarm::Webhook;
use engine::config::EngineConfig;
use serde::Deserialize;

use crate::config::{ConfigError, HaConfig, RecordingStore, Secret, Timings};
use crate::network::tls::Fingerprint;
use crate::types::{MemberKind, NodeInfo};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: ha: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: ha.secret_env: environment variable `{var}` is not set")]
    MissingSecret { file: String, var: String },
    #[error("{file}: ha.alarm_webhook: {source}")]
    Webhook {
        file: String,
        source: engine::alarm::WebhookError,
    },
    #[error("{file}: ha: {source}")]
    Config { file: String, source: ConfigError },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHa {
    node_id: u64,
    listen: Option<SocketAddr>,
    secret: Option<String>,
    /// Name of an environment variable holding the secret (keeps it out of the file).
    secret_env: Option<String>,
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    lease_ms: Option<u64>,
    /// URL to POST a JSON event to on every role change (alarms).
    alarm_webhook: Option<String>,
    /// Replicate calls in progress so that the node taking over adopts them
    /// (`engine::call::survival`); off by default.
    #[serde(default)]
    call_survival: bool,
    #[serde(default)]
    members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: u64,
    cluster: String,
    sip: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// The member's cluster certificate: `sha256:...`, or a list while one is rotated.
    #[serde(default)]
    fingerprint: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

fn file_of(config: &EngineConfig) -> String {
    config.file.display().to_string()
}

fn invalid(config: &EngineConfig, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        file: file_of(config),
        message: message.into(),
    }
}

fn raw_ha(config: &EngineConfig, table: &toml::Table) -> Result<RawHa, SettingsError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| invalid(config, e.message()))
}

/// `ha.alarm_webhook`, checked: an http(s) URL (an error names the key).
pub fn alarm_webhook(config: &EngineConfig) -> Result<Option<Webhook>, SettingsError> {
    let Some(table) = &config.ha else {
        return Ok(None);
    };
    let Some(url) = raw_ha(config, table)?.alarm_webhook else {
        return Ok(None);
    };
    Webhook::new(&url)
        .map(Some)
        .map_err(|source| SettingsError::Webhook {
            file: file_of(config),
            source,
        })
}

/// `ha.call_survival`: whether calls in progress are replicated and adopted by the node
/// that takes over (false without `[ha]`).
pub fn call_survival(config: &EngineConfig) -> Result<bool, SettingsError> {
    match &config.ha {
        Some(table) => Ok(raw_ha(config, table)?.call_survival),
        None => Ok(false),
    }
}

/// The cluster configuration: `[ha]` when present, else a one-voter cluster (same path).
pub fn ha_config(config: &EngineConfig) -> Result<HaConfig, SettingsError> {
    let Some(table) = &config.ha else {
        return Ok(HaConfig::single(1, config.data_dir.clone()));
    };
    let raw = raw_ha(config, table)?;
    let secret = match (&raw.secret, &raw.secret_env) {
        (Some(s), None) => s.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| SettingsError::MissingSecret {
            file: file_of(config),
            var: var.clone(),
        })?,
        _ => {
            return Err(invalid(
                config,
                "give exactly one of `secret` and `secret_env`",
            ))
        }
    };
    let mut members = BTreeMap::new();
    let mut pins = BTreeMap::new();
    for (i, m) in raw.members.iter().enumerate() {
        if let Some(prints) = &m.fingerprint {
            let parsed = prints
                .list()
                .iter()
                .map(|p| Fingerprint::parse(p))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty());
            let Some(parsed) = parsed else {
                return Err(invalid(
                    config,
                    format!("members[{i}].fingerprint: expected `sha256:` and 64 hex digits (see `svi ha cert`)"),
                ));
            };
            pins.insert(m.id, parsed);
        }
        let kind = match m.kind.as_deref().unwrap_or("full") {
            "full" => MemberKind::Full,
            "witness" => MemberKind::Witness,
            other => {
                return Err(invalid(
                    config,
                    format!("members[{i}].kind: `{other}` is not `full` or `witness`"),
                ))
            }
        };
        members.insert(
            m.id,
            NodeInfo {
                cluster_addr: m.cluster.clone(),
                sip_addr: m.sip.clone(),
                kind,
            },
        );
    }
    let d = Timings::default();
    let ms = |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
    let timings = Timings {
        heartbeat: ms(raw.heartbeat_ms, d.heartbeat),
        election_timeout_min: ms(raw.election_timeout_min_ms, d.election_timeout_min),
        election_timeout_max: ms(raw.election_timeout_max_ms, d.election_timeout_max),
        lease: ms(raw.lease_ms, d.lease),
    };
    let mut cfg = HaConfig {
        node_id: raw.node_id,
        data_dir: config.data_dir.clone(),
        listen: raw.listen,
        members,
        secret: Secret::new(secret),
        pins,
        timings,
        retention: Default::default(),
        recordings: None,
    };
    // A full node serves its recordings to the other one and copies theirs; the index
    // names nodes by `[node] name`.
    if !cfg.is_witness() {
        cfg.recordings = Some(RecordingStore {
            dir: config.recording.settings(&config.data_dir).dir,
            node_name: config.node_name.clone(),
            min_free_bytes: config.recording.min_free_bytes,
        });
    }
    cfg.validate().map_err(|source| SettingsError::Config {
        file: file_of(config),
        source,
    })?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(ha: &str) -> EngineConfig {
        let text = format!(
            "[node]\nname = \"a\"\ndata_dir = \"/tmp/svi-settings-test\"\n\
             [sip]\nlisten = \"127.0.0.1:5060\"\nallowed_networks = [\"127.0.0.0/8\"]\n{ha}"
        );
        EngineConfig::parse(&text, Path::new("svi.toml"), Path::new("/tmp"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    const PAIR: &str = "[ha]\nnode_id = 1\nsecret = \"s\"\n";

    #[test]
    fn call_survival_is_off_unless_the_ha_section_turns_it_on() {
        assert!(!call_survival(&config("")).expect("no [ha]"));
        assert!(!call_survival(&config(PAIR)).expect("not given"));
        let on = config(&format!("{PAIR}call_survival = true\n"));
        assert!(call_survival(&on).expect("given"));
        let wrong = config(&format!("{PAIR}call_survival = \"yes\"\n"));
        let e = call_survival(&wrong).expect_err("not a boolean");
        assert!(e.to_string().contains("expected a boolean"), "{e}");
    }
}
