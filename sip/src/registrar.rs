//! A sans-IO registrar (RFC 3261 §10.3) for the phones of the engine's own users (agents):
//! digest authentication, bindings per address of record with expiry, `Contact: *`
//! removal, Min-Expires, and Call-ID/CSeq ordering. The engine asks it who is reachable.
//!
//! Time comes in twice: `now` (monotonic) for binding expiry, `unix_now` (seconds) for the
//! digest server's stateless nonces.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::{Algorithm, AuthError, DigestRequest, DigestServer, UserSecret};
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
    call_id: String,
    cseq: u32,
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

pub struct Registrar {
    auth: DigestServer,
    bindings: HashMap<String, Vec<Binding>>,
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

impl Registrar {
    /// `realm` names the protection domain in challenges; `key` signs nonces (keep it
    /// secret, share it between the nodes of a pair so either can check the other's nonces).
    pub fn new(realm: &str, key: &[u8]) -> Self {
        // MD5 first: many desk phones (and sipp) answer only the first challenge and know
        // only MD5; clients that support SHA-256 (RFC 8760) pick it from the second.
        let auth = DigestServer::new(realm, key.to_vec())
            .with_algorithms(vec![Algorithm::Md5, Algorithm::Sha256]);
        Registrar {
            auth,
            bindings: HashMap::new(),
        }
    }

    /// Handles one REGISTER. `secret` gives the password of a known user (None: unknown).
    pub fn handle<F>(
        &mut self,
        now: Instant,
        unix_now: u64,
        req: &Request,
        secret: F,
    ) -> (Response, BindingChange)
    where
        F: Fn(&str) -> Option<String>,
    {
        let authorizations: Vec<&str> = req.headers.get_all(&HeaderName::Authorization).collect();
        let uri = req.uri.to_string();
        let dreq = DigestRequest {
            method: "REGISTER",
            uri: &uri,
            body: None,
        };
        let user = match self.auth.verify(
            &authorizations,
            &dreq,
            unix_now,
            |u: &str, _: &Algorithm| secret(u).map(UserSecret::Password),
        ) {
            Ok(user) => user,
            Err(e) => {
                let stale = matches!(e, AuthError::StaleNonce { .. });
                let mut r = respond(
                    req,
                    if matches!(e, AuthError::UnknownUser { .. }) {
                        403
                    } else {
                        401
                    },
                );
                if r.status == 401 {
                    for c in self.auth.challenges(unix_now, stale) {
                        r.headers.push(HeaderName::WwwAuthenticate, c.to_string());
                    }
                }
                return (r, BindingChange::None);
            }
        };
        // The authenticated user may only register its own address of record.
        let aor_user = req
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.uri.user().map(str::to_string));
        if aor_user.as_deref() != Some(user.as_str()) {
            return (respond(req, 403), BindingChange::None);
        }
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

    /// Where `user` can be reached now (newest binding first).
    pub fn contacts(&self, user: &str, now: Instant) -> Vec<Uri> {
        let mut list: Vec<&Binding> = self
            .bindings
            .get(user)
            .into_iter()
            .flatten()
            .filter(|b| b.expires_at > now)
            .collect();
        list.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        list.into_iter().map(|b| b.contact.clone()).collect()
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
                contact,
                expires_at,
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
mod tests {
    use super::*;
    use crate::auth::{parse_challenges, DigestClient};
    use crate::message::{parse_datagram, SipMessage};

    fn register(contact: &str, expires: Option<u32>, cseq: u32, auth: Option<&str>) -> Request {
        let mut text = format!(
            "REGISTER sip:svi.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\nFrom: <sip:1001@svi.test>;tag=a\r\nTo: <sip:1001@svi.test>\r\nCall-ID: reg-1001\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
        );
        if let Some(e) = expires {
            text.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match parse_datagram(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn secret(u: &str) -> Option<String> {
        (u == "1001").then(|| "pw1001".to_string())
    }

    /// Answers the registrar's challenge like a phone would.
    fn authorise(
        reg: &mut Registrar,
        now: Instant,
        contact: &str,
        expires: Option<u32>,
        cseq: u32,
    ) -> (Response, BindingChange) {
        let (challenge, change) =
            reg.handle(now, 1_000, &register(contact, expires, cseq, None), secret);
        assert_eq!((challenge.status, &change), (401, &BindingChange::None));
        let values: Vec<&str> = challenge
            .headers
            .get_all(&HeaderName::WwwAuthenticate)
            .collect();
        let mut client = DigestClient::new("1001", "pw1001");
        let challenges: Vec<_> = values
            .iter()
            .flat_map(|v| parse_challenges(v).expect("challenge"))
            .collect();
        client
            .on_challenge(crate::auth::ChallengeKind::Www, &challenges)
            .expect("usable challenge");
        let auth = client
            .authorize(
                &DigestRequest {
                    method: "REGISTER",
                    uri: "sip:svi.test",
                    body: None,
                },
                "cnonce1",
            )
            .expect("authorize");
        let value = auth[0].header_value();
        reg.handle(
            now,
            1_001,
            &register(contact, expires, cseq + 1, Some(&value)),
            secret,
        )
    }

    #[test]
    fn challenge_then_binding_then_expiry() {
        let mut reg = Registrar::new("svi.test", b"key");
        let t0 = Instant::now();
        let (ok, change) = authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(120), 1);
        assert_eq!(ok.status, 200);
        assert_eq!(
            change,
            BindingChange::Registered {
                user: "1001".into()
            }
        );
        assert_eq!(
            ok.headers.get(&HeaderName::Contact),
            Some("<sip:1001@127.0.0.1:5070>;expires=120")
        );
        assert_eq!(reg.contacts("1001", t0).len(), 1);
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        assert_eq!(
            reg.expire(t0 + Duration::from_secs(121)),
            vec!["1001".to_string()]
        );
        assert!(reg
            .contacts("1001", t0 + Duration::from_secs(121))
            .is_empty());
    }

    #[test]
    fn unregister_min_expires_and_wrong_password() {
        let mut reg = Registrar::new("svi.test", b"key");
        let t0 = Instant::now();
        let (r, _) = authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(10), 1);
        assert_eq!(
            (r.status, r.headers.get(&HeaderName::MinExpires)),
            (423, Some("60"))
        );
        authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(300), 3);
        let (r, change) = authorise(&mut reg, t0, "*", Some(0), 5);
        assert_eq!(
            (r.status, change),
            (
                200,
                BindingChange::Unregistered {
                    user: "1001".into()
                }
            )
        );
        let bad = register("<sip:1001@x>", None, 9, Some("Digest username=\"1001\", realm=\"svi.test\", nonce=\"x\", uri=\"sip:svi.test\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\""));
        assert_eq!(reg.handle(t0, 1_000, &bad, secret).0.status, 401);
    }
}
