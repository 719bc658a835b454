//! `[prompts]`, `[flows]` and `[[routes]]`: the prompt set, the call flows, and which flow a
//! called number runs.

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrompts {
    pub dir: Option<String>,
    default_language: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlows {
    pub dir: Option<String>,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    number: String,
    flow: String,
}

/// A called-number pattern selecting a flow: `*` (anything), an exact number, or a prefix
/// ending in `*` (`33*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub number: String,
    pub flow: String,
}

impl Route {
    pub fn matches(&self, called: &str) -> bool {
        match self.number.strip_suffix('*') {
            Some(prefix) => called.starts_with(prefix),
            None => self.number == called,
        }
    }
}

/// `prompts.default_language`: a language tag (`en`, `fr`, `pt-BR`).
pub(super) fn default_language(cx: &Ctx<'_>, raw: &RawPrompts) -> Result<String, ConfigError> {
    let lang = raw.default_language.clone().unwrap_or_else(|| "en".into());
    if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(cx.err(
            "prompts.default_language",
            format!("`{lang}` is not a language tag"),
        ));
    }
    Ok(lang)
}

pub(super) fn routes(cx: &Ctx<'_>, raw: Vec<RawRoute>) -> Result<Vec<Route>, ConfigError> {
    let mut routes = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        // A `*` anywhere but last (char-wise: a number may end with a multibyte character).
        let before_last = r
            .number
            .char_indices()
            .last()
            .map_or("", |(i, _)| &r.number[..i]);
        if r.number.is_empty() || before_last.contains('*') {
            return Err(cx.err(
                &format!("routes[{i}].number"),
                format!(
                    "`{}` must be `*`, a number or a prefix ending in `*`",
                    r.number
                ),
            ));
        }
        routes.push(Route {
            number: r.number,
            flow: r.flow,
        });
    }
    Ok(routes)
}
