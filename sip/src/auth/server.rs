//! Digest as a UAS or registrar: issue challenges, verify credentials.
//!
//! Nonces are stateless: `<issued>.<counter>.<mac>`, hex fields, where `mac` is the first 128
//! bits of `HMAC-SHA-256(key, "<issued>.<counter>:<realm>")`. Any node holding the key (both
//! nodes of an HA pair) can check a nonce it did not issue, nothing has to be stored to know
//! that a nonce is ours and how old it is, and the counter keeps two challenges issued in the
//! same second distinct. Time is the caller's `now` (unix seconds).
//!
//! Verification order matters for what the engine answers: a malformed header is a 400; no
//! credentials for our realm, a forged nonce, an unknown user or a wrong response get a fresh
//! 401; an *expired* nonce whose response is otherwise correct gets a 401 with `stale=true`
//! (RFC 7616 §3.3), so the UAC retries silently instead of asking its user for a password.
//!
//! The only state is a bounded map from nonce to the highest `nc` accepted with it, to refuse
//! replays of a captured request within the nonce lifetime (RFC 7616 §3.4). It is pruned as
//! nonces expire; past `MAX_TRACKED` live nonces the oldest is forgotten, which only weakens
//! replay detection for that nonce.

use std::collections::HashMap;
use std::fmt;

use super::client::DigestRequest;
use super::digest::{constant_time_eq, ha1, hmac_sha256, response, Hash, ResponseInput};
use super::header::{parse_credentials, Algorithm, Challenge, Credentials, Qop};
use super::AuthError;

/// How the registrar knows a user's secret. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    Password(String),
    /// HA1 = H(username:realm:password) for the algorithm asked for, as hex; lets the store
    /// avoid keeping clear-text passwords.
    Ha1(String),
}

/// Default nonce lifetime: five minutes, about a REGISTER round trip plus retries.
const DEFAULT_LIFETIME: u64 = 300;
/// Tolerated clock difference for nonces issued "in the future" by another node.
const CLOCK_SKEW: u64 = 30;
const MAX_TRACKED: usize = 4096;
/// Bytes of HMAC kept in the nonce.
const MAC_LEN: usize = 16;

/// Issues and checks Digest challenges for one realm.
#[derive(Clone)]
pub struct DigestServer {
    realm: String,
    key: Vec<u8>,
    lifetime: u64,
    algorithms: Vec<Algorithm>,
    counter: u64,
    /// nonce -> (issued, highest nc accepted).
    seen: HashMap<String, (u64, u32)>,
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserSecret::Password(_) => "Password(<redacted>)",
            UserSecret::Ha1(_) => "Ha1(<redacted>)",
        })
    }
}

