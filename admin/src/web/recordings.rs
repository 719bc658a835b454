//! The recordings page: calls with a recording, searched by day, queue, agent and number
//! (the call records' search, `GET /api/v1/records?recorded=true`, kept to the calls whose
//! recording the replicated index still lists), each with a player and a download link on the API's recording route, which
//! answers byte ranges (so the browser's seek bar works) and audits every read. The page
//! itself shows callers' numbers: its reads are audited too (`PAGES`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::NaiveDate;
use chrono_tz::Tz;
use engine::recording::index::{IndexEntry, COLLECTION};
use serde::Deserialize;

use super::html::{escape, list_head, Layout};
use super::i18n::{day_start, duration, Lang};
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::records::{RecordView, RecordsQuery};
use crate::state::AdminState;

/// Recorded calls listed per search, newest first.
const SHOWN: u32 = 200;

/// The search form's fields; an empty field is no filter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// First day, `YYYY-MM-DD` (Europe/Paris).
    pub from: Option<String>,
    /// Last day, included.
    pub to: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// The caller's or the called number.
    pub number: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Midnight in `zone` starting `day`, plus `days` days, as RFC 3339.
fn midnight(zone: Tz, field: &str, day: &str, days: i64) -> Result<String, ApiError> {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| ApiError::bad(field, "a day as YYYY-MM-DD"))?
        + chrono::Duration::days(days);
    let start = day_start(zone, date).ok_or_else(|| ApiError::bad(field, "a day as YYYY-MM-DD"))?;
    Ok(start.to_rfc3339())
}

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    q: Result<Query<Search>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(search) = q?;
    let l = reader.lang;
    let query = RecordsQuery {
        from: given(&search.from)
            .map(|d| midnight(reader.zone, "from", &d, 0))
            .transpose()?,
        to: given(&search.to)
            .map(|d| midnight(reader.zone, "to", &d, 1))
            .transpose()?,
        number: given(&search.number),
        queue: given(&search.queue),
        agent: given(&search.agent),
        outcome: None,
        end_reason: None,
        recorded: Some(true),
        per_page: Some(SHOWN),
        page: Some(1),
    };
    let axum::Json(found) =
        crate::routes::records::search(State(state.clone()), Ok(Query(query))).await?;
    // The index says which recordings still exist (retention removes them) and how long.
    let mut recorded: Vec<(&RecordView, Option<u64>)> = Vec::new();
    for r in &found.records {
        if let Some(text) = state.storage().get_doc(COLLECTION, &r.id).await? {
            let length = serde_json::from_str::<IndexEntry>(&text)
                .ok()
                .and_then(|e| e.duration_ms);
            recorded.push((r, length.or(r.recording_ms)));
        }
    }
    let axum::Json(queues) = crate::routes::queues::queues(State(state.clone())).await?;
    let queues: Vec<(String, String)> = queues.into_iter().map(|q| (q.id, q.name)).collect();
    let mut main = format!("<h1>{}</h1>", escape(l.t("rec.title")));
    main.push_str(&form(l, &search, &queues));
    main.push_str(&table(l, reader.zone, &recorded));
    let layout = Layout::new(&reader, "/ui/recordings", l.t("rec.title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

fn form(l: Lang, s: &Search, queues: &[(String, String)]) -> String {
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let mut options = format!(
        "<option value=\"\">{}</option>",
        escape(l.t("rec.any_queue"))
    );
    for (id, name) in queues {
        let selected = if s.queue.as_deref() == Some(id.as_str()) {
            " selected"
        } else {
            ""
        };
        options.push_str(&format!(
            "<option value=\"{id}\"{selected}>{name}</option>",
            id = escape(id),
            name = escape(name),
        ));
    }
    format!(
        "<form id=\"rec-search\" class=\"inline-form\" method=\"get\" action=\"/ui/recordings\" \
         role=\"search\">\
         <label for=\"rec-from\">{from}</label>\
         <input id=\"rec-from\" name=\"from\" type=\"date\" value=\"{from_v}\">\
         <label for=\"rec-to\">{to}</label>\
         <input id=\"rec-to\" name=\"to\" type=\"date\" value=\"{to_v}\">\
         <label for=\"rec-queue\">{queue}</label>\
         <select id=\"rec-queue\" name=\"queue\">{options}</select>\
         <label for=\"rec-agent\">{agent}</label>\
         <input id=\"rec-agent\" name=\"agent\" size=\"8\" value=\"{agent_v}\">\
         <label for=\"rec-number\">{number}</label>\
         <input id=\"rec-number\" name=\"number\" size=\"14\" value=\"{number_v}\">\
         <button type=\"submit\">{search}</button></form>",
        from = escape(l.t("rec.from")),
        to = escape(l.t("rec.to")),
        queue = escape(l.t("rec.queue")),
        agent = escape(l.t("rec.agent")),
        number = escape(l.t("rec.number")),
        search = escape(l.t("rec.search")),
        from_v = value(&s.from),
        to_v = value(&s.to),
        agent_v = value(&s.agent),
        number_v = value(&s.number),
    )
}

fn table(l: Lang, zone: Tz, rows: &[(&RecordView, Option<u64>)]) -> String {
    if rows.is_empty() {
        return format!("<p>{}</p>", escape(l.t("rec.none")));
    }
    let mut out = list_head(
        l,
        &[
            "rec.started",
            "rec.caller",
            "rec.called",
            "rec.queue",
            "rec.agent",
            "rec.duration",
            "rec.listen",
        ],
    );
    for (r, ms) in rows {
        let id = escape(&r.id);
        let audio = format!("/api/v1/recordings/{id}/audio");
        out.push_str(&format!(
            "<tr data-recording=\"{id}\"><th scope=\"row\" class=\"num\">{started}</th>\
             <td>{caller}</td><td>{called}</td><td>{queue}</td><td>{agent}</td>\
             <td class=\"num\">{length}</td><td><div class=\"actions\">\
             <audio controls preload=\"none\" src=\"{audio}\" aria-label=\"{play} {started}\">\
             </audio><a class=\"button\" href=\"{audio}\" download=\"{id}.wav\">{download}</a>\
             </div></td></tr>",
            started = l.date_time(zone, r.started_at),
            caller = escape(&r.caller),
            called = escape(&r.called),
            queue = escape(r.queue.as_deref().unwrap_or("")),
            agent = escape(r.agent.as_deref().unwrap_or("")),
            length = ms.map(duration).unwrap_or_default(),
            play = escape(l.t("rec.listen")),
            download = escape(l.t("rec.download")),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_runs_from_midnight_to_midnight_in_the_zone() {
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            midnight(paris, "from", "2026-12-07", 0).expect("day"),
            "2026-12-06T23:00:00+00:00"
        );
        assert_eq!(
            midnight(paris, "to", "2026-07-07", 1).expect("day"),
            "2026-07-07T22:00:00+00:00"
        );
        assert_eq!(
            midnight(chrono_tz::America::New_York, "from", "2026-12-07", 0).expect("day"),
            "2026-12-07T05:00:00+00:00"
        );
        assert!(midnight(paris, "from", "07/12/2026", 0).is_err());
        assert!(midnight(paris, "from", "2026-02-30", 0).is_err());
    }
}
