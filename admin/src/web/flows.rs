//! The call flows pages: `/ui/flows` lists the flows with their active version, and
//! `/ui/flows/{name}` shows one flow: its versions (the active one marked; activation and
//! rollback for admins), the drawing of a version (`drawing`: the graph `svi graph`
//! prints, as SVG), a simulated call with given digits (the path taken is marked on the
//! drawing), and an editor to upload a new version, checked by the engine first: its
//! errors are listed at their line and column and the lines marked in the editor's gutter.
//! Every change goes through the API's flow routes with the session's CSRF token
//! (`assets/app.js`), so the rights and the audit log are the API's.

use std::path::Path as FilePath;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono_tz::Tz;
use engine::handle::FlowListing;
use ivr_scripts::graph::FlowGraph;
use serde::Deserialize;

use super::html::{escape, list_head, Layout};
use super::i18n::Lang;
use super::{respond, PageQuery, Reader};
use crate::error::ApiError;
use crate::roles::rule_for;
use crate::routes::flows::check_word;
use crate::state::AdminState;

/// `?version=`: the version drawn and edited (default: the active one, else the newest).
#[derive(Debug, Default, Deserialize)]
pub struct FlowQuery {
    pub version: Option<String>,
}

/// May this reader change flows (upload, activate, roll back)? The API's table says.
fn may_change(reader: &Reader) -> bool {
    rule_for("POST", "/api/v1/flows").is_some_and(|r| r.access.allows(reader.who.role))
}

async fn listing(state: &AdminState) -> Result<Vec<FlowListing>, ApiError> {
    match state.engine().flow_list().await {
        Ok(l) => Ok(l),
        Err(e) => Err(state.handle_error(e).await),
    }
}

