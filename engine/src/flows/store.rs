//! Flow versions as replicated data.
//!
//! Two collections of the replicated documents (`Storage::put_doc`, applied on every node
//! from the raft log):
//! - `flow_versions`, key `NAME/VERSION`: a version's YAML source, where it came from and
//!   when it was installed. A version is named by its content (`flows::version_of`), so
//!   installing the same source twice is one version.
//! - `flow_active`, key `NAME`: the version that new calls of that flow run, and the versions
//!   active before it (for rollback).
//!
//! Writes go through the engine's `RecordWriter` (the raft log with HA, the database alone
//! without) and only on the node that takes calls, so a standby never diverges: it learns
//! every change from the log. A write returns once this node has applied it, so the caller
//! can read its own change (`svi flow install` then `svi flow list`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_scripts::{CheckContext, Diagnostic};
use serde::{Deserialize, Serialize};

use crate::replication::{RecordWriter, Serving};
use crate::storage::{Storage, StorageError};

pub const VERSIONS: &str = "flow_versions";
pub const ACTIVE: &str = "flow_active";

/// Earlier active versions kept for rollback, per flow.
const HISTORY: usize = 20;

/// How long a write may take to be applied here before the caller is told.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// One installed version of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowVersion {
    pub name: String,
    pub version: String,
    /// The YAML source, as installed.
    pub source: String,
    /// The file it was installed from (its path on the installing node).
    pub file: String,
    pub installed_at: DateTime<Utc>,
}

/// The version of a flow that new calls run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFlow {
    pub name: String,
    pub version: String,
    pub activated_at: DateTime<Utc>,
    /// Versions active before this one, oldest first (rollback takes the last).
    #[serde(default)]
    pub previous: Vec<String>,
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
    /// False when this exact source was installed before.
    pub new: bool,
    /// Whether it is the active version now.
    pub active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowStoreError {
    #[error("the flow is invalid:\n{rendered}")]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        /// The diagnostics with their source lines, as `svi check` prints them.
        rendered: String,
    },
    #[error("no flow named `{0}` is installed")]
    UnknownFlow(String),
    #[error("flow `{name}` has no installed version `{version}`")]
    UnknownVersion { name: String, version: String },
    #[error("flow `{0}` has no earlier version to roll back to")]
    NoPrevious(String),
    #[error("this node is not the active one: flows are changed on the active node")]
    NotActive,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the replicated write failed: {0}")]
    Write(String),
    #[error("stored flow document `{key}` is unreadable: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("the change was not applied on this node within {0:?}")]
    NotApplied(Duration),
}

/// Reads and writes flow versions; cheap to clone.
#[derive(Clone)]
pub struct FlowStore {
    storage: Storage,
    writer: Arc<dyn RecordWriter>,
    serving: Serving,
}

impl FlowStore {
    pub fn new(storage: Storage, writer: Arc<dyn RecordWriter>, serving: Serving) -> Self {
        FlowStore {
            storage,
            writer,
            serving,
        }
    }

    /// Every installed version (of one flow, or of all), in name and install order.
    pub async fn versions(&self, name: Option<&str>) -> Result<Vec<FlowVersion>, FlowStoreError> {
        let (from, to) = match name {
            Some(n) => (format!("{n}/"), format!("{n}0")),
            None => (String::new(), "\u{10ffff}".to_string()),
        };
        let mut versions: Vec<FlowVersion> = self
            .storage
            .docs_in_range(VERSIONS, &from, &to)
            .await?
            .into_iter()
            .map(|(key, text)| parse(&key, &text))
            .collect::<Result<_, _>>()?;
        versions.sort_by(|a, b| (&a.name, a.installed_at).cmp(&(&b.name, b.installed_at)));
        Ok(versions)
    }

    pub async fn version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<FlowVersion>, FlowStoreError> {
        let key = version_key(name, version);
        match self.storage.get_doc(VERSIONS, &key).await? {
            Some(text) => parse(&key, &text).map(Some),
            None => Ok(None),
        }
    }

    /// The active version of every flow that has one.
    pub async fn active(&self) -> Result<Vec<ActiveFlow>, FlowStoreError> {
        self.storage
            .docs_in_range(ACTIVE, "", "\u{10ffff}")
            .await?
            .into_iter()
            .map(|(key, text)| parse(&key, &text))
            .collect()
    }

    pub async fn active_of(&self, name: &str) -> Result<Option<ActiveFlow>, FlowStoreError> {
        match self.storage.get_doc(ACTIVE, name).await? {
            Some(text) => parse(name, &text).map(Some),
            None => Ok(None),
        }
    }

