//! The HA pair: status (admin, supervisor) and promote (admin).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HaView {
    pub node: u64,
    /// `active`, `standby`, `fenced`, `witness`, `joining`.
    pub role: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub role_changes: u64,
    #[schema(value_type = String, format = DateTime)]
    pub role_since: chrono::DateTime<chrono::Utc>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: u64,
    /// `full` or `witness`.
    pub kind: String,
    pub voter: bool,
    pub cluster_addr: String,
    pub sip_addr: Option<String>,
    /// Last log index known replicated to it (reported by the active node only).
    pub matched_index: Option<u64>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// Continue alone in a pair without a witness whose other node is gone.
    #[serde(default)]
    pub force: bool,
}

#[utoipa::path(get, path = "/api/v1/ha", tag = "ha",
    responses((status = 200, body = HaView), (status = 503, body = ErrorBody)))]
pub async fn status(State(state): State<AdminState>) -> Result<Json<HaView>, ApiError> {
    let s = state
        .node()
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(HaView {
        node: s.node,
        role: s.role.to_string(),
        leader: s.leader,
        term: s.term,
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        role_changes: s.role_changes,
        role_since: s.role_since,
        members: s
            .members
            .into_iter()
            .map(|m| MemberView {
                id: m.id,
                kind: serde_json::to_value(m.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                voter: m.voter,
                cluster_addr: m.cluster_addr,
                sip_addr: m.sip_addr,
                matched_index: m.matched_index,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/ha/promote", tag = "ha", request_body = Promote,
    responses((status = 200, body = HaView),
        (status = 409, description = "This node is already the active one", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn promote(
    State(state): State<AdminState>,
    body: Result<Json<Promote>, JsonRejection>,
) -> Result<Json<HaView>, ApiError> {
    let Json(p) = body?;
    if *state.node().role().borrow() == ha::Role::Active {
        return Err(ApiError::Conflict(
            "this node is already the active one".into(),
        ));
    }
    state
        .node()
        .promote(p.force)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    status(State(state)).await
}
