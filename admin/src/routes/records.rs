//! `GET /api/v1/records` (admin, supervisor; every search audited: records hold callers'
//! numbers): call records searched by date, number, queue, agent, outcome and whether the
//! call was recorded, newest first, paged.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use engine::storage::{CallQuery, CallRecord, EndReason, QueueOutcome};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::routes::audit::instant;
use crate::state::AdminState;

const MAX_PER_PAGE: u32 = 500;
const MAX_OFFSET: u32 = 1_000_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Calls started at or after (RFC 3339).
    pub from: Option<String>,
    /// Calls started before (RFC 3339).
    pub to: Option<String>,
    /// The caller's or the called number, exactly.
    pub number: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// How the queue wait ended: `answered`, `abandoned`, `overflow`, `failed`, `callback`,
    /// `callback_failed`.
    pub outcome: Option<String>,
    /// Why the call ended: `caller_hangup`, `engine_hangup`, `agent_hangup`...
    pub end_reason: Option<String>,
    /// `true`: only the calls that were recorded.
    pub recorded: Option<bool>,
    /// 1-500 (default 50).
    pub per_page: Option<u32>,
    /// From 1 (default 1).
    pub page: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordsPage {
    pub page: u32,
    pub per_page: u32,
    /// Whether a next page may hold more.
    pub more: bool,
    pub records: Vec<RecordView>,
}

/// A call record (numbers are personal data: this route is for the roles that handle them).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub caller: String,
    pub called: String,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    /// Flow steps taken, in order.
    pub path: Vec<String>,
    pub end_reason: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub queue_outcome: Option<String>,
    /// Seconds from joining the queue to an agent's answer.
    pub wait_secs: Option<f64>,
    /// Seconds from the agent's answer to the end.
    pub talk_secs: Option<f64>,
    /// The recording's length when the call was recorded.
    pub recording_ms: Option<u64>,
    pub node: String,
}

fn secs(
    a: Option<chrono::DateTime<chrono::Utc>>,
    b: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<f64> {
    Some((b? - a?).num_milliseconds() as f64 / 1000.0)
}

impl From<CallRecord> for RecordView {
    fn from(r: CallRecord) -> Self {
        RecordView {
            wait_secs: secs(r.queued_at, r.agent_answered_at),
            talk_secs: secs(r.agent_answered_at, Some(r.ended_at)),
            id: r.id,
            started_at: r.started_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
            caller: r.caller,
            called: r.called,
            flow: r.flow,
            flow_version: r.flow_version,
            path: r.path,
            end_reason: r.end_reason.as_str().to_string(),
            queue: r.queue,
            agent: r.agent,
            queue_outcome: r.queue_outcome.map(|o| o.as_str().to_string()),
            recording_ms: r.recording_ms,
            node: r.node,
        }
    }
}

fn text(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) => {
            Err(ApiError::bad(field, "give 1-128 printable characters"))
        }
        other => Ok(other),
    }
}

#[utoipa::path(get, path = "/api/v1/records", tag = "records", params(RecordsQuery),
    responses((status = 200, body = RecordsPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn search(
    State(state): State<AdminState>,
    q: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<RecordsPage>, ApiError> {
    let Query(q) = q?;
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad("per_page", format!("give 1-{MAX_PER_PAGE}")));
    }
    let page = q.page.unwrap_or(1);
    let offset = page
        .checked_sub(1)
        .and_then(|p| p.checked_mul(per_page))
        .filter(|o| *o <= MAX_OFFSET)
        .ok_or_else(|| {
            ApiError::bad(
                "page",
                "give a page from 1 within the first million records",
            )
        })?;
    let queue_outcome = q
        .outcome
        .as_deref()
        .map(|o| {
            QueueOutcome::parse(o)
                .ok_or_else(|| ApiError::bad("outcome", format!("`{o}` is not a queue outcome")))
        })
        .transpose()?;
    let end_reason = q
        .end_reason
        .as_deref()
        .map(|r| {
            EndReason::parse(r)
                .ok_or_else(|| ApiError::bad("end_reason", format!("`{r}` is not an end reason")))
        })
        .transpose()?;
    let query = CallQuery {
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
        number: text("number", q.number)?,
        queue: text("queue", q.queue)?,
        agent: text("agent", q.agent)?,
        queue_outcome,
        end_reason,
        recorded: q.recorded.unwrap_or(false),
        // One more than asked tells whether another page exists.
        limit: per_page + 1,
        offset,
    };
    let mut found = state.storage().search_calls(&query).await?;
    let more = found.len() > per_page as usize;
    found.truncate(per_page as usize);
    Ok(Json(RecordsPage {
        page,
        per_page,
        more,
        records: found.into_iter().map(RecordView::from).collect(),
    }))
}
