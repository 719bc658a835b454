//! A sans-IO registration client: RFC 3261 §10.2 with §22 digest authentication.
//!
//! The engine registers one SIP user (the IVR's) with the IPBX, keeps the binding fresh, and
//! removes it on shutdown or when the node stops being the active one. The client produces
//! REGISTER requests ([`RegistrationClient::poll_request`]); the TU adds a Via with its local
//! address and sends them with `Endpoint::send_request` to [`RegistrationClient::next_hop`],
//! then feeds back the final responses (`handle_response`) and the transaction's `Timeout`
//! (`handle_transaction_timeout`). Its own timers (refresh, retry) run through
//! `poll_timeout`/`handle_timeout`, like every machine here.
//!
//! Rules, and why:
//! - one Call-ID and one From tag for the client's whole life, CSeq +1 per REGISTER
//!   (§10.2: the registrar orders a UA's updates by CSeq within a Call-ID);
//! - 401/407 is answered with digest credentials (`crate::auth::DigestClient`, which keeps the
//!   challenge so refreshes carry credentials at once). A realm that challenges again within
//!   one attempt without `stale=true` means the password is wrong: that is a failure, not a
//!   loop (§22.2). A stale nonce is answered silently;
//! - the granted lifetime is our Contact's `expires` parameter in the 200 (else the Expires
//!   header, else what we asked), and the binding is refreshed after half of it. For any grant
//!   of 64 s or more that is the smaller of expires/2 and expires-32 s, so a refresh always
//!   has a full transaction timeout (64*T1 = 32 s) of margin;
//! - 423 Interval Too Brief: ask again at once with the registrar's Min-Expires (§10.2.8),
//!   which is kept for later refreshes;
//! - other failures (403, 404, 5xx, timeout, rejected credentials) retry after 30 s, 60 s,
//!   120 s... capped at 5 min, or after the registrar's Retry-After;
//! - unregistering sends `Expires: 0` for our Contact only and reports `Unregistered`,
//!   `clean: false` when the registrar did not confirm;
//! - with `clear_first` (an HA pair: the user is the IVR's alone), a fresh registration (not
//!   a refresh) first removes every binding of the user (`Contact: *`, `Expires: 0`, RFC 3261
//!   §10.2.2), so that the other node's binding (a node that died without unregistering) is
//!   gone before ours is added: the registrar never holds both. A registrar that refuses the
//!   removal is logged and our binding added anyway (`ClearRefused`);
//! - with `instance_id`, the Contact carries `+sip.instance` (and `reg-id` when set, RFC
//!   5626 §4.2): both nodes of a pair registering the same instance replace each other's
//!   binding at a registrar that matches bindings by instance.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::{authorize_request, AuthError, ChallengeRound, DigestClient};
use crate::endpoint::{new_call_id, new_tag, NextHop};
use crate::message::{CSeq, HeaderName, Method, NameAddr, Request, Response, Uri};
use crate::transaction::TimerTable;

/// First retry delay after a failure; doubled per consecutive failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Challenges answered within one attempt before giving up, whatever their realms.
const MAX_CHALLENGES: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the registrar challenged realm `{realm}` again: credentials rejected")]
    CredentialsRejected { realm: String },
    #[error("too many authentication challenges in one attempt")]
    TooManyChallenges,
    #[error("423 without a usable Min-Expires")]
    BadMinExpires,
    #[error("no final answer from the registrar")]
    Timeout,
    #[error("the registrar answered {status} {reason}")]
    Rejected { status: u16, reason: String },
}

/// What to register, where, and with which credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Request-URI of the REGISTER: the registrar's domain (`sip:pbx.example.com`).
    pub registrar: Uri,
    /// Address of record, in From and To (`sip:ivr@pbx.example.com`).
    pub aor: Uri,
    /// Our Contact: where the IPBX sends calls (`sip:ivr@192.0.2.10:5060`).
    pub contact: Uri,
    /// Digest user name, which may differ from the AOR's user part.
    pub username: String,
    pub password: String,
    /// Requested binding lifetime in seconds (3600 by default).
    pub expires: u32,
    /// Loose-routing outbound proxy (`sip:proxy.example.com;lr`), sent as a Route.
    pub outbound_proxy: Option<Uri>,
    /// Remove every binding of the user before adding ours (see the module documentation).
    pub clear_first: bool,
    /// `+sip.instance` of our Contact (`urn:uuid:...`), shared by the nodes of a pair.
    pub instance_id: Option<String>,
    /// `reg-id` of our Contact (with `instance_id` only).
    pub reg_id: Option<u32>,
}

