//! `[recording]`: where bridged calls are recorded, which ones, and for how long.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecording {
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
    pub(super) fn parse(v: &toml::Value) -> Result<RecordPolicy, String> {
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

/// `[recording]`; the queues' own policies (`queues[].record`) come from the ACD section.
pub(super) fn parse(
    cx: &Ctx<'_>,
    rec: RawRecording,
    queues: std::collections::BTreeMap<String, RecordPolicy>,
) -> Result<RecordingConfig, ConfigError> {
    let mut flows = std::collections::BTreeMap::new();
    for (flow, v) in &rec.flows {
        let policy =
            RecordPolicy::parse(v).map_err(|e| cx.err(&format!("recording.flows.{flow}"), e))?;
        flows.insert(flow.clone(), policy);
    }
    Ok(RecordingConfig {
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
        flows,
        queues,
    })
}
