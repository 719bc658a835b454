//! Opening-hours calendars: weekly ranges, public holidays and exceptional closures, each in
//! its own time zone.
//!
//! The interpreter never reads a clock: an `hours` step asks [`Calendar::status`] about the
//! `now` the engine passed to `resume`, converted to the calendar's zone with `chrono-tz` (so
//! daylight-saving changes are the zone database's business, not the flow's). Closures win
//! over holidays, holidays over the weekly schedule, so "closed on 24 December afternoon" works
//! even on a weekday.
//!
//! ```yaml
//! calendars:
//!   office:
//!     timezone: Europe/Paris
//!     weekly:
//!       mon-fri: "08:00-18:00"
//!       saturday: ["09:00-12:00"]
//!     holidays:
//!       - 2026-01-01
//!       - { date: 2026-05-01, name: Fête du travail }
//!     closures:
//!       - { from: "2026-12-24 14:00", to: "2026-12-26 08:00", reason: Christmas }
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::decode::{did_you_mean, report_duplicate_keys, text, Fields, Spanned};
use crate::diagnostic::{Code, Sink};
use crate::yaml::{Kind, Node};

/// Minutes since midnight, end exclusive; `24:00` is 1440.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: u16,
    pub(crate) end: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Closure {
    pub(crate) from: NaiveDateTime,
    pub(crate) to: NaiveDateTime,
    pub(crate) reason: Option<String>,
}

/// A validated calendar: ranges are ordered and non-overlapping, closures end after they start.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub(crate) name: String,
    pub(crate) tz: Tz,
    /// Index 0 is Monday.
    pub(crate) weekly: [Vec<Range>; 7],
    pub(crate) holidays: BTreeMap<NaiveDate, Option<String>>,
    pub(crate) closures: Vec<Closure>,
}

/// What a calendar says about a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoursStatus {
    Open,
    Closed,
    Holiday,
    Closure,
}

impl Calendar {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn status<Z: TimeZone>(&self, now: &DateTime<Z>) -> HoursStatus {
        let local = now.with_timezone(&self.tz).naive_local();
        if self
            .closures
            .iter()
            .any(|c| c.from <= local && local < c.to)
        {
            return HoursStatus::Closure;
        }
        if self.holidays.contains_key(&local.date()) {
            return HoursStatus::Holiday;
        }
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
        let day = local.weekday().num_days_from_monday() as usize;
        if self.weekly[day]
            .iter()
            .any(|r| r.start <= minute && minute < r.end)
        {
            HoursStatus::Open
        } else {
            HoursStatus::Closed
        }
    }
}

const DAYS: [(&str, &str); 7] = [
    ("monday", "mon"),
    ("tuesday", "tue"),
    ("wednesday", "wed"),
    ("thursday", "thu"),
    ("friday", "fri"),
    ("saturday", "sat"),
    ("sunday", "sun"),
];

fn day_index(s: &str) -> Option<usize> {
    let s = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|(long, short)| s == *long || s == *short)
}

/// Parses a time zone name, with a hint for near misses.
pub(crate) fn parse_tz(node: &Node, sink: &mut Sink) -> Option<Tz> {
    let t = text(node, "timezone", sink)?;
    match t.value.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let close = did_you_mean(&t.value, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
            sink.error(
                Code::BadValue,
                t.pos,
                format!("unknown time zone `{}`", t.value),
            )
            .hint(match close {
                Some(c) => format!("did you mean `{c}`?"),
                None => "use an IANA name such as `Europe/Paris` or `UTC`".into(),
            });
            None
        }
    }
}

/// Reads one calendar definition.
pub(crate) fn decode_calendar(
    name: &Spanned<String>,
    node: &Node,
    default_tz: Tz,
    sink: &mut Sink,
) -> Option<Calendar> {
    const FIELDS: &[&str] = &["timezone", "weekly", "holidays", "closures", "description"];
    let mut f = Fields::new(node, FIELDS, format!("calendar `{}`", name.value), sink)?;
    let errors_before = sink.error_count();
    let tz = match f.get("timezone") {
        Some(n) => parse_tz(n, sink).unwrap_or(default_tz),
        None => default_tz,
    };
    let _ = f.get("description");
    let mut weekly: [Vec<Range>; 7] = Default::default();
    match f.get("weekly") {
        Some(w) => decode_weekly(w, &mut weekly, sink),
        None => {
            sink.error(
                Code::MissingField,
                name.pos,
                format!("calendar `{}` needs a `weekly` schedule", name.value),
            )
            .hint("for example `weekly: { mon-fri: \"08:00-18:00\" }`");
        }
    }
    let mut holidays = BTreeMap::new();
    if let Some(h) = f.get("holidays") {
        decode_holidays(h, &mut holidays, sink);
    }
    let mut closures = Vec::new();
    if let Some(c) = f.get("closures") {
        decode_closures(c, &mut closures, sink);
    }
    f.finish(sink);
    (sink.error_count() == errors_before).then(|| Calendar {
        name: name.value.clone(),
        tz,
        weekly,
        holidays,
        closures,
    })
}

