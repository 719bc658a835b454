//! A small cursor over an unfolded header value, with the RFC 3261 §25.1 lexical rules
//! (LWS/SWS around separators, tokens, quoted strings). Every typed header parser is built on
//! it, so the whitespace tolerance the torture tests demand lives in one place.

/// RFC 3261 `token` characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Characters allowed in a generic parameter value besides token characters: enough for host
/// names, bracketed and bare IPv6 addresses (RFC 5118 §4.5 `received=2001:db8::9:255`).
fn is_gen_value_char(c: char) -> bool {
    is_token_char(c) || c == ':' || c == '[' || c == ']'
}

#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips spaces and tabs (the value is already unfolded, so LWS is just WSP here).
    pub fn skip_ws(&mut self) -> bool {
        let before = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        self.pos > before
    }

    /// Consumes `c` with optional whitespace on both sides (SWS c SWS).
    pub fn eat_sep(&mut self, c: char) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    pub fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_char);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string; returns the content with escapes kept (as written, without quotes).
    pub fn quoted(&mut self) -> Option<&'a str> {
        if self.peek() != Some('"') {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.bump() {
                None => {
                    self.pos = start;
                    return None;
                }
                Some('\\') => {
                    if self.bump().is_none() {
                        self.pos = start;
                        return None;
                    }
                }
                Some('"') => return Some(&self.s[start + 1..self.pos - 1]),
                Some(_) => {}
            }
        }
    }

    /// `;name[=value]` parameters until something that is not `;`. Values may be quoted.
    pub fn params(&mut self) -> Result<Vec<(String, Option<String>)>, &'static str> {
        let mut out = Vec::new();
        while self.eat_sep(';') {
            let name = self.token().ok_or("empty parameter name")?;
            let value = if self.eat_sep('=') {
                if self.peek() == Some('"') {
                    let q = self.quoted().ok_or("unterminated quoted parameter value")?;
                    Some(format!("\"{q}\""))
                } else {
                    let v = self.take_while(is_gen_value_char);
                    if v.is_empty() {
                        return Err("empty parameter value after '='");
                    }
                    Some(v.to_string())
                }
            } else {
                None
            };
            out.push((name.to_string(), value));
        }
        Ok(out)
    }
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_whitespace() {
        let mut s = Scanner::new(" ;   tag    = 1918181833n ; lr");
        let p = s.params().expect("params");
        assert_eq!(p[0], ("tag".into(), Some("1918181833n".into())));
        assert_eq!(p[1], ("lr".into(), None));
        assert!(s.is_empty());
    }

    #[test]
    fn empty_params_are_errors() {
        assert!(Scanner::new(";;").params().is_err());
        assert!(Scanner::new(";a=").params().is_err());
    }

    #[test]
    fn quoted_with_escapes() {
        let mut s = Scanner::new(r#""J Rosenberg \\\"" rest"#);
        assert_eq!(s.quoted(), Some(r#"J Rosenberg \\\""#));
        assert!(Scanner::new("\"open").quoted().is_none());
    }

    #[test]
    fn commas_outside_quotes() {
        assert_eq!(
            split_commas(r#""a,b" <sip:x>, <sip:y;p=1,2>"#),
            vec![r#""a,b" <sip:x>"#, "<sip:y;p=1,2>"]
        );
    }
}
