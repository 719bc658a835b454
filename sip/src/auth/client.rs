//! Answering Digest challenges as a UAC (REGISTER, outbound INVITE through a proxy).
//!
//! [`authorize`] is the pure core: challenge + secrets + request + cnonce + nc in, credentials
//! out. [`DigestClient`] adds the state a UAC needs across requests: the challenge in force per
//! realm (a proxy's 407 and a registrar's 401 can both apply), the nonce count, which
//! increments each time a nonce is reused (RFC 7616 §3.4: the server may reject repeats), and
//! the rule of RFC 3261 §22.2 not to retry credentials that were just rejected.
//!
//! Which challenge: RFC 8760 §2.4 has servers list their preferred algorithm first and lets
//! the UAC use the topmost one it supports "unless a local policy dictates otherwise". Our
//! policy is *strongest supported first* (SHA-256 over MD5, plain over `-sess` at equal
//! strength), header order breaking ties: for compliant servers it is the same choice, and a
//! server listing MD5 first cannot downgrade us.

use rand::RngCore;

use super::digest::{ha1, response, Hash, ResponseInput};
use super::header::{Algorithm, Challenge, Credentials, Qop};
use super::AuthError;

/// What the digest covers from the request being authorized.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    pub method: &'a str,
    /// The Request-URI, as written in the request line.
    pub uri: &'a str,
    /// The body, used only by `qop=auth-int`.
    pub body: Option<&'a [u8]>,
}

/// Where a challenge came from, which decides the header that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`, answered by `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`, answered by `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// One header to add to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub kind: ChallengeKind,
    pub credentials: Credentials,
}

impl Authorization {
    pub fn header_name(&self) -> &'static str {
        self.kind.credentials_header()
    }

    pub fn header_value(&self) -> String {
        self.credentials.to_string()
    }
}

/// Credentials answering `challenge`. `nc` is used only with a qop; `cnonce` with a qop or a
/// `-sess` algorithm. Prefers `qop=auth`, then `auth-int` (hashing `request.body`), then no
/// qop when the challenge offers none.
pub fn authorize(
    challenge: &Challenge,
    username: &str,
    password: &str,
    request: &DigestRequest<'_>,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let hash = Hash::of(&challenge.algorithm).ok_or_else(|| AuthError::UnsupportedAlgorithm {
        algorithm: challenge.algorithm.to_string(),
    })?;
    let qop = choose_qop(&challenge.qop)?;
    let cnonce = (qop.is_some() || challenge.algorithm.is_session()).then_some(cnonce);
    let input = ResponseInput {
        algorithm: &challenge.algorithm,
        nonce: &challenge.nonce,
        qop: qop.as_ref(),
        cnonce,
        nc,
        method: request.method,
        uri: request.uri,
        body: request.body,
    };
    let response =
        response(&ha1(hash, username, &challenge.realm, password), &input).ok_or_else(|| {
            AuthError::UnsupportedAlgorithm {
                algorithm: challenge.algorithm.to_string(),
            }
        })?;
    Ok(Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: request.uri.to_owned(),
        response,
        algorithm: challenge.algorithm.clone(),
        cnonce: cnonce.map(str::to_owned),
        opaque: challenge.opaque.clone(),
        nc: qop.is_some().then_some(nc),
        qop,
        other: Vec::new(),
    })
}

/// `Ok(None)`: RFC 2069 mode. Err if only qops we cannot compute are offered.
fn choose_qop(offered: &[Qop]) -> Result<Option<Qop>, AuthError> {
    if offered.is_empty() {
        return Ok(None);
    }
    [Qop::Auth, Qop::AuthInt]
        .into_iter()
        .find(|q| offered.contains(q))
        .map(Some)
        .ok_or_else(|| AuthError::UnsupportedQop {
            qop: offered
                .iter()
                .map(Qop::as_str)
                .collect::<Vec<_>>()
                .join(","),
        })
}

