//! `[[data_sources]]` and `[[actions]]`: the connectors of `lookup` and `action` steps, and
//! `[[connections]]`, the backends they share. Only the name is checked here; the registry
//! of kinds checks the kind, and each kind its settings, when the connector is built.

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize)]
pub(super) struct RawConnector {
    name: String,
    kind: String,
    #[serde(flatten)]
    settings: toml::Table,
}

/// A data source, action or connection: its kind and the kind's settings, which the
/// connector checks when it is built. `Debug` redacts secret settings, so that a dump of
/// the configuration shows none.
#[derive(Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: String,
    pub settings: toml::Table,
    /// Key prefix for error messages (`data_sources[0]`).
    pub key: String,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: std::collections::BTreeMap<&str, String> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let secret = matches!(k.as_str(), "password" | "api_key" | "headers")
                    || k.contains("secret")
                    || v.as_str().is_some_and(crate::secrets::is_encrypted);
                (
                    k.as_str(),
                    if secret {
                        "***".to_string()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect();
        f.debug_struct("ConnectorConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &settings)
            .field("key", &self.key)
            .finish()
    }
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
        let mut settings = c.settings;
        // Paths in settings are relative to the configuration file, like every path here.
        for path_key in ["database", "init_sql", "ca", "client_cert"] {
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
