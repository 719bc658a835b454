//! Passwords: the policy a new password must meet, and Argon2id hashes (PHC strings, so the
//! parameters travel with each hash and can be raised later without invalidating old ones).
//! Parameters and the measured hash time: `docs/adr/0008-admin-api.md`.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted (characters).
pub const MIN_LEN: usize = 12;
/// Longest (characters): bounds the hashing work an attacker can ask for.
pub const MAX_LEN: usize = 256;

/// Argon2id, 19 MiB, 2 passes, 1 lane (OWASP's first recommended set).
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Common passwords refused whatever their length, one per line, compared in lower case.
const COMMON: &str = include_str!("common-passwords.txt");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("use at least {MIN_LEN} characters")]
    TooShort,
    #[error("use at most {MAX_LEN} characters")]
    TooLong,
    #[error("this password is too common")]
    Common,
    #[error("the password must not contain the user name")]
    ContainsName,
    #[error("use more than {0} different characters")]
    TooFewDistinct(usize),
}

/// Checks a new password for `user` against the policy.
pub fn check_policy(user: &str, password: &str) -> Result<(), PolicyError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(PolicyError::TooShort);
    }
    if n > MAX_LEN {
        return Err(PolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON
        .lines()
        .map(str::trim)
        .any(|c| !c.is_empty() && !c.starts_with('#') && c == lower)
    {
        return Err(PolicyError::Common);
    }
    if user.len() >= 3 && lower.contains(&user.to_lowercase()) {
        return Err(PolicyError::ContainsName);
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    // "aaaaaaaaaaaa", "abababababab", "123123123123": long but guessable.
    if distinct.len() <= 4 {
        return Err(PolicyError::TooFewDistinct(4));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("constant Argon2 parameters are within the algorithm's bounds");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// An Argon2id hash of `password` with a fresh random salt (CPU-heavy: call from a blocking
/// thread).
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `stored` (a PHC string). A malformed stored hash never
/// matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.chars().count() > MAX_LEN {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash that matches no password anyone knows: verified against when the user does not
/// exist, so that a login for an unknown name costs the same time as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        hash(&hex::encode(random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_common_named_and_repetitive_passwords() {
        assert_eq!(check_policy("alice", "short"), Err(PolicyError::TooShort));
        assert_eq!(
            check_policy("alice", &"x".repeat(MAX_LEN + 1)),
            Err(PolicyError::TooLong)
        );
        assert_eq!(
            check_policy("alice", "Password1234"),
            Err(PolicyError::Common)
        );
        assert_eq!(
            check_policy("alice", "my-ALICE-secret-9"),
            Err(PolicyError::ContainsName)
        );
        assert_eq!(
            check_policy("bob", "abababababab"),
            Err(PolicyError::TooFewDistinct(4))
        );
        assert_eq!(check_policy("alice", "correct horse battery"), Ok(()));
    }

    /// The hash time the ADR quotes (`cargo test -p svi-admin --release hash_time --
    /// --ignored --nocapture`).
    #[test]
    #[ignore]
    fn hash_time() {
        let n = 20;
        let t = std::time::Instant::now();
        for _ in 0..n {
            hash("correct horse battery").expect("hash");
        }
        let each = t.elapsed() / n;
        let stored = hash("correct horse battery").expect("hash");
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(verify("correct horse battery", &stored));
        }
        println!(
            "argon2id m=19456 t=2 p=1: hash {each:?}, verify {:?}",
            t.elapsed() / n
        );
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterz", &a));
        assert!(!verify("anything", "not a hash"));
        assert!(!verify("anything", decoy()));
    }
}
