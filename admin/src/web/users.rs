//! Users and API keys (admin): the lists, a form to add a user (the API's password policy
//! answers show under the form), a form to make a key (the key is shown once, above the
//! list, and never again), and the buttons disable (a user) and revoke (a key). The forms
//! and buttons send the API's writes with the session's CSRF token (`assets/app.js`),
//! which then fetches `?part=main` again.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono_tz::Tz;

use super::html::{escape, list_head, Layout};
use super::i18n::Lang;
use super::{respond, PageQuery, Reader};
use crate::accounts::{ApiKeyView, UserView};
use crate::error::ApiError;
use crate::roles::Role;
use crate::state::AdminState;

pub async fn page(
    State(state): State<AdminState>,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let axum::Json(users) = crate::routes::users::list(State(state.clone())).await?;
    let axum::Json(keys) = crate::routes::keys::list(State(state.clone())).await?;
    let l = reader.lang;
    let mut main = format!(
        "<div id=\"users-page\" data-part=\"/ui/users?part=main\"><h1>{}</h1>",
        escape(l.t("users.title"))
    );
    main.push_str(&user_list(l, reader.zone, &users));
    main.push_str(&user_form(l));
    main.push_str(&format!("<h2>{}</h2>", escape(l.t("users.keys"))));
    main.push_str(&format!(
        "<div id=\"new-key\" class=\"once\" role=\"status\" hidden><p>{}</p>\
         <p><code id=\"new-key-value\"></code></p></div>",
        escape(l.t("users.key_once"))
    ));
    main.push_str(&key_list(l, reader.zone, &keys));
    main.push_str(&key_form(l));
    main.push_str("</div>");
    let layout = Layout::new(&reader, "/ui/users", l.t("users.title"));
    Ok(respond(layout, main, &q))
}

/// The roles a user may be given (`for_users`), or a key (any, `metrics` included).
fn role_options(l: Lang, users: bool) -> String {
    Role::ALL
        .iter()
        .filter(|r| !users || r.for_users())
        .map(|r| {
            format!(
                "<option value=\"{code}\">{label}</option>",
                code = r.as_str(),
                label = escape(super::html::role_label(l, *r)),
            )
        })
        .collect()
}

fn user_list(l: Lang, zone: Tz, users: &[UserView]) -> String {
    let mut out = list_head(
        l,
        &[
            "users.name",
            "users.role",
            "users.agent",
            "users.state",
            "users.created",
            "users.created_by",
            "users.actions",
        ],
    );
    for u in users {
        let action = if u.disabled {
            String::new()
        } else {
            format!(
                "<button type=\"button\" data-user-disable=\"{name}\" \
                 aria-label=\"{label} {name}\">{label}</button>",
                name = escape(&u.name),
                label = escape(l.t("users.disable")),
            )
        };
        let state = if u.disabled {
            l.t("users.disabled")
        } else {
            l.t("users.enabled")
        };
        out.push_str(&format!(
            "<tr data-user=\"{name}\" data-disabled=\"{disabled}\"><th scope=\"row\">{name}</th>\
             <td>{role}</td><td>{agent}</td><td>{state}</td><td class=\"num\">{created}</td>\
             <td>{by}</td><td class=\"actions\">{action}</td></tr>",
            name = escape(&u.name),
            disabled = u.disabled,
            role = escape(super::html::role_label(l, u.role)),
            agent = escape(u.agent.as_deref().unwrap_or("")),
            state = escape(state),
            created = l.date_time(zone, u.created_at),
            by = escape(&u.created_by),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn user_form(l: Lang) -> String {
    format!(
        "<h2>{title}</h2><form id=\"user-add\" class=\"grid-form\">\
         <label for=\"user-name\">{name}</label>\
         <input id=\"user-name\" name=\"name\" required autocomplete=\"off\">\
         <label for=\"user-role\">{role}</label>\
         <select id=\"user-role\" name=\"role\">{roles}</select>\
         <label for=\"user-agent\">{agent}</label>\
         <input id=\"user-agent\" name=\"agent\" autocomplete=\"off\">\
         <label for=\"user-password\">{password}</label>\
         <input id=\"user-password\" name=\"password\" type=\"password\" required \
         autocomplete=\"new-password\" minlength=\"12\" aria-describedby=\"user-policy\">\
         <p id=\"user-policy\" class=\"hint\">{policy}</p>\
         <button type=\"submit\">{submit}</button>\
         <p id=\"user-error\" class=\"error\" role=\"alert\"></p></form>",
        title = escape(l.t("users.add")),
        name = escape(l.t("users.name")),
        role = escape(l.t("users.role")),
        roles = role_options(l, true),
        agent = escape(l.t("users.agent_hint")),
        password = escape(l.t("users.password")),
        policy = escape(l.t("users.policy")),
        submit = escape(l.t("users.add_button")),
    )
}

fn key_list(l: Lang, zone: Tz, keys: &[ApiKeyView]) -> String {
    let mut out = list_head(
        l,
        &[
            "users.key_id",
            "users.key_name",
            "users.role",
            "users.created",
            "users.created_by",
            "users.state",
            "users.actions",
        ],
    );
    for k in keys {
        let (state, action) = match k.revoked_at {
            Some(at) => (
                format!("{} {}", l.t("users.revoked"), l.date_time(zone, at)),
                String::new(),
            ),
            None => (
                l.t("users.key_valid").to_string(),
                format!(
                    "<button type=\"button\" data-key-revoke=\"{id}\" \
                     aria-label=\"{label} {name}\">{label}</button>",
                    id = escape(&k.id),
                    name = escape(&k.name),
                    label = escape(l.t("users.revoke")),
                ),
            ),
        };
        out.push_str(&format!(
            "<tr data-key=\"{id}\" data-revoked=\"{revoked}\"><th scope=\"row\"><code>{prefix}</code></th>\
             <td>{name}</td><td>{role}</td><td class=\"num\">{created}</td><td>{by}</td>\
             <td>{state}</td><td class=\"actions\">{action}</td></tr>",
            id = escape(&k.id),
            revoked = k.revoked_at.is_some(),
            prefix = escape(&k.prefix),
            name = escape(&k.name),
            role = escape(super::html::role_label(l, k.role)),
            created = l.date_time(zone, k.created_at),
            by = escape(&k.created_by),
            state = escape(&state),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn key_form(l: Lang) -> String {
    format!(
        "<form id=\"key-add\" class=\"grid-form\">\
         <label for=\"key-name\">{name}</label>\
         <input id=\"key-name\" name=\"name\" required autocomplete=\"off\">\
         <label for=\"key-role\">{role}</label>\
         <select id=\"key-role\" name=\"role\">{roles}</select>\
         <button type=\"submit\">{submit}</button>\
         <p id=\"key-error\" class=\"error\" role=\"alert\"></p></form>",
        name = escape(l.t("users.key_name")),
        role = escape(l.t("users.role")),
        roles = role_options(l, false),
        submit = escape(l.t("users.key_button")),
    )
}
