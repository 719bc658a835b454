//! Flows (list and versions: admin, supervisor; changes: admin): versions are replicated
//! data, reached through the engine handle's flow commands; an upload is checked first and refused with the
//! checker's line/column diagnostics; activate a version, or roll back to the previous one.

use std::collections::BTreeMap;
use std::path::Path;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

/// Longest flow source accepted (bytes).
const MAX_SOURCE: usize = engine::handle::MAX_FLOW_SOURCE;

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

#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = [FlowView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<FlowView>>, ApiError> {
    let engine = state.engine();
    let listed = match engine.flow_list().await {
        Ok(l) => l,
        Err(e) => return Err(state.handle_error(e).await),
    };
    let mut by_name: BTreeMap<String, FlowView> = BTreeMap::new();
    for name in engine.flow_names()? {
        by_name.insert(name.clone(), view(name));
    }
    for l in listed {
        let f = by_name
            .entry(l.name.clone())
            .or_insert_with(|| view(l.name.clone()));
        f.active_version = l.active;
        f.activated_at = l.activated_at;
        f.versions = l
            .versions
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                file: v.file,
                installed_at: v.installed_at,
            })
            .collect();
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
    match state.engine().flow_source(&name, &version).await {
        Ok(v) => Ok(Json(SourceView {
            name: v.name,
            version: v.version,
            source: v.source,
        })),
        Err(e) => Err(state.handle_error(e).await),
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
        .engine()
        .flow_install(&u.source, Path::new("api"), u.activate)
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
        Err(e) => Err(state.handle_error(e).await),
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
    match state.engine().flow_activate(&name, &a.version).await {
        Ok(active) => Ok(Json(active.into())),
        Err(e) => Err(state.handle_error(e).await),
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
    match state.engine().flow_rollback(&name).await {
        Ok(active) => Ok(Json(active.into())),
        Err(e) => Err(state.handle_error(e).await),
    }
}

/// A call to simulate: digits keyed, start time, numbers, canned connector outcomes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulate {
    /// An installed version; by default the one new calls run.
    #[serde(default)]
    pub version: Option<String>,
    /// Digits keyed at each menu or collect, as `svi simulate --input` takes them:
    /// `"1 2 #"`, `-` for no input (or comma-separated: `"1,,4321#"`).
    #[serde(default)]
    pub inputs: String,
    /// Virtual start time, RFC 3339 (default: now); business hours depend on it.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub caller: Option<String>,
    #[serde(default)]
    pub called: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Outcomes of lookups, actions, queues and transfers, as `svi simulate --stubs`
    /// takes them (docs/flows.md).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stubs: Option<serde_json::Value>,
}

/// A simulated call: each effect of the flow with what the simulated engine answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SimulationView {
    pub name: String,
    pub version: String,
    /// The steps visited, in order.
    pub path: Vec<String>,
    /// `finished` (the flow hung up or ended), `routed` (to a queue or a transfer without a
    /// stubbed outcome) or `endless` (stopped: the flow loops with these inputs).
    pub ending: String,
    /// One object per effect: step, what the flow did (`kind` and its fields), the answer.
    #[schema(value_type = Vec<Object>)]
    pub effects: Vec<serde_json::Value>,
}

/// A number or a language as a caller would send it: 1-64 printable characters.
fn check_text(field: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err(ApiError::bad(field, "1-64 printable characters"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/flows/{name}/simulate", tag = "flows", request_body = Simulate,
    params(("name" = String, Path)),
    responses((status = 200, body = SimulationView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn simulate(
    State(state): State<AdminState>,
    name: Result<UrlPath<String>, PathRejection>,
    body: Result<Json<Simulate>, JsonRejection>,
) -> Result<Json<SimulationView>, ApiError> {
    let UrlPath(name) = name?;
    let Json(s) = body?;
    check_word("name", &name)?;
    if let Some(v) = &s.version {
        check_word("version", v)?;
    }
    if s.inputs.len() > 1024 || s.inputs.chars().any(char::is_control) {
        return Err(ApiError::bad("inputs", "at most 1024 printable characters"));
    }
    let at = match &s.at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|_| ApiError::bad("at", "an RFC 3339 time, e.g. 2026-12-25T10:00:00+01:00"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let caller = s.caller.unwrap_or_else(|| "+33100000000".into());
    let called = s.called.unwrap_or_else(|| "100".into());
    check_text("caller", &caller)?;
    check_text("called", &called)?;
    if let Some(l) = &s.language {
        check_word("language", l)?;
    }
    let sim = engine::handle::FlowSimulation {
        inputs: s.inputs,
        at,
        caller,
        called,
        language: s.language,
        stubs: s.stubs,
    };
    let done = match state
        .engine()
        .flow_simulate(&name, s.version.as_deref(), sim)
        .await
    {
        Ok(d) => d,
        Err(engine::handle::HandleError::BadRequest { reason }) => {
            return Err(ApiError::bad("stubs", reason))
        }
        Err(e) => return Err(state.handle_error(e).await),
    };
    let t = done.transcript;
    let effects = t
        .events
        .iter()
        .map(|e| serde_json::to_value(e).map_err(|e| ApiError::Internal(e.to_string())))
        .collect::<Result<_, _>>()?;
    let ending = match serde_json::to_value(t.ending) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    Ok(Json(SimulationView {
        name: done.name,
        version: done.version,
        path: t.path,
        ending,
        effects,
    }))
}
