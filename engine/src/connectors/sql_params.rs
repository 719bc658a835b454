//! `:name` parameters in connector queries, rewritten to numbered `?N` (SQLite) or `$N`
//! (PostgreSQL) parameters.
//!
//! Query authors write `WHERE number = :number`, matching the step's `params` keys. SQLite
//! itself numbers named parameters in order of first appearance (a name used twice shares
//! one number), but sqlx's SQLite driver only binds numbered ones (`?NNN`), and refuses
//! `:name` at run time. So at start-up the query is scanned once, each `:name` replaced by
//! `?N` where N is the name's order of first appearance, and the names kept in that order:
//! at each call the values are bound in that order. The same scan refuses what would
//! surprise at run time: positional `?`, `@name`/`$name` (valid SQLite, but then a value
//! would silently bind as NULL), parameter names a flow cannot write, and a second
//! statement after `;`. Quoted strings, quoted identifiers and comments are copied as they
//! are: a `:` inside `'10:30'` is not a parameter.

/// A query ready for sqlx: `sql` uses `?1`, `?2`... (or `$1`...); `params[i]` is the name
/// bound to number `i+1`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rewritten {
    pub sql: String,
    pub params: Vec<String>,
    /// The statement's first keyword, upper-cased (`SELECT`, `WITH`, `UPDATE`...).
    pub first_keyword: String,
}

/// How the driver numbers parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Numbered {
    /// SQLite: `?1`.
    Question,
    /// PostgreSQL: `$1`; `::type` casts are left alone.
    Dollar,
}

