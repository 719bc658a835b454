//! Call recordings (admin, supervisor; every access audited, as recordings are personal
//! data): `GET /api/v1/recordings` lists the replicated index (through the engine handle),
//! `GET /api/v1/recordings/{call}` gives one entry, and `GET /api/v1/recordings/{call}/audio`
//! sends the WAV file, whole or one byte range (`Range: bytes=A-B`, `A-`, `-N`; RFC 9110
//! §14), streamed from the disk in chunks.

use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::recording::index::{IndexEntry, COLLECTION};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::{ApiError, ErrorBody};
use crate::routes::flows::check_word;
use crate::state::AdminState;

/// Bytes read from the disk per chunk of an answer.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingView {
    /// The call's id (its call record's too).
    pub call: String,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub duration_ms: Option<u64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// The node that recorded it, and the nodes that hold a copy.
    pub origin: Option<String>,
    pub present_on: Vec<String>,
}

impl From<IndexEntry> for RecordingView {
    fn from(e: IndexEntry) -> Self {
        RecordingView {
            call: e.call,
            bytes: e.bytes,
            sha256: e.sha256,
            duration_ms: e.duration_ms,
            recorded_at: e.recorded_at,
            origin: e.origin,
            present_on: e.present_on,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1-1000 (default 100), newest first.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/recordings", tag = "recordings", params(ListQuery),
    responses((status = 200, description = "Newest first", body = [RecordingView]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AdminState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<RecordingView>>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("limit", "give 1-1000"));
    }
    let entries = state.engine().recordings(limit).await?;
    Ok(Json(entries.into_iter().map(RecordingView::from).collect()))
}

async fn entry(state: &AdminState, call: &str) -> Result<IndexEntry, ApiError> {
    check_word("call", call)?;
    let text = state
        .storage()
        .get_doc(COLLECTION, call)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "recording",
            id: call.to_string(),
        })?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::Internal(format!("recording index entry {call}: {e}")))
}

#[utoipa::path(get, path = "/api/v1/recordings/{call}", tag = "recordings",
    params(("call" = String, Path)),
    responses((status = 200, body = RecordingView), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(state): State<AdminState>,
    call: Result<Path<String>, PathRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let Path(call) = call?;
    Ok(Json(entry(&state, &call).await?.into()))
}

/// The file of `entry` in this node's recordings directory. The index names a file, never
/// a path; a name that is anything else is refused rather than followed.
fn file_of(state: &AdminState, entry: &IndexEntry) -> Result<PathBuf, ApiError> {
    let name = &entry.file;
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !plain {
        return Err(ApiError::Internal(format!(
            "recording index entry {}: `{name}` is not a file name",
            entry.call
        )));
    }
    let config = state
        .engine()
        .config()
        .ok_or_else(|| ApiError::Unavailable("this node has no recordings".into()))?;
    Ok(config.recording.settings(&config.data_dir).dir.join(name))
}

/// The byte range asked for, within a file of `len` bytes: `Ok(None)` for the whole file,
/// `Err(())` when it cannot be satisfied (416). One range only; several are answered whole.
fn range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let Some(spec) = value.to_str().ok().and_then(|v| v.strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.trim().split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
        }
        (a, "") => (a.parse().map_err(|_| ())?, len.checked_sub(1).ok_or(())?),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?);
            (a, b.min(len.saturating_sub(1)))
        }
    };
    if start >= len || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[utoipa::path(get, path = "/api/v1/recordings/{call}/audio", tag = "recordings",
    params(("call" = String, Path)),
    responses((status = 200, description = "The WAV file", content_type = "audio/wav"),
        (status = 206, description = "The byte range asked with `Range`", content_type = "audio/wav"),
        (status = 404, description = "No such recording, or not on this node", body = ErrorBody),
        (status = 416, description = "A range outside the file")))]
pub async fn audio(
    State(state): State<AdminState>,
    call: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(call) = call?;
    let entry = entry(&state, &call).await?;
    let path = file_of(&state, &entry)?;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound {
                what: "recording file on this node",
                id: call,
            })
        }
        Err(e) => return Err(ApiError::Internal(format!("{}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?
        .len();
    let (status, start, end) = match range(&headers, len) {
        Ok(None) => (StatusCode::OK, 0, len),
        Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b + 1),
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response())
        }
    };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let chunks = futures_util::stream::unfold((file, end - start), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("audio/wav"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    h.insert(header::CONTENT_LENGTH, (end - start).into());
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = format!("bytes {start}-{}/{len}", end - 1).parse() {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().expect("header"));
        h
    }

    #[test]
    fn ranges_within_the_file_and_the_ones_refused() {
        assert_eq!(range(&HeaderMap::new(), 100), Ok(None));
        assert_eq!(range(&with("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(range(&with("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(range(&with("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(range(&with("bytes=-1000"), 100), Ok(Some((0, 99))));
        assert_eq!(range(&with("bytes=50-5000"), 100), Ok(Some((50, 99))));
        assert_eq!(range(&with("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(range(&with("items=0-1"), 100), Ok(None));
        assert_eq!(range(&with("bytes=100-"), 100), Err(()));
        assert_eq!(range(&with("bytes=9-3"), 100), Err(()));
        assert_eq!(range(&with("bytes=x-3"), 100), Err(()));
        assert_eq!(range(&with("bytes=-0"), 100), Err(()));
        assert_eq!(range(&with("bytes=0-"), 0), Err(()));
    }
}
