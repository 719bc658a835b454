//! Flows (admin, supervisor): the flows the engine serves.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::ErrorBody;
use crate::state::AdminState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowView {
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = [FlowView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Json<Vec<FlowView>> {
    Json(
        state
            .engine()
            .flow_names()
            .into_iter()
            .map(|name| FlowView { name })
            .collect(),
    )
}