pub(super) fn rewrite(sql: &str, style: Numbered) -> Result<Rewritten, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut params: Vec<String> = Vec::new();
    let mut first_keyword = String::new();
    let mut ended = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // Spans copied verbatim: comments, then quoted text.
        let span_end = match (c, next) {
            ('-', Some('-')) => Some(find(&chars, i + 2, "\n").map_or(chars.len(), |p| p + 1)),
            ('/', Some('*')) => Some(find(&chars, i + 2, "*/").map_or(chars.len(), |p| p + 2)),
            _ if c.is_whitespace() => Some(i + 1),
            _ => None,
        };
        if let Some(end) = span_end {
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if ended {
            return Err("only one statement is allowed (there is text after `;`)".into());
        }
        let quoted_end = match c {
            // `'it''s'` is two adjacent quoted spans: the result is the same text.
            '\'' | '"' | '`' => {
                Some(find(&chars, i + 1, &c.to_string()).map_or(chars.len(), |p| p + 1))
            }
            '[' => Some(find(&chars, i + 1, "]").map_or(chars.len(), |p| p + 1)),
            _ => None,
        };
        if let Some(end) = quoted_end {
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        let after_identifier = i > 0 && is_name_char(chars[i - 1]);
        match c {
            ';' => {
                ended = true;
                out.push(c);
                i += 1;
            }
            ':' if style == Numbered::Dollar && next == Some(':') => {
                out.push_str("::");
                i += 2;
            }
            ':' => {
                let start = i + 1;
                let end = (start..chars.len())
                    .find(|&j| !is_name_char(chars[j]))
                    .unwrap_or(chars.len());
                let name: String = chars[start..end].iter().collect();
                check_name(&name)?;
                let n = match params.iter().position(|p| *p == name) {
                    Some(n) => n,
                    None => {
                        params.push(name);
                        params.len() - 1
                    }
                };
                let mark = match style {
                    Numbered::Question => '?',
                    Numbered::Dollar => '$',
                };
                out.push_str(&format!("{mark}{}", n + 1));
                i = end;
            }
            '?' => {
                return Err(
                    "positional `?` parameters are not supported: name them, as in `:number`"
                        .into(),
                )
            }
            '@' | '$' if !after_identifier => {
                return Err(format!(
                    "`{c}name` parameters are not supported: write `:name`"
                ));
            }
            _ if first_keyword.is_empty() && c.is_ascii_alphabetic() => {
                let end = (i..chars.len())
                    .find(|&j| !is_name_char(chars[j]))
                    .unwrap_or(chars.len());
                first_keyword = chars[i..end]
                    .iter()
                    .collect::<String>()
                    .to_ascii_uppercase();
                out.extend(&chars[i..end]);
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if first_keyword.is_empty() {
        return Err("is empty".into());
    }
    Ok(Rewritten {
        sql: out,
        params,
        first_keyword,
    })
}

/// Characters SQLite reads as part of a parameter or identifier name.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Parameter names are the keys of a flow step's `params`: ASCII identifiers.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("`:` must be followed by a parameter name, as in `:number`".into()),
        Some(first) if (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok(())
        }
        Some(_) => Err(format!(
            "parameter `:{name}`: a name starts with a letter or `_` and has only ASCII letters, digits and `_`"
        )),
    }
}

/// Index of the first occurrence of `pat` at or after `from`.
fn find(chars: &[char], from: usize, pat: &str) -> Option<usize> {
    let pat: Vec<char> = pat.chars().collect();
    (from..chars.len()).find(|&i| chars[i..].starts_with(&pat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Rewritten {
        rewrite(sql, Numbered::Question).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn postgres_numbers_with_dollars_and_keeps_casts() {
        let r = rewrite(
            "SELECT status FROM tickets WHERE id = :ticket::int AND owner = :user OR id = :ticket",
            Numbered::Dollar,
        )
        .expect("valid");
        assert_eq!(
            r.sql,
            "SELECT status FROM tickets WHERE id = $1::int AND owner = $2 OR id = $1"
        );
        assert_eq!(r.params, ["ticket", "user"]);
    }

    #[test]
    fn names_are_numbered_in_order_of_first_appearance() {
        let r = ok("SELECT * FROM t WHERE a = :b OR c = :a OR d = :b AND e = :_c1");
        assert_eq!(
            r.sql,
            "SELECT * FROM t WHERE a = ?1 OR c = ?2 OR d = ?1 AND e = ?3"
        );
        assert_eq!(r.params, ["b", "a", "_c1"]);
        assert_eq!(r.first_keyword, "SELECT");
    }

    #[test]
    fn strings_identifiers_and_comments_are_not_scanned() {
        let sql = "with x as (select ':no' as \"a:b\", [c:d], `e:f`, 'it''s :no?') -- :no ?\n/* :no; ? */ select *, :yes from x where t > '10:30';  -- end";
        let r = ok(sql);
        assert_eq!(r.params, ["yes"]);
        assert_eq!(r.first_keyword, "WITH");
        assert_eq!(r.sql, sql.replace(":yes", "?1"));
    }

    #[test]
    fn a_name_ends_where_sqlite_ends_it() {
        let r = ok("SELECT :n-1, :n||'x', (:m)");
        assert_eq!(r.sql, "SELECT ?1-1, ?1||'x', (?2)");
        assert_eq!(r.params, ["n", "m"]);
        // `$` inside an identifier is not a parameter.
        assert_eq!(ok("SELECT a$b FROM t").params, Vec::<String>::new());
    }

    #[test]
    fn refuses_what_would_surprise_at_run_time() {
        for (sql, expected) in [
            ("SELECT :numéro", "parameter `:numéro`"),
            ("SELECT :1abc", "parameter `:1abc`"),
            ("SELECT : x", "`:` must be followed"),
            ("SELECT ?", "positional `?`"),
            ("SELECT ?1", "positional `?`"),
            ("SELECT @who", "`@name`"),
            ("SELECT $who", "`$name`"),
            ("SELECT 1; DELETE FROM t", "only one statement"),
            ("  -- nothing\n", "is empty"),
        ] {
            let e = rewrite(sql, Numbered::Question).expect_err(sql);
            assert!(e.contains(expected), "{sql}: {e}");
        }
    }
}