/// The challenge to answer among several (see the module docs for the policy).
pub fn select_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .enumerate()
        .filter(|(_, c)| Hash::of(&c.algorithm).is_some() && choose_qop(&c.qop).is_ok())
        .min_by_key(|(i, c)| (strength_rank(&c.algorithm), *i))
        .map(|(_, c)| c)
}

fn strength_rank(algorithm: &Algorithm) -> u8 {
    match algorithm {
        Algorithm::Sha256 => 0,
        Algorithm::Sha256Sess => 1,
        Algorithm::Md5 => 2,
        Algorithm::Md5Sess => 3,
        Algorithm::Other(_) => 4,
    }
}

/// A fresh cnonce: 128 random bits as hex, from an injected RNG (seeded in tests).
pub fn cnonce_from<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh cnonce from the thread-local RNG, for drivers; cores take [`cnonce_from`].
pub fn random_cnonce() -> String {
    cnonce_from(&mut rand::thread_rng())
}

/// A UAC's Digest state: one challenge in force per realm, with its nonce count.
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    active: Vec<Active>,
}

#[derive(Debug, Clone)]
struct Active {
    kind: ChallengeKind,
    challenge: Challenge,
    /// Last nonce count sent with this nonce; 0 before first use.
    nc: u32,
}

/// Never prints the password.
impl std::fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let realms: Vec<&str> = self
            .active
            .iter()
            .map(|a| a.challenge.realm.as_str())
            .collect();
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("realms", &realms)
            .finish_non_exhaustive()
    }
}

impl DigestClient {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestClient {
            username: username.into(),
            password: password.into(),
            active: Vec::new(),
        }
    }

    /// Take in the challenges of one 401/407 (every `WWW-`/`Proxy-Authenticate` value,
    /// parsed). Per realm, the best challenge replaces the one in force. Fails if no challenge
    /// is usable, or if a realm re-challenges the very nonce we answered without `stale=true`:
    /// our password is wrong and retrying would only loop (RFC 3261 §22.2).
    pub fn on_challenge(
        &mut self,
        kind: ChallengeKind,
        challenges: &[Challenge],
    ) -> Result<(), AuthError> {
        let mut realms: Vec<&str> = Vec::new();
        for c in challenges {
            if !realms.contains(&c.realm.as_str()) {
                realms.push(&c.realm);
            }
        }
        let mut any = false;
        for realm in realms {
            let of_realm: Vec<Challenge> = challenges
                .iter()
                .filter(|c| c.realm == realm)
                .cloned()
                .collect();
            let Some(best) = select_challenge(&of_realm) else {
                continue;
            };
            any = true;
            if let Some(old) = self.active.iter().find(|a| a.challenge.realm == realm) {
                let rejected = old.nc > 0 && old.challenge.nonce == best.nonce && !best.stale;
                if rejected {
                    return Err(AuthError::CredentialsRejected {
                        realm: realm.to_owned(),
                    });
                }
            }
            self.active.retain(|a| a.challenge.realm != realm);
            self.active.push(Active {
                kind,
                challenge: best.clone(),
                nc: 0,
            });
        }
        if any {
            Ok(())
        } else {
            Err(AuthError::NoUsableChallenge)
        }
    }

    /// Headers for the next request: one per realm in force, each with its nonce count
    /// advanced. Empty before any challenge.
    pub fn authorize(
        &mut self,
        request: &DigestRequest<'_>,
        cnonce: &str,
    ) -> Result<Vec<Authorization>, AuthError> {
        let mut out = Vec::with_capacity(self.active.len());
        for active in &mut self.active {
            active.nc = active.nc.wrapping_add(1).max(1);
            let credentials = authorize(
                &active.challenge,
                &self.username,
                &self.password,
                request,
                cnonce,
                active.nc,
            )?;
            out.push(Authorization {
                kind: active.kind,
                credentials,
            });
        }
        Ok(out)
    }

    /// Forget all challenges (e.g. after the registration is removed).
    pub fn reset(&mut self) {
        self.active.clear();
    }
}
