//! The HA pair: this node's role, term, commit and applied positions, the members with the
//! position each has replicated, and the active alarms. An admin may promote this node:
//! the button stays disabled until a confirmation box is ticked, and then sends the API's
//! `POST /api/v1/ha/promote` (`assets/app.js`); a refusal (409 on the active node, 503
//! without a quorum) is shown in the page.

use axum::extract::State;
use axum::response::Response;
use chrono_tz::Tz;

use super::html::{escape, list_head, term_list, Layout};
use super::i18n::Lang;
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::roles::Role;
use crate::routes::ha::HaView;
use crate::state::AdminState;

pub async fn page(State(state): State<AdminState>, reader: Reader) -> Result<Response, ApiError> {
    let axum::Json(view) = crate::routes::ha::status(State(state.clone())).await?;
    let alarms = state
        .engine()
        .alarms()
        .map(|board| board.snapshot().active)
        .unwrap_or_default();
    let l = reader.lang;
    let mut main = format!("<h1>{}</h1>", escape(l.t("ha.title")));
    main.push_str(&summary(l, reader.zone, &view));
    main.push_str(&members(l, &view));
    main.push_str(&format!("<h2>{}</h2>", escape(l.t("ha.alarms"))));
    if alarms.is_empty() {
        main.push_str(&format!(
            "<p id=\"ha-no-alarm\">{}</p>",
            escape(l.t("ha.no_alarm"))
        ));
    } else {
        main.push_str(&list_head(
            l,
            &[
                "ha.severity",
                "ha.alarm",
                "ha.subject",
                "ha.message",
                "ha.raised",
            ],
        ));
        for a in &alarms {
            main.push_str(&format!(
                "<tr data-alarm=\"{kind}\"><td>{sev}</td><th scope=\"row\">{kind}</th>\
                 <td>{subject}</td><td>{message}</td><td class=\"num\">{at}</td></tr>",
                sev = escape(a.severity.as_str()),
                kind = escape(a.kind.as_str()),
                subject = escape(&a.subject),
                message = escape(&a.message),
                at = l.time(reader.zone, a.raised_at),
            ));
        }
        main.push_str("</tbody></table>");
    }
    if reader.who.role == Role::Admin {
        main.push_str(&promote_form(l));
    }
    let layout = Layout::new(&reader, "/ui/ha", l.t("ha.title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

fn role_label(l: Lang, role: &str) -> &'static str {
    match role {
        "active" => l.t("ha.role_active"),
        "standby" => l.t("ha.role_standby"),
        "fenced" => l.t("ha.role_fenced"),
        "witness" => l.t("ha.role_witness"),
        "joining" => l.t("ha.role_joining"),
        _ => "?",
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn summary(l: Lang, zone: Tz, v: &HaView) -> String {
    let items = [
        ("ha.node", v.node.to_string()),
        ("ha.role", role_label(l, &v.role).to_string()),
        ("ha.leader", opt(v.leader)),
        ("ha.term", v.term.to_string()),
        ("ha.commit", opt(v.commit_index)),
        ("ha.applied", opt(v.applied_index)),
        ("ha.role_changes", v.role_changes.to_string()),
        ("ha.since", l.time(zone, v.role_since)),
    ];
    let open = format!(
        "<dl class=\"ha-summary\" data-role=\"{}\" data-term=\"{}\">",
        escape(&v.role),
        v.term
    );
    term_list(l, &open, &items)
}

fn members(l: Lang, v: &HaView) -> String {
    let mut out = format!("<h2>{}</h2>", escape(l.t("ha.members")));
    out.push_str(&list_head(
        l,
        &[
            "ha.member",
            "ha.kind",
            "ha.voter",
            "ha.cluster_addr",
            "ha.sip_addr",
            "ha.matched",
        ],
    ));
    for m in &v.members {
        let kind = match m.kind.as_str() {
            "witness" => l.t("ha.kind_witness"),
            _ => l.t("ha.kind_full"),
        };
        let me = if m.id == v.node {
            format!(" <small>({})</small>", escape(l.t("ha.this_node")))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<tr data-member=\"{id}\"><th scope=\"row\">{id}{me}</th><td>{kind}</td>\
             <td>{voter}</td><td><code>{cluster}</code></td><td><code>{sip}</code></td>\
             <td class=\"num\">{matched}</td></tr>",
            id = m.id,
            kind = escape(kind),
            voter = escape(if m.voter { l.t("ha.yes") } else { l.t("ha.no") }),
            cluster = escape(&m.cluster_addr),
            sip = escape(m.sip_addr.as_deref().unwrap_or("-")),
            matched = opt(m.matched_index),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn promote_form(l: Lang) -> String {
    format!(
        "<h2>{title}</h2><form id=\"promote\" class=\"confirm\"><p>{explain}</p>\
         <input type=\"checkbox\" id=\"promote-confirm\" required>\
         <label for=\"promote-confirm\">{confirm}</label> \
         <button type=\"submit\" id=\"promote-button\" disabled>{button}</button>\
         <p id=\"promote-result\" role=\"alert\" class=\"error\"></p></form>",
        title = escape(l.t("ha.promote")),
        explain = escape(l.t("ha.promote_explain")),
        confirm = escape(l.t("ha.promote_confirm")),
        button = escape(l.t("ha.promote_button")),
    )
}
