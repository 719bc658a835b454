//! The engine's configuration: the TOML file model and its validation.
//!
//! Every value is checked once, here, into typed fields; an error names the file, the key
//! and what is wrong (`svi.toml: sip.listen: "5060" is not IP:PORT`). Relative paths are
//! resolved against the directory of the configuration file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::acl::{Acl, Network};

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
    sip: RawSip,
    #[serde(default)]
    rtp: RawRtp,
    #[serde(default)]
    prompts: RawPrompts,
    #[serde(default)]
    flows: RawFlows,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    trunks: Vec<RawTrunk>,
    #[serde(default)]
    queues: Vec<RawQueue>,
    #[serde(default)]
    agents: Vec<RawAgent>,
    /// The HA pair: read by the binary (the engine does not know the `ha` crate).
    ha: Option<toml::Table>,
    #[serde(default)]
    data_sources: Vec<RawConnector>,
    #[serde(default)]
    actions: Vec<RawConnector>,
    #[serde(default)]
    recording: RawRecording,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecording {
    dir: Option<String>,
    default: Option<toml::Value>,
    #[serde(default)]
    flows: std::collections::BTreeMap<String, toml::Value>,
    retention_days: Option<u64>,
    min_free_mb: Option<u64>,
    flush_secs: Option<u64>,
}

/// Which bridged calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordPolicy {
    #[default]
    None,
    All,
    /// This share of calls, drawn at random per call.
    Percent(u8),
}

impl RecordPolicy {
    fn parse(v: &toml::Value) -> Result<RecordPolicy, String> {
        match v {
            toml::Value::String(s) if s == "all" => Ok(RecordPolicy::All),
            toml::Value::String(s) if s == "none" => Ok(RecordPolicy::None),
            toml::Value::Integer(n) if (0..=100).contains(n) => Ok(RecordPolicy::Percent(*n as u8)),
            other => Err(format!(
                "`{other}` is not \"all\", \"none\" or a percentage 0-100"
            )),
        }
    }

    /// Whether this call is recorded.
    pub fn draw(self) -> bool {
        match self {
            RecordPolicy::None => false,
            RecordPolicy::All => true,
            // Uniform over 0..100 (a byte modulo 100 would favour 0-55).
            RecordPolicy::Percent(p) => rand::random::<f64>() * 100.0 < f64::from(p),
        }
    }
}

/// Recording of bridged calls (agents, bridged transfers): where, which, how long kept.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// `None`: `DATA_DIR/recordings` (following a `--data-dir` override).
    pub dir: Option<PathBuf>,
    pub flush_every: Duration,
    pub min_free_bytes: u64,
    pub retention: Option<Duration>,
    /// For calls whose queue or flow has no policy of its own.
    pub default: RecordPolicy,
    pub flows: std::collections::BTreeMap<String, RecordPolicy>,
    pub queues: std::collections::BTreeMap<String, RecordPolicy>,
}

impl RecordingConfig {
    /// The policy of a call bridged from `queue` (if any) in `flow`.
    pub fn policy(&self, queue: Option<&str>, flow: Option<&str>) -> RecordPolicy {
        queue
            .and_then(|q| self.queues.get(q))
            .or_else(|| flow.and_then(|f| self.flows.get(f)))
            .copied()
            .unwrap_or(self.default)
    }

    pub fn settings(&self, data_dir: &Path) -> crate::recording::RecordingSettings {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings"));
        let mut s = crate::recording::RecordingSettings::new(dir);
        s.flush_every = self.flush_every;
        s.min_free_bytes = self.min_free_bytes;
        s.retention = self.retention;
        s
    }
}

#[derive(Debug, Deserialize)]
struct RawConnector {
    name: String,
    kind: String,
    #[serde(flatten)]
    settings: toml::Table,
}

/// A queue as written: `id` checked here, the ACD settings by `acd::QueueConfig`.
#[derive(Debug, Deserialize)]
struct RawQueue {
    id: String,
    #[serde(flatten)]
    rest: toml::Table,
}

