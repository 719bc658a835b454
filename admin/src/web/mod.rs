//! The admin web console: server-rendered pages over the same views and the same guard as
//! the REST API (docs/admin.md, "Web console"). Every page is a route of [`PAGES`], a table
//! in the style of `roles::ROUTES` that the guard consults too, so a page is refused to a
//! role exactly as an API route is. The pages' data comes from the API's handlers; their
//! few scripts (`assets/app.js`) read the API's event feed and send the API's writes with the
//! session's CSRF token. Assets are embedded in the binary; a strict Content-Security-Policy
//! allows nothing but them.
//!
//! - `i18n`: catalogues, language choice, numbers and times per language;
//! - `html`: escaping and the layout shared by every page;
//! - `wallboard`, `agents`, `calls`: one file per page;
//! - `flows` (with `drawing`, a flow's graph as SVG) and `recordings`: one file per page;
//! - `reports`, `ha`, `users`, `audit`, `desk`: one file per page.

pub mod agents;
pub mod calls;
pub mod drawing;
pub mod flows;
pub mod html;
pub mod i18n;
pub mod recordings;
pub mod wallboard;

pub mod audit;
pub mod desk;
pub mod ha;
pub mod reports;
pub mod users;

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::auth::{Principal, Via};
use crate::roles::{rule_for, Access, Role, RouteRule};
use crate::state::AdminState;
use html::{escape, Layout};
use i18n::Lang;

const A: Role = Role::Admin;
const S: Role = Role::Supervisor;
const G: Role = Role::Agent;
const U: Role = Role::Auditor;

const fn page(path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method: "GET",
        path,
        access,
        audit_reads: false,
    }
}

/// A page whose every successful opening is written to the audit log, like the API route
/// it shows (users and keys, the audit log itself, the recordings' search: callers'
/// personal data).
const fn audited_page(path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method: "GET",
        path,
        access,
        audit_reads: true,
    }
}

/// Every page the console serves, with who may open it (docs/admin.md prints this table;
/// a unit test compares the two).
pub const PAGES: &[RouteRule] = &[
    page("/", Access::Open),
    page("/ui/login", Access::Open),
    page("/ui/assets/{file}", Access::Open),
    page("/ui/", Access::Signed),
    page("/ui/wallboard", Access::Roles(&[A, S])),
    page("/ui/agents", Access::Roles(&[A, S])),
    page("/ui/calls", Access::Roles(&[A, S])),
    page("/ui/flows", Access::Roles(&[A, S])),
    page("/ui/flows/{name}", Access::Roles(&[A, S])),
    audited_page("/ui/recordings", Access::Roles(&[A, S])),
    page("/ui/reports", Access::Roles(&[A, S])),
    page("/ui/ha", Access::Roles(&[A, S])),
    audited_page("/ui/users", Access::Roles(&[A])),
    audited_page("/ui/audit", Access::Roles(&[A, U])),
    page("/ui/desk", Access::Roles(&[G])),
];

/// The CSP of every answer: this origin's scripts, styles, images and connections only; no
/// inline script or style, no framing, no plug-ins, forms to this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; media-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The pages' routes (merged into the API's router, behind its guard).
pub fn pages() -> Router<AdminState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/", get(home))
        .route("/ui/wallboard", get(wallboard::page))
        .route("/ui/agents", get(agents::page))
        .route("/ui/calls", get(calls::page))
        .route("/ui/flows", get(flows::list_page))
        .route("/ui/flows/{name}", get(flows::flow_page))
        .route("/ui/recordings", get(recordings::page))
        .route("/ui/reports", get(reports::page))
        .route("/ui/ha", get(ha::page))
        .route("/ui/users", get(users::page))
        .route("/ui/audit", get(audit::page))
        .route("/ui/desk", get(desk::page))
}

/// Around the whole router: the CSP on every answer; a page asked without a session goes
/// to the login page, and a page the role may not open says so in the page's language.
pub async fn page_layer(req: Request, next: Next) -> Response {
    let ui = req.uri().path().starts_with("/ui/") && req.method() == Method::GET;
    let lang = Lang::of(req.headers());
    let mut response = next.run(req).await;
    if ui && response.status() == StatusCode::UNAUTHORIZED {
        response = Redirect::to("/ui/login").into_response();
    } else if ui && response.status() == StatusCode::FORBIDDEN {
        let body = format!(
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>403</title>\
             <link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head><body><main id=\"main\">\
             <h1>403</h1><p>{}</p><p><a href=\"/ui/\">{}</a></p></main></body></html>",
            lang.code(),
            escape(lang.t("error.forbidden")),
            escape(lang.t("error.back")),
        );
        response = (StatusCode::FORBIDDEN, Html(body)).into_response();
    }
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `?part=main`: only the page's `<main>` content (what the live pages fetch again when the
/// feed says something changed); `?mode=wall`: the wallboard's wall display.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub part: Option<String>,
    pub mode: Option<String>,
}

impl PageQuery {
    pub fn only_main(&self) -> bool {
        self.part.as_deref() == Some("main")
    }
}

