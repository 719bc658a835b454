//! Calls in progress: where each call is (setting up, in its flow at a step, waiting in a
//! queue at a position, ringing an agent, with an agent), its numbers, start and duration.
//! Live like the wallboard. On a call with an agent, the supervisor's buttons: listen,
//! whisper, barge and stop (`POST /api/v1/calls/{id}/supervise`: the engine calls the
//! supervisor's own phone, given once in the page and kept by the browser), recording
//! pause and resume (`.../recording`), sent by `assets/app.js` with the CSRF token.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono_tz::Tz;

use super::html::{escape, list_head};
use super::i18n::{duration, Lang};
use super::{respond_live, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::calls::CallView;
use crate::state::AdminState;

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let axum::Json(calls) = crate::routes::calls::list(State(state.clone())).await?;
    let act = crate::roles::rule_for("POST", "/api/v1/calls/{id}/supervise")
        .is_some_and(|r| r.access.allows(reader.who.role));
    let main = render(reader.lang, reader.zone, &calls, act);
    Ok(respond_live(&reader, "/ui/calls", "calls.title", main, &q))
}

fn phase_label(l: Lang, phase: &str) -> &'static str {
    match phase {
        "setup" => l.t("phase.setup"),
        "flow" => l.t("phase.flow"),
        "queued" => l.t("phase.queued"),
        "agent_ringing" => l.t("phase.agent_ringing"),
        "bridged" => l.t("phase.bridged"),
        "ending" => l.t("phase.ending"),
        _ => "?",
    }
}

/// The supervisor's phone (kept across the page's live refreshes by `app.js`).
fn phone_field(l: Lang) -> String {
    format!(
        "<p class=\"inline-form\" id=\"supervision\" data-done=\"{done}\">\
         <label for=\"supervisor-phone\">{label}</label>\
         <input id=\"supervisor-phone\" data-keep=\"svi_supervisor_phone\" size=\"24\" \
         placeholder=\"1002\" aria-describedby=\"supervisor-phone-help\">\
         <span id=\"supervisor-phone-help\" class=\"help\">{help}</span></p>",
        label = escape(l.t("calls.my_phone")),
        help = escape(l.t("calls.my_phone_help")),
        done = escape(l.t("calls.done")),
    )
}

/// The buttons of a call with an agent.
fn actions(l: Lang, id: &str) -> String {
    let mut out = String::from("<div class=\"actions\">");
    for (mode, key) in [
        ("listen", "calls.listen"),
        ("whisper", "calls.whisper"),
        ("barge", "calls.barge"),
        ("stop", "calls.stop"),
    ] {
        out.push_str(&format!(
            "<button type=\"button\" data-call=\"{id}\" data-supervise=\"{mode}\">{}</button>",
            escape(l.t(key)),
            id = escape(id),
        ));
    }
    for (what, key) in [("pause", "calls.rec_pause"), ("resume", "calls.rec_resume")] {
        out.push_str(&format!(
            "<button type=\"button\" data-call=\"{id}\" data-recording=\"{what}\">{}</button>",
            escape(l.t(key)),
            id = escape(id),
        ));
    }
    out.push_str("</div>");
    out
}

fn render(l: Lang, zone: Tz, calls: &[CallView], act: bool) -> String {
    let mut out = format!("<h1>{}</h1>", escape(l.t("calls.title")));
    if act {
        out.push_str(&phone_field(l));
    }
    if calls.is_empty() {
        out.push_str(&format!("<p>{}</p>", escape(l.t("calls.none"))));
        return out;
    }
    out.push_str(&list_head(
        l,
        &[
            "calls.call",
            "calls.caller",
            "calls.called",
            "calls.phase",
            "calls.flow",
            "calls.queue",
            "calls.position",
            "calls.agent",
            "calls.started",
            "calls.duration",
            "calls.actions",
        ],
    ));
    for c in calls {
        let flow = match (&c.flow, &c.flow_version, &c.step) {
            (Some(f), v, s) => {
                let mut text = escape(f);
                if let Some(v) = v {
                    text.push_str(&format!(" <small>v{}</small>", escape(v)));
                }
                if let Some(s) = s {
                    text.push_str(&format!(" › <code>{}</code>", escape(s)));
                }
                text
            }
            (None, _, _) => String::new(),
        };
        out.push_str(&format!(
            "<tr data-call=\"{id}\" data-phase=\"{phase}\" data-agent=\"{agent}\">\
             <th scope=\"row\"><code>{short}</code></th><td>{caller}</td><td>{called}</td>\
             <td><span class=\"badge phase-{phase}\">{label}</span></td><td>{flow}</td>\
             <td>{queue}</td><td class=\"num\">{position}</td><td>{agent}</td>\
             <td class=\"num\">{started}</td><td class=\"num\">{duration}</td>\
             <td>{actions}</td></tr>",
            id = escape(&c.id),
            short = escape(&c.id.chars().take(12).collect::<String>()),
            phase = escape(&c.phase),
            label = escape(phase_label(l, &c.phase)),
            caller = escape(&c.caller),
            called = escape(&c.called),
            queue = escape(c.queue.as_deref().unwrap_or("")),
            position = c.position.map(|p| p.to_string()).unwrap_or_default(),
            agent = escape(c.agent.as_deref().unwrap_or("")),
            started = l.time(zone, c.started_at),
            duration = duration(c.duration_ms),
            actions = if act && c.phase == "bridged" {
                actions(l, &c.id)
            } else {
                String::new()
            },
        ));
    }
    out.push_str("</tbody></table>");
    out
}