pub async fn list_page(
    State(state): State<AdminState>,
    reader: Reader,
) -> Result<Response, ApiError> {
    let l = reader.lang;
    let flows = listing(&state).await?;
    let mut main = format!("<h1>{}</h1>", escape(l.t("flows.title")));
    if flows.is_empty() {
        main.push_str(&format!("<p>{}</p>", escape(l.t("flows.none"))));
    } else {
        main.push_str(&list_head(
            l,
            &[
                "flows.flow",
                "flows.active",
                "flows.activated",
                "flows.versions",
            ],
        ));
        for f in &flows {
            main.push_str(&format!(
                "<tr data-flow=\"{name}\"><th scope=\"row\"><a href=\"/ui/flows/{name}\">{name}</a>\
                 </th><td><code>{active}</code></td><td class=\"num\">{at}</td>\
                 <td class=\"num\">{n}</td></tr>",
                name = escape(&f.name),
                active = escape(f.active.as_deref().unwrap_or("-")),
                at = f.activated_at.map(|t| l.date_time(reader.zone, t)).unwrap_or_default(),
                n = f.versions.len(),
            ));
        }
        main.push_str("</tbody></table>");
    }
    if may_change(&reader) {
        main.push_str(&format!("<h2>{}</h2>", escape(l.t("flows.new_flow"))));
        main.push_str(&editor(l, None, ""));
    }
    let layout = Layout::new(&reader, "/ui/flows", l.t("flows.title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

pub async fn flow_page(
    State(state): State<AdminState>,
    reader: Reader,
    name: Result<Path<String>, PathRejection>,
    Query(q): Query<FlowQuery>,
) -> Result<Response, ApiError> {
    let Path(name) = name?;
    check_word("name", &name)?;
    if let Some(v) = &q.version {
        check_word("version", v)?;
    }
    let l = reader.lang;
    let flow = listing(&state)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::NotFound {
            what: "flow",
            id: name.clone(),
        })?;
    let shown = q
        .version
        .clone()
        .or_else(|| flow.active.clone())
        .or_else(|| flow.versions.last().map(|v| v.version.clone()));
    let source = match &shown {
        Some(v) => match state.engine().flow_source(&name, v).await {
            Ok(s) => Some(s),
            Err(e) => return Err(state.handle_error(e).await),
        },
        None => None,
    };
    let change = may_change(&reader);
    let mut main = format!(
        "<p><a href=\"/ui/flows\">{back}</a></p><h1 data-flow=\"{name}\">{title} {name}</h1>",
        back = escape(l.t("flows.back")),
        title = escape(l.t("flows.flow")),
        name = escape(&name),
    );
    main.push_str(&versions(l, reader.zone, &flow, shown.as_deref(), change));
    if let (Some(version), Some(source)) = (&shown, &source) {
        main.push_str(&format!(
            "<h2 id=\"drawing-title\">{} <code>{}</code></h2>",
            escape(l.t("flows.drawing")),
            escape(version)
        ));
        let drawing = ivr_scripts::compile(
            &source.source,
            FilePath::new(&source.file),
            &ivr_scripts::CheckContext::permissive(),
        );
        match drawing {
            Ok(compiled) => {
                let label = format!("{} {name} {version}", l.t("flows.drawing"));
                main.push_str("<div class=\"drawing\" id=\"drawing\">");
                main.push_str(&super::drawing::svg(&FlowGraph::of(&compiled), &label));
                main.push_str("</div>");
            }
            // Installed versions passed the engine's own checks; a stored version the
            // permissive check refuses is shown as text only.
            Err(_) => main.push_str(&format!("<p>{}</p>", escape(l.t("flows.no_drawing")))),
        }
        main.push_str(&simulator(l, &name, version));
        if change {
            main.push_str(&format!("<h2>{}</h2>", escape(l.t("flows.new_version"))));
            main.push_str(&editor(l, Some(&name), &source.source));
        } else {
            main.push_str(&format!(
                "<h2>{}</h2><pre class=\"source\">{}</pre>",
                escape(l.t("flows.source")),
                escape(&source.source)
            ));
        }
    }
    let layout = Layout::new(&reader, "/ui/flows", l.t("flows.title"));
    Ok(respond(layout, main, &PageQuery::default()))
}

/// The versions table, oldest first; the active one marked, the shown one highlighted.
fn versions(l: Lang, zone: Tz, flow: &FlowListing, shown: Option<&str>, change: bool) -> String {
    let name = escape(&flow.name);
    let mut out = format!("<h2>{}</h2>", escape(l.t("flows.versions")));
    if change {
        if let Some(to) = &flow.rollback_to {
            out.push_str(&format!(
                "<p><button type=\"button\" data-flow-action=\"rollback\" data-flow=\"{name}\">\
                 {label} <code>{to}</code></button></p>",
                label = escape(l.t("flows.rollback")),
                to = escape(to),
            ));
        }
    }
    out.push_str(&list_head(
        l,
        &[
            "flows.version",
            "flows.state",
            "flows.installed",
            "flows.file",
            "flows.actions",
        ],
    ));
    for v in &flow.versions {
        let version = escape(&v.version);
        let state = if v.active {
            format!(
                "<span class=\"badge state-ready\">{}</span>",
                escape(l.t("flows.is_active"))
            )
        } else {
            String::new()
        };
        let current = if shown == Some(v.version.as_str()) {
            " aria-current=\"true\" class=\"shown\""
        } else {
            ""
        };
        let mut actions = String::new();
        if shown != Some(v.version.as_str()) {
            actions.push_str(&format!(
                "<a class=\"button\" href=\"/ui/flows/{name}?version={version}\">{}</a>",
                escape(l.t("flows.view"))
            ));
        }
        if change && !v.active {
            actions.push_str(&format!(
                "<button type=\"button\" data-flow-action=\"activate\" data-flow=\"{name}\" \
                 data-version=\"{version}\">{}</button>",
                escape(l.t("flows.activate"))
            ));
        }
        out.push_str(&format!(
            "<tr data-version=\"{version}\" data-active=\"{active}\"{current}>\
             <th scope=\"row\"><code>{version}</code></th><td>{state}</td>\
             <td class=\"num\">{at}</td><td><code>{file}</code></td>\
             <td><div class=\"actions\">{actions}</div></td></tr>",
            active = v.active,
            at = l.date_time(zone, v.installed_at),
            file = escape(&v.file),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// The simulation form: digits keyed at each menu or collect, the caller's number and the
/// time of the call; the answer (`app.js`) lists the steps and marks them on the drawing.
fn simulator(l: Lang, name: &str, version: &str) -> String {
    format!(
        "<h2>{title}</h2><form id=\"simulate\" class=\"inline-form\" data-flow=\"{name}\" \
         data-version=\"{version}\" data-endings=\"{endings}\">\
         <label for=\"sim-inputs\">{inputs}</label>\
         <input id=\"sim-inputs\" name=\"inputs\" placeholder=\"1 2 #\" \
         aria-describedby=\"sim-help\">\
         <label for=\"sim-caller\">{caller}</label>\
         <input id=\"sim-caller\" name=\"caller\" placeholder=\"+33100000000\">\
         <label for=\"sim-at\">{at}</label>\
         <input id=\"sim-at\" name=\"at\" type=\"datetime-local\">\
         <button type=\"submit\">{run}</button></form>\
         <p id=\"sim-help\" class=\"help\">{help}</p>\
         <div id=\"sim-result\" role=\"status\" aria-live=\"polite\"></div>",
        title = escape(l.t("flows.simulate")),
        name = escape(name),
        version = escape(version),
        endings = escape(&format!(
            "{}|{}|{}",
            l.t("flows.ending_finished"),
            l.t("flows.ending_routed"),
            l.t("flows.ending_endless")
        )),
        inputs = escape(l.t("flows.sim_inputs")),
        caller = escape(l.t("flows.sim_caller")),
        at = escape(l.t("flows.sim_at")),
        run = escape(l.t("flows.sim_run")),
        help = escape(l.t("flows.sim_help")),
    )
}

/// The editor: the YAML in a textarea beside a gutter of line numbers (`app.js` keeps it
/// in step and marks the lines the checker refuses); `flow` is the flow a new version is
/// for (none: a new flow, named by its `flow:` key).
fn editor(l: Lang, flow: Option<&str>, source: &str) -> String {
    format!(
        "<form id=\"flow-editor\" class=\"editor-form\" data-flow=\"{flow}\" \
         data-installed=\"{installed}\" data-refused=\"{refused}\" data-at=\"{at}\">\
         <label for=\"source\">{label}</label>\
         <div class=\"editor\"><pre class=\"gutter\" id=\"gutter\" aria-hidden=\"true\"></pre>\
         <textarea id=\"source\" name=\"source\" spellcheck=\"false\" autocomplete=\"off\" \
         wrap=\"off\" rows=\"24\">{source}</textarea></div>\
         <p><label><input type=\"checkbox\" id=\"activate\" name=\"activate\"> {activate}</label></p>\
         <button type=\"submit\">{check}</button>\
         <p id=\"editor-result\" role=\"status\" aria-live=\"polite\"></p>\
         <ol id=\"diagnostics\" class=\"diagnostics\"></ol></form>",
        flow = escape(flow.unwrap_or("")),
        installed = escape(l.t("flows.installed_as")),
        refused = escape(l.t("flows.refused")),
        at = escape(l.t("flows.at")),
        label = escape(l.t("flows.yaml")),
        source = escape(source),
        activate = escape(l.t("flows.activate_now")),
        check = escape(l.t("flows.check_install")),
    )
}
