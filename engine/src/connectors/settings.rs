//! Typed reading of a connector's settings table (the keys of `[[data_sources]]` other than
//! `name` and `kind`). Each kind declares the keys it knows: an unknown key is refused,
//! because a misspelt `max_conections` silently ignored is a production surprise later.
//! Every error names the full key (`data_sources[0].query`).

use super::ConnectorError;
use crate::config::ConnectorConfig;

/// `500ms`, `2s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = text[..digits].parse().ok()?;
    let ms = match &text[digits..] {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

pub struct Settings<'a> {
    cfg: &'a ConnectorConfig,
}

impl<'a> Settings<'a> {
    /// Checks that every key of the table is one of `known`.
    pub fn new(cfg: &'a ConnectorConfig, known: &[&str]) -> Result<Settings<'a>, ConnectorError> {
        let s = Settings { cfg };
        if let Some(k) = cfg.settings.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(s.err(
                k,
                format!(
                    "not a setting of kind `{}` (known: {})",
                    cfg.kind,
                    known.join(", ")
                ),
            ));
        }
        Ok(s)
    }

    pub fn name(&self) -> &'a str {
        &self.cfg.name
    }

    /// An error about `key` of this connector.
    pub fn err(&self, key: &str, problem: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            key: format!("{}.{key}", self.cfg.key),
            problem: problem.into(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a toml::Value> {
        self.cfg.settings.get(key)
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.err(key, format!("must be a string, not {}", other.type_str())))
            }
        }
    }

    pub fn required_string(&self, key: &str) -> Result<&'a str, ConnectorError> {
        self.string(key)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    /// An integer within `min..=max`, or `default` when absent.
    pub fn integer(
        &self,
        key: &str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Result<i64, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Integer(n)) if (min..=max).contains(n) => Ok(*n),
            Some(toml::Value::Integer(n)) => {
                Err(self.err(key, format!("{n} is outside {min}..={max}")))
            }
            Some(other) => {
                Err(self.err(key, format!("must be an integer, not {}", other.type_str())))
            }
        }
    }

    /// A list of strings (a single string is accepted as a list of one).
    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>, ConnectorError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s.as_str()]),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .ok_or_else(|| self.err(&format!("{key}[{i}]"), "must be a string"))
                })
                .collect(),
            Some(other) => Err(self.err(
                key,
                format!("must be a list of strings, not {}", other.type_str()),
            )),
        }
    }

    /// A list of integers within `min..=max` (a single integer is a list of one).
    pub fn integers(
        &self,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<Vec<i64>>, ConnectorError> {
        let one = |k: &str, v: &toml::Value| match v {
            toml::Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
            toml::Value::Integer(n) => Err(self.err(k, format!("{n} is outside {min}..={max}"))),
            other => Err(self.err(k, format!("must be an integer, not {}", other.type_str()))),
        };
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| one(&format!("{key}[{i}]"), v))
                .collect::<Result<_, _>>()
                .map(Some),
            Some(v) => one(key, v).map(|n| Some(vec![n])),
        }
    }

    /// A duration written as flows write them (`500ms`, `2s`, `5m`), or `None` when absent.
    pub fn duration(&self, key: &str) -> Result<Option<std::time::Duration>, ConnectorError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        parse_duration(text).map(Some).ok_or_else(|| {
            self.err(
                key,
                format!("`{text}` is not a duration such as \"500ms\", \"2s\" or \"5m\""),
            )
        })
    }

    pub fn table(&self, key: &str) -> Result<Option<&'a toml::Table>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(self.err(key, format!("must be a table, not {}", other.type_str()))),
        }
    }
}
