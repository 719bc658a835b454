//! A sans-IO registrar (RFC 3261 §10.3) for the phones of the engine's own users (agents):
//! digest authentication, bindings per address of record with expiry, `Contact: *`
//! removal, Min-Expires, and Call-ID/CSeq ordering. The engine asks it who is reachable.
//!
//! Time comes in twice: `now` (monotonic) for binding expiry, `unix_now` (seconds) for the
//! digest server's stateless nonces.
//!
//! An unknown user and a wrong password get the same answer (a new challenge), through the
//! same code: an unknown user is checked against a random secret no one can know, so not
//! even the time taken tells them apart (RFC 3261 §22.1 leaves the choice; enumeration tools
//! such as `svwar` rely on the difference). [`Registration::auth`] tells the caller what the
//! credentials were worth, for its brute-force guard (`crate::auth::guard`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::{Algorithm, AuthError, DigestRequest, DigestServer, UserSecret};
use crate::endpoint::Peer;
use crate::message::{HeaderName, NameAddr, Request, Response, Uri};

/// Lifetime granted when the phone asks for none.
pub const DEFAULT_EXPIRES: u32 = 3600;
/// Shortest lifetime accepted (RFC 3261 §10.3 step 7: 423 with Min-Expires below it).
pub const MIN_EXPIRES: u32 = 60;
/// Longest lifetime granted; longer asks are shortened.
pub const MAX_EXPIRES: u32 = 7200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub contact: Uri,
    pub expires_at: Instant,
    /// For a REGISTER that came over TCP or TLS: the connection it came on, as a URI. A
    /// phone on a stream is reached back on its own connection (RFC 5626 §5.3, RFC 5923):
    /// the port in its Contact is often not listening, and over TLS a phone rarely holds a
    /// certificate to accept a connection with.
    reach: Option<Uri>,
    /// The client address the REGISTER came from (`Origin::client`).
    source: std::net::IpAddr,
    call_id: String,
    cseq: u32,
}

/// Where a REGISTER came from: the peer it arrived from (where the phone is reached back),
/// and the client's address for the "another device" check (the phone behind a trusted
/// proxy, `crate::proxy::client_address`; else the peer's own address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub peer: Peer,
    pub client: std::net::IpAddr,
}

impl From<Peer> for Origin {
    fn from(peer: Peer) -> Origin {
        Origin {
            peer,
            client: peer.addr.ip(),
        }
    }
}

/// What a REGISTER changed, for the engine (agents become reachable or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    None,
    /// The user has at least one binding now (newly or refreshed).
    Registered {
        user: String,
    },
    /// The user's last binding is gone.
    Unregistered {
        user: String,
    },
}

/// What the credentials of a REGISTER were worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// None for our realm, or not answering one of our live nonces: challenged, nothing
    /// was checked.
    Challenged,
    /// Checked and wrong (wrong password, unknown user, a replay, another user's address of
    /// record). `user` is the username the credentials gave.
    Failed {
        user: String,
    },
    Passed {
        user: String,
    },
}

/// The answer to a REGISTER and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub response: Response,
    pub change: BindingChange,
    pub auth: AuthOutcome,
}

pub struct Registrar {
    auth: DigestServer,
    bindings: HashMap<String, Vec<Binding>>,
    /// The secret unknown users are checked against (random, never shown).
    unknown_user_secret: String,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("users", &self.bindings.len())
            .finish_non_exhaustive()
    }
}

fn respond(req: &Request, status: u16) -> Response {
    Response::for_request(req, status)
}

/// What a digest check of a request came to: the authenticated user, or the answer to send
/// (a fresh challenge) and what the credentials were worth.
pub fn verify_digest<F>(
    server: &mut DigestServer,
    unknown_user_secret: &str,
    unix_now: u64,
    req: &Request,
    secret: F,
) -> Result<String, (Response, AuthOutcome)>
where
    F: Fn(&str) -> Option<String>,
{
    let authorizations: Vec<&str> = req.headers.get_all(&HeaderName::Authorization).collect();
    let uri = req.uri.to_string();
    let dreq = DigestRequest {
        method: req.method.as_str(),
        uri: &uri,
        body: None,
    };
    let checked = server.verify(&authorizations, &dreq, unix_now, |u: &str, _| {
        Some(UserSecret::Password(
            secret(u).unwrap_or_else(|| unknown_user_secret.to_string()),
        ))
    });
    let e = match checked {
        Ok(user) => return Ok(user),
        Err(e) => e,
    };
    let outcome = match &e {
        AuthError::UnknownUser { username }
        | AuthError::BadResponse { username }
        | AuthError::NonceReplay { username, .. } => AuthOutcome::Failed {
            user: username.clone(),
        },
        _ => AuthOutcome::Challenged,
    };
    let stale = matches!(e, AuthError::StaleNonce { .. });
    let mut r = respond(req, 401);
    for c in server.challenges(unix_now, stale) {
        r.headers.push(HeaderName::WwwAuthenticate, c.to_string());
    }
    Err((r, outcome))
}

