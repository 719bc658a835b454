//! API keys: `svi_<id>_<secret>`, where `id` (12 hex digits) names the key in lists and
//! the audit log and `secret` is 256 random bits. Only a SHA-256 of the whole key is kept:
//! a key is high-entropy, so a fast hash is enough (Argon2 is for the low-entropy secrets
//! people choose) and checking a key costs microseconds per request, not milliseconds.

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "svi_";

/// A freshly made key: shown once, then only its id and hash are kept.
pub struct NewKey {
    pub id: String,
    pub key: String,
    pub hash: String,
}

pub fn generate() -> NewKey {
    let id = hex::encode(rand::random::<[u8; 6]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let key = format!("{PREFIX}{id}_{secret}");
    let hash = digest(&key);
    NewKey { id, key, hash }
}

/// The id of a presented key, if it has the key's shape (else it is not one of ours).
pub fn parse_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 12) && hex_of(secret, 64)).then_some(id)
}

pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Constant-time comparison of a presented key with the stored hash.
pub fn matches(key: &str, stored_hash: &str) -> bool {
    crate::session::same_token(&digest(key), stored_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_carries_its_id_and_matches_only_its_hash() {
        let k = generate();
        assert_eq!(parse_id(&k.key), Some(k.id.as_str()));
        assert!(matches(&k.key, &k.hash));
        let other = generate();
        assert!(!matches(&other.key, &k.hash));
        assert!(!k.hash.contains(&k.key[PREFIX.len() + 13..]));
        for bad in [
            "",
            "svi_",
            "svi_zz_zz",
            "Bearer x",
            &k.key[..k.key.len() - 1],
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