    /// Checks `source` against `ctx` and installs it as a version of the flow it names;
    /// with `activate`, new calls run it from now on.
    pub async fn install(
        &self,
        source: &str,
        file: &Path,
        ctx: &CheckContext,
        activate: bool,
    ) -> Result<Installed, FlowStoreError> {
        self.check_serving()?;
        let loaded = super::compile_source(source, file, ctx).map_err(|diagnostics| {
            FlowStoreError::Invalid {
                rendered: super::render(&diagnostics, source),
                diagnostics,
            }
        })?;
        let name = loaded.flow.name().to_string();
        let version = loaded.version.clone();
        let new = self.version(&name, &version).await?.is_none();
        if new {
            let doc = FlowVersion {
                name: name.clone(),
                version: version.clone(),
                source: source.to_string(),
                file: file.display().to_string(),
                installed_at: Utc::now(),
            };
            self.put(VERSIONS, version_key(&name, &version), &doc)
                .await?;
            self.wait_applied(|| async { Ok(self.version(&name, &version).await?.is_some()) })
                .await?;
            tracing::info!(flow = %name, %version, file = %file.display(), "flow version installed");
        }
        let active = if activate {
            self.activate(&name, &version).await?;
            true
        } else {
            self.active_of(&name)
                .await?
                .is_some_and(|a| a.version == version)
        };
        Ok(Installed {
            name,
            version,
            new,
            active,
        })
    }

    /// Makes an installed version the one new calls run.
    pub async fn activate(&self, name: &str, version: &str) -> Result<ActiveFlow, FlowStoreError> {
        self.check_serving()?;
        if self.version(name, version).await?.is_none() {
            return Err(if self.versions(Some(name)).await?.is_empty() {
                FlowStoreError::UnknownFlow(name.to_string())
            } else {
                FlowStoreError::UnknownVersion {
                    name: name.to_string(),
                    version: version.to_string(),
                }
            });
        }
        let current = self.active_of(name).await?;
        if let Some(c) = current.as_ref().filter(|c| c.version == version) {
            return Ok(c.clone());
        }
        let mut previous = current
            .map(|c| {
                let mut p = c.previous;
                p.push(c.version);
                p
            })
            .unwrap_or_default();
        // The chosen version leaves the history: rolling back from it never returns to it.
        previous.retain(|v| v != version);
        if previous.len() > HISTORY {
            previous.drain(..previous.len() - HISTORY);
        }
        self.set_active(ActiveFlow {
            name: name.to_string(),
            version: version.to_string(),
            activated_at: Utc::now(),
            previous,
        })
        .await
    }

    /// Activates the version that was active before the current one.
    pub async fn rollback(&self, name: &str) -> Result<ActiveFlow, FlowStoreError> {
        self.check_serving()?;
        let current = self
            .active_of(name)
            .await?
            .ok_or_else(|| FlowStoreError::UnknownFlow(name.to_string()))?;
        let mut previous = current.previous;
        let version = previous
            .pop()
            .ok_or_else(|| FlowStoreError::NoPrevious(name.to_string()))?;
        self.set_active(ActiveFlow {
            name: name.to_string(),
            version,
            activated_at: Utc::now(),
            previous,
        })
        .await
    }

    async fn set_active(&self, active: ActiveFlow) -> Result<ActiveFlow, FlowStoreError> {
        self.put(ACTIVE, active.name.clone(), &active).await?;
        self.wait_applied(|| async {
            Ok(self
                .active_of(&active.name)
                .await?
                .is_some_and(|a| a.version == active.version))
        })
        .await?;
        tracing::info!(flow = %active.name, version = %active.version, "flow version activated; new calls run it");
        Ok(active)
    }

    fn check_serving(&self) -> Result<(), FlowStoreError> {
        if self.serving.now() {
            Ok(())
        } else {
            Err(FlowStoreError::NotActive)
        }
    }

    async fn put(
        &self,
        collection: &str,
        key: String,
        doc: &impl Serialize,
    ) -> Result<(), FlowStoreError> {
        let value = serde_json::to_value(doc).map_err(|e| FlowStoreError::Write(e.to_string()))?;
        self.writer
            .put_doc(collection.to_string(), key, value)
            .await
            .map_err(|e| FlowStoreError::Write(e.to_string()))
    }

    /// Waits until `done` holds on this node's database (the write was applied here),
    /// re-checking at each change of the flow collections.
    async fn wait_applied<F, Fut>(&self, done: F) -> Result<(), FlowStoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, FlowStoreError>>,
    {
        let mut changes = self.storage.watch_docs(&[VERSIONS, ACTIVE]);
        let deadline = tokio::time::Instant::now() + APPLY_WAIT;
        loop {
            if done().await? {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(FlowStoreError::NotApplied(APPLY_WAIT)),
            }
        }
    }
}

fn version_key(name: &str, version: &str) -> String {
    format!("{name}/{version}")
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, text: &str) -> Result<T, FlowStoreError> {
    serde_json::from_str(text).map_err(|source| FlowStoreError::Corrupt {
        key: key.to_string(),
        source,
    })
}
