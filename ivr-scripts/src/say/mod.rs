//! Speaking values from recorded fragments: digits, numbers, dates and times in English and
//! French.
//!
//! A `say` step does not synthesise speech; it turns a value into a list of short recorded
//! prompts ("fragments") that the engine plays back to back, the way every classic IVR does.
//! Fragment names are the same in every language (`numbers/21`, `days/monday`, `time/oclock`)
//! and map to `<prompts-root>/<language>/<name>.wav`; what each fragment says differs
//! (`numbers/21` is "twenty-one" in `en`, "vingt et un" in `fr`). Numbers 0-99 are one
//! fragment each, which keeps French (soixante-dix, quatre-vingts) and English natural without
//! gluing syllables together.
//!
//! [`catalog`] lists every fragment of a language with the text to record; it generates
//! `samples/prompts/fragments.txt` (a test keeps the file in sync).

mod en;
mod fr;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a `say` step reads its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SayAs {
    /// One digit at a time: "1 2 3 4"; also `*`, `#` and `+`.
    Digits,
    /// A whole number: "one thousand two hundred thirty-four".
    Number,
    /// A date (`YYYY-MM-DD`): weekday, day, month and year.
    Date,
    /// A time of day (`HH:MM`).
    Time,
}

impl SayAs {
    pub(crate) const ALL: [(&'static str, SayAs); 4] = [
        ("digits", SayAs::Digits),
        ("number", SayAs::Number),
        ("date", SayAs::Date),
        ("time", SayAs::Time),
    ];

    fn prefixes(self) -> &'static [&'static str] {
        match self {
            SayAs::Digits => &["digits/"],
            SayAs::Number => &["numbers/"],
            SayAs::Date => &["days/", "months/", "ordinals/", "numbers/"],
            SayAs::Time => &["numbers/", "time/"],
        }
    }
}

/// Largest magnitude `say ... as: number` speaks.
pub const MAX_NUMBER: i64 = 999_999_999;

/// Languages `say` can speak, by their base code (`fr-CA` speaks as `fr`).
pub const LANGUAGES: &[&str] = &["en", "fr"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    En,
    Fr,
}

fn lang(language: &str) -> Option<Lang> {
    let base = language
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match base.as_str() {
        "en" => Some(Lang::En),
        "fr" => Some(Lang::Fr),
        _ => None,
    }
}

pub(crate) fn supported(language: &str) -> bool {
    lang(language).is_some()
}

/// Every fragment of `language` with the text its recording says; empty if unsupported.
pub fn catalog(language: &str) -> Vec<(String, String)> {
    match lang(language) {
        Some(Lang::En) => en::catalog(),
        Some(Lang::Fr) => fr::catalog(),
        None => Vec::new(),
    }
}

/// The fragments a `say ... as: how` step may play in `language`.
pub(crate) fn fragments_needed(language: &str, how: SayAs) -> Vec<String> {
    catalog(language)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| how.prefixes().iter().any(|p| name.starts_with(p)))
        .collect()
}

/// Turns a value into fragment names, or says why it cannot be spoken.
pub fn compose(language: &str, how: SayAs, value: &Value) -> Result<Vec<String>, String> {
    let lang = lang(language).ok_or_else(|| format!("`say` cannot speak language `{language}`"))?;
    match how {
        SayAs::Digits => digits(value),
        SayAs::Number => {
            let n = integer(value)?;
            if n.unsigned_abs() > MAX_NUMBER.unsigned_abs() {
                return Err(format!("{n} is too large to say as a number"));
            }
            Ok(number(lang, n))
        }
        SayAs::Date => {
            let date = date(value)?;
            Ok(match lang {
                Lang::En => en::date(date),
                Lang::Fr => fr::date(date),
            })
        }
        SayAs::Time => {
            let time = time(value)?;
            let (h, m) = (time.hour(), time.minute());
            Ok(match lang {
                Lang::En => en::time(h, m),
                Lang::Fr => fr::time(h, m),
            })
        }
    }
}

fn number(lang: Lang, n: i64) -> Vec<String> {
    match lang {
        Lang::En => en::number(n),
        Lang::Fr => fr::number(n),
    }
}

fn digits(value: &Value) -> Result<Vec<String>, String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(format!(
                "cannot say {} as digits",
                crate::expr::value_kind(other)
            ))
        }
    };
    let mut out = Vec::new();
    for c in text.chars() {
        match c {
            '0'..='9' => out.push(format!("digits/{c}")),
            '*' => out.push("digits/star".into()),
            '#' => out.push("digits/hash".into()),
            '+' => out.push("digits/plus".into()),
            // Separators people write in numbers are silent.
            ' ' | '-' | '.' | '(' | ')' => {}
            other => return Err(format!("cannot say the character `{other}` as a digit")),
        }
    }
    Ok(out)
}

fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{n} is not a whole number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number")),
        other => Err(format!(
            "cannot say {} as a number",
            crate::expr::value_kind(other)
        )),
    }
}

/// A `YYYY-MM-DD` text, or a map with a `date` entry (such as `now`).
fn date(value: &Value) -> Result<NaiveDate, String> {
    match value {
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)")),
        Value::Object(map) => map.get("date").map_or_else(
            || Err("cannot say a map without a `date` entry as a date".into()),
            date,
        ),
        other => Err(format!(
            "cannot say {} as a date",
            crate::expr::value_kind(other)
        )),
    }
}