/// A secret for unknown users: random, so that no password matches it.
pub fn unknown_user_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Registrar {
    /// `realm` names the protection domain in challenges; `key` signs nonces (keep it
    /// secret, share it between the nodes of a pair so either can check the other's nonces);
    /// `algorithms` are offered in this order (RFC 8760 §2.4: most preferred first) and the
    /// only ones accepted.
    pub fn new(realm: &str, key: &[u8], algorithms: Vec<Algorithm>) -> Self {
        let auth = DigestServer::new(realm, key.to_vec()).with_algorithms(algorithms);
        Registrar {
            auth,
            bindings: HashMap::new(),
            unknown_user_secret: unknown_user_secret(),
        }
    }

    /// Handles one REGISTER that came from `source`. `secret` gives the password of a known
    /// user (None: unknown); `on_call` whether a user is on a call now.
    pub fn handle<F, B>(
        &mut self,
        now: Instant,
        unix_now: u64,
        req: &Request,
        source: impl Into<Origin>,
        secret: F,
        on_call: B,
    ) -> Registration
    where
        F: Fn(&str) -> Option<String>,
        B: Fn(&str) -> bool,
    {
        let refused = |response, auth| Registration {
            response,
            change: BindingChange::None,
            auth,
        };
        let user = match verify_digest(
            &mut self.auth,
            &self.unknown_user_secret,
            unix_now,
            req,
            secret,
        ) {
            Ok(user) => user,
            Err((response, auth)) => return refused(response, auth),
        };
        // The authenticated user may only register its own address of record.
        let aor_user = req
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.uri.user().map(str::to_string));
        if aor_user.as_deref() != Some(user.as_str()) {
            return refused(respond(req, 403), AuthOutcome::Failed { user });
        }
        let busy = on_call(&user);
        let source = source.into();
        let (response, change) = self.bind(now, req, source, user.clone(), busy);
        Registration {
            response,
            change,
            auth: AuthOutcome::Passed { user },
        }
    }

    /// Updates the bindings of an authenticated `user` (RFC 3261 §10.3 steps 6 to 8).
    fn bind(
        &mut self,
        now: Instant,
        req: &Request,
        origin: Origin,
        user: String,
        on_call: bool,
    ) -> (Response, BindingChange) {
        let source = origin.peer;
        let reach = source.transport.uri_param().and_then(|t| {
            let host = match source.addr.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            Uri::parse(&format!(
                "sip:{user}@{host}:{};transport={t}",
                source.addr.port()
            ))
            .ok()
        });
        let Some(call_id) = req.headers.call_id().map(str::to_string) else {
            return (respond(req, 400), BindingChange::None);
        };
        let Ok(cseq) = req.headers.cseq() else {
            return (respond(req, 400), BindingChange::None);
        };
        let header_expires = req.headers.expires().ok().flatten();
        let star = req
            .headers
            .get_all(&HeaderName::Contact)
            .any(|c| c.trim() == "*");
        let contacts = match req.headers.contacts() {
            Ok(c) => c,
            Err(_) => return (respond(req, 400), BindingChange::None),
        };
        let had = self.live(&user, now) > 0;
        // A user on a call keeps its phone: a REGISTER from an address none of its live
        // bindings came from may not add, move or remove bindings until the call ends
        // (else the next calls, or this one's end, would go to whoever sent it).
        if on_call
            && had
            && !self.bindings.get(&user).is_some_and(|l| {
                l.iter()
                    .any(|b| b.expires_at > now && b.source == origin.client)
            })
        {
            let mut r = respond(req, 403);
            r.headers.push(
                HeaderName::Warning,
                "399 svi \"on a call from another device\"",
            );
            return (r, BindingChange::None);
        }
        if star {
            // `Contact: *` is only valid alone and with Expires: 0 (§10.3 step 6).
            if !contacts.is_empty() || header_expires != Some(0) {
                return (respond(req, 400), BindingChange::None);
            }
            self.bindings.remove(&user);
        } else {
            for c in &contacts {
                let asked = contact_expires(c)
                    .or(header_expires)
                    .unwrap_or(DEFAULT_EXPIRES);
                if asked != 0 && asked < MIN_EXPIRES {
                    let mut r = respond(req, 423);
                    r.headers
                        .push(HeaderName::MinExpires, MIN_EXPIRES.to_string());
                    return (r, BindingChange::None);
                }
            }
            let list = self.bindings.entry(user.clone()).or_default();
            for c in contacts {
                let asked = contact_expires(&c)
                    .or(header_expires)
                    .unwrap_or(DEFAULT_EXPIRES)
                    .min(MAX_EXPIRES);
                let existing = list.iter().position(|b| same_contact(&b.contact, &c.uri));
                if let Some(i) = existing {
                    // An older or repeated request of the same client must not undo a newer one.
                    if list[i].call_id == call_id && cseq.seq <= list[i].cseq {
                        continue;
                    }
                    list.remove(i);
                }
                if asked > 0 {
                    list.push(Binding {
                        contact: c.uri,
                        reach: reach.clone(),
                        source: origin.client,
                        expires_at: now + Duration::from_secs(asked.into()),
                        call_id: call_id.clone(),
                        cseq: cseq.seq,
                    });
                }
            }
            if list.is_empty() {
                self.bindings.remove(&user);
            }
        }
        let mut r = respond(req, 200);
        for b in self.bindings.get(&user).into_iter().flatten() {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            r.headers.push(
                HeaderName::Contact,
                format!("<{}>;expires={left}", b.contact),
            );
        }
        let has = self.live(&user, now) > 0;
        let change = match (had, has) {
            (_, true) => BindingChange::Registered { user },
            (true, false) => BindingChange::Unregistered { user },
            (false, false) => BindingChange::None,
        };
        (r, change)
    }

    fn live(&self, user: &str, now: Instant) -> usize {
        self.bindings
            .get(user)
            .map(|l| l.iter().filter(|b| b.expires_at > now).count())
            .unwrap_or(0)
    }

    /// Where `user` can be reached now (newest binding first): the Contact, or for a phone
    /// on a stream its connection.
    pub fn contacts(&self, user: &str, now: Instant) -> Vec<Uri> {
        let mut list: Vec<&Binding> = self
            .bindings
            .get(user)
            .into_iter()
            .flatten()
            .filter(|b| b.expires_at > now)
            .collect();
        list.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        list.into_iter()
            .map(|b| b.reach.clone().unwrap_or_else(|| b.contact.clone()))
            .collect()
    }

    /// Every live binding of `user` with its expiry (to replicate it to another node).
    pub fn bindings(&self, user: &str, now: Instant) -> Vec<(Uri, Instant)> {
        self.bindings
            .get(user)
            .into_iter()
            .flatten()
            .filter(|b| b.expires_at > now)
            .map(|b| (b.contact.clone(), b.expires_at))
            .collect()
    }

    /// Adds a binding learnt from another node (replicated registrations): it lives until
    /// `expires_at` unless the phone's next REGISTER updates it. Returns whether `user` had
    /// no live binding before.
    pub fn restore(&mut self, user: &str, contact: Uri, expires_at: Instant, now: Instant) -> bool {
        let was_unbound = self.live(user, now) == 0;
        let list = self.bindings.entry(user.to_string()).or_default();
        match list.iter_mut().find(|b| same_contact(&b.contact, &contact)) {
            Some(b) => b.expires_at = b.expires_at.max(expires_at),
            None => list.push(Binding {
                // The REGISTER's source is known on the node that took it only: the
                // Contact's address stands in for it (a phone behind no NAT registers from
                // there); a stream connection stayed on that node.
                source: contact
                    .as_sip()
                    .and_then(|u| u.host_unbracketed().parse().ok())
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                contact,
                expires_at,
                reach: None,
                call_id: String::new(),
                cseq: 0,
            }),
        }
        was_unbound
    }

    /// Drops expired bindings; returns the users left with none.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        self.bindings.retain(|user, list| {
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                gone.push(user.clone());
            }
            !list.is_empty()
        });
        gone
    }

    /// The next binding expiry, for the driver's timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }
}

fn contact_expires(c: &NameAddr) -> Option<u32> {
    c.param("expires")
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| v.min(u32::MAX as u64) as u32)
}

/// Contacts compare by URI (RFC 3261 §10.3 step 7 uses URI equality; scheme, user, host and
/// port are what matter for a phone).
fn same_contact(a: &Uri, b: &Uri) -> bool {
    match (a.as_sip(), b.as_sip()) {
        (Some(x), Some(y)) => {
            x.user == y.user && x.host.eq_ignore_ascii_case(&y.host) && x.port == y.port
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
