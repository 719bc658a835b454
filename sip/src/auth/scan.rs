//! The grammar shared by `WWW-Authenticate`, `Proxy-Authenticate`, `Authorization` and
//! `Proxy-Authorization` values (RFC 3261 §25.1, RFC 7235 §2.1):
//!
//! ```text
//! value     = 1#( auth-scheme [ LWS ( 1#auth-param / token68 ) ] )
//! auth-param = token SWS "=" SWS ( token / quoted-string )
//! ```
//!
//! A comma separates both parameters and schemes, so the scanner decides by look-ahead: a
//! token followed by `=` is a parameter of the current scheme, any other token starts a new
//! scheme. That also makes it tolerant of a missing comma between parameters. `token68`
//! payloads of other schemes (`Negotiate abc==`) are accepted and dropped. Parameter names are
//! lowercased (they are case-insensitive); values are unescaped but otherwise untouched.

use super::AuthError;

/// One scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub scheme: String,
    pub params: Vec<Param>,
}

/// `name=value`; `name` lowercased, `value` with quotes and escapes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: String,
}

impl Item {
    /// Whether this is the Digest scheme (scheme names are case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// Split a header value into schemes with their parameters.
pub fn items(input: &str) -> Result<Vec<Item>, AuthError> {
    let mut sc = Scanner { s: input, pos: 0 };
    let mut items: Vec<Item> = Vec::new();
    loop {
        sc.skip(|c| is_ws(c) || c == ',');
        if sc.peek().is_none() {
            return Ok(items);
        }
        let start = sc.pos;
        let name = sc.token();
        if name.is_empty() {
            return Err(sc.malformed("an auth-scheme or parameter name"));
        }
        sc.skip(is_ws);
        if sc.peek() != Some('=') {
            items.push(Item {
                scheme: name.to_owned(),
                params: Vec::new(),
            });
            continue;
        }
        let Some(item) = items.last_mut() else {
            return Err(AuthError::Malformed {
                offset: start,
                expected: "an auth-scheme before the first parameter",
            });
        };
        sc.bump('=');
        if item.params.is_empty() && sc.token68_padding() {
            continue;
        }
        sc.skip(is_ws);
        let value = match sc.peek() {
            Some('"') => sc.quoted()?,
            _ => sc.bare().to_owned(),
        };
        item.params.push(Param {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
}

struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|c| f(*c)) {
            self.bump(c);
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    fn token(&mut self) -> &'a str {
        self.take_while(is_token)
    }

    /// An unquoted value: up to the next comma or whitespace.
    fn bare(&mut self) -> &'a str {
        self.take_while(|c| c != ',' && !is_ws(c))
    }

    /// After `scheme token=`: if only `=` padding follows up to a comma or the end, this was
    /// a token68 (consumed); otherwise nothing is consumed.
    fn token68_padding(&mut self) -> bool {
        let rest = self.rest();
        let after = rest.trim_start_matches('=').trim_start_matches(is_ws);
        if after.is_empty() || after.starts_with(',') {
            self.pos += rest.len() - after.len();
            true
        } else {
            false
        }
    }

    /// A quoted-string starting at the current `"`; `\x` stands for `x` (RFC 3261 §25.1).
    fn quoted(&mut self) -> Result<String, AuthError> {
        let start = self.pos;
        self.bump('"');
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(AuthError::Malformed {
            offset: start,
            expected: "a closing quote",
        })
    }

    fn malformed(&self, expected: &'static str) -> AuthError {
        AuthError::Malformed {
            offset: self.pos,
            expected,
        }
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// RFC 3261 `token` plus the RFC 7235 `tchar` extras and `/` (seen in token68 payloads).
fn is_token(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~#$&^|/".contains(c)
}

/// Write `value` as a quoted-string, escaping `"` and `\`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
