//! Calls in progress, from the engine handle (flow and step, queue and position, agent),
//! and a supervisor's commands to one: listen, whisper, barge and stop
//! (`POST /api/v1/calls/{id}/supervise`), recording pause and resume
//! (`.../recording`), hang up (`.../hangup`). A call is given by its id or by the agent on
//! it. Numbers are personal data: these routes are for the roles that handle them.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::call::live::{CallCommand, CallPhase, CommandError, CommandOutcome, SuperviseMode};
use engine::handle::{CallInProgress, HandleError};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::routes::flows::check_word;
use crate::state::AdminState;

/// A call in progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallView {
    pub id: String,
    pub caller: String,
    pub called: String,
    /// `setup`, `dialing` (a call the engine placed, ringing), `flow`, `queued`,
    /// `agent_ringing`, `bridged` or `ending`.
    pub phase: String,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    /// The flow step the call is at.
    pub step: Option<String>,
    pub queue: Option<String>,
    /// 1-based place in the queue, while waiting.
    pub position: Option<u32>,
    pub agent: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<DateTime<Utc>>,
    /// When an agent answered.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub bridged_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
}

fn phase(p: CallPhase) -> &'static str {
    match p {
        CallPhase::Setup => "setup",
        CallPhase::Dialing => "dialing",
        CallPhase::Flow => "flow",
        CallPhase::Queued => "queued",
        CallPhase::AgentRinging => "agent_ringing",
        CallPhase::Bridged => "bridged",
        CallPhase::Ending => "ending",
    }
}

impl From<CallInProgress> for CallView {
    fn from(c: CallInProgress) -> Self {
        let v = c.call;
        CallView {
            id: v.id,
            caller: v.caller.reveal().clone(),
            called: v.called.reveal().clone(),
            phase: phase(v.phase).to_string(),
            flow: v.flow,
            flow_version: v.flow_version,
            step: v.step,
            queue: v.queue,
            position: v.position,
            agent: v.agent,
            started_at: v.started_at,
            answered_at: v.answered_at,
            bridged_at: v.bridged_at,
            duration_ms: c.duration_ms,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/calls", tag = "calls",
    responses((status = 200, description = "Oldest first", body = [CallView]),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list(State(state): State<AdminState>) -> Result<Json<Vec<CallView>>, ApiError> {
    let calls = state.engine().calls().await?;
    Ok(Json(calls.into_iter().map(CallView::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = CallView), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CallView>, ApiError> {
    let Path(id) = id?;
    check_word("id", &id)?;
    Ok(Json(state.engine().call(&id).await?.into()))
}

/// What the call did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandAnswer {
    /// The call reached (when the path gave an agent, the call that agent is on).
    pub call: String,
    /// `supervisor_called`, `supervision_changed`, `supervision_stopped`,
    /// `recording_paused`, `recording_resumed` or `hanging_up`.
    pub outcome: String,
    /// The supervision mode now (supervision outcomes).
    pub mode: Option<String>,
    /// The supervisor's phone being called.
    pub target: Option<String>,
}

fn mode_name(m: SuperviseMode) -> &'static str {
    match m {
        SuperviseMode::Listen => "listen",
        SuperviseMode::Whisper => "whisper",
        SuperviseMode::Barge => "barge",
    }
}

async fn command(
    state: &AdminState,
    id: Result<Path<String>, PathRejection>,
    command: CallCommand,
) -> Result<Json<CommandAnswer>, ApiError> {
    let Path(id) = id?;
    check_word("id", &id)?;
    let answer = match state.engine().call_command(&id, command).await {
        Ok(a) => a,
        Err(HandleError::CallRefused {
            refusal: e @ (CommandError::Target(_) | CommandError::NoSupervisor),
            ..
        }) => return Err(ApiError::bad("target", e.to_string())),
        Err(e) => return Err(state.handle_error(e).await),
    };
    let (outcome, mode, target) = match answer.outcome {
        CommandOutcome::SupervisorCalled { target, mode } => {
            ("supervisor_called", Some(mode), Some(target))
        }
        CommandOutcome::SupervisionChanged { mode } => ("supervision_changed", Some(mode), None),
        CommandOutcome::SupervisionStopped => ("supervision_stopped", None, None),
        CommandOutcome::RecordingPaused => ("recording_paused", None, None),
        CommandOutcome::RecordingResumed => ("recording_resumed", None, None),
        CommandOutcome::HangingUp => ("hanging_up", None, None),
    };
    Ok(Json(CommandAnswer {
        call: answer.call,
        outcome: outcome.to_string(),
        mode: mode.map(|m| mode_name(m).to_string()),
        target,
    }))
}

/// Start supervising (the engine calls `target`, the supervisor's phone), change the mode,
/// or stop (`mode` absent).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Supervise {
    /// `listen`, `whisper` or `barge`; absent: stop.
    pub mode: Option<String>,
    /// An extension, a number or a SIP URI inside `sip.allowed_networks` (to start).
    pub target: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/calls/{id}/supervise", tag = "calls", request_body = Supervise,
    params(("id" = String, Path, description = "A call id, or the agent on the call")),
    responses((status = 200, body = CommandAnswer), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The call refused (not bridged, not supervised...)", body = ErrorBody)))]
pub async fn supervise(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Supervise>, JsonRejection>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let Json(s) = body?;
    let mode = match s.mode.as_deref() {
        None => None,
        Some("listen") => Some(SuperviseMode::Listen),
        Some("whisper") => Some(SuperviseMode::Whisper),
        Some("barge") => Some(SuperviseMode::Barge),
        Some(other) => {
            return Err(ApiError::bad(
                "mode",
                format!("`{other}` is not listen, whisper or barge"),
            ))
        }
    };
    if let Some(t) = &s.target {
        if t.is_empty() || t.len() > 256 || t.chars().any(char::is_control) {
            return Err(ApiError::bad("target", "give 1-256 printable characters"));
        }
    }
    let target = s.target;
    command(&state, id, CallCommand::Supervise { mode, target }).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// `true`: pause the call's recording; `false`: resume it.
    pub pause: bool,
}

#[utoipa::path(post, path = "/api/v1/calls/{id}/recording", tag = "calls", request_body = Recording,
    params(("id" = String, Path, description = "A call id, or the agent on the call")),
    responses((status = 200, body = CommandAnswer), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Not recorded, or ending", body = ErrorBody)))]
pub async fn recording(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Recording>, JsonRejection>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let Json(r) = body?;
    command(&state, id, CallCommand::Recording { pause: r.pause }).await
}

#[utoipa::path(post, path = "/api/v1/calls/{id}/hangup", tag = "calls",
    params(("id" = String, Path, description = "A call id, or the agent on the call")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn hangup(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CommandAnswer>, ApiError> {
    command(&state, id, CallCommand::Hangup).await
}
