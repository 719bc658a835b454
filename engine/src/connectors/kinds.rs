//! Connector kinds as a registry: each configuration kind (`sql`, `http`, `access_control`,
//! `helpdesk`, or a plug-in's) is a [`ConnectorKind`] registered by name in [`Kinds`]. The
//! engine starts with [`Kinds::builtin`]; an embedder (the `svi` binary, a test) registers
//! its own before `Engine::start_with_kinds`, and `[[data_sources]]`/`[[actions]]` entries
//! of that `kind` are then built by it. Nothing else in the engine lists the kinds.
//!
//! A kind builds one connector from its configuration entry, with a [`BuildContext`] that
//! gives what kinds share: the role, `${VAR}` and `enc:v1:` secrets, the named
//! `[[connections]]`, and the audit log.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use super::connections::Connections;
use super::settings::Settings;
use super::{Connector, ConnectorError, EnvLookup, Role};
use crate::audit::AuditLog;
use crate::config::ConnectorConfig;
use crate::secrets::{Secret, SecretKey};

/// What [`ConnectorKind::build`] returns.
pub type BuildFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Connector>, ConnectorError>> + Send + 'a>>;

/// A configuration kind: builds connectors from `[[data_sources]]` / `[[actions]]` entries.
pub trait ConnectorKind: Send + Sync {
    /// The `kind = "..."` this builds.
    fn name(&self) -> &'static str;
    /// Checks the entry's settings (with [`Settings`], so that unknown keys are refused and
    /// errors name their key) and builds the connector.
    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, cx: &'a BuildContext<'a>) -> BuildFuture<'a>;
}

/// The kinds an engine knows, by name.
#[derive(Clone, Default)]
pub struct Kinds {
    by_name: BTreeMap<&'static str, Arc<dyn ConnectorKind>>,
}

impl Kinds {
    /// `sql`, `http`, `access_control` and `helpdesk`.
    pub fn builtin() -> Kinds {
        let mut k = Kinds::default();
        for kind in [
            Arc::new(super::sql::SqlKind) as Arc<dyn ConnectorKind>,
            Arc::new(super::http::HttpKind),
            Arc::new(super::access_control::AccessControlKind),
            Arc::new(super::helpdesk::HelpdeskKind),
        ] {
            k.by_name.insert(kind.name(), kind);
        }
        k
    }

    /// Adds a plug-in's kind; a name already taken is refused.
    pub fn register(&mut self, kind: Arc<dyn ConnectorKind>) -> Result<(), ConnectorError> {
        if self.by_name.contains_key(kind.name()) {
            return Err(ConnectorError::DuplicateKind(kind.name().to_string()));
        }
        self.by_name.insert(kind.name(), kind);
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }

    pub(super) fn get(&self, name: &str) -> Option<&Arc<dyn ConnectorKind>> {
        self.by_name.get(name)
    }
}

/// What a kind may use while building a connector.
pub struct BuildContext<'a> {
    pub role: Role,
    pub connections: &'a Connections,
    pub secrets: &'a Secrets<'a>,
    /// Where connectors that must audit (opening a door) write; `None` in tools that only
    /// check a configuration.
    pub audit: Option<AuditLog>,
}

/// Where secret settings come from: `${VAR}` from the environment, `enc:v1:` values with
/// the data directory's key (read once, when the first encrypted value needs it).
pub struct Secrets<'a> {
    pub env: EnvLookup<'a>,
    data_dir: PathBuf,
    key: OnceLock<Result<SecretKey, String>>,
}

impl<'a> Secrets<'a> {
    pub fn new(env: EnvLookup<'a>, data_dir: PathBuf) -> Secrets<'a> {
        Secrets {
            env,
            data_dir,
            key: OnceLock::new(),
        }
    }

    /// The secret setting `key` of `s`: `enc:v1:...` or `${VAR}`. A plain value is refused:
    /// a password in clear in the configuration file is what this scheme exists to avoid.
    pub fn get(&self, s: &Settings<'_>, key: &str) -> Result<Option<Secret>, ConnectorError> {
        let Some(text) = s.string(key)? else {
            return Ok(None);
        };
        self.resolve(s, key, text).map(Some)
    }

    /// Resolves one secret text found at `key` of `s`.
    pub fn resolve(
        &self,
        s: &Settings<'_>,
        key: &str,
        text: &str,
    ) -> Result<Secret, ConnectorError> {
        if crate::secrets::is_encrypted(text) {
            let sk = self
                .key
                .get_or_init(|| SecretKey::load(&self.data_dir).map_err(|e| e.to_string()))
                .as_ref()
                .map_err(|e| s.err(key, e.clone()))?;
            return sk.decrypt(text).map_err(|e| s.err(key, e.to_string()));
        }
        if text.starts_with("${") && text.ends_with('}') {
            let value = super::template::expand_env(text, self.env).map_err(|p| s.err(key, p))?;
            return Ok(Secret::new(value));
        }
        Err(s.err(
            key,
            "is a secret: write it encrypted (`svi secret encrypt`, an `enc:v1:` value) or as `${VARIABLE}`, not in clear",
        ))
    }
}
