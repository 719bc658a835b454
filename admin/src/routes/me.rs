//! An agent's own state, for the agent's own account (role `agent`, bound to one ACD agent
//! when the user was made): `GET /api/v1/me/agent` shows it, `POST /api/v1/me/agent/state`
//! logs in, makes ready, pauses with a reason, or logs out. There is no agent id in these
//! paths: an account reaches its own agent and no other (other agents' routes are for
//! supervisors). `PUT /api/v1/me/language` stores the console language a person chose
//! (any signed-in user); the login sets it as the pages' language cookie.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;

use crate::auth::{Principal, Via};
use crate::error::{ApiError, ErrorBody};
use crate::routes::queues::{agent_view, apply, AgentAction, AgentView};
use crate::state::AdminState;

/// The ACD agent of the caller's account; an API key is no agent's account.
fn own_agent(who: &Principal) -> Result<String, ApiError> {
    who.agent.clone().ok_or_else(|| ApiError::NotFound {
        what: "agent of this account",
        id: who.actor.clone(),
    })
}

#[utoipa::path(get, path = "/api/v1/me/agent", tag = "agents",
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "The account is bound to no agent (an API key), or the agent is not configured", body = ErrorBody)))]
pub async fn show(
    State(state): State<AdminState>,
    who: Principal,
) -> Result<Json<AgentView>, ApiError> {
    agent_view(&state, own_agent(&who)?).await.map(Json)
}

#[utoipa::path(post, path = "/api/v1/me/agent/state", tag = "agents", request_body = AgentAction,
    responses((status = 200, body = AgentView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The ACD refused (e.g. already ready)", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn set_state(
    State(state): State<AdminState>,
    who: Principal,
    body: Result<Json<AgentAction>, JsonRejection>,
) -> Result<Json<AgentView>, ApiError> {
    let Json(action) = body?;
    let id = own_agent(&who)?;
    apply(&state, id, action).await.map(Json)
}

#[derive(Debug, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// `fr` or `en`.
    pub language: String,
}

#[utoipa::path(put, path = "/api/v1/me/language", tag = "session", request_body = Language,
    responses((status = 200, body = Language), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "An API key is no person's account", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn language(
    State(state): State<AdminState>,
    who: Principal,
    body: Result<Json<Language>, JsonRejection>,
) -> Result<Json<Language>, ApiError> {
    let Json(l) = body?;
    let Some(lang) = crate::web::i18n::Lang::parse(&l.language) else {
        return Err(ApiError::bad("language", "fr or en"));
    };
    if who.via == Via::Key {
        return Err(ApiError::NotFound {
            what: "account of this key",
            id: who.actor,
        });
    }
    match state.accounts().set_lang(&who.name, lang.code()).await {
        Ok(_) => Ok(Json(l)),
        Err(e) => Err(state.account_error(e).await),
    }
}
