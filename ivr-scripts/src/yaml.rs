//! A small spanned YAML tree built on `saphyr-parser`'s event stream.
//!
//! Why our own tree: the checker must point at the exact line and column of every key and
//! value (a step referenced at line 14, a typo in a field name, a character inside an
//! expression), must see duplicate keys (YAML maps silently keep the last one) and must refuse
//! YAML features that make a flow hard to read or dangerous to load (anchors and aliases, which
//! also enable "billion laughs" expansion; tags; several documents). An event parser with a span
//! on every event gives all of that in ~250 lines, with no serde magic in between.
//!
//! Scalars stay text here; each field decides what text it accepts (a duration, a step id, an
//! expression), so `"1"` and `1` are the same option key and errors talk about the field.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::{Code, Pos};

/// Largest flow file accepted (bytes). Flows are hand-written; a megabyte is a mistake.
pub(crate) const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Deepest nesting of maps and lists accepted.
pub(crate) const MAX_DEPTH: usize = 24;
/// Most nodes accepted in one file.
pub(crate) const MAX_NODES: usize = 200_000;

/// A position in the source, in characters from the start and as line/column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) index: usize,
    pub(crate) pos: Pos,
}

impl Mark {
    fn from_marker(m: saphyr_parser::Marker) -> Self {
        Mark {
            index: m.index(),
            pos: Pos::new(to_u32(m.line()), to_u32(m.col() + 1)),
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How a scalar was written; matters for `null` and for mapping expression positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) start: Mark,
    pub(crate) end: Mark,
    pub(crate) kind: Kind,
}

impl Node {
    pub(crate) fn pos(&self) -> Pos {
        self.start.pos
    }

    /// YAML 1.2 core-schema null: `~`, `null` or nothing at all, unquoted.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The text of a non-null scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) if !self.is_null() => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// A short description for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            Kind::Scalar(..) => "text",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The value of `key` in a mapping node (first occurrence).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Why a file could not be turned into a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeError {
    pub(crate) code: Code,
    pub(crate) pos: Pos,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl TreeError {
    fn new(code: Code, pos: Pos, message: impl Into<String>, hint: Option<&str>) -> Self {
        Self {
            code,
            pos,
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

enum Open {
    Seq(Mark, Vec<Node>),
    Map(Mark, Vec<(Node, Node)>, Option<Node>),
}

/// Parses one YAML document into a spanned tree. `Ok(None)` for an empty file.
pub(crate) fn parse(source: &str) -> Result<Option<Node>, TreeError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(TreeError::new(
            Code::TooLarge,
            Pos::new(1, 1),
            format!("file is larger than {} bytes", MAX_SOURCE_BYTES),
            Some("split the flow into smaller flows"),
        ));
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| {
            TreeError::new(
                Code::YamlSyntax,
                Mark::from_marker(*e.marker()).pos,
                format!("YAML syntax: {}", e.info()),
                Some("check the indentation (spaces only, no tabs) and quote text containing `: ` or ` #`"),
            )
        })?;
        let start = Mark::from_marker(span.start);
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(TreeError::new(
                Code::TooLarge,
                start.pos,
                "file has too many elements",
                Some("split the flow into several flows or subflows"),
            ));
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(TreeError::new(
                        Code::YamlUnsupported,
                        start.pos,
                        "a flow file holds exactly one YAML document",
                        Some("remove the `---` separator, or put each flow in its own file"),
                    ));
                }
            }
            Event::Alias(_) => {
                return Err(unsupported_anchor(start.pos));
            }
            Event::Scalar(value, style, anchor, tag) => {
                check_extras(anchor, tag.is_some(), start.pos)?;
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let node = Node {
                    start,
                    end: Mark::from_marker(span.end),
                    kind: Kind::Scalar(value.into_owned(), style),
                };
                attach(&mut stack, &mut root, node)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_extras(anchor, tag.is_some(), start.pos)?;
                open(&mut stack, Open::Seq(start, Vec::new()), start.pos)?;
            }
            Event::MappingStart(anchor, tag) => {
                check_extras(anchor, tag.is_some(), start.pos)?;
                open(&mut stack, Open::Map(start, Vec::new(), None), start.pos)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = close(stack.pop(), span)?;
                attach(&mut stack, &mut root, node)?;
            }
        }
    }
    Ok(root)
}

