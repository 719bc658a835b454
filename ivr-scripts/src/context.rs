//! What the checker needs to know about the engine's configuration.
//!
//! A flow is only valid against a deployment: its prompts must exist as audio files in each
//! language it speaks, its queues and connectors must be configured. The engine builds a
//! [`CheckContext`] from its configuration (and the prompt directory) and passes it to
//! [`compile`](crate::compile()); tests and `svi graph` use [`CheckContext::permissive`],
//! which accepts any name.

use std::collections::{BTreeMap, BTreeSet};

/// A set of known names, or "anything goes".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Catalog {
    Any,
    Only(BTreeSet<String>),
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::Only(BTreeSet::new())
    }
}

impl Catalog {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Catalog::Any => true,
            Catalog::Only(names) => names.contains(name),
        }
    }

    /// The known names (empty for `Any`), for "did you mean" hints.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let set = match self {
            Catalog::Any => None,
            Catalog::Only(names) => Some(names),
        };
        set.into_iter().flatten().map(String::as_str)
    }

    pub fn insert(&mut self, name: impl Into<String>) {
        if let Catalog::Only(names) = self {
            names.insert(name.into());
        }
    }
}

impl<S: Into<String>> FromIterator<S> for Catalog {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Catalog::Only(iter.into_iter().map(Into::into).collect())
    }
}

/// The engine-side facts a flow is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckContext {
    /// Language of flows that do not name one (e.g. `en`).
    pub default_language: String,
    /// Languages the engine has prompt sets for.
    pub languages: Catalog,
    /// Prompt names (`welcome`, `digits/0`) available per language; `None` accepts any prompt.
    pub prompts: Option<BTreeMap<String, BTreeSet<String>>>,
    pub queues: Catalog,
    /// Connectors usable by `lookup` steps.
    pub data_sources: Catalog,
    /// Connectors usable by `action` steps.
    pub actions: Catalog,
}

impl CheckContext {
    /// Accepts every prompt, language, queue and connector; default language `en`.
    pub fn permissive() -> Self {
        Self {
            default_language: "en".into(),
            languages: Catalog::Any,
            prompts: None,
            queues: Catalog::Any,
            data_sources: Catalog::Any,
            actions: Catalog::Any,
        }
    }

    /// Starts an empty context (nothing known) with the given default language.
    pub fn builder(default_language: impl Into<String>) -> CheckContextBuilder {
        let default_language = default_language.into();
        let mut languages = Catalog::default();
        languages.insert(default_language.clone());
        CheckContextBuilder {
            ctx: CheckContext {
                default_language,
                languages,
                prompts: Some(BTreeMap::new()),
                queues: Catalog::default(),
                data_sources: Catalog::default(),
                actions: Catalog::default(),
            },
        }
    }

    pub fn has_prompt(&self, language: &str, name: &str) -> bool {
        match &self.prompts {
            None => true,
            Some(map) => map.get(language).is_some_and(|set| set.contains(name)),
        }
    }

    pub(crate) fn prompt_names(&self, language: &str) -> impl Iterator<Item = &str> {
        self.prompts
            .as_ref()
            .and_then(|map| map.get(language))
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Builds a [`CheckContext`] step by step.
#[derive(Clone, Debug)]
pub struct CheckContextBuilder {
    ctx: CheckContext,
}

impl CheckContextBuilder {
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.ctx.languages.insert(language);
        self
    }

    /// Adds prompts for a language (and the language itself).
    pub fn prompts<I, S>(mut self, language: &str, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ctx.languages.insert(language);
        if let Some(map) = &mut self.ctx.prompts {
            map.entry(language.to_owned())
                .or_default()
                .extend(names.into_iter().map(Into::into));
        }
        self
    }

    /// Accepts any prompt name in any language.
    pub fn any_prompt(mut self) -> Self {
        self.ctx.prompts = None;
        self
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.ctx.queues.insert(queue);
        self
    }

    pub fn data_source(mut self, name: impl Into<String>) -> Self {
        self.ctx.data_sources.insert(name);
        self
    }

    pub fn action(mut self, name: impl Into<String>) -> Self {
        self.ctx.actions.insert(name);
        self
    }

    pub fn build(self) -> CheckContext {
        self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_records_what_it_is_told() {
        let ctx = CheckContext::builder("fr")
            .prompts("en", ["welcome"])
            .queue("support")
            .data_source("directory")
            .build();
        assert!(ctx.languages.contains("fr") && ctx.languages.contains("en"));
        assert!(ctx.has_prompt("en", "welcome"));
        assert!(!ctx.has_prompt("fr", "welcome"));
        assert!(ctx.queues.contains("support") && !ctx.queues.contains("sales"));
        assert!(ctx.data_sources.contains("directory") && !ctx.actions.contains("directory"));
    }

    #[test]
    fn permissive_accepts_anything() {
        let ctx = CheckContext::permissive();
        assert!(ctx.has_prompt("xx", "anything"));
        assert!(ctx.queues.contains("q") && ctx.languages.contains("zz"));
    }
}
