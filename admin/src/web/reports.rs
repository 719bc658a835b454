//! Reports: per queue and interval (the hours of today, the days of the last week, or the
//! weeks of the last quarter, in the engine's zone), the calls offered, answered and
//! abandoned, the service level, ASA and AHT, from the statistics route's rows
//! (`routes::stats`). Above the table, a bar chart drawn here as SVG (no charting library,
//! no script): one bar per interval, as high as the calls offered, split into answered,
//! abandoned and the rest. The CSV export is the API's own (`format=csv`), linked.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use engine::acd::report::ReportQuery;
use serde::Deserialize;

use super::html::{escape, list_head, Layout};
use super::i18n::{day_of, day_start, duration, Lang};
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::stats::StatsRow;
use crate::state::AdminState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    /// One queue; default: every queue.
    pub queue: Option<String>,
    /// `hour` (default: today by the hour), `day` (the last 7 days), `week` (the last 12
    /// weeks).
    pub interval: Option<String>,
}

/// An interval length and the period it covers, both ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
}

impl Interval {
    fn parse(v: Option<&str>) -> Result<Interval, ApiError> {
        match v.unwrap_or("hour") {
            "hour" => Ok(Interval::Hour),
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            _ => Err(ApiError::bad("interval", "hour, day or week")),
        }
    }

    fn code(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }

    fn minutes(self) -> i64 {
        match self {
            Interval::Hour => 60,
            Interval::Day => 24 * 60,
            Interval::Week => 7 * 24 * 60,
        }
    }

    /// The start of the period: midnight in `zone`, today, 6 days ago, or 11 weeks ago
    /// (the current interval is the last one).
    pub fn since(self, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        let back = match self {
            Interval::Hour => 0,
            Interval::Day => 6,
            Interval::Week => 7 * 11,
        };
        day_start(zone, day_of(zone, now) - Duration::days(back))
            .unwrap_or(now - Duration::days(back + 1))
    }

    /// How an interval's start is labelled on the chart and in the table. Days and weeks
    /// are fixed lengths from a local midnight, so after a clock change their starts fall an
    /// hour either side of midnight: the label is the date two hours later.
    fn label(self, l: Lang, zone: Tz, at: DateTime<Utc>) -> String {
        let at = match self {
            Interval::Hour => at,
            Interval::Day | Interval::Week => at + Duration::hours(2),
        };
        let local = at.with_timezone(&zone);
        match (self, l) {
            (Interval::Hour, Lang::Fr) => local.format("%Hh").to_string(),
            (Interval::Hour, Lang::En) => local.format("%H:00").to_string(),
            (_, Lang::Fr) => local.format("%d/%m").to_string(),
            (_, Lang::En) => local.format("%m-%d").to_string(),
        }
    }
}

/// The totals of one interval over the queues shown.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub offered: u32,
    pub answered: u32,
    pub abandoned: u32,
}

