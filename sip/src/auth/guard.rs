//! Brute-force protection for digest authentication, sans-IO: failures are counted per
//! source address and per user, and too many within a window ban the source (or the user)
//! for a while, doubling with each new ban up to a ceiling. Time is an input (`now`).
//!
//! While banned, every request is refused before its credentials are looked at, the right
//! password included: a cracker learns nothing from the answers, and the password at
//! position 191 of its list is never tried for real.
//!
//! A user ban would let anyone lock a user out by failing on purpose, so it does not apply
//! to the addresses that user last authenticated from: its own phone keeps working while
//! the attack goes on. State is in memory and bounded ([`MAX_TRACKED`] entries per table):
//! records with no ban and no recent failure are pruned first.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Entries kept per table (sources, users) at most.
pub const MAX_TRACKED: usize = 4096;
/// Addresses remembered per user as its own (exempt from a ban of that user).
const TRUSTED_PER_USER: usize = 4;

/// When failures lead to a ban, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    /// Failures within `window` that start a ban.
    pub max_failures: u32,
    pub window: Duration,
    /// The first ban; each next ban of the same source or user lasts twice the previous.
    pub first_ban: Duration,
    pub max_ban: Duration,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            max_failures: 5,
            window: Duration::from_secs(600),
            first_ban: Duration::from_secs(60),
            max_ban: Duration::from_secs(3600),
        }
    }
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; answer with a new challenge.
    Counted,
    /// This failure started a ban of the source, the user or both, for this long.
    Banned {
        source: Option<Duration>,
        user: Option<Duration>,
    },
}

/// Counters for metrics (totals since start, plus the bans in force).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub failures: u64,
    pub source_bans: u64,
    pub user_bans: u64,
    /// Requests refused because their source or user was banned.
    pub refused_while_banned: u64,
    pub banned_sources_now: usize,
    pub banned_users_now: usize,
}

#[derive(Debug, Clone, Default)]
struct Record {
    failures: u32,
    window_start: Option<Instant>,
    banned_until: Option<Instant>,
    /// Bans so far (the next lasts `first_ban * 2^bans`).
    bans: u32,
    /// For users: sources that authenticated as this user.
    trusted: Vec<IpAddr>,
}

impl Record {
    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| now < t)
    }

    /// Counts a failure; the ban it starts, if any.
    fn fail(&mut self, now: Instant, policy: &BanPolicy) -> Option<Duration> {
        if self
            .window_start
            .is_none_or(|t| now.saturating_duration_since(t) > policy.window)
        {
            self.window_start = Some(now);
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures < policy.max_failures || self.banned(now) {
            return None;
        }
        let ban = policy
            .first_ban
            .saturating_mul(2u32.saturating_pow(self.bans.min(20)))
            .min(policy.max_ban);
        self.bans += 1;
        self.failures = 0;
        self.window_start = None;
        self.banned_until = Some(now + ban);
        Some(ban)
    }

    /// Nothing worth keeping: no ban in force, no failure in the window, nothing trusted.
    fn idle(&self, now: Instant, policy: &BanPolicy) -> bool {
        !self.banned(now)
            && self.trusted.is_empty()
            && self
                .window_start
                .is_none_or(|t| now.saturating_duration_since(t) > policy.window)
            && self
                .banned_until
                .is_none_or(|t| now.saturating_duration_since(t) > policy.max_ban)
    }
}

#[derive(Debug, Default)]
pub struct AuthGuard {
    policy: BanPolicy,
    sources: HashMap<IpAddr, Record>,
    users: HashMap<String, Record>,
    stats: GuardStats,
}

impl AuthGuard {
    pub fn new(policy: BanPolicy) -> AuthGuard {
        AuthGuard {
            policy,
            ..AuthGuard::default()
        }
    }

    /// Whether a request from `source` claiming `user` must be refused without looking at
    /// its credentials (counted as refused when so).
    pub fn refuses(&mut self, now: Instant, source: IpAddr, user: Option<&str>) -> bool {
        let source_banned = self.sources.get(&source).is_some_and(|r| r.banned(now));
        let user_banned = user
            .and_then(|u| self.users.get(u))
            .is_some_and(|r| r.banned(now) && !r.trusted.contains(&source));
        let refused = source_banned || user_banned;
        if refused {
            self.stats.refused_while_banned += 1;
        }
        refused
    }

    /// A request from `source` for `user` (known or not) failed authentication.
    pub fn failure(&mut self, now: Instant, source: IpAddr, user: &str) -> Verdict {
        self.stats.failures += 1;
        let policy = self.policy;
        let source_ban = entry(&mut self.sources, source, now, &policy).fail(now, &policy);
        let user_ban = entry(&mut self.users, user.to_string(), now, &policy).fail(now, &policy);
        if source_ban.is_some() {
            self.stats.source_bans += 1;
        }
        if user_ban.is_some() {
            self.stats.user_bans += 1;
        }
        if source_ban.is_none() && user_ban.is_none() {
            return Verdict::Counted;
        }
        Verdict::Banned {
            source: source_ban,
            user: user_ban,
        }
    }

    /// `user` authenticated from `source`: the source's failures are forgiven and the
    /// address is remembered as the user's own.
    pub fn success(&mut self, now: Instant, source: IpAddr, user: &str) {
        if let Some(r) = self.sources.get_mut(&source) {
            r.failures = 0;
            r.window_start = None;
        }
        let policy = self.policy;
        let record = entry(&mut self.users, user.to_string(), now, &policy);
        record.trusted.retain(|ip| *ip != source);
        record.trusted.insert(0, source);
        record.trusted.truncate(TRUSTED_PER_USER);
    }

