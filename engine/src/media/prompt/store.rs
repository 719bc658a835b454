//! The prompt library: `<root>/<language>/<name>.wav`, loaded once, looked up by language.
//!
//! Each directory under the root is a language (`en`, `fr`, `fr-CA`...); every `.wav` file
//! below it, in subdirectories too, is a prompt named by its path without the extension
//! (`prompts/en/menu/main.wav` is `menu/main` in `en`). A flow asks for `(language, name)`;
//! when the caller's language lacks a prompt, the store falls back to a default language,
//! so a partly translated set still plays something.
//!
//! Loading is lenient about individual files: a bad file is reported and skipped, so one
//! broken recording does not stop the service; only an unreadable root is an error. The
//! caller decides what to do with the list of problems (log them, fail a config check).
//! Loading reads and converts files synchronously: from async code, run it on
//! `tokio::task::spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Prompt, PromptError};

/// Deepest subdirectory level searched under a language directory (guards symlink loops).
const MAX_DEPTH: usize = 8;

/// Prompts by language and name.
#[derive(Debug, Clone, Default)]
pub struct PromptStore {
    languages: BTreeMap<String, BTreeMap<String, Prompt>>,
    fallback: Option<String>,
}

impl PromptStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every prompt under `root`. Returns the store and the files that were skipped,
    /// or an error if `root` itself cannot be listed.
    pub fn load_dir(root: &Path) -> Result<(PromptStore, Vec<PromptError>), PromptError> {
        let mut store = PromptStore::new();
        let mut problems = Vec::new();
        for entry in read_dir(root)? {
            let path = entry.path();
            let Some(language) = visible_name(&path) else {
                continue;
            };
            if !path.is_dir() {
                tracing::debug!(path = %path.display(), "ignoring file outside a language directory");
                continue;
            }
            let mut files = Vec::new();
            collect_wavs(&path, &path, 0, &mut files, &mut problems);
            for (name, file) in files {
                match Prompt::load_wav(&file, name.clone()) {
                    Ok(prompt) => store.insert(language.clone(), prompt),
                    Err(error) => problems.push(error),
                }
            }
        }
        tracing::info!(
            root = %root.display(),
            languages = store.languages.len(),
            prompts = store.len(),
            skipped = problems.len(),
            "prompts loaded"
        );
        Ok((store, problems))
    }

    /// Sets the language used when the requested one lacks a prompt.
    pub fn with_fallback_language(mut self, language: impl Into<String>) -> Self {
        self.fallback = Some(language.into());
        self
    }

    /// The fallback language, if any.
    pub fn fallback_language(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Adds or replaces a prompt under its own name.
    pub fn insert(&mut self, language: impl Into<String>, prompt: Prompt) {
        self.languages
            .entry(language.into())
            .or_default()
            .insert(prompt.name().to_owned(), prompt);
    }

    /// The prompt `name` in `language`, else in the fallback language.
    pub fn get(&self, language: &str, name: &str) -> Option<Prompt> {
        let find = |language: &str| self.languages.get(language)?.get(name).cloned();
        find(language).or_else(|| self.fallback.as_deref().and_then(find))
    }

    /// Languages present, sorted.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }

    /// Prompt names of one language, sorted (no fallback applied).
    pub fn names(&self, language: &str) -> impl Iterator<Item = &str> {
        self.languages
            .get(language)
            .into_iter()
            .flat_map(|prompts| prompts.keys().map(String::as_str))
    }

    /// Number of prompts over all languages.
    pub fn len(&self) -> usize {
        self.languages.values().map(BTreeMap::len).sum()
    }

    /// No prompt at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn read_dir(path: &Path) -> Result<Vec<std::fs::DirEntry>, PromptError> {
    let unreadable = |source| PromptError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let mut entries = std::fs::read_dir(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// The file name, unless hidden or not valid UTF-8 (then it cannot be named in a flow).
fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_owned())
}

/// Finds `.wav` files under `dir`, named by their path relative to `language_root`.
fn collect_wavs(
    language_root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut Vec<(String, PathBuf)>,
    problems: &mut Vec<PromptError>,
) {
    let entries = match read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(error);
            return;
        }
    };
    for entry in entries {
        let path = entry.path();
        if visible_name(&path).is_none() {
            continue;
        }
        if path.is_dir() {
            if depth < MAX_DEPTH {
                collect_wavs(language_root, &path, depth + 1, files, problems);
            }
            continue;
        }
        let is_wav = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
        let name = path
            .strip_prefix(language_root)
            .ok()
            .map(|relative| relative.with_extension(""))
            .and_then(|relative| {
                let parts: Option<Vec<&str>> = relative
                    .components()
                    .map(|c| c.as_os_str().to_str())
                    .collect();
                parts.map(|parts| parts.join("/"))
            });
        if let (true, Some(name)) = (is_wav, name) {
            files.push((name, path));
        }
    }
}
