//! API keys (admin; the list also for auditors): list, create (the key is in the answer,
//! once), revoke.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::accounts::ApiKeyView;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::roles::Role;
use crate::state::AdminState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for (`wallboard`, `crm`, `prometheus`).
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key itself: shown this once, never again (only its hash is kept).
    pub key: String,
    #[serde(flatten)]
    pub view: ApiKeyView,
}

#[utoipa::path(get, path = "/api/v1/apikeys", tag = "apikeys",
    responses((status = 200, body = [ApiKeyView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    match state.accounts().keys().await {
        Ok(keys) => Ok(Json(keys.iter().map(ApiKeyView::from).collect())),
        Err(e) => Err(state.account_error(e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/apikeys", tag = "apikeys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AdminState>,
    who: Principal,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let Json(k) = body?;
    match state
        .accounts()
        .create_key(&k.name, k.role, &who.actor)
        .await
    {
        Ok((view, key)) => Ok((StatusCode::CREATED, Json(CreatedKey { key, view }))),
        Err(e) => Err(state.account_error(e).await),
    }
}

#[utoipa::path(delete, path = "/api/v1/apikeys/{id}", tag = "apikeys",
    params(("id" = String, Path, description = "The key's id (12 hex digits)")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let Path(id) = id?;
    match state.accounts().revoke_key(&id).await {
        Ok(view) => Ok(Json(view)),
        Err(e) => Err(state.account_error(e).await),
    }
}
