//! The API's one error type: every handler returns `Result<_, ApiError>`, and the answer's
//! status and JSON body come from here only (`{"error": kind, "message": ..., "field"?: ...}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::handle::{HandleError, Missing};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names the offending field (`password`, `role`, a query key).
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// A flow refused by the checker: each problem with its line and column.
    #[error("the flow is invalid ({} problem(s))", .0.len())]
    InvalidFlow(Vec<DiagnosticView>),
    /// No credentials, or credentials that do not identify anyone (the same answer for an
    /// unknown user and a wrong password: no user enumeration).
    #[error("authentication required")]
    Unauthenticated,
    /// Too many failed logins for this account or from this address.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body is over {0} bytes")]
    TooLarge(usize),
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    /// A write on a node that is not the active one: where the active node is, if known.
    #[error("this node is {role}, not the active node; writes go to the active node")]
    NotActive {
        role: String,
        active_node: Option<u64>,
        active_sip: Option<String>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// A failure of ours; the details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

/// One problem the flow checker found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiagnosticView {
    /// 1-based line and column in the uploaded source.
    pub line: u32,
    pub column: u32,
    /// `error` or `warning`.
    pub severity: String,
    /// A stable code (`unknown-field`, `yaml-syntax`...; docs/flows.md).
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&ivr_scripts::Diagnostic> for DiagnosticView {
    fn from(d: &ivr_scripts::Diagnostic) -> Self {
        DiagnosticView {
            line: d.line,
            column: d.column,
            severity: d.severity.to_string(),
            code: d.code.as_str().to_string(),
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `invalid_flow`, `unauthenticated`, `throttled`, `forbidden`,
    /// `too_large`, `not_found`, `conflict`, `not_active`, `unavailable`, `internal`.
    pub error: &'static str,
    pub message: String,
    /// The input field at fault (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a standby: the active node's id and SIP address (503 `not_active`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_node: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_sip: Option<String>,
    /// A refused flow's problems (400 `invalid_flow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<DiagnosticView>>,
}

impl ApiError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::InvalidFlow(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotActive { .. } | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::InvalidFlow(_) => "invalid_flow",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Throttled { .. } => "throttled",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge(_) => "too_large",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotActive { .. } => "not_active",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "admin API: internal error");
        }
        let status = self.status();
        let (field, active_node, active_sip) = match &self {
            ApiError::BadRequest { field, .. } => (Some(field.clone()), None, None),
            ApiError::NotActive {
                active_node,
                active_sip,
                ..
            } => (None, *active_node, active_sip.clone()),
            _ => (None, None, None),
        };
        let diagnostics = match &self {
            ApiError::InvalidFlow(d) => Some(d.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.kind(),
            message: self.to_string(),
            field: field.or_else(|| diagnostics.as_ref().map(|_| "source".to_string())),
            active_node,
            active_sip,
            diagnostics,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"svi\""),
                );
            }
            ApiError::Throttled { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// The engine handle's errors as the API answers them (`AdminState::handle_error` adds the
/// active node's SIP address to `NotActive`).
impl From<HandleError> for ApiError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::NotFound { what, id } => ApiError::NotFound {
                what: match what {
                    Missing::Call => "call",
                    Missing::Agent => "agent",
                    Missing::Queue => "queue",
                    Missing::AgentCall => "call or agent on a call",
                    Missing::Flow => "flow",
                    Missing::FlowVersion => "flow version",
                },
                id,
            },
            HandleError::Refused { .. }
            | HandleError::CallRefused { .. }
            | HandleError::CallEnded { .. } => ApiError::Conflict(e.to_string()),
            HandleError::NotActive { role, leader } => ApiError::NotActive {
                role: role.to_string(),
                active_node: leader,
                active_sip: None,
            },
            HandleError::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            HandleError::BadRequest { reason } => ApiError::bad("body", reason),
            HandleError::InvalidFlow { diagnostics, .. } => {
                ApiError::InvalidFlow(diagnostics.iter().map(DiagnosticView::from).collect())
            }
        }
    }
}

impl From<engine::storage::StorageError> for ApiError {
    fn from(e: engine::storage::StorageError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Bodies that are not the JSON a route expects: 400 with the serde message (which names
/// the field and its line/column), never a 422 or a 500.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        let text = e.body_text();
        ApiError::bad(json_field(&text).unwrap_or("body"), text.clone())
    }
}

/// The field a JSON data error names: axum words it `...target type: PATH: what` (serde's
/// path to the field), e.g. `role: unknown variant`. `None` for errors about the whole body.
fn json_field(text: &str) -> Option<&str> {
    if let Some((_, rest)) = text.split_once("missing field `") {
        return rest.split_once('`').map(|(f, _)| f);
    }
    let rest = text.split_once("target type: ")?.1;
    let (path, _) = rest.split_once(": ")?;
    let ok = !path.is_empty()
        && path.len() <= 100
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b));
    ok.then_some(path)
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad("query", e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad("path", e.body_text())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_errors_name_their_field() {
        let t = "Failed to deserialize the JSON body into the target type: role: unknown variant `boss` at line 1 column 28";
        assert_eq!(super::json_field(t), Some("role"));
        let t = "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2";
        assert_eq!(super::json_field(t), Some("name"));
        assert_eq!(
            super::json_field("Failed to parse the request body as JSON: EOF"),
            None
        );
    }
}
