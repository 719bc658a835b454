//! Flows, as the control surface sees them: the loaded flows' names, and the replicated,
//! versioned flow store behind them (install a version, list versions and the active one,
//! activate a version, roll back). Installing and activating are commands in the raft log
//! (`crate::flows::store`), so every node serves the same active version; they are served
//! by the active node only, while any node lists what it holds.
//!
//! `svi flow install|list|activate|rollback` reach these through the control socket.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EngineHandle, HandleError, Missing, Part};
use crate::flows::{ActiveFlow, FlowStoreError, FlowVersion, Installed};

/// The largest flow source accepted (a flow is a few kilobytes of YAML).
pub const MAX_FLOW_SOURCE: usize = 512 * 1024;

/// A flow and its installed versions, as `svi flow list` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowListing {
    pub name: String,
    /// The version new calls run (none: installed, never activated).
    pub active: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    /// What a rollback would activate.
    pub rollback_to: Option<String>,
    /// Oldest first.
    pub versions: Vec<FlowVersionInfo>,
}

/// One installed version, without its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowVersionInfo {
    pub version: String,
    /// The file it was installed from, on the node that installed it.
    pub file: String,
    pub installed_at: DateTime<Utc>,
    pub active: bool,
}

/// What a simulated call is given.
#[derive(Debug, Clone)]
pub struct FlowSimulation {
    /// Digits keyed at each menu or collect, as `svi simulate --input` takes them
    /// (`"1 2 #"`; `-` or a missing token: no input).
    pub inputs: String,
    /// The virtual start time (business hours depend on it).
    pub at: DateTime<Utc>,
    pub caller: String,
    pub called: String,
    pub language: Option<String>,
    /// Canned lookup, action, queue and transfer outcomes (`svi simulate --stubs`, as JSON).
    pub stubs: Option<serde_json::Value>,
}

/// A simulated call: which version ran, and its transcript.
#[derive(Debug)]
pub struct Simulated {
    pub name: String,
    pub version: String,
    pub transcript: ivr_scripts::cli::Transcript,
}

