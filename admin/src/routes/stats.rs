//! `GET /api/v1/statistics`: per queue and interval, calls offered, answered (within the
//! service level), abandoned, overflowed, the service level, ASA, AHT and the longest wait,
//! computed by the engine handle from the persisted ACD events (this pair's, or with
//! `source=central` every pair's from the central reporting database); as JSON, or CSV
//! with `format=csv`.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::acd::report::ReportQuery;
use engine::acd::QueueStats;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorBody};
use crate::routes::audit::instant;
use crate::routes::csv::{attachment, cell, wants_csv};
use crate::routes::flows::check_word;
use crate::routes::queues;
use crate::state::AdminState;

/// The longest period one request may cover (the events of the period are read at once).
const MAX_DAYS: i64 = 92;
/// The most rows one request may produce per queue.
const MAX_ROWS: i64 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Start of the period (RFC 3339; default: 24 hours before `to`).
    pub from: Option<String>,
    /// End of the period (RFC 3339; default: now).
    pub to: Option<String>,
    /// One queue; default: every queue with calls in the period.
    pub queue: Option<String>,
    /// Interval length in minutes; default: the whole period as one row per queue.
    pub interval_minutes: Option<u32>,
    /// Service-level threshold in seconds; default: each queue's own.
    pub threshold_secs: Option<u32>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// `local` (default): this pair's events; `central`: every pair's, from the central
    /// reporting database (`[central]`).
    pub source: Option<String>,
}

/// One queue over one interval.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsRow {
    pub queue: String,
    #[schema(value_type = String, format = DateTime)]
    pub from: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub to: DateTime<Utc>,
    pub offered: u32,
    pub answered: u32,
    pub answered_within_sl: u32,
    pub abandoned: u32,
    pub short_abandoned: u32,
    pub overflowed: u32,
    pub callbacks_requested: u32,
    pub callbacks_failed: u32,
    pub handled: u32,
    /// Answered within the threshold over offered, 0-1.
    pub service_level: Option<f64>,
    /// Average speed of answer.
    pub asa_ms: Option<u64>,
    /// Average handle time (talk and wrap-up).
    pub aht_ms: Option<u64>,
    pub longest_wait_ms: Option<u64>,
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl From<QueueStats> for StatsRow {
    fn from(s: QueueStats) -> Self {
        StatsRow {
            queue: s.queue.as_str().to_string(),
            from: queues::instant(s.from),
            to: queues::instant(s.to),
            offered: s.offered,
            answered: s.answered,
            answered_within_sl: s.answered_within_sl,
            abandoned: s.abandoned,
            short_abandoned: s.short_abandoned,
            overflowed: s.overflowed,
            callbacks_requested: s.callbacks_requested,
            callbacks_failed: s.callbacks_failed,
            handled: s.handled,
            service_level: s.service_level,
            asa_ms: ms(s.average_speed_of_answer),
            aht_ms: ms(s.average_handle_time),
            longest_wait_ms: ms(s.longest_wait),
        }
    }
}

const CSV_HEADER: &str = "queue,from,to,offered,answered,answered_within_sl,abandoned,\
short_abandoned,overflowed,callbacks_requested,callbacks_failed,handled,service_level,\
asa_ms,aht_ms,longest_wait_ms\r\n";

fn csv(rows: &[StatsRow]) -> String {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        let cells = [
            cell(&r.queue),
            r.from.to_rfc3339(),
            r.to.to_rfc3339(),
            r.offered.to_string(),
            r.answered.to_string(),
            r.answered_within_sl.to_string(),
            r.abandoned.to_string(),
            r.short_abandoned.to_string(),
            r.overflowed.to_string(),
            r.callbacks_requested.to_string(),
            r.callbacks_failed.to_string(),
            r.handled.to_string(),
            r.service_level
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default(),
            opt(r.asa_ms),
            opt(r.aht_ms),
            opt(r.longest_wait_ms),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn query(q: &StatsQuery) -> Result<ReportQuery, ApiError> {
    let until = instant("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    let since = instant("from", q.from.as_deref())?.unwrap_or(until - chrono::Duration::hours(24));
    let span = until - since;
    if span <= chrono::Duration::zero() {
        return Err(ApiError::bad("to", "the end must be after the start"));
    }
    if span > chrono::Duration::days(MAX_DAYS) {
        return Err(ApiError::bad(
            "from",
            format!("a period of at most {MAX_DAYS} days"),
        ));
    }
    let interval = match q.interval_minutes {
        None => None,
        Some(m) if m >= 1 && span.num_minutes() / i64::from(m) < MAX_ROWS => {
            Some(Duration::from_secs(u64::from(m) * 60))
        }
        Some(_) => {
            return Err(ApiError::bad(
                "interval_minutes",
                format!("at least 1, and at most {MAX_ROWS} intervals in the period"),
            ))
        }
    };
    let threshold = match q.threshold_secs {
        None => None,
        Some(s) if (1..=3600).contains(&s) => Some(Duration::from_secs(u64::from(s))),
        Some(_) => return Err(ApiError::bad("threshold_secs", "give 1-3600")),
    };
    if let Some(queue) = &q.queue {
        check_word("queue", queue)?;
    }
    Ok(ReportQuery {
        queue: q.queue.clone(),
        since,
        until,
        interval,
        threshold,
    })
}

#[utoipa::path(get, path = "/api/v1/statistics", tag = "statistics", params(StatsQuery),
    responses((status = 200, description = "Rows per queue and interval (JSON, or CSV with format=csv)", body = [StatsRow]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn statistics(
    State(state): State<AdminState>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let as_csv = wants_csv(q.format.as_deref())?;
    let report = query(&q)?;
    let rows = match q.source.as_deref() {
        None | Some("local") => state.engine().statistics(&report).await,
        Some("central") => state.engine().central_statistics(&report).await,
        Some(_) => return Err(ApiError::bad("source", "give local or central")),
    };
    let rows: Vec<StatsRow> = match rows {
        Ok(rows) => rows.into_iter().map(StatsRow::from).collect(),
        Err(e) => return Err(state.handle_error(e).await),
    };
    if as_csv {
        return Ok(attachment("statistics.csv", csv(&rows)));
    }
    Ok(Json(rows).into_response())
}
