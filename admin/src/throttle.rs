//! Login throttling, sans-IO (time is an argument): failed logins are counted per account
//! name (whether or not it exists, so the answer tells nothing about which names exist) and
//! per source address, in a sliding window. Past the limit, logins for that name or from
//! that address are refused until the oldest failure leaves the window, even with the right
//! password (an attacker learns nothing from a throttled attempt).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub window: Duration,
    pub per_account: usize,
    pub per_source: usize,
}

impl Default for Limits {
    /// 5 failures per account and 20 per address in 15 minutes.
    fn default() -> Self {
        Limits {
            window: Duration::from_secs(15 * 60),
            per_account: 5,
            per_source: 20,
        }
    }
}

/// Most names and addresses remembered; past it the stalest are forgotten first.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
struct Failures<K> {
    by: HashMap<K, VecDeque<Instant>>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures { by: HashMap::new() }
    }
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn prune(&mut self, now: Instant, window: Duration) {
        self.by.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }

    /// How long until `key` may try again (None: now).
    fn wait(&self, key: &K, now: Instant, window: Duration, limit: usize) -> Option<Duration> {
        let q = self.by.get(key)?;
        let recent: Vec<&Instant> = q
            .iter()
            .filter(|t| now.duration_since(**t) < window)
            .collect();
        if recent.len() < limit {
            return None;
        }
        // The failure whose leaving brings the count under the limit.
        let opens = *recent[recent.len() - limit] + window;
        Some(
            opens
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)),
        )
    }

    fn record(&mut self, key: K, now: Instant, window: Duration, limit: usize) {
        if self.by.len() >= MAX_TRACKED && !self.by.contains_key(&key) {
            self.prune(now, window);
            if self.by.len() >= MAX_TRACKED {
                let stalest = self
                    .by
                    .iter()
                    .min_by_key(|(_, q)| q.back().copied())
                    .map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    self.by.remove(&k);
                }
            }
        }
        let q = self.by.entry(key).or_default();
        q.push_back(now);
        while q.len() > limit {
            q.pop_front();
        }
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    limits: Limits,
    accounts: Failures<String>,
    sources: Failures<IpAddr>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            accounts: Failures::default(),
            sources: Failures::default(),
        }
    }

    /// `Err(retry_after)` when this account or this address has failed too often.
    pub fn check(&self, now: Instant, account: &str, source: IpAddr) -> Result<(), Duration> {
        let l = &self.limits;
        let a = self
            .accounts
            .wait(&account.to_string(), now, l.window, l.per_account);
        let s = self.sources.wait(&source, now, l.window, l.per_source);
        match a.max(s) {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, now: Instant, account: &str, source: IpAddr) {
        let l = self.limits;
        self.accounts
            .record(account.to_string(), now, l.window, l.per_account);
        self.sources.record(source, now, l.window, l.per_source);
    }

    /// A good login clears the account's count (not the address's: one right password
    /// must not reset a spray over many accounts).
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.by.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn an_account_locks_after_its_limit_and_opens_when_the_window_moves() {
        let mut t = Throttle::new(Limits::default());
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(t
                .check(t0 + Duration::from_secs(i), "alice", ip(i as u8))
                .is_ok());
            t.failed(t0 + Duration::from_secs(i), "alice", ip(i as u8));
        }
        let wait = t
            .check(t0 + Duration::from_secs(10), "alice", ip(99))
            .expect_err("locked from any address");
        assert_eq!(wait, Duration::from_secs(15 * 60 - 10));
        assert!(t.check(t0 + Duration::from_secs(10), "bob", ip(99)).is_ok());
        // The first failure leaves the window: one more try.
        assert!(t
            .check(t0 + Duration::from_secs(900), "alice", ip(99))
            .is_ok());
    }

    #[test]
    fn a_source_spraying_many_names_is_stopped_and_a_good_login_does_not_reset_it() {
        let mut t = Throttle::new(Limits::default());
        let t0 = Instant::now();
        for i in 0..20 {
            t.failed(t0, &format!("user{i}"), ip(1));
        }
        t.succeeded("user0");
        assert!(t.check(t0, "someone-else", ip(1)).is_err());
        assert!(t.check(t0, "someone-else", ip(2)).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(Limits::default());
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED + 50) {
            t.failed(
                t0 + Duration::from_millis(i as u64),
                &format!("n{i}"),
                ip(3),
            );
        }
        assert!(t.accounts.by.len() <= MAX_TRACKED);
    }
}
