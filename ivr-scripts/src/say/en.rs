//! English: "one thousand two hundred five", "Tuesday, March tenth, two thousand twenty-six",
//! "two oh five p.m.".

use chrono::{Datelike, NaiveDate};

use super::{frag, groups, weekday_and_month};

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn words(n: usize) -> String {
    match n {
        0..=19 => ONES[n].to_owned(),
        _ if n % 10 == 0 => TENS[n / 10].to_owned(),
        _ => format!("{}-{}", TENS[n / 10], ONES[n % 10]),
    }
}

fn ordinal_words(n: usize) -> String {
    const SPECIAL: [&str; 20] = [
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    match n {
        0..=19 => SPECIAL[n].to_owned(),
        20 => "twentieth".into(),
        30 => "thirtieth".into(),
        _ => format!("{}-{}", TENS[n / 10], SPECIAL[n % 10]),
    }
}

pub(super) fn catalog() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (d, word) in ONES.iter().take(10).enumerate() {
        out.push((format!("digits/{d}"), (*word).to_owned()));
    }
    out.push(("digits/star".into(), "star".into()));
    out.push(("digits/hash".into(), "hash".into()));
    out.push(("digits/plus".into(), "plus".into()));
    for n in 0..100 {
        out.push((frag(n), words(n)));
    }
    for (name, text) in [
        ("hundred", "hundred"),
        ("thousand", "thousand"),
        ("million", "million"),
        ("minus", "minus"),
    ] {
        out.push((frag(name), text.to_owned()));
    }
    for day in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        out.push((format!("days/{day}"), capitalise(day)));
    }
    for month in [
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
    ] {
        out.push((format!("months/{month}"), capitalise(month)));
    }
    for n in 1..=31 {
        out.push((format!("ordinals/{n}"), ordinal_words(n)));
    }
    for (name, text) in [
        ("oclock", "o'clock"),
        ("oh", "oh"),
        ("am", "A M"),
        ("pm", "P M"),
    ] {
        out.push((format!("time/{name}"), text.to_owned()));
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub(super) fn number(n: i64) -> Vec<String> {
    if n < 0 {
        let mut out = vec![frag("minus")];
        out.extend(number(-n));
        return out;
    }
    if n == 0 {
        return vec![frag(0)];
    }
    let (millions, thousands, rest) = groups(n);
    let mut out = Vec::new();
    if millions > 0 {
        out.extend(below_thousand(millions));
        out.push(frag("million"));
    }
    if thousands > 0 {
        out.extend(below_thousand(thousands));
        out.push(frag("thousand"));
    }
    out.extend(below_thousand(rest));
    out
}

/// 1..=999 (nothing for 0).
fn below_thousand(n: i64) -> Vec<String> {
    let mut out = Vec::new();
    if n >= 100 {
        out.push(frag(n / 100));
        out.push(frag("hundred"));
    }
    if n % 100 > 0 {
        out.push(frag(n % 100));
    }
    out
}

pub(super) fn date(date: NaiveDate) -> Vec<String> {
    let (day, month) = weekday_and_month(date);
    let mut out = vec![day, month, format!("ordinals/{}", date.day())];
    out.extend(number(i64::from(date.year())));
    out
}

pub(super) fn time(hour: u32, minute: u32) -> Vec<String> {
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = vec![frag(h12)];
    match minute {
        0 => out.push("time/oclock".into()),
        1..=9 => {
            out.push("time/oh".into());
            out.push(frag(minute));
        }
        _ => out.push(frag(minute)),
    }
    out.push(if hour < 12 { "time/am" } else { "time/pm" }.into());
    out
}
