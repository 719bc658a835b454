//! Typed reading of YAML nodes, with diagnostics instead of failures.
//!
//! The compiler reads each mapping through [`Fields`], which knows the keys a place accepts:
//! it hands out values by name, reports duplicated keys, and at the end reports every key
//! nobody asked for as an unknown field with a "did you mean" hint. The small readers below
//! turn scalars into durations, booleans, counts and names; each returns `None` after pushing
//! a diagnostic, so the compiler keeps going and reports every mistake in one run.

use std::collections::HashMap;
use std::time::Duration;

use crate::diagnostic::{Code, Pos, Sink};
use crate::yaml::{Kind, Node};

/// A value with the position it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) pos: Pos,
}

/// Reads the fields of one mapping node.
pub(crate) struct Fields<'a> {
    entries: &'a [(Node, Node)],
    used: Vec<bool>,
    allowed: &'a [&'a str],
    what: String,
}

impl<'a> Fields<'a> {
    /// `what` names the place in messages ("step `welcome`", "calendar `office`").
    pub(crate) fn new(
        node: &'a Node,
        allowed: &'a [&'a str],
        what: impl Into<String>,
        sink: &mut Sink,
    ) -> Option<Self> {
        let what = what.into();
        let Some(entries) = node.as_map() else {
            sink.error(
                Code::WrongType,
                node.pos(),
                format!(
                    "{what} must be a mapping of fields, found {}",
                    node.describe()
                ),
            )
            .hint("write the fields indented under it, one `name: value` per line");
            return None;
        };
        report_duplicate_keys(entries, &what, sink);
        Some(Self {
            entries,
            used: vec![false; entries.len()],
            allowed,
            what,
        })
    }

    /// The value node of `key`, marking it as understood.
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Node> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// The key node of `key` (for positions), without marking it.
    pub(crate) fn key(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// Like [`get`](Self::get), but a missing key is an error at `pos`.
    pub(crate) fn require(&mut self, key: &str, pos: Pos, sink: &mut Sink) -> Option<&'a Node> {
        let found = self.get(key);
        if found.is_none() {
            sink.error(
                Code::MissingField,
                pos,
                format!("{} needs a `{key}` field", self.what),
            )
            .hint(format!("add `{key}: ...`"));
        }
        found
    }

    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// Reports every key this place does not accept as an unknown field. (Accepted keys that
    /// were not read because an earlier error stopped decoding are not reported.)
    pub(crate) fn finish(self, sink: &mut Sink) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            let name = key.as_str().unwrap_or("");
            if *used || self.allowed.contains(&name) {
                continue;
            }
            sink.error(
                Code::UnknownField,
                key.pos(),
                format!("unknown field `{name}` in {}", self.what),
            );
            match did_you_mean(name, self.allowed.iter().copied()) {
                Some(close) => sink.hint(format!("did you mean `{close}`?")),
                None => sink.hint(format!("accepted here: {}", self.allowed.join(", "))),
            };
        }
    }
}

