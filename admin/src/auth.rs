//! The guard in front of every route: finds the route's rule in [`crate::roles::ROUTES`]
//! (a route missing from the table is refused), authenticates the request (an API key as
//! `Authorization: Bearer`, or a session cookie whose writes must carry the CSRF token),
//! checks the role, runs the handler, and writes the audit entry (writes, audited reads,
//! and every refusal of a request that carried credentials).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::audit::{AuditEntry, Outcome};

use crate::error::ApiError;
use crate::roles::{rule_for, Access, Role, RouteRule};
use crate::session::{same_token, token_from_cookies, CSRF_HEADER};
use crate::state::{AdminState, AuthFailures};

/// The largest request body (a flow's source is at most 512 KiB, in JSON).
pub const MAX_BODY: usize = 1024 * 1024;

/// The connection's remote address (set by the listener for each connection).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Who is calling, once authenticated (a request extension; handlers take it as an
/// extractor).
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:NAME` or `key:ID`: the audit log's "who".
    pub actor: String,
    /// The user name, or the key's name.
    pub name: String,
    pub role: Role,
    /// For an agent's account: the ACD agent it is.
    pub agent: Option<String>,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Key,
    /// A browser session; its token (hashed in the store) for logging out.
    Session {
        token: String,
    },
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The connection's remote address, when the server set one (an extractor that never
/// fails: requests made without a listener, in tests, have none).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<Peer>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts.extensions.get::<ConnectInfo<Peer>>().map(|c| c.0),
        ))
    }
}

/// The caller's address as the audit log shows it.
pub fn origin(peer: Option<&Peer>) -> String {
    peer.map(|p| p.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn peer_ip(peer: Option<&Peer>) -> IpAddr {
    peer.map(|p| p.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The middleware (installed with `route_layer`, so it sees matched routes only).
pub async fn guard(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0);
    let method = req.method().clone();
    let target = req.uri().path().to_string();
    let matched = req.extensions().get::<MatchedPath>();
    let Some(rule) = matched.and_then(|m| rule_for(method.as_str(), m.as_str())) else {
        return ApiError::Forbidden("this route has no entry in the rights table".into())
            .into_response();
    };
    if rule.access == Access::Open {
        return next.run(req).await;
    }
    let trail = Trail {
        state: &state,
        rule,
        target: &target,
        peer: peer.as_ref(),
    };
    let principal = match authenticate(&state, req.headers(), &method).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::Unauthenticated.into_response(),
        Err((actor, e)) => return trail.refuse(&actor, e).await,
    };
    if !rule.access.allows(principal.role) {
        let e = ApiError::Forbidden(format!(
            "the {} role may not {} {}",
            principal.role, rule.method, rule.path
        ));
        return trail.refuse(&principal.actor, e).await;
    }
    let actor = principal.actor.clone();
    let write = method != Method::GET && method != Method::HEAD;
    if write {
        // The whole body is read before the handler runs, even by routes that take none:
        // a connection closed with unread data is reset, and the client loses the answer.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return trail.refuse(&actor, ApiError::TooLarge(MAX_BODY)).await,
        };
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    if write || rule.audit_reads {
        let status = response.status();
        let outcome = if status.is_success() || status.is_redirection() {
            Outcome::Done
        } else if status.is_client_error() {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        let detail = (!status.is_success()).then(|| status.to_string());
        trail.write(&actor, outcome, detail).await;
    }
    response
}

/// The audit entries of one request: the route, the path and the caller's address are
/// known once; who and the outcome vary.
struct Trail<'a> {
    state: &'a AdminState,
    rule: &'static RouteRule,
    target: &'a str,
    peer: Option<&'a Peer>,
}

impl Trail<'_> {
    async fn write(&self, actor: &str, outcome: Outcome, detail: Option<String>) {
        let t = self;
        record(t.state, t.rule, actor, t.target, t.peer, outcome, detail).await;
    }

    /// Writes the refusal `e` of `actor`'s request and answers it.
    async fn refuse(&self, actor: &str, e: ApiError) -> Response {
        self.write(actor, Outcome::Denied, Some(e.to_string()))
            .await;
        e.into_response()
    }
}

/// `Ok(None)`: no credentials at all. `Err((actor, why))`: credentials that fail.
async fn authenticate(
    state: &AdminState,
    headers: &axum::http::HeaderMap,
    method: &Method,
) -> Result<Option<Principal>, (String, ApiError)> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let text = auth.to_str().unwrap_or_default();
        let failures = &state.auth_failures().key;
        let Some(key) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            AuthFailures::count(failures);
            return Err(("unknown".into(), ApiError::Unauthenticated));
        };
        let key = key.trim();
        let actor = crate::accounts::keys::parse_id(key)
            .map(|id| format!("key:{id}"))
            .unwrap_or_else(|| "unknown".into());
        return match state.accounts().check_key(key).await {
            Ok(Some(k)) => Ok(Some(Principal {
                actor: format!("key:{}", k.id),
                name: k.name,
                role: k.role,
                agent: None,
                via: Via::Key,
            })),
            Ok(None) => {
                AuthFailures::count(failures);
                Err((actor, ApiError::Unauthenticated))
            }
            Err(e) => Err((actor, ApiError::Internal(e.to_string()))),
        };
    }
    let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(token_from_cookies)
    else {
        return Ok(None);
    };
    let session = state.sessions().touch(Instant::now(), token);
    let Some(session) = session else {
        return Err(("unknown".into(), ApiError::Unauthenticated));
    };
    let actor = format!("user:{}", session.user);
    // The account may have been disabled (or its role changed) since the login.
    let user = match state.accounts().user(&session.user).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => {
            state.sessions().close_user(&session.user);
            return Err((actor, ApiError::Unauthenticated));
        }
        Err(e) => return Err((actor, ApiError::Internal(e.to_string()))),
    };
    if method != Method::GET && method != Method::HEAD {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !same_token(given, &session.csrf) {
            return Err((
                actor,
                ApiError::Forbidden("missing or wrong X-CSRF-Token for a session write".into()),
            ));
        }
    }
    Ok(Some(Principal {
        actor,
        name: user.name,
        role: user.role,
        agent: user.agent,
        via: Via::Session {
            token: token.to_string(),
        },
    }))
}

/// Appends an audit entry; a failure to write it is logged (the request has been answered).
pub async fn record(
    state: &AdminState,
    rule: &RouteRule,
    actor: &str,
    target: &str,
    peer: Option<&Peer>,
    outcome: Outcome,
    detail: Option<String>,
) {
    let action = format!("{} {}", rule.method, rule.path);
    let entry = AuditEntry::now(actor, action, target, origin(peer), outcome, detail);
    state.audit().record(entry).await;
}
