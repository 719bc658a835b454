//! Call flows: versions kept in the replicated state, the live set compiled from them.
//!
//! - `store`: flow versions as replicated data. Installing a version (its YAML source) and
//!   activating one are writes through the replicated log, so every node of a pair holds
//!   the same versions and serves the same active one; rollback activates the version that
//!   was active before.
//! - `sync`: the task that keeps the live set equal to the active versions (on every node,
//!   as the log applies), and installs what changes in the flows directory (on the active
//!   node: the files stay the authoring source, like `svi flow install FILE`).
//! - this file: compiling a source into a `LoadedFlow` and the `FlowSet` calls read.
//!
//! Each flow is compiled against a `CheckContext` built from what the engine really has
//! (prompt files per language, configured queues and connectors), so a flow that loads can
//! reference nothing missing. The set is published through a `watch` channel: a call takes
//! the current `Arc<LoadedFlow>` when it starts and keeps it to its end, so a change reaches
//! new calls only. An invalid new version is refused and the old one stays live.

mod store;
mod sync;
#[cfg(test)]
mod tests;

pub use store::{ActiveFlow, FlowStore, FlowStoreError, FlowVersion, Installed};
pub use sync::{start, FlowSync};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivr_scripts::{compile, CheckContext, Diagnostic, Flow};
use sha2::{Digest, Sha256};

use crate::media::PromptStore;

#[derive(Debug)]
pub struct LoadedFlow {
    pub flow: Arc<Flow>,
    pub file: PathBuf,
    /// First 12 hex digits of the SHA-256 of the source: names the version in call records.
    pub version: String,
}

#[derive(Debug, Default)]
pub struct FlowSet {
    by_name: HashMap<String, Arc<LoadedFlow>>,
}

impl FlowSet {
    /// A set of these flows (by their names).
    pub fn of(flows: impl IntoIterator<Item = LoadedFlow>) -> FlowSet {
        let by_name = flows
            .into_iter()
            .map(|f| (f.flow.name().to_string(), Arc::new(f)))
            .collect();
        FlowSet { by_name }
    }

    pub fn get(&self, name: &str) -> Option<Arc<LoadedFlow>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedFlow>> {
        self.by_name.values()
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

/// The version name of a flow source: the first 12 hex digits of its SHA-256.
pub fn version_of(source: &str) -> String {
    hex::encode(&Sha256::digest(source.as_bytes())[..6])
}

/// Compiles a flow source; `file` names it in diagnostics and in the loaded flow.
pub fn compile_source(
    source: &str,
    file: &Path,
    ctx: &CheckContext,
) -> Result<LoadedFlow, Vec<Diagnostic>> {
    let flow = compile(source, file, ctx)?;
    Ok(LoadedFlow {
        flow: Arc::new(flow),
        file: file.to_path_buf(),
        version: version_of(source),
    })
}

/// Diagnostics as a compiler prints them, each with its source line and a caret.
pub fn render(diags: &[Diagnostic], source: &str) -> String {
    diags
        .iter()
        .map(|d| d.render_with_source(source))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Flow files of a directory: `*.yaml`/`*.yml`, except flow tests (`*.test.yaml`).
pub(crate) fn flow_files(dir: &Path) -> Result<Vec<PathBuf>, FlowLoadError> {
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

/// A flow file read and compiled: the source is kept (it is what gets installed).
pub(crate) struct FileFlow {
    pub source: String,
    pub loaded: LoadedFlow,
}

fn load_file(file: &Path, ctx: &CheckContext) -> Result<FileFlow, String> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    match compile_source(&source, file, ctx) {
        Ok(loaded) => Ok(FileFlow { source, loaded }),
        Err(diags) => Err(render(&diags, &source)),
    }
}

/// Every flow of `dir`, compiled; any invalid flow, or two files with one flow name, refuses
/// the whole set (at start, the engine does not run on a half-valid directory).
pub(crate) fn load_dir(dir: &Path, ctx: &CheckContext) -> Result<Vec<FileFlow>, FlowLoadError> {
    let mut flows: Vec<FileFlow> = Vec::new();
    let mut errors = Vec::new();
    for file in flow_files(dir)? {
        match load_file(&file, ctx) {
            Ok(f) => {
                let name = f.loaded.flow.name();
                if let Some(other) = flows.iter().find(|o| o.loaded.flow.name() == name) {
                    return Err(FlowLoadError::Duplicate {
                        file,
                        name: name.to_string(),
                        other: other.loaded.file.clone(),
                    });
                }
                flows.push(f);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(flows)
    } else {
        Err(FlowLoadError::Invalid(errors.join("\n")))
    }
}

/// Loads every flow of `dir`; any invalid flow refuses the whole start.
pub fn load_all(dir: &Path, ctx: &CheckContext) -> Result<FlowSet, FlowLoadError> {
    let by_name = load_dir(dir, ctx)?
        .into_iter()
        .map(|f| (f.loaded.flow.name().to_string(), Arc::new(f.loaded)))
        .collect();
    Ok(FlowSet { by_name })
}

impl FlowSet {
    fn from_map(by_name: HashMap<String, Arc<LoadedFlow>>) -> Self {
        FlowSet { by_name }
    }
}
