//! The live flow set, kept equal to the active versions, and the flows directory as the
//! authoring source.
//!
//! At start the set is the active versions of the database, compiled here, plus, for a
//! flow the database does not know yet, its file (a first start, or a standby before its
//! first log entries): the engine can check its routes and take calls at once. Then:
//! - each change of the active versions on this node (the active node's own write, or the
//!   log applied on a standby) recompiles what changed and publishes the new set;
//! - every `period`, the flows directory is read; a file whose content is not an installed
//!   version yet (at start), or that changed since (while running), is installed and
//!   activated, but only on the node that takes calls. A standby keeps such a change
//!   pending and installs it if it becomes active (it never serves its own files).
//!
//! A version that does not compile here (this node lacks a prompt the other has) is refused
//! with an error line and the previous version stays live.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ivr_scripts::CheckContext;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::store::{ActiveFlow, FlowStore, FlowStoreError, FlowVersion, Installed, ACTIVE};
use super::{flow_files, load_dir, load_file, FlowLoadError, FlowSet, LoadedFlow};
use crate::storage::{DocChanges, Storage};

/// The flows of a running engine: the live set calls read, and the versions behind it.
#[derive(Clone)]
pub struct FlowSync {
    set: watch::Receiver<Arc<FlowSet>>,
    store: FlowStore,
    ctx: Arc<CheckContext>,
}

impl FlowSync {
    /// The live set (calls take a flow from it when they start).
    pub fn set(&self) -> watch::Receiver<Arc<FlowSet>> {
        self.set.clone()
    }

    pub fn store(&self) -> &FlowStore {
        &self.store
    }

    /// Checks `source` against this engine (prompts, queues, connectors) and installs it;
    /// with `activate`, new calls run it once this returns.
    pub async fn install(
        &self,
        source: &str,
        file: &Path,
        activate: bool,
    ) -> Result<Installed, FlowStoreError> {
        self.store.install(source, file, &self.ctx, activate).await
    }

    pub async fn activate(&self, name: &str, version: &str) -> Result<ActiveFlow, FlowStoreError> {
        self.store.activate(name, version).await
    }

    /// Compiles `source` against this engine, as an install would, without installing it.
    pub fn compile(&self, source: &str, file: &Path) -> Result<LoadedFlow, FlowStoreError> {
        super::compile_source(source, file, &self.ctx).map_err(|diagnostics| {
            FlowStoreError::Invalid {
                rendered: super::render(&diagnostics, source),
                diagnostics,
            }
        })
    }

    pub async fn rollback(&self, name: &str) -> Result<ActiveFlow, FlowStoreError> {
        self.store.rollback(name).await
    }

    pub async fn versions(&self, name: Option<&str>) -> Result<Vec<FlowVersion>, FlowStoreError> {
        self.store.versions(name).await
    }

    pub async fn active(&self) -> Result<Vec<ActiveFlow>, FlowStoreError> {
        self.store.active().await
    }
}

/// Loads the live set and starts the task that keeps it current. Any invalid file in `dir`
/// refuses the start, as it always has: a directory is fixed before the engine runs on it.
pub async fn start(
    dir: PathBuf,
    ctx: CheckContext,
    storage: &Storage,
    store: FlowStore,
    period: Duration,
) -> Result<(FlowSync, JoinHandle<()>), FlowLoadError> {
    let files = load_dir(&dir, &ctx)?;
    let changes = storage.watch_docs(&[ACTIVE]);
    let mut task = SyncTask {
        dir,
        ctx: Arc::new(ctx),
        store: store.clone(),
        compiled: HashMap::new(),
        provisional: HashMap::new(),
        seen: HashMap::new(),
        pending: BTreeMap::new(),
        first_scan: true,
    };
    for f in files {
        let name = f.loaded.flow.name().to_string();
        task.provisional.insert(name, Arc::new(f.loaded));
    }
    let (tx, set) = watch::channel(Arc::new(task.build_set().await));
    let sync = FlowSync {
        set,
        store,
        ctx: task.ctx.clone(),
    };
    let handle = tokio::spawn(task.run(tx, changes, period));
    Ok((sync, handle))
}

/// A file to install and activate.
struct Pending {
    source: String,
    /// Found by the first scan: installed only if its content never was (a restart does
    /// not undo an operator's rollback). A file changed while running is always activated.
    only_if_new: bool,
}

/// What the task knows of a file of the directory.
struct Seen {
    modified: Option<SystemTime>,
    version: Option<String>,
}

struct SyncTask {
    dir: PathBuf,
    ctx: Arc<CheckContext>,
    store: FlowStore,
    /// Active versions compiled on this node, by flow name.
    compiled: HashMap<String, Arc<LoadedFlow>>,
    /// Flows the database has no active version of yet, from their files.
    provisional: HashMap<String, Arc<LoadedFlow>>,
    seen: HashMap<PathBuf, Seen>,
    /// Files to install, waiting for this node to be the active one.
    pending: BTreeMap<PathBuf, Pending>,
    first_scan: bool,
}

