//! The agent desk (agent role): the agent's own state, time in state and pause reason, with
//! the buttons ready, pause (with a reason), log out and log in, which send the API's
//! `POST /api/v1/me/agent/state` (`assets/app.js`); and the call the agent is offered or on,
//! with the caller's number and where the call came from, and the values the flow's queue
//! step lets the agent see (its `desk` field: e.g. the name and VIP flag from a lookup, the
//! ticket number collected). Caller data is personal data: the page shows the call the ACD
//! gave this account's own agent, and nobody else's. The agent
//! role has no event feed, so the page fetches `?part=main` again every 2 s.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono_tz::Tz;
use ivr_scripts::DeskField;
use serde_json::Value;

use super::agents::{state_label, REASONS};
use super::html::{escape, term_list, Layout};
use super::i18n::{duration, Lang};
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::routes::calls::CallView;
use crate::routes::queues::AgentView;
use crate::state::AdminState;

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let own = reader.who.agent.clone();
    let l = reader.lang;
    let mut main = format!(
        "<div id=\"desk\" data-refresh=\"/ui/desk?part=main\"><h1>{}</h1>",
        escape(l.t("desk.title"))
    );
    // An account bound to no configured agent has no desk; an engine that cannot answer
    // is an error, not an empty desk.
    let agent = match own {
        Some(id) => match crate::routes::queues::agent_view(&state, id).await {
            Ok(view) => Some(view),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    match agent {
        None => main.push_str(&format!(
            "<p id=\"desk-none\">{}</p>",
            escape(l.t("desk.no_agent"))
        )),
        Some(a) => {
            let call = match &a.call {
                Some(id) => state
                    .engine()
                    .calls()
                    .await?
                    .into_iter()
                    // Only a call the ACD put on this very agent.
                    .find(|c| &c.call.id == id && c.call.agent.as_deref() == Some(a.id.as_str()))
                    .map(|c| {
                        let desk = c.call.desk.clone().into_inner();
                        (CallView::from(c), desk)
                    }),
                None => None,
            };
            main.push_str(&status(l, &a));
            main.push_str(&buttons(l, &a));
            main.push_str(&caller(l, reader.zone, call.as_ref().map(|(c, _)| c)));
            if let Some((_, desk)) = &call {
                main.push_str(&flow_data(l, desk));
            }
        }
    }
    main.push_str("</div>");
    let layout = Layout::new(&reader, "/ui/desk", l.t("desk.title"));
    Ok(respond(layout, main, &q))
}

fn status(l: Lang, a: &AgentView) -> String {
    let reason = a
        .pause_reason
        .as_deref()
        .map(|r| {
            let label = REASONS
                .iter()
                .find(|(c, _)| *c == r)
                .map(|(_, key)| l.t(key).to_string())
                .unwrap_or_else(|| r.to_string());
            format!(
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape(l.t("desk.reason")),
                escape(&label)
            )
        })
        .unwrap_or_default();
    // A pause or logout asked during a call applies when the call's work ends.
    let pending = match a.pending.as_deref() {
        Some("pause") => format!(
            " <small class=\"pending\">({} {})</small>",
            escape(l.t("agents.pending")),
            escape(l.t("state.not_ready"))
        ),
        Some(_) => format!(
            " <small class=\"pending\">({} {})</small>",
            escape(l.t("agents.pending")),
            escape(l.t("state.logged_out"))
        ),
        None => String::new(),
    };
    format!(
        "<dl class=\"desk-state\" data-agent=\"{id}\" data-state=\"{code}\">\
         <div><dt>{agent}</dt><dd>{name} <small>{id}</small></dd></div>\
         <div><dt>{state_l}</dt><dd><span class=\"badge state-{code}\">{state}</span>{pending}</dd></div>\
         <div><dt>{time_l}</dt><dd class=\"num\">{time}</dd></div>{reason}</dl>",
        id = escape(&a.id),
        code = escape(&a.state),
        agent = escape(l.t("desk.agent")),
        name = escape(&a.name),
        state_l = escape(l.t("desk.state")),
        state = escape(state_label(l, &a.state)),
        time_l = escape(l.t("desk.time")),
        time = duration(a.time_in_state_ms),
    )
}

fn button(action: &str, label: &str) -> String {
    format!(
        "<button type=\"button\" data-desk-action=\"{action}\">{}</button>",
        escape(label)
    )
}

fn buttons(l: Lang, a: &AgentView) -> String {
    let mut out = String::from("<div class=\"desk-actions actions\">");
    if a.state == "logged_out" {
        out.push_str(&button("login", l.t("desk.login")));
    } else {
        if a.state != "ready" {
            out.push_str(&button("ready", l.t("desk.ready")));
        }
        if a.state != "not_ready" {
            let options: String = REASONS
                .iter()
                .map(|(code, key)| {
                    format!("<option value=\"{code}\">{}</option>", escape(l.t(key)))
                })
                .collect();
            out.push_str(&format!(
                "<label for=\"desk-reason\">{}</label>\
                 <select id=\"desk-reason\">{options}</select>",
                escape(l.t("desk.reason"))
            ));
            out.push_str(&button("pause", l.t("desk.pause")));
        }
        out.push_str(&button("logout", l.t("desk.logout")));
    }
    out.push_str("<p id=\"desk-error\" class=\"error\" role=\"alert\"></p></div>");
    out
}

fn caller(l: Lang, zone: Tz, call: Option<&CallView>) -> String {
    let mut out = format!("<h2>{}</h2>", escape(l.t("desk.caller")));
    let Some(c) = call else {
        out.push_str(&format!(
            "<p id=\"desk-no-call\">{}</p>",
            escape(l.t("desk.no_call"))
        ));
        return out;
    };
    let items = [
        ("desk.number", c.caller.clone()),
        ("desk.called", c.called.clone()),
        ("desk.queue", c.queue.clone().unwrap_or_default()),
        ("desk.flow", c.flow.clone().unwrap_or_default()),
        ("desk.started", l.time(zone, c.started_at)),
    ];
    let open = format!("<dl class=\"desk-call\" data-call=\"{}\">", escape(&c.id));
    out.push_str(&term_list(l, &open, &items));
    out
}

/// Labels of the desk values the pages know by name; any other shows under its own name.
const FIELDS: &[(&str, &str)] = &[
    ("name", "desk.field.name"),
    ("vip", "desk.field.vip"),
    ("ticket", "desk.field.ticket"),
];

/// The values the flow lets the agent see, in the flow's order.
fn flow_data(l: Lang, desk: &[DeskField]) -> String {
    if desk.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<h2>{}</h2><dl class=\"desk-data\">",
        escape(l.t("desk.flow_data"))
    );
    for f in desk {
        let label = FIELDS
            .iter()
            .find(|(name, _)| *name == f.name)
            .map_or(f.name.as_str(), |(_, key)| l.t(key));
        let value = match &f.value {
            Value::Bool(true) => l.t("desk.yes").to_string(),
            Value::Bool(false) => l.t("desk.no").to_string(),
            Value::Null => "\u{2013}".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!(
            "<div data-field=\"{name}\"><dt>{label}</dt><dd>{value}</dd></div>",
            name = escape(&f.name),
            label = escape(label),
            value = escape(&value),
        ));
    }
    out.push_str("</dl>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: Value) -> DeskField {
        DeskField {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn the_flows_values_show_with_their_labels_in_the_flows_order_and_escaped() {
        let desk = [
            field("name", Value::from("Ada <Lovelace>")),
            field("vip", Value::from(true)),
            field("ticket", Value::from("4242")),
            field("site", Value::from(12)),
        ];
        let fr = flow_data(Lang::Fr, &desk);
        assert!(
            fr.contains("<dt>Nom</dt><dd>Ada &lt;Lovelace&gt;</dd>"),
            "{fr}"
        );
        assert!(fr.contains("<dt>VIP</dt><dd>Oui</dd>"), "{fr}");
        assert!(
            fr.contains("<dt>Numéro de ticket</dt><dd>4242</dd>"),
            "{fr}"
        );
        assert!(fr.contains("<dt>site</dt><dd>12</dd>"), "{fr}");
        assert!(fr.find("Nom").expect("name") < fr.find("VIP").expect("vip"));
        let en = flow_data(Lang::En, &desk[1..2]);
        assert!(en.contains("<dt>VIP</dt><dd>Yes</dd>"), "{en}");
        assert_eq!(flow_data(Lang::En, &[]), "");
    }
}
