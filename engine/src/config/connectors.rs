//! `[[data_sources]]` and `[[actions]]`: the connectors of `lookup` and `action` steps. Only
//! the name and kind are checked here; each kind checks its settings when it is built.

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize)]
pub(super) struct RawConnector {
    name: String,
    kind: String,
    #[serde(flatten)]
    settings: toml::Table,
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

pub(super) fn parse(
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