    pub fn stats(&self, now: Instant) -> GuardStats {
        GuardStats {
            banned_sources_now: self.sources.values().filter(|r| r.banned(now)).count(),
            banned_users_now: self.users.values().filter(|r| r.banned(now)).count(),
            ..self.stats
        }
    }
}

/// The record of `key`, making room first when the table is full.
fn entry<'a, K: Hash + Eq + Clone>(
    table: &'a mut HashMap<K, Record>,
    key: K,
    now: Instant,
    policy: &BanPolicy,
) -> &'a mut Record {
    if !table.contains_key(&key) && table.len() >= MAX_TRACKED {
        table.retain(|_, r| !r.idle(now, policy));
        if table.len() >= MAX_TRACKED {
            // Still full of live records: forget the one whose window began first.
            let oldest = table
                .iter()
                .filter(|(_, r)| !r.banned(now))
                .min_by_key(|(_, r)| r.window_start)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                table.remove(&k);
            }
        }
    }
    table.entry(key).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn policy() -> BanPolicy {
        BanPolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            first_ban: Duration::from_secs(10),
            max_ban: Duration::from_secs(35),
        }
    }

    #[test]
    fn a_source_is_banned_after_the_failures_and_the_ban_doubles() {
        let mut g = AuthGuard::new(policy());
        let t0 = Instant::now();
        let attacker = ip("192.0.2.66");
        // Distinct users each time: only the source counter reaches the limit.
        assert_eq!(g.failure(t0, attacker, "a"), Verdict::Counted);
        assert_eq!(g.failure(t0, attacker, "b"), Verdict::Counted);
        assert_eq!(
            g.failure(t0, attacker, "c"),
            Verdict::Banned {
                source: Some(Duration::from_secs(10)),
                user: None
            }
        );
        assert!(
            g.refuses(t0, attacker, Some("1001")),
            "the right password too"
        );
        assert!(!g.refuses(t0, ip("192.0.2.1"), Some("1001")), "others pass");
        let t1 = t0 + Duration::from_secs(10);
        assert!(!g.refuses(t1, attacker, None), "the ban is over");
        for u in ["d", "e"] {
            assert_eq!(g.failure(t1, attacker, u), Verdict::Counted);
        }
        assert_eq!(
            g.failure(t1, attacker, "f"),
            Verdict::Banned {
                source: Some(Duration::from_secs(20)),
                user: None
            }
        );
        let t2 = t1 + Duration::from_secs(20);
        for u in ["g", "h"] {
            g.failure(t2, attacker, u);
        }
        // 40 s is capped at 35 s.
        assert_eq!(
            g.failure(t2, attacker, "i"),
            Verdict::Banned {
                source: Some(Duration::from_secs(35)),
                user: None
            }
        );
        let s = g.stats(t2);
        assert_eq!(
            (
                s.failures,
                s.source_bans,
                s.user_bans,
                s.refused_while_banned
            ),
            (9, 3, 0, 1)
        );
        assert_eq!(s.banned_sources_now, 1);
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let mut g = AuthGuard::new(policy());
        let t0 = Instant::now();
        let source = ip("192.0.2.5");
        g.failure(t0, source, "x");
        g.failure(t0, source, "y");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(g.failure(later, source, "z"), Verdict::Counted);
        assert!(!g.refuses(later, source, None));
    }

    #[test]
    fn a_user_ban_spares_the_users_own_phone() {
        let mut g = AuthGuard::new(policy());
        let t0 = Instant::now();
        let phone = ip("10.0.0.10");
        g.success(t0, phone, "1001");
        // Three attackers, one failure each: the user's counter reaches the limit.
        for a in ["192.0.2.1", "192.0.2.2"] {
            assert_eq!(g.failure(t0, ip(a), "1001"), Verdict::Counted);
        }
        assert_eq!(
            g.failure(t0, ip("192.0.2.3"), "1001"),
            Verdict::Banned {
                source: None,
                user: Some(Duration::from_secs(10))
            }
        );
        assert!(g.refuses(t0, ip("192.0.2.4"), Some("1001")));
        assert!(!g.refuses(t0, phone, Some("1001")), "its own phone");
        assert!(!g.refuses(t0, ip("192.0.2.4"), Some("1002")), "other users");
    }

    #[test]
    fn a_success_forgives_the_sources_failures_not_the_users() {
        let mut g = AuthGuard::new(policy());
        let t0 = Instant::now();
        let phone = ip("10.0.0.10");
        g.failure(t0, phone, "1001");
        g.failure(t0, phone, "1002");
        g.success(t0, phone, "1001");
        assert_eq!(
            g.failure(t0, phone, "1003"),
            Verdict::Counted,
            "source forgiven"
        );
        // The user's count goes on (attacks from elsewhere must not be reset by its phone),
        // but its phone is exempt from the user's ban.
        g.failure(t0, ip("192.0.2.1"), "1001");
        assert_eq!(
            g.failure(t0, ip("192.0.2.2"), "1001"),
            Verdict::Banned {
                source: None,
                user: Some(Duration::from_secs(10))
            }
        );
        assert!(!g.refuses(t0, phone, Some("1001")));
    }

    #[test]
    fn memory_is_bounded() {
        let mut g = AuthGuard::new(policy());
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.failure(t0, source, &format!("u{i}"));
        }
        assert!(g.sources.len() <= MAX_TRACKED && g.users.len() <= MAX_TRACKED);
    }
}
