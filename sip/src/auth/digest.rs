//! The arithmetic of Digest (RFC 7616 §3.4.1-3.4.3) and the keyed hash behind server nonces.
//!
//! ```text
//! HA1      = H(username ":" realm ":" password)       (or a stored HA1)
//! HA1-sess = H(HA1 ":" nonce ":" cnonce)              (the -sess algorithms)
//! HA2      = H(method ":" uri)                         (qop=auth or none)
//!          = H(method ":" uri ":" H(body))             (qop=auth-int)
//! response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   (with qop)
//!          = H(HA1 ":" nonce ":" HA2)                             (RFC 2069, no qop)
//! ```
//!
//! H is MD5 or SHA-256, rendered as lowercase hex. HMAC-SHA-256 (RFC 2104) is written out here
//! rather than pulling in a crate: it is a dozen lines over `sha2`, checked against RFC 4231.

use md5::Md5;
use sha2::{Digest, Sha256};

use super::header::{Algorithm, Qop};

/// The hash function of a supported algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Md5,
    Sha256,
}

impl Hash {
    /// `None` for algorithms we cannot compute.
    pub fn of(algorithm: &Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => Some(Hash::Md5),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Some(Hash::Sha256),
            Algorithm::Other(_) => None,
        }
    }

    /// Lowercase hex of H(parts joined by ':').
    pub fn hex(self, parts: &[&[u8]]) -> String {
        match self {
            Hash::Md5 => hex::encode(joined::<Md5>(parts)),
            Hash::Sha256 => hex::encode(joined::<Sha256>(parts)),
        }
    }
}

fn joined<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(part);
    }
    d.finalize().to_vec()
}

/// HA1 from a password.
pub fn ha1(hash: Hash, username: &str, realm: &str, password: &str) -> String {
    hash.hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// Everything the response covers, besides HA1.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    pub algorithm: &'a Algorithm,
    pub nonce: &'a str,
    /// `Some` when a qop is used (then `cnonce` and `nc` are too).
    pub qop: Option<&'a Qop>,
    pub cnonce: Option<&'a str>,
    pub nc: u32,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: Option<&'a [u8]>,
}

/// The `response` value for a given HA1 (plain, not yet session-keyed). `None` if the
/// algorithm is unsupported or the qop is unknown.
pub fn response(ha1: &str, input: &ResponseInput<'_>) -> Option<String> {
    let hash = Hash::of(input.algorithm)?;
    let cnonce = input.cnonce.unwrap_or("");
    let ha1 = if input.algorithm.is_session() {
        hash.hex(&[ha1.as_bytes(), input.nonce.as_bytes(), cnonce.as_bytes()])
    } else {
        ha1.to_owned()
    };
    let ha2 = match input.qop {
        Some(Qop::AuthInt) => {
            let body_hash = hash.hex(&[input.body.unwrap_or_default()]);
            hash.hex(&[
                input.method.as_bytes(),
                input.uri.as_bytes(),
                body_hash.as_bytes(),
            ])
        }
        Some(Qop::Other(_)) => return None,
        Some(Qop::Auth) | None => hash.hex(&[input.method.as_bytes(), input.uri.as_bytes()]),
    };
    Some(match input.qop {
        Some(qop) => {
            let nc = format!("{:08x}", input.nc);
            hash.hex(&[
                ha1.as_bytes(),
                input.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_str().as_bytes(),
                ha2.as_bytes(),
            ])
        }
        None => hash.hex(&[ha1.as_bytes(), input.nonce.as_bytes(), ha2.as_bytes()]),
    })
}

/// HMAC-SHA-256 (RFC 2104 with a 64-byte block).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    let hashed;
    let key = if key.len() > BLOCK {
        hashed = Sha256::digest(key);
        hashed.as_slice()
    } else {
        key
    };
    for (slot, byte) in block_key.iter_mut().zip(key) {
        *slot = *byte;
    }
    let pad = |value: u8| block_key.map(|b| b ^ value);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Equality that takes the same time wherever the inputs differ (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc4231_test_cases_1_and_2() {
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_sha256_hashes_long_keys_rfc4231_test_case_6() {
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
