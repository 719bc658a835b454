//! Digest access authentication for SIP: RFC 3261 §22 with RFC 7616 algorithms as profiled by
//! RFC 8760 (MD5, SHA-256, their `-sess` variants; `qop=auth`, `auth-int`, and no qop for
//! RFC 2069 peers).
//!
//! Works on header *values* (`&str`), not on message types, so the message codec, the
//! registration client and the engine's registrar can all use it without coupling. Layers:
//!
//! - [`scan`]: the shared `#challenge` / `credentials` grammar (schemes, `name=value` lists,
//!   quoted strings with escapes, any spacing, several schemes in one value). Unknown schemes
//!   are skipped, as RFC 4475 §3.3.7 (`regaut01`) expects.
//! - [`header`]: typed [`Challenge`] and [`Credentials`], parsed and serialised with RFC 3261's
//!   quoting (`uri`, `response`, `nonce`, `realm`, `username`, `cnonce` quoted; `nc`, `qop`,
//!   `algorithm` bare).
//! - [`digest`]: the hash arithmetic (HA1, HA2, response) and HMAC-SHA-256 for nonces.
//! - [`client`]: answering challenges. Pure function [`authorize`] plus [`DigestClient`], which
//!   keeps one challenge per realm and counts `nc`. The cnonce is an input; [`cnonce_from`]
//!   makes one from an injected RNG.
//! - [`round`]: the part a client shares across requests: [`ChallengeRound`] reads a
//!   401/407 and applies the "same realm again means rejected" rule of RFC 3261 §22.2,
//!   [`authorize_request`] puts the credentials on the next request. The only file here that
//!   knows the message types.
//! - [`server`]: [`DigestServer`] issues stateless nonces (`timestamp.counter.HMAC`) and checks
//!   credentials against a password or a stored HA1, with the time as an input (`now`, unix
//!   seconds) so expiry is tested without clocks.
//! - [`guard`]: [`AuthGuard`] counts failures per source and per user and bans, doubling,
//!   with the time as an input.
//!
//! Usernames are not written into error messages (they may be extensions or phone numbers);
//! they are in typed fields for the caller to log through its redaction policy.

pub mod client;
pub mod digest;
pub mod guard;
pub mod header;
pub mod round;
pub mod scan;
pub mod server;

pub use client::{
    authorize, cnonce_from, random_cnonce, select_challenge, Authorization, ChallengeKind,
    DigestClient, DigestRequest,
};
pub use guard::{AuthGuard, BanPolicy, GuardStats};
pub use header::{parse_challenges, parse_credentials, Algorithm, Challenge, Credentials, Qop};
pub use round::{authorize_request, ChallengeRound};
pub use server::{DigestServer, UserSecret};

/// Everything that can go wrong parsing, answering or verifying Digest authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed authentication header at byte {offset}: expected {expected}")]
    Malformed {
        offset: usize,
        expected: &'static str,
    },
    #[error("Digest parameter `{param}` is missing")]
    MissingParam { param: &'static str },
    #[error("Digest parameter `{param}` appears more than once")]
    DuplicateParam { param: String },
    #[error("Digest parameter `{param}` has an invalid value `{value}`")]
    InvalidParam { param: &'static str, value: String },
    #[error("Digest algorithm `{algorithm}` is not supported")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("Digest qop `{qop}` is not supported")]
    UnsupportedQop { qop: String },
    #[error("no Digest challenge with a supported algorithm and qop")]
    NoUsableChallenge,
    #[error("credentials for realm `{realm}` were rejected: the same nonce was challenged again")]
    CredentialsRejected { realm: String },
    #[error("more than {max} authentication challenges in one attempt")]
    TooManyChallenges { max: u8 },
    #[error("no Digest credentials for this realm")]
    Missing,
    #[error("credentials uri `{credentials}` does not match the Request-URI `{request}`")]
    UriMismatch {
        credentials: String,
        request: String,
    },
    #[error("nonce was not issued by this server or is malformed")]
    InvalidNonce,
    #[error("unknown user")]
    UnknownUser { username: String },
    #[error("wrong digest response")]
    BadResponse { username: String },
    #[error("nonce expired (answer 401 with stale=true)")]
    StaleNonce { username: String },
    #[error("nonce count {nc:08x} already used with this nonce (replay)")]
    NonceReplay { username: String, nc: u32 },
}

#[cfg(test)]
mod tests;