fn decode_weekly(node: &Node, weekly: &mut [Vec<Range>; 7], sink: &mut Sink) {
    let Some(entries) = node.as_map() else {
        sink.error(
            Code::WrongType,
            node.pos(),
            "`weekly` must map days to opening ranges",
        )
        .hint("for example `weekly: { mon-fri: \"08:00-18:00\", saturday: closed }`");
        return;
    };
    report_duplicate_keys(entries, "`weekly`", sink);
    let mut seen: [Option<u32>; 7] = [None; 7];
    for (key, value) in entries {
        let Some(days) = parse_days(key, sink) else {
            continue;
        };
        let Some(ranges) = parse_ranges(value, sink) else {
            continue;
        };
        for day in days {
            if let Some(line) = seen[day] {
                sink.error(
                    Code::BadHours,
                    key.pos(),
                    format!("{} is already given at line {line}", DAYS[day].0),
                )
                .hint("give each day once; list several ranges for a day as a list");
                continue;
            }
            seen[day] = Some(key.pos().line);
            weekly[day] = ranges.clone();
        }
    }
}

/// `monday`, `mon`, or a range `mon-fri`.
fn parse_days(key: &Node, sink: &mut Sink) -> Option<Vec<usize>> {
    let s = key.as_str().unwrap_or("");
    let parsed = match s.split_once('-') {
        Some((a, b)) => day_index(a.trim())
            .zip(day_index(b.trim()))
            .filter(|(a, b)| a <= b)
            .map(|(a, b)| (a..=b).collect()),
        None => day_index(s).map(|d| vec![d]),
    };
    if parsed.is_none() {
        let close = did_you_mean(s, DAYS.iter().map(|(long, _)| *long));
        sink.error(
            Code::BadHours,
            key.pos(),
            format!("`{s}` is not a day or a range of days"),
        )
        .hint(match close {
            Some(c) => format!("did you mean `{c}`?"),
            None => "use day names (`monday`, `mon`) or a range within a week (`mon-fri`)".into(),
        });
    }
    parsed
}

/// `"08:00-12:00"`, a list of those, or `closed`.
fn parse_ranges(node: &Node, sink: &mut Sink) -> Option<Vec<Range>> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar(..) if node.is_null() || node.as_str() == Some("closed") => {
            return Some(Vec::new())
        }
        Kind::Scalar(..) => vec![node],
        Kind::Map(_) => {
            sink.error(
                Code::WrongType,
                node.pos(),
                "opening ranges must be text like \"08:00-18:00\" or a list of them",
            )
            .hint("for example `monday: [\"08:00-12:00\", \"14:00-18:00\"]` or `monday: closed`");
            return None;
        }
    };
    let mut ranges = Vec::new();
    for item in items {
        match item.as_str() {
            Some(s) => ranges.push((parse_range(s, item, sink)?, item)),
            None => {
                sink.error(Code::BadHours, item.pos(), "empty opening range")
                    .hint("write `HH:MM-HH:MM`, or `closed` for the whole day");
                return None;
            }
        }
    }
    ranges.sort_by_key(|(r, _)| r.start);
    for pair in ranges.windows(2) {
        if pair[1].0.start < pair[0].0.end {
            sink.error(Code::BadHours, pair[1].1.pos(), "opening ranges overlap")
                .hint("merge them into one range");
            return None;
        }
    }
    Some(ranges.into_iter().map(|(r, _)| r).collect())
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_range(s: &str, node: &Node, sink: &mut Sink) -> Option<Range> {
    let parsed = s
        .split_once('-')
        .and_then(|(a, b)| Some((parse_hhmm(a)?, parse_hhmm(b)?)));
    match parsed {
        Some((start, end)) if start < end && start < 1440 => Some(Range { start, end }),
        Some(_) => {
            sink.error(
                Code::BadHours,
                node.pos(),
                format!("opening range `{s}` ends before it starts"),
            )
            .hint("ranges stay within one day: split a night range into `18:00-24:00` and `00:00-08:00` on the next day");
            None
        }
        None => {
            sink.error(
                Code::BadHours,
                node.pos(),
                format!("`{s}` is not an opening range"),
            )
            .hint("write `HH:MM-HH:MM` with a 24-hour clock, e.g. \"08:30-12:00\", or `closed`");
            None
        }
    }
}

