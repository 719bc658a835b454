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
//!
//! A feed lives only as long as its credentials: when the API key is revoked or the user
//! disabled (through the API, `svi user`/`svi apikey`, or on the other node of a pair: any
//! change of the replicated accounts), the feed ends at once. A session's feed also ends
//! within `RECHECK` of the session's end (logout, absolute timeout; an open feed is use,
//! so it keeps the idle timeout away).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use engine::handle::{EngineEvent, EngineEvents};
use engine::storage::DocChanges;
use futures_util::stream::{self, Stream};

use crate::accounts::{KEYS, USERS};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

/// How often a feed checks that its credentials still hold even when no account changed
/// (a session's absolute timeout).
const RECHECK: Duration = Duration::from_secs(15);

struct Feed {
    events: EngineEvents,
    /// Changes of the replicated users and keys.
    accounts: DocChanges,
    state: AdminState,
    who: Principal,
    recheck: tokio::time::Interval,
    started: bool,
}

impl Feed {
    /// The next item of the stream; `None` ends it.
    async fn next(&mut self) -> Option<Event> {
        if !self.started {
            self.started = true;
            return Some(event(
                "ready",
                &serde_json::json!({ "at": chrono::Utc::now().timestamp_millis() }),
            ));
        }
        loop {
            tokio::select! {
                e = self.events.next() => return match e {
                    Ok(Some(EngineEvent::Call(e))) => Some(event("call", &e)),
                    Ok(Some(EngineEvent::Acd(e))) => Some(event("acd", &e)),
                    Err(missed) => Some(event("lagged", &serde_json::json!({ "missed": missed }))),
                    // The engine stopped: the feed ends (a browser reconnects by itself).
                    Ok(None) => None,
                },
                changed = self.accounts.changed() => {
                    if changed.is_err() || !self.state.still_valid(&self.who).await {
                        return None;
                    }
                }
                _ = self.recheck.tick() => {
                    if !self.state.still_valid(&self.who).await {
                        return None;
                    }
                }
            }
        }
    }
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
    who: Principal,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Watched from before the check below: a revocation in between is seen.
    let accounts = state.storage().watch_docs(&[USERS, KEYS]);
    if !state.still_valid(&who).await {
        return Err(ApiError::Unauthenticated);
    }
    let feed = Feed {
        events: state.engine().events()?,
        accounts,
        state,
        who,
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        started: false,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        Some((Ok(item), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
