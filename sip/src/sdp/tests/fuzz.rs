//! Garbage in, typed error out: every prefix and many random corruptions of valid bodies.
//! The same body runs in the coverage-guided target `sdp` (`fuzz/`, `scripts/fuzz.sh`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{corpus_body, crlf, ASTERISK, CUCM, NO_G711, RFC3264_OFFER, RFC4566};

fn inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [RFC4566, RFC3264_OFFER, ASTERISK, CUCM, NO_G711]
        .iter()
        .map(|lines| crlf(lines).into_bytes())
        .collect();
    for path in ["rfc5118/ipv6-in-sdp", "rfc5118/mult-ip-in-sdp"] {
        v.push(corpus_body(path).into_bytes());
    }
    v
}

/// Parse, and when that succeeds, exercise everything downstream (the fuzz target's body).
fn exercise(bytes: &[u8]) {
    crate::fuzzing::sdp(bytes);
}

#[test]
fn every_prefix_is_handled() {
    for input in inputs() {
        for end in 0..=input.len() {
            exercise(input.get(..end).unwrap_or_default());
        }
    }
}

#[test]
fn random_byte_flips_are_handled() {
    let mut rng = StdRng::seed_from_u64(0x5d9);
    let interesting = b"\r\n=:/ 0aIPv\x00\xff";
    for input in inputs() {
        for _ in 0..2000 {
            let mut bytes = input.clone();
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..bytes.len());
                let byte = if rng.gen_bool(0.5) {
                    interesting[rng.gen_range(0..interesting.len())]
                } else {
                    rng.gen()
                };
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            exercise(&bytes);
        }
    }
}