impl SyncTask {
    async fn run(
        mut self,
        tx: watch::Sender<Arc<FlowSet>>,
        mut changes: DocChanges,
        period: Duration,
    ) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = ticker.tick() => {
                    self.scan_dir();
                    self.install_pending().await;
                }
            }
            if tx.is_closed() {
                return;
            }
            let next = self.build_set().await;
            let unchanged = {
                let current = tx.borrow();
                versions(&current) == versions(&next)
            };
            if !unchanged {
                tx.send_replace(Arc::new(next));
            }
        }
    }

    /// The live set: every active version (compiled once per version), then the
    /// provisional flows the database does not have.
    async fn build_set(&mut self) -> FlowSet {
        match self.store.active().await {
            Ok(active) => {
                for a in active {
                    if self
                        .compiled
                        .get(&a.name)
                        .is_some_and(|c| c.version == a.version)
                    {
                        continue;
                    }
                    if let Some(loaded) = self.compile_version(&a).await {
                        let live = self.compiled.get(&a.name).or(self.provisional.get(&a.name));
                        if live.is_some_and(|l| l.version != a.version) {
                            tracing::info!(flow = %a.name, version = %a.version, "flow reloaded; new calls use this version");
                        }
                        self.provisional.remove(&a.name);
                        self.compiled.insert(a.name.clone(), loaded);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "active flow versions unreadable; the live flows stay as they are")
            }
        }
        let mut by_name = self.provisional.clone();
        by_name.extend(self.compiled.iter().map(|(k, v)| (k.clone(), v.clone())));
        FlowSet::from_map(by_name)
    }

    async fn compile_version(&self, active: &ActiveFlow) -> Option<Arc<LoadedFlow>> {
        let stored = match self.store.version(&active.name, &active.version).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::error!(flow = %active.name, version = %active.version, "the active flow version is not installed on this node; the previous one stays live");
                return None;
            }
            Err(e) => {
                tracing::error!(flow = %active.name, error = %e, "flow version unreadable; the previous one stays live");
                return None;
            }
        };
        match super::compile_source(&stored.source, Path::new(&stored.file), &self.ctx) {
            Ok(loaded) => Some(Arc::new(loaded)),
            Err(diags) => {
                tracing::error!(flow = %active.name, version = %active.version, "the active flow version does not compile on this node; the previous one stays live:\n{}", super::render(&diags, &stored.source));
                None
            }
        }
    }

    /// Reads the files that are new or changed since the last scan; valid ones become
    /// pending installs. At the first scan, a file is pending only if its content was never
    /// installed (an operator's rollback is not undone by a restart).
    fn scan_dir(&mut self) {
        let Ok(files) = flow_files(&self.dir) else {
            return;
        };
        let first = std::mem::replace(&mut self.first_scan, false);
        for file in files {
            let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
            if self.seen.get(&file).is_some_and(|s| s.modified == modified) {
                continue;
            }
            let before = self.seen.get(&file).and_then(|s| s.version.clone());
            match load_file(&file, &self.ctx) {
                Ok(f) => {
                    let version = f.loaded.version.clone();
                    if first || before.as_deref() != Some(version.as_str()) {
                        let pending = Pending {
                            source: f.source,
                            only_if_new: first,
                        };
                        self.pending.insert(file.clone(), pending);
                    }
                    self.seen.insert(
                        file,
                        Seen {
                            modified,
                            version: Some(version),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), "flow reload refused, the previous version stays live:\n{e}");
                    // Remember the bad file's time so the same error is not logged every tick.
                    self.seen.insert(
                        file,
                        Seen {
                            modified,
                            version: before,
                        },
                    );
                }
            }
        }
    }

    /// Installs and activates the pending files, on the node that takes calls.
    async fn install_pending(&mut self) {
        for (file, pending) in std::mem::take(&mut self.pending) {
            if pending.only_if_new && self.installed_before(&pending.source, &file).await {
                continue;
            }
            match self
                .store
                .install(&pending.source, &file, &self.ctx, true)
                .await
            {
                Ok(i) => {
                    tracing::info!(flow = %i.name, version = %i.version, file = %file.display(), "flow file installed and activated")
                }
                Err(FlowStoreError::NotActive) => {
                    self.pending.insert(file, pending);
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "flow file not installed; will retry");
                    self.pending.insert(file, pending);
                }
            }
        }
    }

    /// Whether this source is an installed version already.
    async fn installed_before(&self, source: &str, file: &Path) -> bool {
        let Ok(loaded) = super::compile_source(source, file, &self.ctx) else {
            return false;
        };
        matches!(
            self.store
                .version(loaded.flow.name(), &loaded.version)
                .await,
            Ok(Some(_))
        )
    }
}

fn versions(set: &FlowSet) -> BTreeMap<String, String> {
    set.iter()
        .map(|f| (f.flow.name().to_string(), f.version.clone()))
        .collect()
}