/// The rows summed per interval: `count` intervals from `since`, each `minutes` long; a
/// row belongs to the interval its start falls in.
pub fn buckets(rows: &[StatsRow], since: DateTime<Utc>, minutes: i64, count: usize) -> Vec<Bucket> {
    let mut out = vec![Bucket::default(); count];
    for r in rows {
        let index = (r.from - since).num_minutes().div_euclid(minutes.max(1));
        let Some(b) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        b.offered = b.offered.saturating_add(r.offered);
        b.answered = b.answered.saturating_add(r.answered);
        b.abandoned = b.abandoned.saturating_add(r.abandoned);
    }
    out
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 240;
const LEFT: u32 = 40;
const BOTTOM: u32 = 24;
const TOP: u32 = 12;

/// The bar chart: one stacked bar per interval (answered at the bottom, then abandoned,
/// then the calls neither answered nor abandoned yet or overflowed), scaled to the busiest
/// interval. Colours are presentation attributes (the CSP allows no inline style).
pub fn chart(l: Lang, labels: &[String], buckets: &[Bucket]) -> String {
    let max = buckets.iter().map(|b| b.offered).max().unwrap_or(0).max(1);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = u32::try_from(buckets.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / n;
    let bar = (slot * 7 / 10).max(1);
    let y = |v: u32| -> u32 { plot_h * v / max };
    let total: u32 = buckets.iter().map(|b| b.offered).sum();
    let mut out = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"chart-title\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         data-offered-total=\"{total}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">{title}</title>\
         <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#555\"/>\
         <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">{max}</text>\
         <text x=\"{lx}\" y=\"{base}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">0</text>",
        title = escape(l.t("rep.chart")),
        base = TOP + plot_h,
        lx = LEFT - 4,
        ty = TOP + 10,
    );
    let every = (n / 12).max(1);
    for (i, (b, label)) in (0u32..).zip(buckets.iter().zip(labels)) {
        let x = LEFT + i * slot + (slot - bar) / 2;
        let answered = y(b.answered.min(b.offered));
        let abandoned = y(b.abandoned.min(b.offered - b.answered.min(b.offered)));
        let offered = y(b.offered);
        let rest = offered.saturating_sub(answered + abandoned);
        let base = TOP + plot_h;
        out.push_str(&format!(
            "<g class=\"bucket\" data-label=\"{label}\" data-offered=\"{o}\" \
             data-answered=\"{a}\" data-abandoned=\"{ab}\"><title>{label}: {o} {to}, {a} {ta}, \
             {ab} {tab}</title>",
            label = escape(label),
            o = b.offered,
            a = b.answered,
            ab = b.abandoned,
            to = escape(l.t("rep.offered")),
            ta = escape(l.t("rep.answered")),
            tab = escape(l.t("rep.abandoned")),
        ));
        let mut top = base;
        for (h, fill) in [
            (answered, "#2e7d32"),
            (abandoned, "#c62828"),
            (rest, "#9e9e9e"),
        ] {
            if h > 0 {
                top -= h;
                out.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{top}\" width=\"{bar}\" height=\"{h}\" fill=\"{fill}\"/>"
                ));
            }
        }
        if i % every == 0 {
            out.push_str(&format!(
                "<text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\" font-size=\"11\" \
                 fill=\"#333\">{label}</text>",
                cx = x + bar / 2,
                ly = HEIGHT - 8,
                label = escape(label),
            ));
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// `from`..`to` as the statistics route reads them (`Z`, no `+` to escape in a URL).
fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    q: Result<Query<ReportsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let interval = Interval::parse(q.interval.as_deref())?;
    let axum::Json(queues) = crate::routes::queues::queues(State(state.clone())).await?;
    let queue = match q.queue.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(id) if queues.iter().any(|v| v.id == id) => Some(id.to_string()),
        Some(_) => return Err(ApiError::bad("queue", "not a configured queue")),
    };
    let now = Utc::now();
    let since = interval.since(reader.zone, now);
    let minutes = interval.minutes();
    let report = ReportQuery {
        queue: queue.clone(),
        since,
        until: now,
        interval: Some(std::time::Duration::from_secs(
            u64::try_from(minutes * 60).unwrap_or(3600),
        )),
        threshold: None,
    };
    let rows: Vec<StatsRow> = match state.engine().statistics(&report).await {
        Ok(rows) => rows.into_iter().map(StatsRow::from).collect(),
        Err(e) => return Err(state.handle_error(e).await),
    };
    let count = usize::try_from((now - since).num_minutes() / minutes + 1).unwrap_or(1);
    let starts: Vec<DateTime<Utc>> = (0..count)
        .map(|i| since + Duration::minutes(minutes * i64::try_from(i).unwrap_or(0)))
        .collect();
    let l = reader.lang;
    let labels: Vec<String> = starts
        .iter()
        .map(|s| interval.label(l, reader.zone, *s))
        .collect();
    let sums = buckets(&rows, since, minutes, count);

    let mut csv = format!(
        "/api/v1/statistics?format=csv&from={}&to={}&interval_minutes={minutes}",
        instant(since),
        instant(now)
    );
    if let Some(queue) = &queue {
        csv.push_str(&format!("&queue={queue}"));
    }
    let mut main = format!("<h1>{}</h1>", escape(l.t("rep.title")));
    main.push_str(&filters(l, &queues, queue.as_deref(), interval));
    main.push_str(&format!(
        "<figure class=\"report-chart\">{svg}<figcaption><span class=\"key key-answered\">{a}</span> \
         <span class=\"key key-abandoned\">{ab}</span> <span class=\"key key-other\">{o}</span>\
         </figcaption></figure><p><a id=\"rep-csv\" href=\"{csv}\" download>{export}</a></p>",
        svg = chart(l, &labels, &sums),
        a = escape(l.t("rep.answered")),
        ab = escape(l.t("rep.abandoned")),
        o = escape(l.t("rep.other")),
        csv = escape(&csv),
        export = escape(l.t("rep.csv")),
    ));
    main.push_str(&table(l, reader.zone, interval, &rows));
    let layout = Layout::new(&reader, "/ui/reports", l.t("rep.title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

fn filters(
    l: Lang,
    queues: &[crate::routes::queues::QueueView],
    queue: Option<&str>,
    interval: Interval,
) -> String {
    let selected = |on: bool| if on { " selected" } else { "" };
    let mut options = format!(
        "<option value=\"\"{}>{}</option>",
        selected(queue.is_none()),
        escape(l.t("rep.all_queues"))
    );
    for v in queues {
        options.push_str(&format!(
            "<option value=\"{id}\"{sel}>{name}</option>",
            id = escape(&v.id),
            sel = selected(queue == Some(v.id.as_str())),
            name = escape(&v.name),
        ));
    }
    let intervals: String = [
        (Interval::Hour, "rep.by_hour"),
        (Interval::Day, "rep.by_day"),
        (Interval::Week, "rep.by_week"),
    ]
    .iter()
    .map(|(i, key)| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            i.code(),
            selected(*i == interval),
            escape(l.t(key))
        )
    })
    .collect();
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/reports\">\
         <label for=\"rep-queue\">{q}</label><select id=\"rep-queue\" name=\"queue\">{options}</select>\
         <label for=\"rep-interval\">{i}</label>\
         <select id=\"rep-interval\" name=\"interval\">{intervals}</select>\
         <button type=\"submit\">{show}</button></form>",
        q = escape(l.t("rep.queue")),
        i = escape(l.t("rep.interval")),
        show = escape(l.t("rep.show")),
    )
}

