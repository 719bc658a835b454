//! Templates for the `http` kind: `{name}` placeholders filled from a step's params, and
//! `${VAR}` secrets expanded once from the environment.
//!
//! Placeholders are parsed at start-up into parts, so a malformed template (`{unclosed`,
//! `{bad name}`) is a configuration error, not a failed call; `{{` and `}}` write literal
//! braces. A parameter's text is its string, or the JSON text of a number or boolean; null
//! is the empty text; lists and maps are refused. In a URL each value is percent-encoded
//! (everything but RFC 3986 unreserved characters), so a caller's `+33 1/2` stays one path
//! segment and cannot add a query parameter.

use serde_json::{Map, Value};

use super::CallError;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub(super) fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed || !is_name(&name) {
                        return Err(format!("`{{{name}` is not a placeholder: write `{{name}}` with letters, digits and `_` (`{{{{` for a brace)"));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Param(name));
                }
                '}' => return Err("a lone `}`: write `}}` for a brace".into()),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// The literal text before the first placeholder.
    pub(super) fn prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Text(t)) => t,
            _ => "",
        }
    }

    /// The placeholders' names, in order (repeated names included).
    pub(super) fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Param(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The parameter name when the template is exactly one placeholder (`"{count}"`).
    pub(super) fn sole_param(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Param(p)] => Some(p),
            _ => None,
        }
    }

    /// The text with each placeholder replaced by `encode(parameter text)`.
    pub(super) fn render(
        &self,
        params: &Map<String, Value>,
        encode: fn(&str) -> String,
    ) -> Result<String, CallError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Param(name) => out.push_str(&encode(&param_text(params, name)?)),
            }
        }
        Ok(out)
    }
}

/// A parameter as text. Errors name the parameter, never its value.
pub(super) fn param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Value, CallError> {
    params
        .get(name)
        .ok_or_else(|| CallError::MissingParam(name.to_string()))
}

pub(super) fn param_text(params: &Map<String, Value>, name: &str) -> Result<String, CallError> {
    match param(params, name)? {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
        Value::Array(_) | Value::Object(_) => Err(CallError::BadParam {
            name: name.to_string(),
            problem: "is a list or a map, not a text".into(),
        }),
    }
}

pub(super) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Percent-encodes all but RFC 3986 unreserved characters (safe in a path or a query).
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn verbatim(s: &str) -> String {
    s.to_string()
}

/// Expands `${VAR}` from `env`; a `$` not followed by `{` stays as it is. Errors name the
/// variable, never a value: these are secrets.
pub(super) fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("`${` without a closing `}`")?;
        let var = &after[..end];
        if !is_name(var) {
            return Err(format!("`${{{var}}}` is not an environment variable name"));
        }
        out.push_str(&env(var).ok_or_else(|| format!("environment variable `{var}` is not set"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn placeholders_render_and_encode() {
        let t = Template::parse("/c/{number}?n={n}&b={b}&z={z}{{x}}").expect("valid");
        let p = params(json!({ "number": "+33 1/2&x=é", "n": 42, "b": true, "z": null }));
        assert_eq!(
            t.render(&p, url_encode).expect("render"),
            "/c/%2B33%201%2F2%26x%3D%C3%A9?n=42&b=true&z={x}"
        );
        assert_eq!(t.prefix(), "/c/");
        assert_eq!(
            Template::parse("{n}").expect("valid").sole_param(),
            Some("n")
        );
        let e = t
            .render(&params(json!({ "number": [1] })), verbatim)
            .expect_err("list");
        assert!(e.to_string().contains("`number`"), "{e}");
        let e = t.render(&Map::new(), verbatim).expect_err("missing");
        assert_eq!(e.to_string(), "parameter `number` is missing");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["{unclosed", "{bad name}", "{}", "{1x}", "a}b"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_secrets_expand_or_name_the_missing_variable() {
        let env = |v: &str| (v == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            expand_env("Bearer ${TOKEN} $x", &env).expect("set"),
            "Bearer s3cret $x"
        );
        assert_eq!(
            expand_env("${NOPE}", &env).expect_err("unset"),
            "environment variable `NOPE` is not set"
        );
        assert!(expand_env("${TOKEN", &env).is_err());
    }
}