/// Never prints the key.
impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("lifetime", &self.lifetime)
            .field("algorithms", &self.algorithms)
            .field("tracked_nonces", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl DigestServer {
    /// `key` should be at least 32 random bytes, shared by the nodes that verify. Challenges
    /// offer SHA-256 then MD5 (RFC 8760 §2.4: most preferred first), `qop="auth"`.
    pub fn new(realm: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        DigestServer {
            realm: realm.into(),
            key: key.into(),
            lifetime: DEFAULT_LIFETIME,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            counter: 0,
            seen: HashMap::new(),
        }
    }

    pub fn with_nonce_lifetime(mut self, seconds: u64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Algorithms to offer and accept, most preferred first; ones we cannot compute are
    /// dropped.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| Hash::of(a).is_some())
            .collect();
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// One challenge per algorithm, sharing a fresh nonce: the values of the
    /// `WWW-Authenticate` (or `Proxy-Authenticate`) headers of a 401 (407), in order.
    pub fn challenges(&mut self, now: u64, stale: bool) -> Vec<Challenge> {
        self.counter = self.counter.wrapping_add(1);
        let nonce = self.nonce(now, self.counter);
        self.algorithms
            .iter()
            .map(|algorithm| Challenge {
                realm: self.realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm: algorithm.clone(),
                qop: vec![Qop::Auth],
                stale,
                domain: None,
                other: Vec::new(),
            })
            .collect()
    }

    /// Check a request's `Authorization` (or `Proxy-Authorization`) values. `lookup` gives
    /// the secret of a username for the algorithm used. Returns the authenticated username.
    pub fn verify<F>(
        &mut self,
        authorizations: &[&str],
        request: &DigestRequest<'_>,
        now: u64,
        lookup: F,
    ) -> Result<String, AuthError>
    where
        F: FnOnce(&str, &Algorithm) -> Option<UserSecret>,
    {
        let creds = self.ours(authorizations)?;
        let hash = Hash::of(&creds.algorithm)
            .filter(|_| self.algorithms.contains(&creds.algorithm))
            .ok_or_else(|| AuthError::UnsupportedAlgorithm {
                algorithm: creds.algorithm.to_string(),
            })?;
        match &creds.qop {
            Some(Qop::Auth) => {}
            Some(other) => {
                return Err(AuthError::UnsupportedQop {
                    qop: other.as_str().to_owned(),
                })
            }
            None => return Err(AuthError::MissingParam { param: "qop" }),
        }
        if !creds.uri.eq_ignore_ascii_case(request.uri) {
            return Err(AuthError::UriMismatch {
                credentials: creds.uri.clone(),
                request: request.uri.to_owned(),
            });
        }
        let issued = self.check_nonce(&creds.nonce, now)?;
        let username = creds.username.clone();
        let ha1 = match lookup(&username, &creds.algorithm) {
            Some(UserSecret::Password(p)) => ha1(hash, &username, &self.realm, &p),
            Some(UserSecret::Ha1(h)) => h.to_ascii_lowercase(),
            None => return Err(AuthError::UnknownUser { username }),
        };
        let nc = creds.nc.unwrap_or(0);
        let expected = response(
            &ha1,
            &ResponseInput {
                algorithm: &creds.algorithm,
                nonce: &creds.nonce,
                qop: creds.qop.as_ref(),
                cnonce: creds.cnonce.as_deref(),
                nc,
                method: request.method,
                uri: &creds.uri,
                body: request.body,
            },
        );
        let given = creds.response.to_ascii_lowercase();
        if !expected.is_some_and(|e| constant_time_eq(e.as_bytes(), given.as_bytes())) {
            return Err(AuthError::BadResponse { username });
        }
        if now > issued.saturating_add(self.lifetime) {
            return Err(AuthError::StaleNonce { username });
        }
        if !self.accept_nc(&creds.nonce, issued, nc, now) {
            return Err(AuthError::NonceReplay { username, nc });
        }
        Ok(username)
    }

    /// The Digest credentials for our realm among all header values.
    fn ours(&self, authorizations: &[&str]) -> Result<Credentials, AuthError> {
        let mut first_error = None;
        for value in authorizations {
            match parse_credentials(value) {
                Ok(list) => {
                    if let Some(c) = list.into_iter().find(|c| c.realm == self.realm) {
                        return Ok(c);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(AuthError::Missing))
    }

    fn nonce(&self, issued: u64, counter: u64) -> String {
        let body = format!("{issued:x}.{counter:x}");
        format!("{body}.{}", self.mac(&body))
    }

    fn mac(&self, body: &str) -> String {
        let message = format!("{body}:{}", self.realm);
        let mac = hmac_sha256(&self.key, message.as_bytes());
        hex::encode(mac.get(..MAC_LEN).unwrap_or(&mac))
    }

    /// The issue time of a nonce we made; `InvalidNonce` for anything else.
    fn check_nonce(&self, nonce: &str, now: u64) -> Result<u64, AuthError> {
        let (body, mac) = nonce.rsplit_once('.').ok_or(AuthError::InvalidNonce)?;
        if !constant_time_eq(self.mac(body).as_bytes(), mac.as_bytes()) {
            return Err(AuthError::InvalidNonce);
        }
        let issued = body
            .split_once('.')
            .and_then(|(t, _)| u64::from_str_radix(t, 16).ok())
            .ok_or(AuthError::InvalidNonce)?;
        if issued > now.saturating_add(CLOCK_SKEW) {
            return Err(AuthError::InvalidNonce);
        }
        Ok(issued)
    }

    /// Accept `nc` for `nonce` if it is higher than any accepted before.
    fn accept_nc(&mut self, nonce: &str, issued: u64, nc: u32, now: u64) -> bool {
        if let Some((_, last)) = self.seen.get_mut(nonce) {
            if nc <= *last {
                return false;
            }
            *last = nc;
            return true;
        }
        let lifetime = self.lifetime;
        self.seen
            .retain(|_, (t, _)| now <= t.saturating_add(lifetime));
        if self.seen.len() >= MAX_TRACKED {
            let oldest = self
                .seen
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.seen.remove(&k);
            }
        }
        self.seen.insert(nonce.to_owned(), (issued, nc));
        true
    }
}
