//! The audit log (admin, auditor): one day's entries in the engine's zone, newest first,
//! filtered by who (a part of the actor), what (a part of the action) and the outcome; the
//! CSV export is the API's own for the same day.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::html::{escape, list_head, Layout};
use super::i18n::{day_of, day_start, Lang};
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::audit::AuditView;
use crate::state::AdminState;

/// The most entries one page reads (the API's own limit).
const MAX_READ: usize = 10_000;
/// The most entries one page shows.
const MAX_SHOWN: usize = 500;
const OUTCOMES: [&str; 4] = ["done", "denied", "failed", "requested"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// `YYYY-MM-DD` in the engine's zone; default: today.
    pub day: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

impl AuditFilter {
    fn text(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn keeps(&self, e: &AuditView) -> bool {
        let has = |field: &str, part: Option<&str>| {
            part.is_none_or(|p| field.to_lowercase().contains(&p.to_lowercase()))
        };
        has(&e.actor, Self::text(&self.actor))
            && has(&e.action, Self::text(&self.action))
            && Self::text(&self.outcome).is_none_or(|o| e.outcome == o)
    }
}

/// Midnight to midnight of `day` in `zone`.
pub fn day_bounds(zone: Tz, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((
        day_start(zone, day)?,
        day_start(zone, day + Duration::days(1))?,
    ))
}

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    q: Result<Query<AuditFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(f) = q?;
    let l = reader.lang;
    let today = day_of(reader.zone, Utc::now());
    let day = match AuditFilter::text(&f.day) {
        None => today,
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::bad("day", "a date as YYYY-MM-DD"))?,
    };
    if let Some(o) = AuditFilter::text(&f.outcome) {
        if !OUTCOMES.contains(&o) {
            return Err(ApiError::bad(
                "outcome",
                "done, denied, failed or requested",
            ));
        }
    }
    let (from, to) =
        day_bounds(reader.zone, day).ok_or_else(|| ApiError::bad("day", "a date as YYYY-MM-DD"))?;
    let entries = engine::audit::read_between(state.storage(), from, Some(to), MAX_READ)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let truncated = entries.len() >= MAX_READ;
    let mut kept: Vec<AuditView> = entries
        .into_iter()
        .map(AuditView::from)
        .filter(|e| f.keeps(e))
        .collect();
    kept.reverse();
    let total = kept.len();
    kept.truncate(MAX_SHOWN);

    let mut main = format!("<h1>{}</h1>", escape(l.t("users.audit_title")));
    main.push_str(&form(l, &f, day));
    let csv = format!(
        "/api/v1/audit?format=csv&limit={MAX_READ}&from={}&to={}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    main.push_str(&format!(
        "<p><span id=\"audit-count\" data-count=\"{total}\">{total} {entries}</span> · \
         <a href=\"{csv}\" download>{export}</a></p>",
        entries = escape(l.t("users.audit_entries")),
        csv = escape(&csv),
        export = escape(l.t("users.audit_csv")),
    ));
    if truncated {
        // The day holds more than one read: what is shown is its beginning only.
        main.push_str(&format!(
            "<p id=\"audit-truncated\" class=\"error\">{}</p>",
            escape(l.t("users.audit_truncated"))
        ));
    }
    main.push_str(&list(l, reader.zone, &kept));
    let layout = Layout::new(&reader, "/ui/audit", l.t("users.audit_title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

fn outcome_label(l: Lang, o: &str) -> &'static str {
    match o {
        "done" => l.t("users.audit_done"),
        "denied" => l.t("users.audit_denied"),
        "failed" => l.t("users.audit_failed"),
        "requested" => l.t("users.audit_requested"),
        _ => "?",
    }
}

fn form(l: Lang, f: &AuditFilter, day: NaiveDate) -> String {
    let value = |v: &Option<String>| escape(AuditFilter::text(v).unwrap_or(""));
    let mut outcomes = format!(
        "<option value=\"\">{}</option>",
        escape(l.t("users.audit_any"))
    );
    for o in OUTCOMES {
        let sel = if AuditFilter::text(&f.outcome) == Some(o) {
            " selected"
        } else {
            ""
        };
        outcomes.push_str(&format!(
            "<option value=\"{o}\"{sel}>{}</option>",
            escape(outcome_label(l, o))
        ));
    }
    format!(
        "<form id=\"audit-filter\" class=\"filters\" method=\"get\" action=\"/ui/audit\">\
         <label for=\"audit-day\">{dl}</label>\
         <input id=\"audit-day\" name=\"day\" type=\"date\" value=\"{day}\">\
         <label for=\"audit-actor\">{al}</label>\
         <input id=\"audit-actor\" name=\"actor\" value=\"{actor}\">\
         <label for=\"audit-action\">{wl}</label>\
         <input id=\"audit-action\" name=\"action\" value=\"{action}\">\
         <label for=\"audit-outcome\">{ol}</label>\
         <select id=\"audit-outcome\" name=\"outcome\">{outcomes}</select>\
         <button type=\"submit\">{show}</button></form>",
        dl = escape(l.t("users.audit_day")),
        day = day.format("%Y-%m-%d"),
        al = escape(l.t("users.audit_actor")),
        actor = value(&f.actor),
        wl = escape(l.t("users.audit_action")),
        action = value(&f.action),
        ol = escape(l.t("users.audit_outcome")),
        show = escape(l.t("users.audit_show")),
    )
}

fn list(l: Lang, zone: Tz, entries: &[AuditView]) -> String {
    if entries.is_empty() {
        return format!("<p>{}</p>", escape(l.t("users.audit_none")));
    }
    let mut out = list_head(
        l,
        &[
            "users.audit_at",
            "users.audit_actor",
            "users.audit_action",
            "users.audit_target",
            "users.audit_origin",
            "users.audit_outcome",
            "users.audit_detail",
        ],
    );
    for e in entries {
        out.push_str(&format!(
            "<tr data-outcome=\"{outcome}\"><td class=\"num\">{at}</td><td>{actor}</td>\
             <td><code>{action}</code></td><td>{target}</td><td>{origin}</td>\
             <td>{label}</td><td>{detail}</td></tr>",
            outcome = escape(&e.outcome),
            at = l.time(zone, e.at),
            actor = escape(&e.actor),
            action = escape(&e.action),
            target = escape(&e.target),
            origin = escape(&e.origin),
            label = escape(outcome_label(l, &e.outcome)),
            detail = escape(e.detail.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str, action: &str, outcome: &str) -> AuditView {
        AuditView {
            at: Utc::now(),
            node: "1".into(),
            actor: actor.into(),
            action: action.into(),
            target: String::new(),
            origin: String::new(),
            outcome: outcome.into(),
            detail: None,
        }
    }

    #[test]
    fn filters_match_parts_of_who_and_what_and_the_whole_outcome() {
        let f = AuditFilter {
            actor: Some("ADA".into()),
            action: Some("/api/v1/users".into()),
            outcome: Some("done".into()),
            ..AuditFilter::default()
        };
        assert!(f.keeps(&entry("user:ada", "POST /api/v1/users", "done")));
        assert!(!f.keeps(&entry("user:ada", "POST /api/v1/users", "denied")));
        assert!(!f.keeps(&entry("user:sofia", "POST /api/v1/users", "done")));
        assert!(!f.keeps(&entry("user:ada", "GET /api/v1/audit", "done")));
        assert!(AuditFilter::default().keeps(&entry("key:x", "GET /", "failed")));
    }

    #[test]
    fn a_day_is_midnight_to_midnight_in_the_zone_even_across_a_clock_change() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 25).expect("date");
        let (from, to) = day_bounds(chrono_tz::Europe::Paris, day).expect("bounds");
        assert_eq!(from.format("%m-%d %H:%M").to_string(), "10-24 22:00");
        assert_eq!((to - from).num_hours(), 25);
        // New York changes its clocks a week later: the same day is 24 hours, from 04:00 UTC.
        let (from, to) = day_bounds(chrono_tz::America::New_York, day).expect("bounds");
        assert_eq!(from.format("%m-%d %H:%M").to_string(), "10-25 04:00");
        assert_eq!((to - from).num_hours(), 24);
    }
}
