//! Garbage in, typed error out: every prefix and many random corruptions of valid bodies.
//! A seed corpus for a future cargo-fuzz target lives in the same inputs.

use std::net::{IpAddr, Ipv4Addr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{corpus_body, crlf, ASTERISK, CUCM, NO_G711, RFC3264_OFFER, RFC4566};
use crate::sdp::{negotiate, process_answer, LocalMedia, SessionDescription};

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

/// Parse, and when that succeeds, exercise everything downstream.
fn exercise(bytes: &[u8]) {
    let Ok(sdp) = SessionDescription::parse_bytes(bytes) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(&text);
    assert!(
        again.is_ok(),
        "our own output must parse: {text:?} -> {again:?}"
    );
    for m in &sdp.media {
        let _ = (m.rtpmaps().count(), m.fmtps().count(), m.ptime(), m.rtcp());
    }
    let local = LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4000, 1);
    if let Ok(answer) = negotiate(&sdp, &local) {
        assert_eq!(answer.sdp.media.len(), sdp.media.len());
        let _ = process_answer(&sdp, &answer.sdp);
    }
    let _ = process_answer(&sdp, &sdp);
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
