//! A small command-line reader: `--name value` pairs and `--flag`s, every name checked against
//! the subcommand's list so a typo is an error, not a silently ignored option.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses `argv` given the options that take a value and the flags that do not.
    pub fn parse(argv: &[String], valued: &[&str], flags: &[&str]) -> Result<Args> {
        let mut values = HashMap::new();
        let mut seen_flags = Vec::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument `{a}`");
            };
            if valued.contains(&name) {
                let v = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
                values.insert(name.to_string(), v.clone());
            } else if flags.contains(&name) {
                seen_flags.push(name.to_string());
            } else {
                bail!(
                    "unknown option --{name} (options: {})",
                    valued
                        .iter()
                        .chain(flags)
                        .map(|n| format!("--{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        Ok(Args {
            values,
            flags: seen_flags,
        })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow!("--{name} `{v}`: {e}")),
        }
    }

    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => parse_duration(v).with_context(|| format!("--{name}")),
        }
    }
}

/// `500ms`, `5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("`{s}` is not a duration (e.g. 500ms, 30s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => bail!("`{s}`: unknown unit `{unit}` (ms, s, m)"),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        bail!("`{s}` is out of range");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("30").ok(), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn unknown_options_are_refused() {
        let argv: Vec<String> = ["--calls", "20", "--json"].map(String::from).to_vec();
        let a = Args::parse(&argv, &["calls"], &["json"]).expect("parses");
        assert_eq!(a.get("calls", 0u32).ok(), Some(20));
        assert!(a.flag("json"));
        let bad: Vec<String> = ["--cals", "20"].map(String::from).to_vec();
        assert!(Args::parse(&bad, &["calls"], &[]).is_err());
    }
}
