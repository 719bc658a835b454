//! `GET /api/v1/audit` (admin, auditor): the audit log between two instants, as JSON or CSV.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::audit::{AuditEntry, Outcome};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::routes::csv::{attachment, cell, wants_csv};
use crate::state::AdminState;

const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this instant (RFC 3339; default: 24 hours ago).
    pub from: Option<String>,
    /// Up to this instant, excluded (RFC 3339; default: now).
    pub to: Option<String>,
    /// At most this many entries, oldest first (1-10000, default 1000).
    pub limit: Option<usize>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub node: String,
    /// `user:NAME`, `key:ID`, `unknown`.
    pub actor: String,
    /// `METHOD /route`, or a plug-in's action (`door.open`).
    pub action: String,
    pub target: String,
    /// The caller's address.
    pub origin: String,
    /// `requested`, `done`, `denied`, `failed`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Requested => "requested",
        Outcome::Done => "done",
        Outcome::Denied => "denied",
        Outcome::Failed => "failed",
    }
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            at: e.at,
            node: e.node,
            actor: e.actor,
            action: e.action,
            target: e.target,
            origin: e.origin,
            outcome: outcome_str(e.outcome).to_string(),
            detail: e.detail,
        }
    }
}

pub(crate) fn instant(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::bad(field, format!("`{s}` is not an RFC 3339 instant: {e}")))
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Entries, oldest first (JSON, or CSV with format=csv)", body = [AuditView]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AdminState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let from = instant("from", q.from.as_deref())?
        .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
    let to = instant("to", q.to.as_deref())?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad("limit", format!("give 1-{MAX_LIMIT}")));
    }
    let csv = wants_csv(q.format.as_deref())?;
    let entries = engine::audit::read_between(state.storage(), from, to, limit)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let views: Vec<AuditView> = entries.into_iter().map(AuditView::from).collect();
    if !csv {
        return Ok(Json(views).into_response());
    }
    let mut out = String::from("at,node,actor,action,target,origin,outcome,detail\r\n");
    for v in &views {
        let at = v.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let row = [
            at.as_str(),
            &v.node,
            &v.actor,
            &v.action,
            &v.target,
            &v.origin,
            &v.outcome,
            v.detail.as_deref().unwrap_or(""),
        ];
        out.push_str(&row.map(cell).join(","));
        out.push_str("\r\n");
    }
    Ok(attachment("audit.csv", out))
}
