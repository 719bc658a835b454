//! The two error types of connectors: [`ConnectorError`] when building them from the
//! configuration (start-up stops with `file: key: problem`), and [`CallError`] when one call
//! fails. A call's error is a value the flow branches on (`error:`, `last_error`), so its
//! text is written for the flow author and the log: it names the backend (host, database)
//! and the reason, never a parameter or a returned value (caller numbers, PINs, names).

use std::fmt;
use std::time::Duration;

/// Errors found while building the connectors; the engine prefixes the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A setting is missing, malformed, or refused by the backend at start-up.
    #[error("{key}: {problem}")]
    Config { key: String, problem: String },
    /// Two connectors registered under one name in the same role.
    #[error("{role} `{name}` is defined twice")]
    Duplicate { role: Role, name: String },
    /// Two configuration kinds registered under one name.
    #[error("connector kind `{0}` is registered twice")]
    DuplicateKind(String),
}

/// Whether a connector answers `lookup` steps or `action` steps. The same kind may behave
/// differently (an SQL data source is read-only; an SQL action reports `rows_affected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    DataSource,
    Action,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::DataSource => "data source",
            Role::Action => "action",
        })
    }
}

/// Why one connector call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The step's (or the connector's) deadline passed.
    #[error("timed out after {}", human(*.0))]
    Timeout(Duration),
    /// The flow names a connector this engine lacks.
    #[error("no {role} `{name}` is configured")]
    NotConfigured { role: Role, name: String },
    /// The circuit breaker is open: the backend failed repeatedly and is being probed.
    #[error("{connector} is unavailable after {failures} failures in a row (circuit open)")]
    CircuitOpen { connector: String, failures: u32 },
    /// A parameter the connector needs is absent.
    #[error("parameter `{0}` is missing")]
    MissingParam(String),
    /// A parameter has a value the connector cannot use (type, shape).
    #[error("parameter `{name}` {problem}")]
    BadParam { name: String, problem: String },
    /// The database refused the statement (constraint, lock, lost connection...).
    #[error("database: {0}")]
    Database(String),
    /// The service answered with an error status.
    #[error("HTTP {status} from {host}")]
    Status { status: u16, host: String },
    /// The service refused the credentials (login failed, token refused twice).
    #[error("{host} refused the credentials ({detail})")]
    Auth { host: String, detail: String },
    /// Network or TLS failure before an answer.
    #[error("{what} {host}: {cause}")]
    Transport {
        what: &'static str,
        host: String,
        cause: String,
    },
    /// An answer that is not what the connector expects (not JSON, too large...).
    #[error("the response from {host} {problem}")]
    BadResponse { host: String, problem: String },
    /// A field of the answer is missing or of the wrong type.
    #[error("{source_name}: field `{field}` {problem}")]
    BadField {
        source_name: String,
        field: String,
        problem: String,
    },
    /// The connector refused the call on its own policy (not authenticated, rate limit).
    #[error("refused: {0}")]
    Refused(String),
}

impl CallError {
    /// Whether trying again may succeed: network trouble, timeouts, 5xx, a lost database
    /// connection. Retries apply to idempotent reads only (see `resilience`).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::Transport { .. } => true,
            CallError::Status { status, .. } => *status >= 500,
            CallError::Database(message) => {
                // sqlx's pool and io errors; a constraint or syntax error is not transient.
                message.contains("pool timed out")
                    || message.contains("error communicating")
                    || message.contains("connection")
            }
            _ => false,
        }
    }

    /// Whether the failure says the backend is unwell (counts towards opening the circuit),
    /// as opposed to a problem of this call's input or the flow's configuration.
    pub fn is_backend_failure(&self) -> bool {
        match self {
            CallError::Timeout(_)
            | CallError::Transport { .. }
            | CallError::BadResponse { .. }
            | CallError::Auth { .. }
            | CallError::Database(_) => true,
            CallError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether the call failed before reaching the backend, on the caller's input or the
    /// connector's own policy: it says nothing of the backend's health (neither a failure
    /// nor a success for the breaker).
    pub fn is_before_backend(&self) -> bool {
        matches!(
            self,
            CallError::NotConfigured { .. }
                | CallError::CircuitOpen { .. }
                | CallError::MissingParam(_)
                | CallError::BadParam { .. }
                | CallError::Refused(_)
        )
    }

    /// A short name of the reason for metrics and logs (`timeout`, `http_status`...).
    pub fn reason(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::NotConfigured { .. } => "not_configured",
            CallError::CircuitOpen { .. } => "circuit_open",
            CallError::MissingParam(_) | CallError::BadParam { .. } => "bad_param",
            CallError::Database(_) => "database",
            CallError::Status { .. } => "http_status",
            CallError::Auth { .. } => "auth",
            CallError::Transport { .. } => "transport",
            CallError::BadResponse { .. } => "bad_response",
            CallError::BadField { .. } => "bad_field",
            CallError::Refused(_) => "refused",
        }
    }
}

/// `2s`, `1500ms`: how flows write durations.
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
