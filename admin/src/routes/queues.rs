//! Queues and agents, live, from the engine handle's ACD snapshot: `GET /api/v1/queues`
//! (with the calls waiting or ringing in each), `GET /api/v1/agents`, and the supervisor's
//! actions on an agent (`POST /api/v1/agents/{id}/state`: log in, ready, pause with a
//! reason, log out).

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::acd::{AgentSnapshot, AgentState, CallState, Pending, QueueSnapshot, Timestamp};
use engine::handle::AgentCommand;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::routes::flows::check_word;
use crate::state::AdminState;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn instant(t: Timestamp) -> DateTime<Utc> {
    i64::try_from(t.as_unix_ms())
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
}

/// A queue at one instant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub id: String,
    pub name: String,
    /// `longest_idle`, `best_skill`, `round_robin` or `ring_all`.
    pub strategy: String,
    /// Calls in the waiting order (callbacks included).
    pub waiting: u32,
    pub callbacks: u32,
    /// Calls whose agent is ringing.
    pub offered: u32,
    pub talking: u32,
    /// The longest current wait among waiting and ringing calls.
    pub longest_wait_ms: Option<u64>,
    /// The wait a caller joining now would be told.
    pub expected_wait_ms: Option<u64>,
    pub agents_logged_in: u32,
    pub agents_available: u32,
    pub agents_busy: u32,
    /// The queue's agents per state.
    pub agents: AgentCountsView,
    /// The calls the queue holds, waiting ones in their order.
    pub calls: Vec<QueuedCallView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentCountsView {
    pub logged_out: u32,
    pub ready: u32,
    pub not_ready: u32,
    /// Reserved or ringing.
    pub offered: u32,
    pub talking: u32,
    pub wrap_up: u32,
}

/// A call in a queue (its numbers are on `/api/v1/calls`, for the roles that see them).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedCallView {
    pub call: String,
    /// `waiting`, `retry_wait`, `offered`, `dialing` (a callback) or `talking`.
    pub state: String,
    /// 1-based place in the waiting order, while waiting.
    pub position: Option<u32>,
    pub waited_ms: u64,
    /// The agent ringing for it or on it.
    pub agent: Option<String>,
    pub callback: bool,
}

fn call_state(s: &CallState) -> &'static str {
    match s {
        CallState::Waiting => "waiting",
        CallState::RetryWait => "retry_wait",
        CallState::Offered { .. } => "offered",
        CallState::Dialing { .. } => "dialing",
        CallState::Talking { .. } => "talking",
    }
}

fn text_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An agent at one instant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    /// `logged_out`, `ready`, `not_ready`, `reserved`, `ringing`, `talking`, `wrap_up`.
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    pub time_in_state_ms: u64,
    /// Why the agent is not ready.
    pub pause_reason: Option<String>,
    /// The call the agent is offered, on, or wrapping up.
    pub call: Option<String>,
    /// A change asked while busy, applied when the work ends: `pause` or `logout`.
    pub pending: Option<String>,
    pub pending_reason: Option<String>,
    pub queues: Vec<String>,
}

fn agent_state(s: &AgentState) -> (&'static str, Option<String>) {
    match s {
        AgentState::LoggedOut => ("logged_out", None),
        AgentState::Ready => ("ready", None),
        AgentState::NotReady { .. } => ("not_ready", None),
        AgentState::Reserved { call } => ("reserved", Some(call.as_str().to_string())),
        AgentState::Ringing { call } => ("ringing", Some(call.as_str().to_string())),
        AgentState::Talking { call } => ("talking", Some(call.as_str().to_string())),
        AgentState::WrapUp { call, .. } => ("wrap_up", Some(call.as_str().to_string())),
    }
}

impl From<AgentSnapshot> for AgentView {
    fn from(a: AgentSnapshot) -> Self {
        let (state, on) = agent_state(&a.state);
        let (pending, pending_reason) = match a.pending {
            Some(Pending::Pause { reason }) => (Some("pause".to_string()), Some(reason)),
            Some(Pending::Logout) => (Some("logout".to_string()), None),
            None => (None, None),
        };
        AgentView {
            id: a.id.as_str().to_string(),
            name: a.name,
            state: state.to_string(),
            since: instant(a.since),
            time_in_state_ms: ms(a.time_in_state),
            pause_reason: a.pause_reason,
            call: a.call.map(|c| c.as_str().to_string()).or(on),
            pending,
            pending_reason,
            queues: a.queues.iter().map(|q| q.as_str().to_string()).collect(),
        }
    }
}