/// What a page knows of its reader.
pub struct Reader {
    pub who: Principal,
    pub lang: Lang,
    /// The zone times are shown and days cut in (`[admin] timezone`).
    pub zone: Tz,
    /// The session's CSRF token, for the scripts' writes (none with an API key).
    pub csrf: Option<String>,
}

/// Every page's reader, taken from the request: the guard's principal, the language of its
/// headers, the configured zone and the session's CSRF token.
impl axum::extract::FromRequestParts<AdminState> for Reader {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let who = Principal::from_request_parts(parts, state).await?;
        Ok(Reader::new(state, who, &parts.headers))
    }
}

impl Reader {
    pub fn new(state: &AdminState, who: Principal, headers: &HeaderMap) -> Reader {
        let csrf = match &who.via {
            Via::Session { token } => state
                .sessions()
                .touch(Instant::now(), token)
                .map(|s| s.csrf),
            Via::Key => None,
        };
        Reader {
            who,
            lang: Lang::of(headers),
            zone: state.zone(),
            csrf,
        }
    }

    /// May this reader open the page at `path`?
    pub fn may_open(&self, path: &str) -> bool {
        rule_for("GET", path).is_some_and(|r| r.access.allows(self.who.role))
    }
}

/// The page, or only its main part.
/// A page whose content reloads on every event: `path` and its `?part=main`.
pub fn respond_live(
    reader: &Reader,
    path: &'static str,
    title: &'static str,
    main: String,
    q: &PageQuery,
) -> Response {
    let layout = Layout::new(reader, path, reader.lang.t(title)).live(format!("{path}?part=main"));
    respond(layout, main, q)
}

pub fn respond(layout: Layout<'_>, main: String, q: &PageQuery) -> Response {
    if q.only_main() {
        return Html(main).into_response();
    }
    Html(layout.render(&main)).into_response()
}

async fn home(State(state): State<AdminState>, who: Principal, headers: HeaderMap) -> Response {
    let reader = Reader::new(&state, who, &headers);
    for first in [
        "/ui/wallboard",
        "/ui/agents",
        "/ui/calls",
        "/ui/desk",
        "/ui/audit",
    ] {
        if reader.may_open(first) {
            return Redirect::to(first).into_response();
        }
    }
    let l = reader.lang;
    let main = format!(
        "<h1>{}</h1><p>{}</p>",
        escape(l.t("home.title")),
        escape(l.t("home.none"))
    );
    let layout = Layout::new(&reader, "/ui/", l.t("home.title"));
    respond(layout, main, &PageQuery::default())
}

async fn login(headers: HeaderMap) -> Response {
    let l = Lang::of(&headers);
    let main = format!(
        "<main id=\"main\" class=\"login-page\"><h1>{title}</h1>\
         <form id=\"login\" class=\"login\" data-failed=\"{failed}\" data-throttled=\"{throttled}\" \
         data-error=\"{error}\">\
         <label for=\"user\">{user}</label>\
         <input id=\"user\" name=\"user\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">{password}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required>\
         <button type=\"submit\">{submit}</button>\
         <p id=\"login-error\" class=\"error\" role=\"alert\"></p></form></main>",
        title = escape(l.t("login.title")),
        failed = escape(l.t("login.failed")),
        throttled = escape(l.t("login.throttled")),
        error = escape(l.t("login.error")),
        user = escape(l.t("login.user")),
        password = escape(l.t("login.password")),
        submit = escape(l.t("login.submit")),
    );
    Html(html::document(l, l.t("login.title"), "login", "", &main)).into_response()
}

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_admin_md_prints_the_pages_table_the_guard_enforces() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/admin.md"))
            .expect("docs/admin.md");
        let table = crate::roles::table_markdown(PAGES);
        assert!(
            doc.contains(&table),
            "docs/admin.md does not hold the pages table; paste:\n{table}"
        );
        for p in PAGES {
            let found = rule_for(p.method, p.path).expect("in");
            assert_eq!((found.method, found.path), (p.method, p.path));
            assert_eq!(found.access, p.access);
        }
    }

    #[test]
    fn the_assets_hold_no_inline_code_and_the_csp_allows_none() {
        assert!(!CSP.contains("unsafe") && CSP.contains("script-src 'self'"));
        for source in [
            include_str!("html.rs"),
            include_str!("wallboard.rs"),
            include_str!("agents.rs"),
            include_str!("calls.rs"),
            include_str!("flows.rs"),
            include_str!("drawing.rs"),
            include_str!("recordings.rs"),
            include_str!("mod.rs"),
            include_str!("reports.rs"),
            include_str!("ha.rs"),
            include_str!("users.rs"),
            include_str!("audit.rs"),
            include_str!("desk.rs"),
        ] {
            for banned in ["<script>", "style=\\\"", " onclick", "javascript:"] {
                let hit = source
                    .lines()
                    .any(|l| l.contains(banned) && !l.contains("banned"));
                assert!(!hit, "{banned}");
            }
        }
    }
}