/// Never prints the password.
impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("registrar", &self.registrar)
            .field("aor", &self.aor)
            .field("contact", &self.contact)
            .field("expires", &self.expires)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("clear_first", &self.clear_first)
            .field("instance_id", &self.instance_id)
            .field("reg_id", &self.reg_id)
            .finish_non_exhaustive()
    }
}

impl RegistrationConfig {
    pub fn new(registrar: Uri, aor: Uri, contact: Uri, username: &str, password: &str) -> Self {
        RegistrationConfig {
            registrar,
            aor,
            contact,
            username: username.to_string(),
            password: password.to_string(),
            expires: 3600,
            outbound_proxy: None,
            clear_first: false,
            instance_id: None,
            reg_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    Unregistered,
    /// The first REGISTER (or one after a failure) is in flight. A refresh keeps `Registered`.
    Registering,
    Registered {
        expires_at: Instant,
    },
    /// `status` is the registrar's, or 408 for no answer; the next attempt is at `retry_at`.
    Failed {
        status: u16,
        retry_at: Instant,
    },
    Unregistering,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// A REGISTER succeeded; `refreshed` when the binding already existed.
    Registered {
        expires: u32,
        expires_at: Instant,
        refreshed: bool,
    },
    Failed {
        status: u16,
        error: RegisterError,
        retry_at: Instant,
    },
    /// The binding is removed (`clean`), or we gave up confirming it (`!clean`).
    Unregistered { clean: bool },
    /// Every binding of the user was removed (`Contact: *`) before ours is added.
    Cleared,
    /// The registrar refused to remove every binding; ours is added anyway.
    ClearRefused { status: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `Contact: *`, `Expires: 0`, before a fresh registration.
    Clear,
    Register,
    Unregister,
}

/// The REGISTER in flight and the challenges met by this attempt.
#[derive(Debug)]
struct Pending {
    cseq: u32,
    purpose: Purpose,
    challenges: ChallengeRound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Refresh,
    Retry,
}

#[derive(Debug)]
pub struct RegistrationClient {
    config: RegistrationConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    digest: DigestClient,
    state: RegistrationState,
    pending: Option<Pending>,
    failures: u32,
    timers: TimerTable<Timer>,
    requests: VecDeque<Request>,
    events: VecDeque<RegistrationEvent>,
}

/// Seconds from a `Retry-After` value (`120 (maintenance);duration=60`).
fn retry_after(response: &Response) -> Option<Duration> {
    let v = response.headers.get(&HeaderName::RetryAfter)?.trim();
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

fn same_contact(a: &Uri, b: &Uri) -> bool {
    match (a.as_sip(), b.as_sip()) {
        (Some(x), Some(y)) => {
            x.user == y.user && x.host.eq_ignore_ascii_case(&y.host) && x.port == y.port
        }
        _ => a == b,
    }
}

impl RegistrationClient {
    /// A client that does nothing until [`RegistrationClient::register`].
    pub fn new(config: RegistrationConfig) -> Self {
        RegistrationClient {
            digest: DigestClient::new(config.username.clone(), config.password.clone()),
            expires: config.expires,
            config,
            call_id: new_call_id(),
            from_tag: new_tag(),
            cseq: 0,
            state: RegistrationState::Unregistered,
            pending: None,
            failures: 0,
            timers: TimerTable::default(),
            requests: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// The Call-ID of every REGISTER of this client (to route responses to it).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The lifetime asked for, raised by a 423's Min-Expires.
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// Where REGISTERs go: the outbound proxy if any, else the registrar.
    pub fn next_hop(&self) -> Option<NextHop> {
        NextHop::from_uri(
            self.config
                .outbound_proxy
                .as_ref()
                .unwrap_or(&self.config.registrar),
        )
    }

    /// Starts registering (again). Ignored while a REGISTER is in flight.
    pub fn register(&mut self, _now: Instant) {
        if self.pending.is_some() {
            return;
        }
        self.timers.clear();
        self.state = RegistrationState::Registering;
        self.send(self.fresh());
    }

    /// What a fresh registration (not a refresh) starts with.
    fn fresh(&self) -> Purpose {
        if self.config.clear_first {
            Purpose::Clear
        } else {
            Purpose::Register
        }
    }

    /// Whether `request` (from `poll_request`) adds or refreshes our binding, as opposed to
    /// removing bindings. The driver checks that it may still serve before sending one.
    pub fn adds_binding(request: &Request) -> bool {
        request.method == Method::Register
            && request
                .headers
                .expires()
                .ok()
                .flatten()
                .is_some_and(|e| e > 0)
    }

    /// Removes our binding (`Expires: 0`), whatever the state; done when `Unregistered` comes.
    pub fn unregister(&mut self, _now: Instant) {
        if self.state == RegistrationState::Unregistering {
            return;
        }
        self.timers.clear();
        self.state = RegistrationState::Unregistering;
        self.send(Purpose::Unregister);
    }

    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Refresh and retry timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            if self.pending.is_some() {
                continue;
            }
            match timer {
                Timer::Refresh => self.send(Purpose::Register),
                Timer::Retry => {
                    self.state = RegistrationState::Registering;
                    self.send(self.fresh());
                }
            }
        }
    }

    /// The REGISTER's client transaction timed out (the endpoint's `Timeout` event).
    pub fn handle_transaction_timeout(&mut self, now: Instant) {
        if self.pending.is_some() {
            self.fail(now, 408, RegisterError::Timeout, None);
        }
    }

    /// A response to a REGISTER; responses to older REGISTERs and provisionals are ignored.
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        let Some(pending) = &self.pending else { return };
        let ours = response.headers.call_id() == Some(self.call_id.as_str())
            && response
                .headers
                .cseq()
                .is_ok_and(|c| c.seq == pending.cseq && c.method == Method::Register);
        if !ours || response.is_provisional() {
            return;
        }
        let purpose = pending.purpose;
        match response.status {
            200..=299 if purpose == Purpose::Clear => {
                self.events.push_back(RegistrationEvent::Cleared);
                self.send(Purpose::Register);
            }
            401 | 407 if purpose == Purpose::Clear => {
                if let Err(error) = self.answer_challenge(response) {
                    self.fail(now, response.status, error, None);
                } else {
                    self.send(purpose);
                }
            }
            status if purpose == Purpose::Clear => {
                self.events
                    .push_back(RegistrationEvent::ClearRefused { status });
                self.send(Purpose::Register);
            }
            200..=299 if purpose == Purpose::Unregister => {
                self.pending = None;
                self.digest.reset();
                self.state = RegistrationState::Unregistered;
                self.events
                    .push_back(RegistrationEvent::Unregistered { clean: true });
            }
            200..=299 => self.registered(now, response),
            401 | 407 => match self.answer_challenge(response) {
                Ok(()) => self.send(purpose),
                Err(error) => self.fail(now, response.status, error, None),
            },
            423 => match response
                .headers
                .get(&HeaderName::MinExpires)
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                Some(min) if min > self.expires && purpose == Purpose::Register => {
                    self.expires = min;
                    self.send(purpose);
                }
                _ => self.fail(now, 423, RegisterError::BadMinExpires, None),
            },
            status => {
                let error = RegisterError::Rejected {
                    status,
                    reason: response.reason.clone(),
                };
                self.fail(now, status, error, retry_after(response));
            }
        }
    }

    fn registered(&mut self, now: Instant, response: &Response) {
        self.pending = None;
        let from_contact = response.headers.contacts().ok().and_then(|list| {
            list.into_iter()
                .find(|c| same_contact(&c.uri, &self.config.contact))
                .and_then(|c| {
                    c.param("expires")
                        .flatten()
                        .and_then(|v| v.trim().parse::<u32>().ok())
                })
        });
        let granted = from_contact
            .or_else(|| response.headers.expires().ok().flatten())
            .unwrap_or(self.expires);
        if granted == 0 {
            // The registrar kept no binding: retrying at once would only hammer it.
            let reason = "binding granted for 0 s".to_string();
            let status = response.status;
            self.fail(
                now,
                status,
                RegisterError::Rejected { status, reason },
                None,
            );
            return;
        }
        self.failures = 0;
        let expires_at = now + Duration::from_secs(u64::from(granted));
        let refreshed = matches!(self.state, RegistrationState::Registered { .. });
        self.state = RegistrationState::Registered { expires_at };
        self.timers.set(
            Timer::Refresh,
            now + Duration::from_secs(u64::from(granted / 2).max(1)),
        );
        self.events.push_back(RegistrationEvent::Registered {
            expires: granted,
            expires_at,
            refreshed,
        });
    }

    /// Our Contact, with the instance parameters when configured.
    fn contact_value(&self) -> String {
        let mut v = NameAddr::new(self.config.contact.clone()).to_string();
        if let Some(instance) = &self.config.instance_id {
            v.push_str(&format!(";+sip.instance=\"<{instance}>\""));
            if let Some(reg_id) = self.config.reg_id {
                v.push_str(&format!(";reg-id={reg_id}"));
            }
        }
        v
    }

    fn answer_challenge(&mut self, response: &Response) -> Result<(), RegisterError> {
        let pending = self.pending.as_mut().ok_or(RegisterError::Timeout)?;
        pending
            .challenges
            .answer(&mut self.digest, response, MAX_CHALLENGES)
            .map_err(|e| match e {
                AuthError::CredentialsRejected { realm } => {
                    RegisterError::CredentialsRejected { realm }
                }
                AuthError::TooManyChallenges { .. } => RegisterError::TooManyChallenges,
                other => RegisterError::Auth(other),
            })
    }

    fn fail(
        &mut self,
        now: Instant,
        status: u16,
        error: RegisterError,
        retry_after: Option<Duration>,
    ) {
        let purpose = self.pending.take().map(|p| p.purpose);
        if purpose == Some(Purpose::Unregister) {
            tracing::warn!(status, %error, "unregistration not confirmed");
            self.state = RegistrationState::Unregistered;
            self.events
                .push_back(RegistrationEvent::Unregistered { clean: false });
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(8))
            .min(MAX_BACKOFF);
        let retry_at = now + retry_after.unwrap_or(backoff);
        self.state = RegistrationState::Failed { status, retry_at };
        self.timers.set(Timer::Retry, retry_at);
        self.events.push_back(RegistrationEvent::Failed {
            status,
            error,
            retry_at,
        });
    }

    fn send(&mut self, purpose: Purpose) {
        self.cseq += 1;
        let challenges = match self.pending.take() {
            // Same attempt (answering a challenge or a 423): keep what it met.
            Some(p) if p.purpose == purpose => p.challenges,
            _ => ChallengeRound::default(),
        };
        let request = self.build(purpose);
        self.pending = Some(Pending {
            cseq: self.cseq,
            purpose,
            challenges,
        });
        self.requests.push_back(request);
    }

    fn build(&mut self, purpose: Purpose) -> Request {
        let expires = match purpose {
            Purpose::Register => self.expires,
            Purpose::Unregister | Purpose::Clear => 0,
        };
        let mut req = Request::new(Method::Register, self.config.registrar.clone());
        let h = &mut req.headers;
        h.push(HeaderName::MaxForwards, "70");
        if let Some(proxy) = &self.config.outbound_proxy {
            h.push(HeaderName::Route, NameAddr::new(proxy.clone()).to_string());
        }
        h.push(
            HeaderName::From,
            NameAddr::new(self.config.aor.clone())
                .with_tag(&self.from_tag)
                .to_string(),
        );
        h.push(
            HeaderName::To,
            NameAddr::new(self.config.aor.clone()).to_string(),
        );
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq: self.cseq,
                method: Method::Register,
            }
            .to_string(),
        );
        if purpose == Purpose::Clear {
            h.push(HeaderName::Contact, "*");
        } else {
            h.push(HeaderName::Contact, self.contact_value());
        }
        h.push(HeaderName::Expires, expires.to_string());
        if let Err(e) = authorize_request(&mut self.digest, &mut req) {
            tracing::warn!(error = %e, "cannot compute digest credentials");
        }
        req
    }
}