fn unsupported_anchor(pos: Pos) -> TreeError {
    TreeError::new(
        Code::YamlUnsupported,
        pos,
        "YAML anchors and aliases (`&name`, `*name`) are not supported in flows",
        Some("write the value out, or move the shared steps into a subflow"),
    )
}

fn check_extras(anchor: usize, tagged: bool, pos: Pos) -> Result<(), TreeError> {
    if anchor != 0 {
        return Err(unsupported_anchor(pos));
    }
    if tagged {
        return Err(TreeError::new(
            Code::YamlUnsupported,
            pos,
            "YAML tags (`!name`, `!!type`) are not supported in flows",
            Some("remove the tag; quote the value if it must stay text"),
        ));
    }
    Ok(())
}

fn open(stack: &mut Vec<Open>, frame: Open, pos: Pos) -> Result<(), TreeError> {
    if stack.len() >= MAX_DEPTH {
        return Err(TreeError::new(
            Code::TooLarge,
            pos,
            format!("nesting deeper than {MAX_DEPTH} levels"),
            Some("a flow needs only a few levels; check the indentation"),
        ));
    }
    stack.push(frame);
    Ok(())
}

fn close(frame: Option<Open>, span: Span) -> Result<Node, TreeError> {
    let end = Mark::from_marker(span.end);
    match frame {
        Some(Open::Seq(start, items)) => Ok(Node {
            start,
            end,
            kind: Kind::Seq(items),
        }),
        Some(Open::Map(start, entries, None)) => Ok(Node {
            start,
            end,
            kind: Kind::Map(entries),
        }),
        // A mapping cannot end between a key and its value; the parser guarantees it, but a
        // malformed stream must still not panic.
        Some(Open::Map(_, _, Some(key))) => Err(TreeError::new(
            Code::YamlSyntax,
            key.pos(),
            "key without a value",
            Some("check the indentation"),
        )),
        None => Err(TreeError::new(
            Code::YamlSyntax,
            end.pos,
            "unbalanced YAML structure",
            Some("check the brackets and the indentation"),
        )),
    }
}

fn attach(stack: &mut [Open], root: &mut Option<Node>, node: Node) -> Result<(), TreeError> {
    match stack.last_mut() {
        None => {
            *root = Some(node);
            Ok(())
        }
        Some(Open::Seq(_, items)) => {
            items.push(node);
            Ok(())
        }
        Some(Open::Map(_, entries, pending)) => match pending.take() {
            None => {
                if !matches!(node.kind, Kind::Scalar(..)) {
                    return Err(TreeError::new(
                        Code::YamlUnsupported,
                        node.pos(),
                        "mapping keys must be plain text",
                        Some("use a simple name as the key"),
                    ));
                }
                *pending = Some(node);
                Ok(())
            }
            Some(key) => {
                entries.push((key, node));
                Ok(())
            }
        },
    }
}

