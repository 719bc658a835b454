//! The wallboard: per queue, the calls waiting and the longest wait, the calls ringing and
//! talking, the queue's agents by state, and today's offered calls, service level and
//! abandon rate (from midnight in `[admin] timezone`, kept by the engine from its events:
//! `crate::today`, so a refresh scans no stored events). Live: the page's script fetches
//! `?part=main` again on every event of the feed. `?mode=wall` is the wall display.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use engine::acd::report::ReportQuery;

use super::html::{escape, Layout};
use super::i18n::{duration, today_start, Lang};
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::queues::QueueView;
use crate::routes::stats::StatsRow;
use crate::state::AdminState;

/// Today's figures of one queue.
#[derive(Debug, Default, Clone, Copy)]
struct Today {
    offered: u32,
    answered: u32,
    answered_within_sl: u32,
    abandoned: u32,
    overflowed: u32,
    service_level: Option<f64>,
}

/// Where today's figures came from (shown as the page's `data-today-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Kept by the engine from its events (`crate::today`).
    Live,
    /// Read from today's stored events, until the engine has read the day.
    Stored,
}

/// Today's figures: those the engine keeps from its events, or the stored events of today.
async fn today(state: &AdminState) -> Result<(Vec<StatsRow>, Source), ApiError> {
    if let Some(rows) = state.today().rows() {
        let rows = rows.iter().cloned().map(StatsRow::from).collect();
        return Ok((rows, Source::Live));
    }
    let now = Utc::now();
    let query = ReportQuery {
        queue: None,
        since: today_start(state.zone(), now),
        until: now,
        interval: None,
        threshold: None,
    };
    match state.engine().statistics(&query).await {
        Ok(rows) => Ok((
            rows.into_iter().map(StatsRow::from).collect(),
            Source::Stored,
        )),
        Err(e) => Err(state.handle_error(e).await),
    }
}

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let axum::Json(queues) = crate::routes::queues::queues(State(state.clone())).await?;
    let (rows, source) = today(&state).await?;
    let wall = q.mode.as_deref() == Some("wall");
    let main = render(reader.lang, &queues, (&rows, source), wall);
    let part = if wall {
        "/ui/wallboard?part=main&mode=wall"
    } else {
        "/ui/wallboard?part=main"
    };
    let layout = Layout::new(&reader, "/ui/wallboard", reader.lang.t("wall.title"))
        .live(part.to_string())
        .wall(wall);
    Ok(respond(layout, main, &q))
}

fn figure(class: &str, field: &str, value: &str, label: &str) -> String {
    format!(
        "<div class=\"figure {class}\"><dt>{label}</dt><dd data-field=\"{field}\">{value}</dd></div>",
        label = escape(label),
        value = escape(value),
    )
}

fn render(l: Lang, queues: &[QueueView], today: (&[StatsRow], Source), wall: bool) -> String {
    let (rows, source) = today;
    let mut out = String::new();
    let switch = if wall {
        format!(
            "<a class=\"button\" href=\"/ui/wallboard\">{}</a> \
             <button type=\"button\" id=\"fullscreen\">{}</button>",
            escape(l.t("wall.exit")),
            escape(l.t("wall.fullscreen"))
        )
    } else {
        format!(
            "<a class=\"button\" href=\"/ui/wallboard?mode=wall\">{}</a>",
            escape(l.t("wall.full"))
        )
    };
    out.push_str(&format!(
        "<div class=\"heading\"><h1>{}</h1><p class=\"switch\">{switch}</p></div>",
        escape(l.t("wall.title"))
    ));
    if queues.is_empty() {
        out.push_str(&format!("<p>{}</p>", escape(l.t("wall.no_queues"))));
        return out;
    }
    out.push_str(match source {
        Source::Live => "<div class=\"queues\" data-today-source=\"live\">",
        Source::Stored => "<div class=\"queues\" data-today-source=\"stored\">",
    });
    for q in queues {
        let t = rows
            .iter()
            .find(|r| r.queue == q.id)
            .map(|r| Today {
                offered: r.offered,
                answered: r.answered,
                answered_within_sl: r.answered_within_sl,
                abandoned: r.abandoned,
                overflowed: r.overflowed,
                service_level: r.service_level,
            })
            .unwrap_or_default();
        let alert = if q.waiting > 0 && q.agents_available == 0 {
            " alert"
        } else {
            ""
        };
        let longest = q
            .longest_wait_ms
            .map(duration)
            .unwrap_or_else(|| "–".into());
        let sl = t
            .service_level
            .map(|s| l.percent(s))
            .unwrap_or_else(|| "–".into());
        let abandon = if t.offered > 0 {
            l.percent(f64::from(t.abandoned) / f64::from(t.offered))
        } else {
            "–".into()
        };
        // Today's counts as data too, for tools that read the page (the wallboard bench).
        out.push_str(&format!(
            "<section class=\"queue{alert}\" data-queue=\"{id}\" data-waiting=\"{w}\" \
             data-talking=\"{talking}\" data-today=\"{o} {a} {sl} {ab} {ov}\" \
             aria-labelledby=\"q-{id}\"><h2 id=\"q-{id}\">{name}</h2>\
             <dl class=\"figures\">",
            id = escape(&q.id),
            name = escape(&q.name),
            w = q.waiting,
            talking = q.talking,
            o = t.offered,
            a = t.answered,
            sl = t.answered_within_sl,
            ab = t.abandoned,
            ov = t.overflowed,
        ));
        out.push_str(&figure(
            "big",
            "waiting",
            &q.waiting.to_string(),
            l.t("wall.waiting"),
        ));
        out.push_str(&figure("big", "longest", &longest, l.t("wall.longest")));
        out.push_str(&figure(
            "",
            "ringing",
            &q.offered.to_string(),
            l.t("wall.ringing"),
        ));
        out.push_str(&figure(
            "",
            "talking",
            &q.talking.to_string(),
            l.t("wall.talking"),
        ));
        out.push_str(&figure("", "service_level", &sl, l.t("wall.service_level")));
        out.push_str(&figure(
            "",
            "abandon_rate",
            &abandon,
            l.t("wall.abandon_rate"),
        ));
        out.push_str(&figure(
            "",
            "offered_today",
            &t.offered.to_string(),
            l.t("wall.offered_today"),
        ));
        out.push_str("</dl>");
        let a = &q.agents;
        out.push_str(&format!(
            "<h3>{}</h3><ul class=\"states\">",
            escape(l.t("wall.agents"))
        ));
        for (state, n, key) in [
            ("ready", a.ready, "state.ready"),
            ("offered", a.offered, "state.offered"),
            ("talking", a.talking, "state.talking"),
            ("wrap_up", a.wrap_up, "state.wrap_up"),
            ("not_ready", a.not_ready, "state.not_ready"),
            ("logged_out", a.logged_out, "state.logged_out"),
        ] {
            out.push_str(&format!(
                "<li data-state=\"{state}\"><span class=\"n\">{n}</span> {}</li>",
                escape(l.t(key))
            ));
        }
        out.push_str("</ul></section>");
    }
    out.push_str("</div>");
    out
}
