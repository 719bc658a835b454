//! `GET /api/v1/events`: the live feed of queue, agent and call events for wallboards, as
//! server-sent events, straight from the engine handle's event stream (`EngineEvents`).
//!
//! Each SSE event is named by its source and carries the engine's own JSON: `call`
//! (`started`, `changed` with the call's view, `ended` with the reason) and `acd`
//! (`call_queued`, `call_offered`, `call_answered`, `call_abandoned`, agent state
//! changes..., each with `at`, the engine's time in Unix milliseconds). The first event,
//! `ready`, says the subscription is in place; `lagged` says how many events a slow reader
//! missed (it should read the snapshots again). SSE over WebSocket: one direction is all a
//! wallboard needs, it passes proxies as plain HTTPS, and browsers reconnect by themselves.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use engine::handle::{EngineEvent, EngineEvents};
use futures_util::stream::{self, Stream};

use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

enum Feed {
    Start(EngineEvents),
    Running(EngineEvents),
}

fn event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error"))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200, description = "Server-sent events: `ready`, then `call` and `acd` events as they happen, `lagged` when some were missed", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn feed(
    State(state): State<AdminState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let events = state.engine().events()?;
    let stream = stream::unfold(Feed::Start(events), |feed| async move {
        match feed {
            Feed::Start(events) => {
                let ready = event(
                    "ready",
                    &serde_json::json!({ "at": chrono::Utc::now().timestamp_millis() }),
                );
                Some((Ok(ready), Feed::Running(events)))
            }
            Feed::Running(mut events) => match events.next().await {
                Ok(Some(EngineEvent::Call(e))) => {
                    Some((Ok(event("call", &e)), Feed::Running(events)))
                }
                Ok(Some(EngineEvent::Acd(e))) => {
                    Some((Ok(event("acd", &e)), Feed::Running(events)))
                }
                Err(missed) => Some((
                    Ok(event("lagged", &serde_json::json!({ "missed": missed }))),
                    Feed::Running(events),
                )),
                // The engine stopped: the feed ends (a browser reconnects by itself).
                Ok(None) => None,
            },
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
