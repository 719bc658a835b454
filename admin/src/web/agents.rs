//! The agents page: each agent's state, time in state, pause reason, call and queues, with
//! the supervisor's buttons (ready, pause with a reason, log out, log in). The buttons send
//! `POST /api/v1/agents/{id}/state` with the session's CSRF token (`assets/app.js`); the
//! page is live like the wallboard.

use axum::extract::{Query, State};
use axum::response::Response;

use super::html::{escape, list_head};
use super::i18n::{duration, Lang};
use super::{respond_live, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::queues::AgentView;
use crate::state::AdminState;

/// The pause reasons offered, as codes sent to the API (the ACD takes any code).
pub const REASONS: [(&str, &str); 5] = [
    ("break", "reason.break"),
    ("lunch", "reason.lunch"),
    ("training", "reason.training"),
    ("meeting", "reason.meeting"),
    ("admin", "reason.admin"),
];

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let axum::Json(agents) = crate::routes::queues::agents(State(state.clone())).await?;
    let main = render(reader.lang, &agents);
    Ok(respond_live(
        &reader,
        "/ui/agents",
        "agents.title",
        main,
        &q,
    ))
}

/// The label of a state code of the API.
pub fn state_label(l: Lang, state: &str) -> &'static str {
    match state {
        "logged_out" => l.t("state.logged_out"),
        "ready" => l.t("state.ready"),
        "not_ready" => l.t("state.not_ready"),
        "reserved" => l.t("state.reserved"),
        "ringing" => l.t("state.ringing"),
        "talking" => l.t("state.talking"),
        "wrap_up" => l.t("state.wrap_up"),
        _ => "?",
    }
}

fn reason_label(l: Lang, code: &str) -> String {
    REASONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, key)| l.t(key).to_string())
        .unwrap_or_else(|| code.to_string())
}

fn button(id: &str, name: &str, action: &str, label: &str) -> String {
    format!(
        "<button type=\"button\" data-agent=\"{id}\" data-action=\"{action}\" \
         aria-label=\"{label} {name}\">{label}</button>",
        id = escape(id),
        name = escape(name),
        label = escape(label),
    )
}

fn actions(l: Lang, a: &AgentView) -> String {
    if a.state == "logged_out" {
        return button(&a.id, &a.name, "login", l.t("agents.login"));
    }
    let mut out = String::new();
    if a.state != "ready" {
        out.push_str(&button(&a.id, &a.name, "ready", l.t("agents.ready")));
    }
    if a.state != "not_ready" {
        let options: String = REASONS
            .iter()
            .map(|(code, key)| format!("<option value=\"{code}\">{}</option>", escape(l.t(key))))
            .collect();
        out.push_str(&format!(
            "<label class=\"visually-hidden\" for=\"reason-{id}\">{label} {name}</label>\
             <select id=\"reason-{id}\" data-reason-for=\"{id}\">{options}</select>",
            id = escape(&a.id),
            name = escape(&a.name),
            label = escape(l.t("agents.reason_for")),
        ));
        out.push_str(&button(&a.id, &a.name, "pause", l.t("agents.pause")));
    }
    out.push_str(&button(&a.id, &a.name, "logout", l.t("agents.logout")));
    out
}

fn render(l: Lang, agents: &[AgentView]) -> String {
    let mut out = format!("<h1>{}</h1>", escape(l.t("agents.title")));
    if agents.is_empty() {
        out.push_str(&format!("<p>{}</p>", escape(l.t("agents.none"))));
        return out;
    }
    out.push_str(&list_head(
        l,
        &[
            "agents.agent",
            "agents.state",
            "agents.time",
            "agents.reason",
            "agents.call",
            "agents.queues",
            "agents.actions",
        ],
    ));
    for a in agents {
        let mut state = escape(state_label(l, &a.state));
        if let Some(p) = &a.pending {
            let next = match p.as_str() {
                "pause" => l.t("state.not_ready"),
                _ => l.t("state.logged_out"),
            };
            state.push_str(&format!(
                " <small>({} {})</small>",
                escape(l.t("agents.pending")),
                escape(next)
            ));
        }
        let reason = a
            .pause_reason
            .as_deref()
            .map(|r| escape(&reason_label(l, r)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr data-agent=\"{id}\" data-state=\"{code}\"><th scope=\"row\">{name} \
             <small>{id}</small></th><td><span class=\"badge state-{code}\">{state}</span></td>\
             <td class=\"num\">{time}</td><td>{reason}</td><td>{call}</td><td>{queues}</td>\
             <td class=\"actions\">{actions}</td></tr>",
            id = escape(&a.id),
            code = escape(&a.state),
            name = escape(&a.name),
            time = duration(a.time_in_state_ms),
            call = escape(a.call.as_deref().unwrap_or("")),
            queues = escape(&a.queues.join(", ")),
            actions = actions(l, a),
        ));
    }
    out.push_str("</tbody></table>");
    out
}