/// Reports keys that appear twice in one mapping (YAML would silently keep the last).
pub(crate) fn report_duplicate_keys(entries: &[(Node, Node)], what: &str, sink: &mut Sink) {
    // A hash set keeps this linear: a generated file may hold a huge mapping.
    let mut first: HashMap<&str, Pos> = HashMap::with_capacity(entries.len());
    for (key, _) in entries {
        let Some(name) = key.as_str() else { continue };
        match first.get(name) {
            Some(at) => {
                sink.error(
                    Code::DuplicateKey,
                    key.pos(),
                    format!("`{name}` appears twice in {what}"),
                )
                .hint(format!(
                    "the first one is at line {}; keep only one",
                    at.line
                ));
            }
            None => {
                first.insert(name, key.pos());
            }
        }
    }
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = match word.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Damerau-Levenshtein distance (optimal string alignment): a swap counts as one edit.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Long words are never typos of short names; bound the work.
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// A non-empty scalar as text.
pub(crate) fn text(node: &Node, what: &str, sink: &mut Sink) -> Option<Spanned<String>> {
    match node.as_str() {
        Some(s) if !s.is_empty() => Some(Spanned {
            value: s.to_owned(),
            pos: node.pos(),
        }),
        _ => {
            sink.error(
                Code::WrongType,
                node.pos(),
                format!("{what} must be text, found {}", node.describe()),
            )
            .hint("write a single value here; quote it if it contains `: ` or ` #`");
            None
        }
    }
}

/// A name: letters, digits, `_` and `-` (step ids, variables, queues...).
pub(crate) fn name(node: &Node, what: &str, sink: &mut Sink) -> Option<Spanned<String>> {
    let t = text(node, what, sink)?;
    if is_name(&t.value) {
        Some(t)
    } else {
        sink.error(
            Code::BadValue,
            t.pos,
            format!("{what} `{}` is not a valid name", t.value),
        )
        .hint("use letters, digits, `_` and `-` only, starting with a letter or `_`");
        None
    }
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.len() <= 64
}

/// A variable name: like [`is_name`] but without `-`, since expressions must be able to use it.
pub(crate) fn is_identifier(s: &str) -> bool {
    is_name(s) && !s.contains('-')
}

/// One or more texts: a scalar or a list of scalars.
pub(crate) fn text_list(node: &Node, what: &str, sink: &mut Sink) -> Option<Vec<Spanned<String>>> {
    match &node.kind {
        Kind::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match text(item, what, sink) {
                    Some(t) => out.push(t),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Kind::Scalar(..) if node.is_null() => Some(Vec::new()),
        Kind::Scalar(..) => text(node, what, sink).map(|t| vec![t]),
        Kind::Map(_) => {
            sink.error(
                Code::WrongType,
                node.pos(),
                format!("{what} must be text or a list of texts, found a mapping"),
            )
            .hint("write `name` or `[name1, name2]`");
            None
        }
    }
}

pub(crate) fn boolean(node: &Node, what: &str, sink: &mut Sink) -> Option<bool> {
    match node.as_str() {
        Some("true" | "True" | "TRUE" | "yes") => Some(true),
        Some("false" | "False" | "FALSE" | "no") => Some(false),
        _ => {
            sink.error(
                Code::WrongType,
                node.pos(),
                format!("{what} must be true or false"),
            )
            .hint("write `true` or `false`");
            None
        }
    }
}

/// A whole number within `range`.
pub(crate) fn count(
    node: &Node,
    what: &str,
    range: std::ops::RangeInclusive<u32>,
    sink: &mut Sink,
) -> Option<u32> {
    match node.as_str().and_then(|s| s.parse::<u32>().ok()) {
        Some(n) if range.contains(&n) => Some(n),
        _ => {
            sink.error(
                Code::BadValue,
                node.pos(),
                format!(
                    "{what} must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
            .hint("write a plain number, without quotes or units");
            None
        }
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// A duration within `[min, max]`.
pub(crate) fn duration(
    node: &Node,
    what: &str,
    min: Duration,
    max: Duration,
    sink: &mut Sink,
) -> Option<Duration> {
    match node.as_str().and_then(parse_duration) {
        Some(d) if d >= min && d <= max => Some(d),
        Some(_) => {
            sink.error(
                Code::BadValue,
                node.pos(),
                format!(
                    "{what} must be between {} and {}",
                    show_duration(min),
                    show_duration(max)
                ),
            )
            .hint("durations are written with a unit: `500ms`, `5s`, `2m`");
            None
        }
        None => {
            sink.error(
                Code::BadValue,
                node.pos(),
                format!("{what} is not a duration"),
            )
            .hint("write a number with a unit: `500ms`, `5s`, `2m`");
            None
        }
    }
}

pub(crate) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["next", "prompt", "barge_in", "timeout"];
        assert_eq!(did_you_mean("nxet", fields), Some("next"));
        assert_eq!(did_you_mean("timout", fields), Some("timeout"));
        assert_eq!(did_you_mean("colour", fields), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    #[test]
    fn names() {
        assert!(is_name("main_menu"));
        assert!(is_name("option-1"));
        assert!(!is_name("1st"));
        assert!(!is_name("a b"));
        assert!(is_identifier("ticket_id"));
        assert!(!is_identifier("ticket-id"));
    }
}
