//! Flows (list and versions: admin, supervisor; changes: admin): versions are replicated
//! data (`engine::flows::FlowSync`); an upload is checked first and refused with the
//! checker's line/column diagnostics; activate a version, or roll back to the previous one.

use std::collections::BTreeMap;
use std::path::Path;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use engine::flows::{FlowStoreError, FlowVersion};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, DiagnosticView, ErrorBody};
use crate::state::AdminState;

/// Longest flow source accepted (bytes).
const MAX_SOURCE: usize = 512 * 1024;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowView {
    pub name: String,
    /// The version new calls run (none: only the flows directory's file is loaded).
    pub active_version: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Installed versions, oldest first.
    pub versions: Vec<VersionView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub version: String,
    /// The file it was installed from, or `api` for an upload.
    pub file: String,
    #[schema(value_type = String, format = DateTime)]
    pub installed_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub name: String,
    pub version: String,
    /// The flow's YAML, as installed.
    pub source: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The flow's YAML; its `name` says which flow this is a version of.
    pub source: String,
    /// Make it the version new calls run at once.
    #[serde(default)]
    pub activate: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstalledView {
    pub name: String,
    pub version: String,
    /// False when this exact source was installed before.
    pub new: bool,
    pub active: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    pub version: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActiveView {
    pub name: String,
    pub version: String,
    #[schema(value_type = String, format = DateTime)]
    pub activated_at: chrono::DateTime<chrono::Utc>,
    /// Earlier active versions, oldest first (a rollback takes the last).
    pub previous: Vec<String>,
}

impl From<engine::flows::ActiveFlow> for ActiveView {
    fn from(a: engine::flows::ActiveFlow) -> Self {
        ActiveView {
            name: a.name,
            version: a.version,
            activated_at: a.activated_at,
            previous: a.previous,
        }
    }
}

pub(crate) fn check_word(field: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            field,
            "1-64 characters of A-Z, a-z, 0-9, `-`, `_`, `.`",
        ))
    }
}

async fn flow_error(state: &AdminState, e: FlowStoreError) -> ApiError {
    match e {
        FlowStoreError::Invalid { diagnostics, .. } => {
            ApiError::InvalidFlow(diagnostics.iter().map(DiagnosticView::from).collect())
        }
        FlowStoreError::UnknownFlow(n) => ApiError::NotFound {
            what: "flow",
            id: n,
        },
        FlowStoreError::UnknownVersion { name, version } => ApiError::NotFound {
            what: "flow version",
            id: format!("{name}/{version}"),
        },
        FlowStoreError::NoPrevious(_) => ApiError::Conflict(e.to_string()),
        FlowStoreError::NotActive => {
            let role = state.node().role().borrow().to_string();
            let leader = state.node().status().await.ok().and_then(|s| s.leader);
            state.not_active(role, leader).await
        }
        FlowStoreError::NotApplied(_) => ApiError::Unavailable(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = [FlowView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<FlowView>>, ApiError> {
    let flows = state.flows()?;
    let versions = match flows.versions(None).await {
        Ok(v) => v,
        Err(e) => return Err(flow_error(&state, e).await),
    };
    let active = match flows.active().await {
        Ok(a) => a,
        Err(e) => return Err(flow_error(&state, e).await),
    };
    let mut by_name: BTreeMap<String, FlowView> = BTreeMap::new();
    for name in state.engine().flow_names()? {
        by_name.insert(name.clone(), view(name));
    }
    for v in versions {
        let FlowVersion {
            name,
            version,
            file,
            installed_at,
            ..
        } = v;
        by_name
            .entry(name.clone())
            .or_insert_with(|| view(name))
            .versions
            .push(VersionView {
                version,
                file,
                installed_at,
            });
    }
    for a in active {
        let f = by_name
            .entry(a.name.clone())
            .or_insert_with(|| view(a.name.clone()));
        f.active_version = Some(a.version);
        f.activated_at = Some(a.activated_at);
    }
    Ok(Json(by_name.into_values().collect()))
}

fn view(name: String) -> FlowView {
    FlowView {
        name,
        active_version: None,
        activated_at: None,
        versions: Vec::new(),
    }
}

#[utoipa::path(get, path = "/api/v1/flows/{name}/versions/{version}", tag = "flows",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)))]
pub async fn source(
    State(state): State<AdminState>,
    p: Result<UrlPath<(String, String)>, PathRejection>,
) -> Result<Json<SourceView>, ApiError> {
    let UrlPath((name, version)) = p?;
    check_word("name", &name)?;
    check_word("version", &version)?;
    match state.flows()?.store().version(&name, &version).await {
        Ok(Some(v)) => Ok(Json(SourceView {
            name: v.name,
            version: v.version,
            source: v.source,
        })),
        Ok(None) => Err(ApiError::NotFound {
            what: "flow version",
            id: format!("{name}/{version}"),
        }),
        Err(e) => Err(flow_error(&state, e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/flows", tag = "flows", request_body = Upload,
    responses((status = 201, body = InstalledView),
        (status = 400, description = "Refused by the checker: `diagnostics` gives line and column of each problem", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AdminState>,
    body: Result<Json<Upload>, JsonRejection>,
) -> Result<(StatusCode, Json<InstalledView>), ApiError> {
    let Json(u) = body?;
    if u.source.len() > MAX_SOURCE {
        return Err(ApiError::bad(
            "source",
            format!("at most {MAX_SOURCE} bytes"),
        ));
    }
    match state
        .flows()?
        .install(&u.source, Path::new("api"), u.activate)
        .await
    {
        Ok(i) => Ok((
            StatusCode::CREATED,
            Json(InstalledView {
                name: i.name,
                version: i.version,
                new: i.new,
                active: i.active,
            }),
        )),
        Err(e) => Err(flow_error(&state, e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/flows/{name}/activate", tag = "flows", request_body = Activate,
    params(("name" = String, Path)),
    responses((status = 200, body = ActiveView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AdminState>,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Json<Activate>, JsonRejection>,
) -> Result<Json<ActiveView>, ApiError> {
    let UrlPath(name) = name?;
    let Json(a) = body?;
    check_word("name", &name)?;
    check_word("version", &a.version)?;
    match state.flows()?.activate(&name, &a.version).await {
        Ok(active) => Ok(Json(active.into())),
        Err(e) => Err(flow_error(&state, e).await),
    }
}

#[utoipa::path(post, path = "/api/v1/flows/{name}/rollback", tag = "flows",
    params(("name" = String, Path)),
    responses((status = 200, body = ActiveView), (status = 404, body = ErrorBody),
        (status = 409, description = "No earlier version", body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AdminState>,
    name: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<ActiveView>, ApiError> {
    let UrlPath(name) = name?;
    check_word("name", &name)?;
    match state.flows()?.rollback(&name).await {
        Ok(active) => Ok(Json(active.into())),
        Err(e) => Err(flow_error(&state, e).await),
    }
}
