//! The live set of call flows: loaded and checked at start, reloaded while calls run.
//!
//! Each flow is compiled against a `CheckContext` built from what the engine really has
//! (prompt files per language, configured queues and connectors), so a flow that loads can
//! reference nothing missing. The set is published through a `watch` channel: a call takes
//! the current `Arc<LoadedFlow>` when it starts and keeps it to its end, so a reload changes
//! new calls only. An invalid new version is refused and the old one stays live.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ivr_scripts::{compile, CheckContext, Flow};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::media::PromptStore;

#[derive(Debug)]
pub struct LoadedFlow {
    pub flow: Arc<Flow>,
    pub file: PathBuf,
    /// First 12 hex digits of the SHA-256 of the source: names the version in call records.
    pub version: String,
    modified: Option<SystemTime>,
}

#[derive(Debug, Default)]
pub struct FlowSet {
    by_name: HashMap<String, Arc<LoadedFlow>>,
}

impl FlowSet {
    pub fn get(&self, name: &str) -> Option<Arc<LoadedFlow>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FlowLoadError {
    #[error("cannot read the flows directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid call flows:\n{0}")]
    Invalid(String),
    #[error("{file}: flow name `{name}` is already used by {other}")]
    Duplicate {
        file: PathBuf,
        name: String,
        other: PathBuf,
    },
    #[error("no flow named `{0}` is loaded (it is named by the configuration)")]
    Missing(String),
}

/// Prompt names per language, as the checker wants them.
pub type PromptNames = BTreeMap<String, BTreeSet<String>>;

/// The names of the prompts a store holds.
pub fn prompt_names(prompts: &PromptStore) -> PromptNames {
    prompts
        .languages()
        .map(|l| {
            (
                l.to_string(),
                prompts.names(l).map(str::to_string).collect(),
            )
        })
        .collect()
}

/// The check context of this engine: prompts on disk, configured queues and connectors.
pub fn check_context(prompts: &PromptNames, config: &crate::config::EngineConfig) -> CheckContext {
    let mut b = CheckContext::builder(config.default_language.as_str());
    for (lang, names) in prompts {
        b = b
            .language(lang.clone())
            .prompts(lang, names.iter().cloned().collect::<Vec<_>>());
    }
    for q in &config.queues {
        b = b.queue(q.clone());
    }
    for d in &config.data_sources {
        b = b.data_source(d.name.clone());
    }
    for a in &config.actions {
        b = b.action(a.name.clone());
    }
    b.build()
}

/// Flow files of a directory: `*.yaml`/`*.yml`, except flow tests (`*.test.yaml`).
fn flow_files(dir: &Path) -> Result<Vec<PathBuf>, FlowLoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FlowLoadError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.contains(".test.")
        })
        .collect();
    files.sort();
    Ok(files)
}

fn load_one(file: &Path, ctx: &CheckContext) -> Result<LoadedFlow, String> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
    match compile(&source, file, ctx) {
        Ok(flow) => {
            let digest = Sha256::digest(source.as_bytes());
            Ok(LoadedFlow {
                flow: Arc::new(flow),
                file: file.to_path_buf(),
                version: hex::encode(&digest[..6]),
                modified,
            })
        }
        Err(diags) => Err(diags
            .iter()
            .map(|d| d.render_with_source(&source))
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// Loads every flow of `dir`; any invalid flow refuses the whole start.
pub fn load_all(dir: &Path, ctx: &CheckContext) -> Result<FlowSet, FlowLoadError> {
    let mut set = FlowSet::default();
    let mut errors = Vec::new();
    for file in flow_files(dir)? {
        match load_one(&file, ctx) {
            Ok(f) => {
                let name = f.flow.name().to_string();
                if let Some(other) = set.by_name.get(&name) {
                    return Err(FlowLoadError::Duplicate {
                        file,
                        name,
                        other: other.file.clone(),
                    });
                }
                set.by_name.insert(name, Arc::new(f));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(FlowLoadError::Invalid(errors.join("\n")))
    }
}

/// Watches the flows directory and publishes each valid change. Polls file times every
/// `period` (no platform watcher: the same behaviour everywhere, and cheap for a few files).
pub async fn watch_dir(
    dir: PathBuf,
    ctx: CheckContext,
    current: watch::Sender<Arc<FlowSet>>,
    period: Duration,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        if current.is_closed() {
            return;
        }
        let Ok(files) = flow_files(&dir) else {
            continue;
        };
        let old = current.borrow().clone();
        let mut next: HashMap<String, Arc<LoadedFlow>> = old.by_name.clone();
        let mut changed = false;
        for file in files {
            let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
            let known = old.by_name.values().find(|f| f.file == file);
            if known.is_some_and(|k| k.modified == modified) {
                continue;
            }
            match load_one(&file, &ctx) {
                Ok(f) => {
                    if known.is_some_and(|k| k.version == f.version) {
                        continue;
                    }
                    let name = f.flow.name().to_string();
                    if let Some(other) = next.get(&name).filter(|o| o.file != file) {
                        tracing::warn!(file = %file.display(), %name, other = %other.file.display(), "flow reload refused: name already used");
                        continue;
                    }
                    tracing::info!(flow = %name, version = %f.version, file = %file.display(), "flow reloaded; new calls use this version");
                    next.retain(|_, v| v.file != file);
                    next.insert(name, Arc::new(f));
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), "flow reload refused, the previous version stays live:\n{e}");
                    // Remember the bad file's time so the same error is not logged every tick.
                    if let Some(k) = known {
                        let kept = LoadedFlow {
                            flow: k.flow.clone(),
                            file: k.file.clone(),
                            version: k.version.clone(),
                            modified,
                        };
                        next.insert(k.flow.name().to_string(), Arc::new(kept));
                        changed = true;
                    }
                }
            }
        }
        if changed {
            current.send_replace(Arc::new(FlowSet { by_name: next }));
        }
    }
}
