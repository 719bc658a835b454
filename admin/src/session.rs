//! Browser sessions: a random token in a `__Host-` cookie (`Secure; HttpOnly;
//! SameSite=Strict; Path=/`), an idle and an absolute timeout, and a CSRF token that every
//! cookie-authenticated write must echo in the `X-CSRF-Token` header (synchronizer token:
//! a page of another site can neither read it nor make the browser send it).
//!
//! Sessions live in the memory of the node that made them: after a failover, people log in
//! again on the new active node (users, keys and the audit log are replicated; sessions are
//! short-lived credentials and are not). Only a SHA-256 of each token is held, so a memory
//! dump does not hand out live sessions, and lookups do not compare secrets byte by byte.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::roles::Role;

pub const COOKIE: &str = "__Host-svi_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// What a login hands to the browser.
pub struct Opened {
    pub token: String,
    pub csrf: String,
}

/// Most sessions held at once; logging in past it drops the oldest.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Default)]
pub struct Sessions {
    timeouts: Timeouts,
    by_hash: HashMap<[u8; 32], Session>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(timeouts: Timeouts) -> Sessions {
        Sessions {
            timeouts,
            by_hash: HashMap::new(),
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub fn open(&mut self, now: Instant, user: &str, role: Role) -> Opened {
        self.expire(now);
        if self.by_hash.len() >= MAX_SESSIONS {
            let oldest = self
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.by_hash.remove(&k);
            }
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        self.by_hash.insert(
            digest(&token),
            Session {
                user: user.to_string(),
                role,
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Opened { token, csrf }
    }

    /// The live session of `token`, touched (its idle time starts again).
    pub fn touch(&mut self, now: Instant, token: &str) -> Option<Session> {
        let key = digest(token);
        let t = self.timeouts;
        let s = self.by_hash.get_mut(&key)?;
        if now.duration_since(s.last_seen) >= t.idle || now.duration_since(s.created) >= t.absolute
        {
            self.by_hash.remove(&key);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn close(&mut self, token: &str) {
        self.by_hash.remove(&digest(token));
    }

    /// Ends every session of `user` (disabled, or password changed).
    pub fn close_user(&mut self, user: &str) {
        self.by_hash.retain(|_, s| s.user != user);
    }

    fn expire(&mut self, now: Instant) {
        let t = self.timeouts;
        self.by_hash.retain(|_, s| {
            now.duration_since(s.last_seen) < t.idle && now.duration_since(s.created) < t.absolute
        });
    }
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session token in a `Cookie` header, if any.
pub fn token_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new session (max-age: the absolute timeout).
pub fn set_cookie(token: &str, t: Timeouts) -> String {
    format!(
        "{COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        t.absolute.as_secs()
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_timeouts_end_a_session() {
        let t = Timeouts {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
        };
        let mut s = Sessions::new(t);
        let t0 = Instant::now();
        let a = s.open(t0, "ann", Role::Supervisor);
        // Kept alive by use every 50 s...
        for i in 1..6 {
            assert!(
                s.touch(t0 + Duration::from_secs(50 * i), &a.token)
                    .is_some(),
                "{i}"
            );
        }
        // ...until the absolute limit.
        assert!(s.touch(t0 + Duration::from_secs(300), &a.token).is_none());
        let b = s.open(t0, "bob", Role::Admin);
        assert!(
            s.touch(t0 + Duration::from_secs(60), &b.token).is_none(),
            "idle"
        );
        assert!(s.touch(t0, "not-a-token").is_none());
    }

    #[test]
    fn closing_a_user_ends_all_their_sessions_and_cookies_are_strict() {
        let mut s = Sessions::new(Timeouts::default());
        let t0 = Instant::now();
        let a = s.open(t0, "ann", Role::Agent);
        let b = s.open(t0, "ann", Role::Agent);
        let c = s.open(t0, "cat", Role::Agent);
        s.close_user("ann");
        assert!(s.touch(t0, &a.token).is_none() && s.touch(t0, &b.token).is_none());
        assert_eq!(s.touch(t0, &c.token).map(|x| x.user), Some("cat".into()));
        let cookie = set_cookie(&c.token, Timeouts::default());
        for part in ["__Host-", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let header = format!("theme=dark; {COOKIE}={}; x=y", c.token);
        assert_eq!(token_from_cookies(&header), Some(c.token.as_str()));
        assert!(same_token(&c.csrf, &c.csrf.clone()) && !same_token(&c.csrf, &a.csrf));
    }
}