fn parse_date(node: &Node, sink: &mut Sink) -> Option<NaiveDate> {
    let s = node.as_str().unwrap_or("");
    match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            sink.error(Code::BadHours, node.pos(), format!("`{s}` is not a date"))
                .hint("write dates as YYYY-MM-DD, e.g. 2026-05-01");
            None
        }
    }
}

fn parse_datetime(node: &Node, sink: &mut Sink) -> Option<NaiveDateTime> {
    let s = node.as_str().unwrap_or("").trim();
    // "24:00" ends a day, as in weekly ranges.
    let end_of_day = [" 24:00", "T24:00"].iter().find_map(|suffix| {
        s.strip_suffix(suffix)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let parsed = end_of_day
        .map(Ok)
        .unwrap_or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    if parsed.is_none() {
        sink.error(
            Code::BadHours,
            node.pos(),
            format!("`{s}` is not a date and time"),
        )
        .hint("write \"YYYY-MM-DD HH:MM\" (local time of the calendar), e.g. \"2026-12-24 14:00\"");
    }
    parsed
}

fn decode_holidays(node: &Node, out: &mut BTreeMap<NaiveDate, Option<String>>, sink: &mut Sink) {
    let Some(items) = node.as_seq() else {
        sink.error(
            Code::WrongType,
            node.pos(),
            "`holidays` must be a list of dates",
        )
        .hint("for example `holidays: [2026-05-01, { date: 2026-07-14, name: Fête nationale }]`");
        return;
    };
    for item in items {
        let (date, name) = if item.as_map().is_some() {
            const FIELDS: &[&str] = &["date", "name"];
            let Some(mut f) = Fields::new(item, FIELDS, "holiday", sink) else {
                continue;
            };
            let date = f
                .require("date", item.pos(), sink)
                .and_then(|d| parse_date(d, sink));
            let name = f.get("name").and_then(|n| n.as_str()).map(str::to_owned);
            f.finish(sink);
            (date, name)
        } else {
            (parse_date(item, sink), None)
        };
        if let Some(date) = date {
            out.insert(date, name);
        }
    }
}

fn decode_closures(node: &Node, out: &mut Vec<Closure>, sink: &mut Sink) {
    let Some(items) = node.as_seq() else {
        sink.error(
            Code::WrongType,
            node.pos(),
            "`closures` must be a list of { from, to }",
        )
        .hint("for example `closures: [{ from: \"2026-12-24 14:00\", to: \"2026-12-26 08:00\" }]`");
        return;
    };
    for item in items {
        const FIELDS: &[&str] = &["from", "to", "reason"];
        let Some(mut f) = Fields::new(item, FIELDS, "closure", sink) else {
            continue;
        };
        let from = f
            .require("from", item.pos(), sink)
            .and_then(|n| parse_datetime(n, sink));
        let to_node = f.require("to", item.pos(), sink);
        let to = to_node.and_then(|n| parse_datetime(n, sink));
        let reason = f.get("reason").and_then(|n| n.as_str()).map(str::to_owned);
        f.finish(sink);
        if let (Some(from), Some(to), Some(to_node)) = (from, to, to_node) {
            if to <= from {
                sink.error(
                    Code::BadHours,
                    to_node.pos(),
                    "closure ends before it starts",
                )
                .hint("`to` must be later than `from` (both in the calendar's local time)");
            } else {
                out.push(Closure { from, to, reason });
            }
        }
    }
}

/// Weekday name used in `now.weekday` and by `say`.
pub(crate) fn weekday_name(day: Weekday) -> &'static str {
    DAYS[day.num_days_from_monday() as usize].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::path::PathBuf;

    fn calendar(src: &str) -> Result<Calendar, Vec<crate::Diagnostic>> {
        let root = crate::yaml::parse(src).ok().flatten().expect("yaml");
        let mut sink = Sink::new(PathBuf::from("t.yaml"));
        let name = Spanned {
            value: "office".to_owned(),
            pos: root.pos(),
        };
        match decode_calendar(&name, &root, Tz::UTC, &mut sink) {
            Some(c) if !sink.has_errors() => Ok(c),
            _ => Err(sink.into_sorted()),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("date")
            .with_timezone(&Utc)
    }

    const OFFICE: &str = r#"
timezone: Europe/Paris
weekly:
  mon-fri: ["08:00-12:00", "13:30-18:00"]
  saturday: "09:00-12:00"
holidays:
  - 2026-05-01
  - { date: 2026-07-14, name: Fête nationale }
closures:
  - { from: "2026-12-24 14:00", to: "2026-12-26 00:00", reason: Christmas }
"#;

    #[test]
    fn weekly_ranges_in_the_calendar_zone() {
        let c = calendar(OFFICE).expect("valid");
        // Tuesday 10 March 2026, 10:00 in Paris is 09:00 UTC.
        assert_eq!(c.status(&at("2026-03-10T09:00:00Z")), HoursStatus::Open);
        // 12:30 Paris: lunch break.
        assert_eq!(c.status(&at("2026-03-10T11:30:00Z")), HoursStatus::Closed);
        // 07:30 UTC is 08:30 Paris in winter...
        assert_eq!(c.status(&at("2026-03-10T07:30:00Z")), HoursStatus::Open);
        // ...and 06:30 UTC is 08:30 Paris in summer (CEST).
        assert_eq!(c.status(&at("2026-06-09T06:30:00Z")), HoursStatus::Open);
        assert_eq!(c.status(&at("2026-06-09T05:30:00Z")), HoursStatus::Closed);
        // Sunday.
        assert_eq!(c.status(&at("2026-03-08T10:00:00Z")), HoursStatus::Closed);
        // Saturday morning.
        assert_eq!(c.status(&at("2026-03-07T09:00:00Z")), HoursStatus::Open);
    }

    #[test]
    fn closures_beat_holidays_beat_weekly() {
        let c = calendar(OFFICE).expect("valid");
        assert_eq!(c.status(&at("2026-05-01T09:00:00Z")), HoursStatus::Holiday);
        assert_eq!(c.status(&at("2026-07-14T09:00:00Z")), HoursStatus::Holiday);
        assert_eq!(c.status(&at("2026-12-24T14:00:00Z")), HoursStatus::Closure);
        assert_eq!(c.status(&at("2026-12-24T10:00:00Z")), HoursStatus::Open);
    }

    #[test]
    fn end_of_day_is_2400() {
        let c = calendar("weekly: { mon-sun: \"00:00-24:00\" }").expect("valid");
        assert_eq!(c.status(&at("2026-03-10T23:59:00Z")), HoursStatus::Open);
    }

    #[test]
    fn bad_ranges_are_reported_where_they_are() {
        let errs = calendar("weekly:\n  monday: \"18:00-08:00\"\n").expect_err("reversed");
        assert_eq!(
            (errs[0].line, errs[0].column, errs[0].code),
            (2, 11, Code::BadHours)
        );
        let errs = calendar("weekly:\n  monday: \"8h-18h\"\n").expect_err("format");
        assert_eq!(errs[0].code, Code::BadHours);
        let errs =
            calendar("weekly:\n  mon-fri: \"08:00-12:00\"\n  friday: closed\n").expect_err("twice");
        assert_eq!((errs[0].line, errs[0].column), (3, 3));
        let errs = calendar("weekly:\n  munday: closed\n").expect_err("typo");
        assert_eq!(errs[0].hint.as_deref(), Some("did you mean `monday`?"));
        let errs = calendar("weekly:\n  monday: [\"08:00-12:00\", \"11:00-13:00\"]\n")
            .expect_err("overlap");
        assert_eq!(errs[0].code, Code::BadHours);
    }

    #[test]
    fn bad_time_zone_suggests_a_real_one() {
        let errs = calendar("timezone: Europe/Pariss\nweekly: {}\n").expect_err("tz");
        assert_eq!(
            errs[0].hint.as_deref(),
            Some("did you mean `Europe/Paris`?")
        );
    }
}