impl EngineHandle {
    /// The names of the loaded flows, sorted.
    pub fn flow_names(&self) -> Result<Vec<String>, HandleError> {
        let mut v: Vec<String> = self
            .engine()?
            .flows
            .borrow()
            .names()
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    /// Every flow this node holds, by name, with its versions and the active one.
    pub async fn flow_list(&self) -> Result<Vec<FlowListing>, HandleError> {
        let sync = &self.engine()?.flow_sync;
        let versions = self.flow_result(sync.versions(None).await).await?;
        let active = self.flow_result(sync.active().await).await?;
        let mut flows: BTreeMap<String, FlowListing> = BTreeMap::new();
        for a in active {
            flows.insert(
                a.name.clone(),
                FlowListing {
                    name: a.name,
                    active: Some(a.version),
                    activated_at: Some(a.activated_at),
                    rollback_to: a.previous.last().cloned(),
                    versions: Vec::new(),
                },
            );
        }
        for v in versions {
            let listing = flows.entry(v.name.clone()).or_insert_with(|| FlowListing {
                name: v.name.clone(),
                active: None,
                activated_at: None,
                rollback_to: None,
                versions: Vec::new(),
            });
            let active = listing.active.as_deref() == Some(v.version.as_str());
            listing.versions.push(FlowVersionInfo {
                version: v.version,
                file: v.file,
                installed_at: v.installed_at,
                active,
            });
        }
        Ok(flows.into_values().collect())
    }

    /// One installed version of a flow, with its source.
    pub async fn flow_source(&self, name: &str, version: &str) -> Result<FlowVersion, HandleError> {
        let sync = &self.engine()?.flow_sync;
        match self
            .flow_result(sync.store().version(name, version).await)
            .await?
        {
            Some(v) => Ok(v),
            None => Err(HandleError::NotFound {
                what: Missing::FlowVersion,
                id: format!("{name} {version}"),
            }),
        }
    }

    /// Runs a flow in virtual time without telephony, as `svi simulate` does: the version
    /// new calls run (`version` `None`), or an installed one; see [`FlowSimulation`].
    pub async fn flow_simulate(
        &self,
        name: &str,
        version: Option<&str>,
        sim: FlowSimulation,
    ) -> Result<Simulated, HandleError> {
        let sync = &self.engine()?.flow_sync;
        let loaded = match version {
            None => {
                let live = sync.set();
                let found = live.borrow().get(name);
                found.ok_or_else(|| HandleError::NotFound {
                    what: Missing::Flow,
                    id: name.to_string(),
                })?
            }
            Some(v) => {
                let stored = self.flow_source(name, v).await?;
                let file = Path::new(&stored.file);
                Arc::new(self.flow_result(sync.compile(&stored.source, file)).await?)
            }
        };
        let stubs = match &sim.stubs {
            Some(v) => {
                ivr_scripts::cli::Stubs::from_json(v).map_err(|reason| HandleError::BadRequest {
                    reason: format!("stubs: {reason}"),
                })?
            }
            None => ivr_scripts::cli::Stubs::default(),
        };
        let call = ivr_scripts::interp::CallInfo {
            caller: sim.caller.as_str().into(),
            called: sim.called.as_str().into(),
            call_id: "simulated".into(),
            language: sim.language,
        };
        let inputs = ivr_scripts::cli::parse_inputs(&sim.inputs);
        let transcript =
            ivr_scripts::cli::run_simulation(loaded.flow.clone(), call, sim.at, &inputs, &stubs);
        Ok(Simulated {
            name: name.to_string(),
            version: loaded.version.clone(),
            transcript,
        })
    }

    /// Checks `source` against this engine (prompts, queues, connectors) and installs it as
    /// a version of the flow it names; with `activate`, new calls run it once this returns.
    /// An invalid flow is refused with its diagnostics ([`HandleError::InvalidFlow`]).
    pub async fn flow_install(
        &self,
        source: &str,
        file: &Path,
        activate: bool,
    ) -> Result<Installed, HandleError> {
        if source.len() > MAX_FLOW_SOURCE {
            return Err(HandleError::BadRequest {
                reason: format!(
                    "{}: {} bytes, a flow may have at most {MAX_FLOW_SOURCE}",
                    file.display(),
                    source.len()
                ),
            });
        }
        let sync = &self.engine()?.flow_sync;
        self.flow_result(sync.install(source, file, activate).await)
            .await
    }

    /// Makes an installed version the one new calls run.
    pub async fn flow_activate(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ActiveFlow, HandleError> {
        let sync = &self.engine()?.flow_sync;
        self.flow_result(sync.activate(name, version).await).await
    }

    /// Activates the version that was active before the current one.
    pub async fn flow_rollback(&self, name: &str) -> Result<ActiveFlow, HandleError> {
        let sync = &self.engine()?.flow_sync;
        self.flow_result(sync.rollback(name).await).await
    }

    /// The store's error as the control surface says it; a write on a node that does not
    /// serve names this node's role and the leader (from HA).
    async fn flow_result<T>(&self, r: Result<T, FlowStoreError>) -> Result<T, HandleError> {
        let e = match r {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        Err(match e {
            FlowStoreError::Invalid {
                diagnostics,
                rendered,
            } => HandleError::InvalidFlow {
                diagnostics,
                rendered,
            },
            FlowStoreError::UnknownFlow(name) => HandleError::NotFound {
                what: Missing::Flow,
                id: name,
            },
            FlowStoreError::UnknownVersion { name, version } => HandleError::NotFound {
                what: Missing::FlowVersion,
                id: format!("{name} {version}"),
            },
            e @ FlowStoreError::NoPrevious(_) => HandleError::Refused {
                reason: e.to_string(),
            },
            FlowStoreError::NotActive => match self.ha_status().await {
                Ok(s) => HandleError::NotActive {
                    role: s.role,
                    leader: s.leader,
                },
                Err(_) => HandleError::Refused {
                    reason: FlowStoreError::NotActive.to_string(),
                },
            },
            e @ (FlowStoreError::Storage(_) | FlowStoreError::Corrupt { .. }) => {
                HandleError::unavailable(Part::Storage, e)
            }
            e @ (FlowStoreError::Write(_) | FlowStoreError::NotApplied(_)) => {
                let part = if self.inner.ha.is_some() {
                    Part::Ha
                } else {
                    Part::Storage
                };
                HandleError::unavailable(part, e)
            }
        })
    }
}
