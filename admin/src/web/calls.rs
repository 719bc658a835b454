//! Calls in progress: where each call is (setting up, in its flow at a step, waiting in a
//! queue at a position, ringing an agent, with an agent), its numbers, start and duration.
//! Live like the wallboard.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::html::{escape, list_head};
use super::i18n::{duration, Lang};
use super::{respond_live, PageQuery, Reader};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::calls::CallView;
use crate::state::AdminState;

pub async fn page(
    State(state): State<AdminState>,
    who: Principal,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let reader = Reader::new(&state, who, &headers);
    let axum::Json(calls) = crate::routes::calls::list(State(state.clone())).await?;
    let main = render(reader.lang, &calls);
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

fn render(l: Lang, calls: &[CallView]) -> String {
    let mut out = format!("<h1>{}</h1>", escape(l.t("calls.title")));
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
             <td class=\"num\">{started}</td><td class=\"num\">{duration}</td></tr>",
            id = escape(&c.id),
            short = escape(&c.id.chars().take(12).collect::<String>()),
            phase = escape(&c.phase),
            label = escape(phase_label(l, &c.phase)),
            caller = escape(&c.caller),
            called = escape(&c.called),
            queue = escape(c.queue.as_deref().unwrap_or("")),
            position = c.position.map(|p| p.to_string()).unwrap_or_default(),
            agent = escape(c.agent.as_deref().unwrap_or("")),
            started = l.time(c.started_at),
            duration = duration(c.duration_ms),
        ));
    }
    out.push_str("</tbody></table>");
    out
}
