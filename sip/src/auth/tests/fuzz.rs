//! Garbage header values: every prefix and random corruptions of valid ones, through the
//! parsers, the client and the server. Only "no panic" and "our own output parses" are asserted.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: &[&str] = &[
    "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    "Basic realm=\"x\", Digest realm=\"a\\\"b\", nonce=\"1\", algorithm=SHA-256-sess, stale=TRUE, Negotiate YWJj==",
    "NoOneKnowsThisScheme opaque-data=here",
    "Digest realm=\"svi\", nonce=\"6553f100.1.00112233445566778899aabbccddeeff\", algorithm=MD5, qop=\"auth\"",
];

/// The fuzz target's body: parsers, client and server on one header value.
fn exercise(value: &str) {
    crate::fuzzing::digest(value.as_bytes());
}

#[test]
fn every_prefix_is_handled() {
    for seed in SEEDS {
        for (end, _) in seed.char_indices() {
            exercise(seed.get(..end).unwrap_or_default());
        }
    }
}

#[test]
fn random_corruptions_are_handled() {
    let mut rng = StdRng::seed_from_u64(0xa17);
    let interesting = b"\"\\,= \t\r\n\x00\xc3";
    for seed in SEEDS {
        for _ in 0..3000 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..bytes.len());
                let byte = if rng.gen_bool(0.6) {
                    interesting[rng.gen_range(0..interesting.len())]
                } else {
                    rng.gen()
                };
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            // Header values reach us as text; lossy decoding mimics a tolerant codec.
            exercise(&String::from_utf8_lossy(&bytes));
        }
    }
}