/// Maps each character of a scalar's value back to its position in the file.
///
/// For plain and literal-block scalars this is exact. For quoted or folded scalars the value
/// differs from the source (escapes, folded line breaks), so we align greedily: each value
/// character is matched with the next identical source character, skipping quotes,
/// indentation and line breaks; where alignment fails we fall back to the last known position.
/// The result is exact for every form an expression is normally written in.
pub(crate) fn value_positions(source: &str, node: &Node) -> Vec<Pos> {
    let Kind::Scalar(value, _) = &node.kind else {
        return Vec::new();
    };
    let raw: Vec<(char, Pos)> = {
        let mut out = Vec::new();
        let mut pos = node.start.pos;
        let len = node.end.index.saturating_sub(node.start.index);
        for c in source.chars().skip(node.start.index).take(len) {
            out.push((c, pos));
            if c == '\n' {
                pos = Pos::new(pos.line + 1, 1);
            } else {
                pos.col += 1;
            }
        }
        out
    };
    let mut out = Vec::with_capacity(value.chars().count());
    let mut cursor = 0usize;
    let mut last = node.start.pos;
    for c in value.chars() {
        // Look a little way ahead only, so one escape cannot derail the rest of the mapping.
        let found = raw
            .iter()
            .enumerate()
            .skip(cursor)
            .take(16)
            .find(|(_, (r, _))| *r == c);
        if let Some((i, (_, p))) = found {
            cursor = i + 1;
            last = *p;
        }
        out.push(last);
    }
    out
}

/// Converts a tree to JSON with YAML 1.2 core-schema typing of unquoted scalars (for test
/// and stub files, which are plain data).
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        _ if node.is_null() => Value::Null,
        Kind::Scalar(s, Style::Plain) => match s.as_str() {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => s
                .parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && s.chars().any(|c| c.is_ascii_digit()))
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                })
                .unwrap_or_else(|| Value::String(s.clone())),
        },
        Kind::Scalar(s, _) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or("").to_owned(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_data_converts_to_json() {
        let root = tree("a: 1\nb: \"1\"\nc: [true, ~, 2.5, x]\n");
        assert_eq!(
            to_json(&root),
            serde_json::json!({"a": 1, "b": "1", "c": [true, null, 2.5, "x"]})
        );
    }

    fn tree(src: &str) -> Node {
        match parse(src) {
            Ok(Some(node)) => node,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_carry_positions() {
        let root = tree("a: 1\nb:\n  c: [x, y]\n");
        let entries = root.as_map().expect("map");
        assert_eq!(entries[0].0.pos(), Pos::new(1, 1));
        assert_eq!(entries[0].1.pos(), Pos::new(1, 4));
        let c = root.get("b").and_then(|b| b.get("c")).expect("c");
        assert_eq!(c.as_seq().map(|s| s[1].pos()), Some(Pos::new(3, 10)));
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_checker() {
        let root = tree("a: 1\na: 2\n");
        assert_eq!(root.as_map().map(<[_]>::len), Some(2));
    }

    #[test]
    fn refuses_aliases_tags_and_several_documents() {
        for src in ["a: &x 1\nb: *x\n", "a: !!str 1\n", "a: 1\n---\nb: 2\n"] {
            let err = parse(src).expect_err(src);
            assert_eq!(err.code, Code::YamlUnsupported, "{src}");
        }
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("unclosed");
        assert_eq!(err.code, Code::YamlSyntax);
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let src = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(&src).expect_err("deep");
        // saphyr-parser has its own nesting limit; either refusal is fine.
        assert!(
            matches!(err.code, Code::TooLarge | Code::YamlSyntax),
            "{err:?}"
        );
    }

    #[test]
    fn empty_file_is_none() {
        assert_eq!(parse("# nothing\n"), Ok(None));
    }

    #[test]
    fn value_positions_follow_literal_blocks() {
        let src = "e: |\n  a +\n    b\n";
        let root = tree(src);
        let e = root.get("e").expect("e");
        let pos = value_positions(src, e);
        // value is "a +\n  b\n": 'b' is on line 3, column 5
        assert_eq!(pos[6], Pos::new(3, 5));
    }

    #[test]
    fn value_positions_skip_quotes() {
        let src = "e: \"x == 'a'\"\n";
        let root = tree(src);
        let pos = value_positions(src, root.get("e").expect("e"));
        assert_eq!(pos[0], Pos::new(1, 5));
    }
}