/// An agent as written: the registrar's password here, the ACD settings by
/// `acd::AgentConfig` (`contact` defaults to the phone registered with the engine).
#[derive(Debug, Deserialize)]
struct RawAgent {
    id: String,
    password: Option<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    data_dir: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSip {
    listen: Option<String>,
    transports: Option<Vec<String>>,
    public_address: Option<String>,
    user_agent: Option<String>,
    t1_ms: Option<u64>,
    allowed_networks: Option<Vec<String>>,
    force_rport: Option<bool>,
    max_calls: Option<usize>,
    max_calls_per_second: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRtp {
    ports: Option<String>,
    ip: Option<String>,
    timeout_secs: Option<u64>,
    workers: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrompts {
    dir: Option<String>,
    default_language: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFlows {
    dir: Option<String>,
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    number: String,
    flow: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrunk {
    name: String,
    registrar: String,
    username: String,
    password: String,
    auth_username: Option<String>,
    domain: Option<String>,
    expires: Option<u32>,
    register: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    pub listen: SocketAddr,
    pub transports: Vec<SipTransport>,
    /// Address written in Via, Contact and SDP (defaults to the listen address).
    pub public_ip: IpAddr,
    pub user_agent: String,
    pub t1: Duration,
    /// Peers the engine takes requests from and sends SIP/RTP to (empty: everyone).
    pub allowed: Acl,
    /// Answer UDP requests to their source port even without `;rport` (NAT-friendly).
    pub force_rport: bool,
    /// Calls in progress beyond which new INVITEs get 503 (overload protection).
    pub max_calls: usize,
    /// New calls per second beyond which INVITEs get 503, with a burst of one second's
    /// worth (overload protection against a flood, like FreeSWITCH's sessions-per-second);
    /// 0: no limit.
    pub max_calls_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct RtpConfig {
    pub ip: IpAddr,
    pub port_low: u16,
    pub port_high: u16,
    pub timeout: Duration,
    /// Media workers pacing the streams; 0 means one per CPU.
    pub workers: usize,
}

/// A called-number pattern selecting a flow: `*` (anything), an exact number, or a prefix
/// ending in `*` (`33*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub number: String,
    pub flow: String,
}

impl Route {
    pub fn matches(&self, called: &str) -> bool {
        match self.number.strip_suffix('*') {
            Some(prefix) => called.starts_with(prefix),
            None => self.number == called,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrunkConfig {
    pub name: String,
    /// Registrar as a SIP URI (`sip:pbx.example.com:5060`).
    pub registrar: String,
    pub username: String,
    pub auth_username: String,
    pub password: String,
    pub domain: String,
    pub expires: u32,
    pub register: bool,
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
    /// The `[ha]` section as written (validated by the binary with the `ha` crate).
    pub ha: Option<toml::Table>,
    /// Connectors for `lookup` and `action` steps.
    pub data_sources: Vec<ConnectorConfig>,
    pub actions: Vec<ConnectorConfig>,
    pub recording: RecordingConfig,
}

/// A data source or action: its kind (`sql`, `http`) and the kind's settings, which the
/// connector checks when it is built.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: String,
    pub settings: toml::Table,
    /// Key prefix for error messages (`data_sources[0]`).
    pub key: String,
}

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

        let listen_s = raw.sip.listen.as_deref().unwrap_or("127.0.0.1:5060");
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            cx.err(
                "sip.listen",
                format!("`{listen_s}` is not IP:PORT (e.g. 127.0.0.1:5060)"),
            )
        })?;
        let mut transports = Vec::new();
        for t in raw
            .sip
            .transports
            .unwrap_or_else(|| vec!["udp".into(), "tcp".into()])
        {
            transports.push(match t.to_ascii_lowercase().as_str() {
                "udp" => SipTransport::Udp,
                "tcp" => SipTransport::Tcp,
                other => {
                    return Err(cx.err(
                        "sip.transports",
                        format!("`{other}` is not a transport (udp, tcp)"),
                    ))
                }
            });
        }
        if transports.is_empty() {
            return Err(cx.err("sip.transports", "at least one transport is needed"));
        }
        let public_ip = match raw.sip.public_address.as_deref() {
            None => listen.ip(),
            Some(s) => s
                .parse()
                .map_err(|_| cx.err("sip.public_address", format!("`{s}` is not an IP address")))?,
        };
        let t1_ms = raw.sip.t1_ms.unwrap_or(500);
        if !(50..=10_000).contains(&t1_ms) {
            return Err(cx.err("sip.t1_ms", format!("{t1_ms} is outside 50..=10000")));
        }

        let mut networks = Vec::new();
        for (i, n) in raw
            .sip
            .allowed_networks
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            networks.push(Network::parse(n).ok_or_else(|| {
                cx.err(
                    &format!("sip.allowed_networks[{i}]"),
                    format!("`{n}` is not an address or ADDRESS/PREFIX"),
                )
            })?);
        }

        let ports = raw.rtp.ports.as_deref().unwrap_or("20000-29999");
        let (port_low, port_high) = parse_port_range(ports).ok_or_else(|| {
            cx.err("rtp.ports", format!("`{ports}` is not LOW-HIGH with 1024 <= LOW < HIGH <= 65535 and room for two RTP/RTCP pairs"))
        })?;
        let rtp_ip = match raw.rtp.ip.as_deref() {
            None => listen.ip(),
            Some(s) => s
                .parse()
                .map_err(|_| cx.err("rtp.ip", format!("`{s}` is not an IP address")))?,
        };
        let timeout_secs = raw.rtp.timeout_secs.unwrap_or(30);
        if !(1..=3600).contains(&timeout_secs) {
            return Err(cx.err(
                "rtp.timeout_secs",
                format!("{timeout_secs} is outside 1..=3600"),
            ));
        }

        let default_language = raw.prompts.default_language.unwrap_or_else(|| "en".into());
        if default_language.is_empty()
            || !default_language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(cx.err(
                "prompts.default_language",
                format!("`{default_language}` is not a language tag"),
            ));
        }
        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            if r.number.is_empty() || r.number[..r.number.len().saturating_sub(1)].contains('*') {
                return Err(cx.err(
                    &format!("routes[{i}].number"),
                    format!(
                        "`{}` must be `*`, a number or a prefix ending in `*`",
                        r.number
                    ),
                ));
            }
            routes.push(Route {
                number: r.number,
                flow: r.flow,
            });
        }
        let default_flow = raw.flows.default.unwrap_or_else(|| "demo".into());

        let mut trunks = Vec::new();
        for (i, t) in raw.trunks.into_iter().enumerate() {
            let key = |k: &str| format!("trunks[{i}].{k}");
            if !t.registrar.starts_with("sip:") && !t.registrar.starts_with("sips:") {
                return Err(cx.err(
                    &key("registrar"),
                    format!("`{}` is not a sip: URI", t.registrar),
                ));
            }
            if t.username.is_empty() {
                return Err(cx.err(&key("username"), "must not be empty"));
            }
            let expires = t.expires.unwrap_or(3600);
            if !(60..=86_400).contains(&expires) {
                return Err(cx.err(
                    &key("expires"),
                    format!("{expires} is outside 60..=86400 seconds"),
                ));
            }
            let domain = t.domain.unwrap_or_else(|| {
                let rest = t
                    .registrar
                    .trim_start_matches("sips:")
                    .trim_start_matches("sip:");
                rest.split([';', '?']).next().unwrap_or(rest).to_string()
            });
            trunks.push(TrunkConfig {
                auth_username: t.auth_username.unwrap_or_else(|| t.username.clone()),
                name: t.name,
                registrar: t.registrar,
                username: t.username,
                password: t.password,
                domain,
                expires,
                register: t.register.unwrap_or(true),
            });
        }

        let mut queues = Vec::new();
        let mut record_queues = std::collections::BTreeMap::new();
        let mut acd = crate::acd::AcdConfig::default();
        for (i, q) in raw.queues.into_iter().enumerate() {
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
                let policy = RecordPolicy::parse(&v)
                    .map_err(|e| cx.err(&format!("queues[{i}].record"), e))?;
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
        let mut agent_passwords = std::collections::BTreeMap::new();
        for (i, a) in raw.agents.into_iter().enumerate() {
            let mut table = a.rest;
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
            if let Some(p) = a.password {
                if p.len() < 4 {
                    return Err(cx.err(
                        &format!("agents[{i}].password"),
                        "is shorter than 4 characters",
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

        let data_dir = cx.path(raw.node.data_dir.as_deref().unwrap_or("svi-data"));
        let rec = raw.recording;
        let mut record_flows = std::collections::BTreeMap::new();
        for (flow, v) in &rec.flows {
            let policy = RecordPolicy::parse(v)
                .map_err(|e| cx.err(&format!("recording.flows.{flow}"), e))?;
            record_flows.insert(flow.clone(), policy);
        }
        let recording = RecordingConfig {
            dir: rec.dir.as_deref().map(|d| cx.path(d)),
            flush_every: match rec.flush_secs {
                Some(0) | Some(61..) => {
                    return Err(cx.err("recording.flush_secs", "must be 1 to 60 seconds"))
                }
                Some(n) => Duration::from_secs(n),
                None => crate::recording::RecordingSettings::DEFAULT_FLUSH_EVERY,
            },
            min_free_bytes: rec
                .min_free_mb
                .map(|mb| mb.saturating_mul(1 << 20))
                .unwrap_or(crate::recording::RecordingSettings::DEFAULT_MIN_FREE_BYTES),
            retention: match rec.retention_days {
                Some(0) => return Err(cx.err("recording.retention_days", "must be at least 1")),
                Some(d) => Some(Duration::from_secs(d.saturating_mul(86_400))),
                None => None,
            },
            default: match &rec.default {
                Some(v) => RecordPolicy::parse(v).map_err(|e| cx.err("recording.default", e))?,
                None => RecordPolicy::None,
            },
            flows: record_flows,
            queues: record_queues,
        };

        Ok(EngineConfig {
            file: file.to_path_buf(),
            node_name: raw.node.name.unwrap_or_else(|| "svi".into()),
            data_dir,
            sip: SipConfig {
                listen,
                transports,
                public_ip,
                user_agent: raw
                    .sip
                    .user_agent
                    .unwrap_or_else(|| format!("svi/{}", env!("CARGO_PKG_VERSION"))),
                t1: Duration::from_millis(t1_ms),
                allowed: Acl::new(networks),
                force_rport: raw.sip.force_rport.unwrap_or(true),
                max_calls: raw.sip.max_calls.unwrap_or(1000),
                max_calls_per_second: raw.sip.max_calls_per_second.unwrap_or(300),
            },
            rtp: RtpConfig {
                ip: rtp_ip,
                port_low,
                port_high,
                timeout: Duration::from_secs(timeout_secs),
                workers: raw.rtp.workers.unwrap_or(0),
            },
            prompts_dir: cx.path(raw.prompts.dir.as_deref().unwrap_or("prompts")),
            default_language,
            flows_dir: cx.path(raw.flows.dir.as_deref().unwrap_or("flows")),
            routes,
            default_flow,
            trunks,
            queues,
            acd,
            agent_passwords,
            ha: raw.ha,
            data_sources: connectors(&cx, "data_sources", raw.data_sources)?,
            actions: connectors(&cx, "actions", raw.actions)?,
            recording,
        })
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

fn connectors(
    cx: &Ctx<'_>,
    table: &str,
    raw: Vec<RawConnector>,
) -> Result<Vec<ConnectorConfig>, ConfigError> {
    let mut out: Vec<ConnectorConfig> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let key = format!("{table}[{i}]");
        if c.name.is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(cx.err(
                &format!("{key}.name"),
                format!("`{}` must be letters, digits, `_` or `-`", c.name),
            ));
        }
        if out.iter().any(|o| o.name == c.name) {
            return Err(cx.err(
                &format!("{key}.name"),
                format!("`{}` is defined twice", c.name),
            ));
        }
        if !matches!(c.kind.as_str(), "sql" | "http") {
            return Err(cx.err(
                &format!("{key}.kind"),
                format!("`{}` is not a connector kind (sql, http)", c.kind),
            ));
        }
        let mut settings = c.settings;
        // Paths in settings are relative to the configuration file, like every path here.
        for path_key in ["database", "init_sql"] {
            if let Some(toml::Value::String(p)) = settings.get(path_key) {
                let resolved = cx.path(p).to_string_lossy().into_owned();
                settings.insert(path_key.to_string(), toml::Value::String(resolved));
            }
        }
        out.push(ConnectorConfig {
            name: c.name,
            kind: c.kind,
            settings,
            key,
        });
    }
    Ok(out)
}

/// The `contact` of an agent whose phone registers with the engine (the default).
pub const REGISTERED: &str = "registered";

/// `LOW-HIGH`, both within 1024..=65535, with room for at least two RTP/RTCP pairs.
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (low, high): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (low >= 1024 && high > low && high - low >= 3).then_some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EngineConfig, ConfigError> {
        EngineConfig::parse(text, Path::new("t.toml"), Path::new("/base"))
    }

    #[test]
    fn defaults() {
        let c = parse("").expect("empty config is valid");
        assert_eq!(
            c.sip.listen,
            "127.0.0.1:5060".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!((c.rtp.port_low, c.rtp.port_high), (20000, 29999));
        assert_eq!(c.data_dir, PathBuf::from("/base/svi-data"));
        assert_eq!(c.flow_for("123"), "demo");
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("[sip]\nlisten = \"5060\"\n")
            .expect_err("bad listen")
            .to_string();
        assert_eq!(
            e,
            "t.toml: sip.listen: `5060` is not IP:PORT (e.g. 127.0.0.1:5060)"
        );
        let e = parse("[rtp]\nports = \"30000-20000\"\n")
            .expect_err("bad range")
            .to_string();
        assert!(e.starts_with("t.toml: rtp.ports: `30000-20000`"), "{e}");
        let e = parse("[sip]\nlisen = \"x\"\n")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("t.toml") && e.contains("lisen"), "{e}");
        let e = parse("[[trunks]]\nname='a'\nregistrar='pbx'\nusername='u'\npassword='p'\n")
            .expect_err("trunk")
            .to_string();
        assert!(e.contains("trunks[0].registrar"), "{e}");
    }

    #[test]
    fn routes_pick_flows() {
        let c = parse("[[routes]]\nnumber = \"33*\"\nflow = \"fr\"\n[[routes]]\nnumber = \"100\"\nflow = \"hundred\"\n").expect("routes");
        assert_eq!(c.flow_for("3312"), "fr");
        assert_eq!(c.flow_for("100"), "hundred");
        assert_eq!(c.flow_for("200"), "demo");
    }
}
