//! French: "deux mille soixante et onze", "vendredi premier mai deux mille vingt-six",
//! "dix-huit heures trente".

use chrono::{Datelike, NaiveDate};

use super::{frag, groups, weekday_and_month};

const UNITS: [&str; 17] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
    "douze", "treize", "quatorze", "quinze", "seize",
];
const TENS: [&str; 7] = [
    "",
    "dix",
    "vingt",
    "trente",
    "quarante",
    "cinquante",
    "soixante",
];

/// 0..=99 in words, with the French irregularities (et un, soixante-dix, quatre-vingts).
fn words(n: usize) -> String {
    match n {
        0..=16 => UNITS[n].to_owned(),
        17..=19 => format!("dix-{}", UNITS[n - 10]),
        20..=69 => {
            let (t, u) = (n / 10, n % 10);
            match u {
                0 => TENS[t].to_owned(),
                1 => format!("{} et un", TENS[t]),
                _ => format!("{}-{}", TENS[t], UNITS[u]),
            }
        }
        70..=79 => match n - 60 {
            11 => "soixante et onze".to_owned(),
            r => format!("soixante-{}", words(r)),
        },
        80 => "quatre-vingts".to_owned(),
        _ => format!("quatre-vingt-{}", words(n - 80)),
    }
}

pub(super) fn catalog() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (d, word) in UNITS.iter().take(10).enumerate() {
        out.push((format!("digits/{d}"), (*word).to_owned()));
    }
    out.push(("digits/star".into(), "étoile".into()));
    out.push(("digits/hash".into(), "dièse".into()));
    out.push(("digits/plus".into(), "plus".into()));
    for n in 0..100 {
        out.push((frag(n), words(n)));
    }
    for (name, text) in [
        ("hundred", "cent"),
        ("thousand", "mille"),
        ("million", "million"),
        ("millions", "millions"),
        ("minus", "moins"),
    ] {
        out.push((frag(name), text.to_owned()));
    }
    for (day, text) in [
        ("monday", "lundi"),
        ("tuesday", "mardi"),
        ("wednesday", "mercredi"),
        ("thursday", "jeudi"),
        ("friday", "vendredi"),
        ("saturday", "samedi"),
        ("sunday", "dimanche"),
    ] {
        out.push((format!("days/{day}"), text.to_owned()));
    }
    for (month, text) in [
        ("january", "janvier"),
        ("february", "février"),
        ("march", "mars"),
        ("april", "avril"),
        ("may", "mai"),
        ("june", "juin"),
        ("july", "juillet"),
        ("august", "août"),
        ("september", "septembre"),
        ("october", "octobre"),
        ("november", "novembre"),
        ("december", "décembre"),
    ] {
        out.push((format!("months/{month}"), text.to_owned()));
    }
    out.push(("ordinals/1".into(), "premier".into()));
    out.push(("time/hour".into(), "heure".into()));
    out.push(("time/hours".into(), "heures".into()));
    out
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
        out.push(frag(if millions > 1 { "millions" } else { "million" }));
    }
    // "mille", never "un mille".
    if thousands > 1 {
        out.extend(below_thousand(thousands));
    }
    if thousands > 0 {
        out.push(frag("thousand"));
    }
    out.extend(below_thousand(rest));
    out
}

/// 1..=999 (nothing for 0); "cent", never "un cent".
fn below_thousand(n: i64) -> Vec<String> {
    let mut out = Vec::new();
    if n >= 200 {
        out.push(frag(n / 100));
    }
    if n >= 100 {
        out.push(frag("hundred"));
    }
    if n % 100 > 0 {
        out.push(frag(n % 100));
    }
    out
}

pub(super) fn date(date: NaiveDate) -> Vec<String> {
    let (day, month) = weekday_and_month(date);
    let day_number = match date.day() {
        1 => "ordinals/1".to_owned(),
        d => frag(d),
    };
    let mut out = vec![day, day_number, month];
    out.extend(number(i64::from(date.year())));
    out
}

pub(super) fn time(hour: u32, minute: u32) -> Vec<String> {
    let mut out = vec![
        frag(hour),
        if hour <= 1 { "time/hour" } else { "time/hours" }.to_owned(),
    ];
    if minute > 0 {
        out.push(frag(minute));
    }
    out
}
