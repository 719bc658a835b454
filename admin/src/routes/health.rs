//! `GET /healthz`: open to anyone (load balancers, monitors): status, role, version; no
//! secrets, no counts.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::state::AdminState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` while the API answers.
    pub status: &'static str,
    /// The node's HA role: `active`, `standby`, `fenced`, `joining`.
    pub role: String,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The node answers", body = Health)))]
pub async fn healthz(State(state): State<AdminState>) -> Json<Health> {
    let role = state.node().role().borrow().to_string();
    Json(Health {
        status: "ok",
        role,
        version: env!("CARGO_PKG_VERSION"),
    })
}
