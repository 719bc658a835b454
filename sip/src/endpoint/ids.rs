//! Fresh identifiers: branches, tags and Call-IDs.
//!
//! RFC 3261 asks for branches unique across space and time (§8.1.1.7), tags with at least 32
//! bits of randomness (§19.3) and globally unique Call-IDs (§8.1.1.4). Random alphanumerics
//! from the thread RNG meet all three without revealing a host name or an address, which a
//! Call-ID of the form `random@host` would.

use rand::distributions::{Alphanumeric, DistString};

use crate::message::MAGIC_COOKIE;

fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

/// A new RFC 3261 branch: the magic cookie followed by 22 random alphanumerics (~130 bits).
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{}", random(22))
}

/// A new From/To tag (~60 bits).
pub fn new_tag() -> String {
    random(10)
}

/// A new Call-ID (~140 bits), with no host part.
pub fn new_call_id() -> String {
    random(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let b = new_branch();
        assert!(b.starts_with("z9hG4bK") && b.len() == 29);
        assert_ne!(new_tag(), new_tag());
        assert_eq!(new_call_id().len(), 24);
    }
}
