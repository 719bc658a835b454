//! Logging in and out with a password: `POST /api/v1/session` opens a browser session
//! (cookie + CSRF token), `GET` says who is logged in, `DELETE` logs out.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::audit::Outcome;
use serde::{Deserialize, Serialize};

use crate::auth::{peer_ip, record, ClientAddr, Principal, Via};
use crate::error::{ApiError, ErrorBody};
use crate::roles::{rule_for, Role};
use crate::session::{clear_cookie, set_cookie};
use crate::state::{AdminState, AuthFailures};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub user: String,
    pub role: Role,
    /// For an agent's account: the ACD agent it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Send it back as `X-CSRF-Token` with every write made with the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    pub idle_timeout_secs: u64,
    pub absolute_timeout_secs: u64,
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = SessionInfo),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Wrong user or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this account or address", body = ErrorBody)))]
pub async fn login(
    State(state): State<AdminState>,
    ClientAddr(peer): ClientAddr,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(login) = body?;
    let ip = peer_ip(peer.as_ref());
    let rule = rule_for("POST", "/api/v1/session").expect("the login route is in the table");
    let actor = match crate::accounts::check_name("user", &login.user) {
        Ok(()) => format!("user:{}", login.user),
        Err(_) => "unknown".to_string(),
    };
    let target = "/api/v1/session";
    let throttled = state.throttle().check(Instant::now(), &login.user, ip);
    if let Err(wait) = throttled {
        record(
            &state,
            rule,
            &actor,
            target,
            peer.as_ref(),
            Outcome::Denied,
            Some("throttled".into()),
        )
        .await;
        return Err(ApiError::Throttled {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let user = state
        .accounts()
        .login(&login.user, &login.password)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(user) = user else {
        state.throttle().failed(Instant::now(), &login.user, ip);
        AuthFailures::count(&state.auth_failures().login);
        record(
            &state,
            rule,
            &actor,
            target,
            peer.as_ref(),
            Outcome::Denied,
            Some("wrong user or password".into()),
        )
        .await;
        return Err(ApiError::Unauthenticated);
    };
    state.throttle().succeeded(&login.user);
    let (opened, timeouts) = {
        let mut sessions = state.sessions();
        (
            sessions.open(Instant::now(), &user.name, user.role),
            sessions.timeouts(),
        )
    };
    record(
        &state,
        rule,
        &actor,
        target,
        peer.as_ref(),
        Outcome::Done,
        None,
    )
    .await;
    // The language this person chose, for every browser they sign in from.
    let lang = user.lang.as_deref().and_then(crate::web::i18n::Lang::parse);
    let info = SessionInfo {
        user: user.name,
        role: user.role,
        agent: user.agent,
        csrf_token: Some(opened.csrf),
        idle_timeout_secs: timeouts.idle.as_secs(),
        absolute_timeout_secs: timeouts.absolute.as_secs(),
    };
    let mut response = (
        StatusCode::OK,
        [(header::SET_COOKIE, set_cookie(&opened.token, timeouts))],
        Json(info),
    )
        .into_response();
    if let Some(cookie) = lang.and_then(|l| HeaderValue::from_str(&l.cookie()).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, description = "Who is calling", body = SessionInfo),
        (status = 401, body = ErrorBody)))]
pub async fn whoami(State(state): State<AdminState>, who: Principal) -> Json<SessionInfo> {
    let t = state.sessions().timeouts();
    Json(SessionInfo {
        user: who.name,
        role: who.role,
        agent: who.agent,
        csrf_token: None,
        idle_timeout_secs: t.idle.as_secs(),
        absolute_timeout_secs: t.absolute.as_secs(),
    })
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Logged out; the cookie is cleared"),
        (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AdminState>, who: Principal) -> Response {
    if let Via::Session { token } = &who.via {
        state.sessions().close(token);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie())],
    )
        .into_response()
}