fn table(l: Lang, zone: Tz, interval: Interval, rows: &[StatsRow]) -> String {
    if rows.is_empty() {
        return format!("<p>{}</p>", escape(l.t("rep.none")));
    }
    let mut out = list_head(
        l,
        &[
            "rep.queue",
            "rep.from",
            "rep.offered",
            "rep.answered",
            "rep.abandoned",
            "rep.service_level",
            "rep.asa",
            "rep.aht",
        ],
    );
    let opt = |v: Option<u64>| v.map(duration).unwrap_or_default();
    for r in rows {
        out.push_str(&format!(
            "<tr data-queue=\"{queue}\" data-offered=\"{offered}\"><th scope=\"row\">{queue}</th>\
             <td>{from}</td><td class=\"num\">{offered}</td><td class=\"num\">{answered}</td>\
             <td class=\"num\">{abandoned}</td><td class=\"num\">{sl}</td>\
             <td class=\"num\">{asa}</td><td class=\"num\">{aht}</td></tr>",
            queue = escape(&r.queue),
            from = escape(&interval.label(l, zone, r.from)),
            offered = r.offered,
            answered = r.answered,
            abandoned = r.abandoned,
            sl = r.service_level.map(|s| l.percent(s)).unwrap_or_default(),
            asa = opt(r.asa_ms),
            aht = opt(r.aht_ms),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(from: DateTime<Utc>, offered: u32, answered: u32, abandoned: u32) -> StatsRow {
        StatsRow {
            queue: "support".into(),
            from,
            to: from + Duration::hours(1),
            offered,
            answered,
            answered_within_sl: answered,
            abandoned,
            short_abandoned: 0,
            overflowed: 0,
            callbacks_requested: 0,
            callbacks_failed: 0,
            handled: answered,
            service_level: None,
            asa_ms: None,
            aht_ms: None,
            longest_wait_ms: None,
        }
    }

    #[test]
    fn rows_of_several_queues_add_up_in_the_interval_they_start_in() {
        let since = DateTime::from_timestamp(1_796_598_000, 0).expect("t");
        let rows = [
            row(since, 3, 2, 1),
            row(since + Duration::hours(2), 4, 4, 0),
            row(since + Duration::hours(2), 1, 0, 1),
            row(since - Duration::hours(1), 9, 9, 0),
            row(since + Duration::hours(9), 9, 9, 0),
        ];
        let b = buckets(&rows, since, 60, 3);
        let offered: Vec<u32> = b.iter().map(|b| b.offered).collect();
        assert_eq!(offered, [3, 0, 5]);
        assert_eq!((b[2].answered, b[2].abandoned), (4, 1));
    }

    #[test]
    fn the_chart_scales_bars_to_the_busiest_interval_and_escapes_labels() {
        let b = [
            Bucket {
                offered: 4,
                answered: 2,
                abandoned: 1,
            },
            Bucket {
                offered: 2,
                answered: 2,
                abandoned: 0,
            },
        ];
        let labels = ["<9h>".to_string(), "10h".to_string()];
        let svg = chart(Lang::Fr, &labels, &b);
        assert!(svg.contains("data-offered-total=\"6\""), "{svg}");
        assert!(svg.contains("&lt;9h&gt;") && !svg.contains("<9h>"));
        // The plot is 204 high: 2 of 4 answered is 102, 1 abandoned 51, 1 other 51.
        assert!(svg.contains("height=\"102\" fill=\"#2e7d32\""), "{svg}");
        assert!(svg.contains("height=\"51\" fill=\"#c62828\""), "{svg}");
        assert!(svg.contains("height=\"51\" fill=\"#9e9e9e\""), "{svg}");
        assert!(!svg.contains("style="));
    }

    #[test]
    fn periods_start_at_midnight_in_the_zone() {
        let paris = chrono_tz::Europe::Paris;
        // 7 December 2026 12:00 UTC: midnight in Paris was 23:00 UTC the day before.
        let now = DateTime::from_timestamp(1_796_644_800, 0).expect("t");
        let hour = Interval::Hour.since(paris, now);
        assert_eq!(hour.format("%m-%d %H:%M").to_string(), "12-06 23:00");
        let day = Interval::Day.since(paris, now);
        assert_eq!(day.format("%m-%d %H:%M").to_string(), "11-30 23:00");
        assert_eq!(Interval::Hour.label(Lang::Fr, paris, hour), "00h");
        assert_eq!(Interval::Day.label(Lang::En, paris, day), "12-01");
        // In New York (UTC-5) the same instant's day started at 05:00 UTC, and the first
        // hour is labelled in New York time.
        let new_york = chrono_tz::America::New_York;
        let hour = Interval::Hour.since(new_york, now);
        assert_eq!(hour.format("%m-%d %H:%M").to_string(), "12-07 05:00");
        assert_eq!(Interval::Hour.label(Lang::En, new_york, hour), "00:00");
        let week = Interval::Week.since(new_york, now);
        assert_eq!(week.format("%m-%d %H:%M").to_string(), "09-21 04:00");
        assert!(Interval::parse(Some("month")).is_err());
        // Days counted from midnight on 24 October 2026 (UTC+2): after the clocks went back
        // on the 25th, the third day starts at 23:00 local on the 25th and is the 26th.
        let before = DateTime::from_timestamp(1_792_792_800, 0).expect("t");
        assert_eq!(before.format("%m-%d %H:%M").to_string(), "10-23 22:00");
        let third = before + Duration::days(2);
        assert_eq!(
            third.with_timezone(&paris).format("%d %H").to_string(),
            "25 23"
        );
        assert_eq!(Interval::Day.label(Lang::En, paris, third), "10-26");
        assert_eq!(Interval::Day.label(Lang::Fr, paris, third), "26/10");
    }
}