/// A `HH:MM` text, or a map with a `time` entry (such as `now`).
fn time(value: &Value) -> Result<NaiveTime, String> {
    match value {
        Value::String(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| format!("`{s}` is not a time (HH:MM)")),
        Value::Object(map) => map.get("time").map_or_else(
            || Err("cannot say a map without a `time` entry as a time".into()),
            time,
        ),
        other => Err(format!(
            "cannot say {} as a time",
            crate::expr::value_kind(other)
        )),
    }
}

/// Splits `n` (0 ≤ n ≤ MAX_NUMBER) into (millions, thousands, rest below 1000).
fn groups(n: i64) -> (i64, i64, i64) {
    (n / 1_000_000, (n / 1000) % 1000, n % 1000)
}

fn frag(name: impl std::fmt::Display) -> String {
    format!("numbers/{name}")
}

fn weekday_and_month(date: NaiveDate) -> (String, String) {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let day = crate::hours::weekday_name(date.weekday());
    let month = MONTHS[date.month0() as usize];
    (format!("days/{day}"), format!("months/{month}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn say(lang: &str, how: SayAs, v: Value) -> Vec<String> {
        compose(lang, how, &v).expect("sayable")
    }

    #[test]
    fn digits_one_by_one() {
        assert_eq!(
            say("en", SayAs::Digits, json!("+33 1#")),
            [
                "digits/plus",
                "digits/3",
                "digits/3",
                "digits/1",
                "digits/hash"
            ]
        );
        assert!(compose("en", SayAs::Digits, &json!("12a")).is_err());
    }

    #[test]
    fn english_numbers() {
        assert_eq!(say("en", SayAs::Number, json!(0)), ["numbers/0"]);
        assert_eq!(say("en", SayAs::Number, json!(42)), ["numbers/42"]);
        assert_eq!(
            say("en", SayAs::Number, json!(1205)),
            [
                "numbers/1",
                "numbers/thousand",
                "numbers/2",
                "numbers/hundred",
                "numbers/5"
            ]
        );
        assert_eq!(
            say("en", SayAs::Number, json!(-3_000_000)),
            ["numbers/minus", "numbers/3", "numbers/million"]
        );
        assert!(compose("en", SayAs::Number, &json!(1_000_000_000)).is_err());
        assert!(compose("en", SayAs::Number, &json!(i64::MIN)).is_err());
    }

    #[test]
    fn french_numbers() {
        assert_eq!(say("fr", SayAs::Number, json!(100)), ["numbers/hundred"]);
        assert_eq!(say("fr", SayAs::Number, json!(1000)), ["numbers/thousand"]);
        assert_eq!(
            say("fr", SayAs::Number, json!("2071")),
            ["numbers/2", "numbers/thousand", "numbers/71"]
        );
        assert_eq!(
            say("fr", SayAs::Number, json!(1_000_000)),
            ["numbers/1", "numbers/million"]
        );
        assert_eq!(
            say("fr", SayAs::Number, json!(2_000_300)),
            [
                "numbers/2",
                "numbers/millions",
                "numbers/3",
                "numbers/hundred"
            ]
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            say("en", SayAs::Date, json!("2026-03-10")),
            [
                "days/tuesday",
                "months/march",
                "ordinals/10",
                "numbers/2",
                "numbers/thousand",
                "numbers/26"
            ]
        );
        assert_eq!(
            say("fr", SayAs::Date, json!({"date": "2026-05-01"})),
            [
                "days/friday",
                "ordinals/1",
                "months/may",
                "numbers/2",
                "numbers/thousand",
                "numbers/26"
            ]
        );
        assert_eq!(
            say("en", SayAs::Time, json!("14:05")),
            ["numbers/2", "time/oh", "numbers/5", "time/pm"]
        );
        assert_eq!(
            say("en", SayAs::Time, json!("00:00")),
            ["numbers/12", "time/oclock", "time/am"]
        );
        assert_eq!(
            say("fr", SayAs::Time, json!("01:30")),
            ["numbers/1", "time/hour", "numbers/30"]
        );
        assert_eq!(
            say("fr", SayAs::Time, json!("18:00")),
            ["numbers/18", "time/hours"]
        );
    }

    #[test]
    fn every_composed_fragment_is_in_the_catalog() {
        for lang in LANGUAGES {
            let names: std::collections::BTreeSet<String> =
                catalog(lang).into_iter().map(|(n, _)| n).collect();
            let mut values = vec![
                (SayAs::Digits, json!("0123456789*#+")),
                (SayAs::Date, json!("2026-12-31")),
                (SayAs::Date, json!("2027-01-01")),
            ];
            for n in [
                0,
                7,
                19,
                21,
                71,
                80,
                99,
                100,
                101,
                999,
                1000,
                1001,
                21_000,
                999_999_999,
                -5,
            ] {
                values.push((SayAs::Number, json!(n)));
            }
            for h in 0..24 {
                for m in [0, 5, 30] {
                    values.push((SayAs::Time, json!(format!("{h:02}:{m:02}"))));
                }
            }
            for (how, v) in values {
                for f in say(lang, how, v.clone()) {
                    assert!(names.contains(&f), "{lang}: {f} missing (from {v})");
                    assert!(
                        fragments_needed(lang, how).contains(&f),
                        "{lang}: {f} not needed for {how:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn regional_variants_speak_as_their_base_language() {
        assert!(supported("fr-CA") && supported("en_GB") && !supported("de"));
    }
}
