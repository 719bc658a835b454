//! What every handler reaches: the engine's handle, the HA node, accounts, sessions, the
//! login throttle, the audit log and the zone the pages show times in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono_tz::Tz;
use engine::audit::AuditLog;
use engine::storage::Storage;
use engine::EngineHandle;

use crate::accounts::{AccountError, Accounts};
use crate::auth::{Principal, Via};
use crate::error::ApiError;
use crate::session::{Sessions, Timeouts};
use crate::throttle::{Limits, Throttle};
use crate::today::Today;

#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: EngineHandle,
    node: Arc<ha::HaNode>,
    accounts: Accounts,
    audit: AuditLog,
    storage: Storage,
    // Plain mutexes: every request touches them for a map lookup and never awaits while
    // holding them; an actor would add a channel hop per request for nothing.
    sessions: Mutex<Sessions>,
    throttle: Mutex<Throttle>,
    failures: AuthFailures,
    zone: Tz,
    today: Today,
}

/// Failed authentications of the API since the start, for metrics.
#[derive(Debug, Default)]
pub struct AuthFailures {
    /// Logins with a wrong user or password.
    pub login: AtomicU64,
    /// Requests with an API key that is unknown, malformed or revoked.
    pub key: AtomicU64,
}

impl AuthFailures {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A lock whose holder panicked still guards consistent data here (each critical section
/// is one map operation), so it is taken over rather than propagated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AdminState {
    pub fn new(
        engine: EngineHandle,
        node: Arc<ha::HaNode>,
        audit: AuditLog,
        timeouts: Timeouts,
        limits: Limits,
        zone: Tz,
    ) -> AdminState {
        let storage = node.storage();
        // The task runs in the server's runtime; without one (a test building the state
        // alone) the wallboard reads the stored events.
        let today = match tokio::runtime::Handle::try_current() {
            Ok(_) => Today::start(engine.clone(), zone),
            Err(_) => Today::none(),
        };
        let accounts = Accounts::new(
            storage.clone(),
            crate::accounts::Writes::Replicated(node.clone()),
        );
        AdminState {
            inner: Arc::new(Inner {
                engine,
                node,
                accounts,
                audit,
                storage,
                sessions: Mutex::new(Sessions::new(timeouts)),
                throttle: Mutex::new(Throttle::new(limits)),
                failures: AuthFailures::default(),
                zone,
                today,
            }),
        }
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.inner.engine
    }

    /// The zone the pages show times in and start their days at (`[admin] timezone`).
    pub fn zone(&self) -> Tz {
        self.inner.zone
    }

    /// Today's figures per queue, kept from the ACD's events (`today`).
    pub fn today(&self) -> &Today {
        &self.inner.today
    }

    pub fn node(&self) -> &Arc<ha::HaNode> {
        &self.inner.node
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn auth_failures(&self) -> &AuthFailures {
        &self.inner.failures
    }

    pub fn sessions(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.inner.sessions)
    }

    pub fn throttle(&self) -> MutexGuard<'_, Throttle> {
        lock(&self.inner.throttle)
    }

    /// Whether the credentials of `who` still hold: the key not revoked, the user enabled
    /// with the same role, the session open (and touched: an open feed is use).
    pub async fn still_valid(&self, who: &Principal) -> bool {
        match &who.via {
            Via::Key => {
                let id = who.actor.strip_prefix("key:").unwrap_or_default();
                matches!(self.accounts().key(id).await, Ok(Some(k)) if k.revoked_at.is_none())
            }
            Via::Session { token } => {
                let user = match self.accounts().user(&who.name).await {
                    Ok(Some(u)) => u,
                    _ => return false,
                };
                !user.disabled
                    && user.role == who.role
                    && self
                        .sessions()
                        .touch(std::time::Instant::now(), token)
                        .is_some()
            }
        }
    }

    /// An account error as the API answers it; on a standby, with the active node's
    /// id and SIP address from the cluster status.
    pub async fn account_error(&self, e: AccountError) -> ApiError {
        match e {
            AccountError::Invalid { field, message } => ApiError::bad(field, message),
            AccountError::UserExists(_) => ApiError::Conflict(e.to_string()),
            AccountError::NoUser(id) => ApiError::NotFound { what: "user", id },
            AccountError::NoKey(id) => ApiError::NotFound {
                what: "API key",
                id,
            },
            AccountError::NotActive { role, leader } => self.not_active(role, leader).await,
            AccountError::Store(m) => ApiError::Internal(m),
        }
    }

    /// An engine handle error as the API answers it; `NotActive` with the active node's SIP
    /// address.
    pub async fn handle_error(&self, e: engine::handle::HandleError) -> ApiError {
        match ApiError::from(e) {
            ApiError::NotActive {
                role, active_node, ..
            } => self.not_active(role, active_node).await,
            other => other,
        }
    }

    pub async fn not_active(&self, role: String, leader: Option<u64>) -> ApiError {
        let active_sip = match (leader, self.node().status().await) {
            (Some(id), Ok(status)) => status
                .members
                .into_iter()
                .find(|m| m.id == id)
                .and_then(|m| m.sip_addr),
            _ => None,
        };
        ApiError::NotActive {
            role,
            active_node: leader,
            active_sip,
        }
    }
}