fn queue_view(q: QueueSnapshot, calls: &[engine::acd::QueuedCallSnapshot]) -> QueueView {
    let mut held: Vec<QueuedCallView> = calls
        .iter()
        .filter(|c| c.queue == q.id)
        .map(|c| QueuedCallView {
            call: c.call.as_str().to_string(),
            state: call_state(&c.state).to_string(),
            position: c.position,
            waited_ms: ms(c.waited),
            agent: c.agent().map(|a| a.as_str().to_string()),
            callback: c.callback,
        })
        .collect();
    held.sort_by_key(|c| (c.position.is_none(), c.position));
    QueueView {
        id: q.id.as_str().to_string(),
        name: q.name,
        strategy: text_of(&q.strategy),
        waiting: q.waiting,
        callbacks: q.callbacks,
        offered: q.offered,
        talking: q.talking,
        longest_wait_ms: q.longest_wait.map(ms),
        expected_wait_ms: q.expected_wait.map(ms),
        agents_logged_in: q.agents_logged_in,
        agents_available: q.agents_available,
        agents_busy: q.agents_busy,
        agents: AgentCountsView {
            logged_out: q.agents.logged_out,
            ready: q.agents.ready,
            not_ready: q.agents.not_ready,
            offered: q.agents.offered,
            talking: q.agents.talking,
            wrap_up: q.agents.wrap_up,
        },
        calls: held,
    }
}

#[utoipa::path(get, path = "/api/v1/queues", tag = "queues",
    responses((status = 200, body = [QueueView]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn queues(State(state): State<AdminState>) -> Result<Json<Vec<QueueView>>, ApiError> {
    let acd = state.engine().acd().await?;
    Ok(Json(
        acd.queues
            .into_iter()
            .map(|q| queue_view(q, &acd.calls))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = [AgentView]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn agents(State(state): State<AdminState>) -> Result<Json<Vec<AgentView>>, ApiError> {
    let agents = state.engine().agents().await?;
    Ok(Json(agents.into_iter().map(AgentView::from).collect()))
}

/// A change of an agent's state (by a supervisor, or by the agent itself).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentAction {
    /// `login`, `ready`, `pause` or `logout`.
    pub action: String,
    /// The pause's reason code (`pause` only; 1-64 printable characters).
    pub reason: Option<String>,
}

impl AgentAction {
    fn command(self) -> Result<AgentCommand, ApiError> {
        let no_reason = |c: AgentCommand| match &self.reason {
            Some(_) => Err(ApiError::bad("reason", "only a pause takes a reason")),
            None => Ok(c),
        };
        match self.action.as_str() {
            "login" => no_reason(AgentCommand::Login),
            "ready" => no_reason(AgentCommand::Ready),
            "logout" => no_reason(AgentCommand::Logout),
            "pause" => match self.reason {
                Some(r)
                    if !r.trim().is_empty()
                        && r.chars().count() <= 64
                        && !r.chars().any(char::is_control) =>
                {
                    Ok(AgentCommand::Pause { reason: r })
                }
                _ => Err(ApiError::bad(
                    "reason",
                    "a pause needs a reason of 1-64 printable characters",
                )),
            },
            other => Err(ApiError::bad(
                "action",
                format!("`{other}` is not login, ready, pause or logout"),
            )),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/state", tag = "agents", request_body = AgentAction,
    params(("id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The ACD refused (e.g. already ready)", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn set_state(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<AgentAction>, JsonRejection>,
) -> Result<Json<AgentView>, ApiError> {
    let Path(id) = id?;
    let Json(action) = body?;
    check_word("id", &id)?;
    apply(&state, id, action).await.map(Json)
}

/// Applies `action` to agent `id` and answers the agent as it is now.
pub(crate) async fn apply(
    state: &AdminState,
    id: String,
    action: AgentAction,
) -> Result<AgentView, ApiError> {
    let command = action.command()?;
    let engine = state.engine();
    if let Err(e) = engine.agent(&id, command).await {
        return Err(state.handle_error(e).await);
    }
    agent_view(state, id).await
}

/// Agent `id` as it is now.
pub(crate) async fn agent_view(state: &AdminState, id: String) -> Result<AgentView, ApiError> {
    state
        .engine()
        .agents()
        .await?
        .into_iter()
        .find(|a| a.id.as_str() == id)
        .map(AgentView::from)
        .ok_or(ApiError::NotFound { what: "agent", id })
}
