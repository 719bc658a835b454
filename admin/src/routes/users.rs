//! Users (admin; the list also for auditors): list, add, disable, set a password.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use crate::accounts::UserView;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::roles::Role;
use crate::state::AdminState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password: String,
    /// For the agent role: the ACD agent id (default: the user name).
    #[serde(default)]
    pub agent: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = [UserView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<UserView>>, ApiError> {
    match state.accounts().users().await {
        Ok(users) => Ok(Json(users.iter().map(UserView::from).collect())),
        Err(e) => Err(state.account_error(e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "Not the active node", body = ErrorBody)))]
pub async fn create(
    State(state): State<AdminState>,
    who: Principal,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let Json(u) = body?;
    match state
        .accounts()
        .add_user(&u.name, u.role, u.agent, &u.password, &who.actor)
        .await
    {
        Ok(view) => Ok((StatusCode::CREATED, Json(view))),
        Err(e) => Err(state.account_error(e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let Path(name) = name?;
    match state.accounts().set_disabled(&name, true).await {
        Ok(view) => {
            state.sessions().close_user(&name);
            Ok(Json(view))
        }
        Err(e) => Err(state.account_error(e).await),
    }
}

#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "users", request_body = NewPassword,
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn password(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
    let Path(name) = name?;
    let Json(p) = body?;
    match state.accounts().set_password(&name, &p.password).await {
        Ok(view) => {
            state.sessions().close_user(&name);
            Ok(Json(view))
        }
        Err(e) => Err(state.account_error(e).await),
    }
}
