//! `POST /api/v1/hooks/alarms`: alarms pushed by the access-control system. Open in the
//! rights table (the caller is a system, not an account), and authenticated by the body's
//! HMAC-SHA256 under the secret shared with that system (`[alarm_callout] webhook_secret`,
//! header `X-Svi-Signature: sha256=<hex>`; `engine::callout::webhook`). An accepted push
//! wakes the alarm call-out, which polls the access-control system at once; the push's
//! content is never trusted beyond naming the alarm. Accepted pushes and wrong signatures
//! are in the audit log.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use engine::audit::{AuditEntry, Outcome};
use engine::callout::webhook::{PushError, MAX_BODY, SIGNATURE_HEADER};
use serde::Serialize;

use crate::auth::{origin, ClientAddr};
use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

/// Who the audit log says pushed.
const ACTOR: &str = "system:access-control";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pushed {
    /// The alarm the push named (the body's `id`).
    pub alarm: String,
}

#[utoipa::path(post, path = "/api/v1/hooks/alarms", tag = "hooks",
    request_body(content = String, description = "JSON with the alarm's `id`, signed in `X-Svi-Signature`"),
    responses(
        (status = 202, description = "Accepted: the call-out polls now", body = Pushed),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No alarm webhook configured", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(()))]
pub async fn alarms(
    State(state): State<AdminState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Pushed>), ApiError> {
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(MAX_BODY))?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let from = origin(peer.as_ref());
    match state.engine().alarm_pushed(&body, signature) {
        Ok(alarm) => {
            audit(&state, &alarm, &from, Outcome::Done, None).await;
            Ok((StatusCode::ACCEPTED, Json(Pushed { alarm })))
        }
        Err(PushError::BadSignature) => {
            if signature.is_some() {
                let why = Some(PushError::BadSignature.to_string());
                audit(&state, "unknown", &from, Outcome::Denied, why).await;
            }
            Err(ApiError::Unauthenticated)
        }
        Err(PushError::NotConfigured) => Err(ApiError::NotFound {
            what: "alarm webhook",
            id: "[alarm_callout] webhook_secret".into(),
        }),
        Err(e @ PushError::BadBody(_)) => Err(ApiError::bad("body", e.to_string())),
        Err(e @ PushError::Stopped) => Err(ApiError::Unavailable(e.to_string())),
    }
}

async fn audit(
    state: &AdminState,
    alarm: &str,
    from: &str,
    outcome: Outcome,
    detail: Option<String>,
) {
    let target = format!("alarm:{alarm}");
    let entry = AuditEntry::now(ACTOR, "alarm.pushed", target, from, outcome, detail);
    state.audit().record(entry).await;
}
