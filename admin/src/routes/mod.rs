//! The router: one file per resource; every route passes the guard (`auth::guard`).

pub mod audit;
pub mod calls;
mod csv;
pub mod events;
pub mod flows;
pub mod ha;
pub mod health;
pub mod hooks;
pub mod keys;
pub mod me;
pub mod metrics;
pub mod queues;
pub mod recordings;
pub mod records;
pub mod session;
pub mod stats;
pub mod users;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::state::AdminState;

/// Every route of the API, behind the guard (checked by tests against `roles::ROUTES`).
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(crate::openapi::openapi_json))
        .route(
            "/api/v1/session",
            post(session::login)
                .get(session::whoami)
                .delete(session::logout),
        )
        .route("/api/v1/queues", get(queues::queues))
        .route("/api/v1/agents", get(queues::agents))
        .route("/api/v1/agents/{id}/state", post(queues::set_state))
        .route("/api/v1/me/agent", get(me::show))
        .route("/api/v1/me/agent/state", post(me::set_state))
        .route("/api/v1/me/language", put(me::language))
        .route("/api/v1/calls", get(calls::list))
        .route("/api/v1/calls/{id}", get(calls::one))
        .route("/api/v1/calls/{id}/supervise", post(calls::supervise))
        .route("/api/v1/calls/{id}/recording", post(calls::recording))
        .route("/api/v1/calls/{id}/hangup", post(calls::hangup))
        .route("/api/v1/events", get(events::feed))
        .route("/api/v1/statistics", get(stats::statistics))
        .route("/api/v1/flows", get(flows::list).post(flows::upload))
        .route(
            "/api/v1/flows/{name}/versions/{version}",
            get(flows::source),
        )
        .route("/api/v1/flows/{name}/activate", post(flows::activate))
        .route("/api/v1/flows/{name}/rollback", post(flows::rollback))
        .route("/api/v1/flows/{name}/simulate", post(flows::simulate))
        .route("/api/v1/records", get(records::search))
        .route("/api/v1/recordings", get(recordings::list))
        .route("/api/v1/recordings/{call}", get(recordings::one))
        .route("/api/v1/recordings/{call}/audio", get(recordings::audio))
        .route("/api/v1/ha", get(ha::status))
        .route("/api/v1/ha/promote", post(ha::promote))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{name}/disable", post(users::disable))
        .route("/api/v1/users/{name}/password", put(users::password))
        .route("/api/v1/apikeys", get(keys::list).post(keys::create))
        .route("/api/v1/apikeys/{id}", delete(keys::revoke))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/hooks/alarms", post(hooks::alarms))
        .merge(crate::web::pages())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard,
        ))
        .fallback(not_found)
        .layer(middleware::map_response(security_headers))
        .layer(middleware::from_fn(crate::web::page_layer))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound {
        what: "route",
        id: uri.path().chars().take(200).collect(),
    }
}

/// Headers on every answer: HTTPS only from now on, no sniffing, no caching of API data,
/// no framing, no referrer.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let h = response.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
