//! What each fuzz target does with its input, shared by the coverage-guided targets in
//! `fuzz/` (AFL++ on the stable toolchain, `scripts/fuzz.sh`) and by the regression tests
//! that replay every input they ever found (this module's tests and those of
//! `engine::media::fuzzing`, through [`recorded_inputs`]), so a fixed crash stays fixed in
//! the ordinary test run.
//!
//! Each function must return normally for any input: a panic (including a failed invariant
//! below) is a crash. The invariants are the codec's promises: what parses, serialises, and
//! our own output parses again to the same thing.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::auth::{
    authorize, parse_challenges, parse_credentials, DigestRequest, DigestServer, UserSecret,
};
use crate::message::parse_datagram;
use crate::sdp::{
    negotiate, process_answer, LocalMedia, MasterKey, SessionDescription, SrtpPolicy,
};

/// A SIP datagram: parse; a message that parses serialises to one that parses the same way,
/// and its typed headers can be read.
pub fn sip_message(data: &[u8]) {
    let Ok(message) = parse_datagram(data) else {
        return;
    };
    let bytes = message.to_bytes();
    let again = match parse_datagram(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("our own serialisation does not parse ({e}): {bytes:?}"),
    };
    let third = parse_datagram(&again.to_bytes()).expect("serialised twice");
    assert_eq!(again, third, "serialisation is stable");
    let headers = message.headers();
    let _ = (
        headers.call_id(),
        headers.cseq(),
        headers.from_addr(),
        headers.to_addr(),
        headers.vias(),
        headers.contacts(),
        headers.content_length(),
    );
}

/// An SDP body: parse; what parses serialises to something that parses; offer/answer
/// either way never fails with anything but a typed error.
pub fn sdp(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse_bytes(data) else {
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
    let plain = LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4000, 1);
    for policy in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
        let local = plain.clone().with_srtp(policy, MasterKey::new([7; 30]));
        if let Ok(answer) = negotiate(&sdp, &local) {
            assert_eq!(answer.sdp.media.len(), sdp.media.len());
            let text = answer.sdp.to_string();
            assert!(SessionDescription::parse(&text).is_ok(), "{text:?}");
            let _ = process_answer(&sdp, &answer.sdp);
        }
    }
    let _ = process_answer(&sdp, &sdp);
}

/// A digest header value (`WWW-Authenticate`, `Authorization`...): challenges and
/// credentials that parse print to values that parse; answering a parsed challenge gives
/// credentials that parse back equal; the server verifies anything without panicking.
pub fn digest(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let request = DigestRequest {
        method: "REGISTER",
        uri: "sip:svi",
        body: Some(b"body"),
    };
    if let Ok(challenges) = parse_challenges(value) {
        for c in &challenges {
            assert!(parse_challenges(&c.to_string()).is_ok(), "{c}");
            if let Ok(creds) = authorize(c, "u", "p", &request, "cn", 1) {
                assert_eq!(parse_credentials(&creds.to_string()), Ok(vec![creds]));
            }
        }
    }
    if let Ok(creds) = parse_credentials(value) {
        for c in &creds {
            assert!(parse_credentials(&c.to_string()).is_ok(), "{c}");
        }
    }
    let mut server = DigestServer::new("svi", b"k".to_vec());
    let _ = server.verify(&[value], &request, 1_700_000_000, |_, _| {
        Some(UserSecret::Password("p".into()))
    });
}

/// The recorded inputs of fuzz target `target`: its seeds (`fuzz/seeds/TARGET/`) and every
/// input that once crashed it (`fuzz/regressions/TARGET/`), with their paths.
pub fn recorded_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                inputs.push((entry.path(), bytes));
            }
        }
    }
    inputs.sort();
    inputs
}

/// Replays the recorded inputs of `target` through `body`, naming each on stderr first so
/// that a failure shows which one.
pub fn replay(target: &str, body: fn(&[u8])) {
    let inputs = recorded_inputs(target);
    assert!(
        !inputs.is_empty(),
        "no recorded input for fuzz target {target}"
    );
    for (path, bytes) in inputs {
        eprintln!("{target}: {}", path.display());
        body(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_message_recorded_inputs() {
        replay("sip_message", sip_message);
    }

    #[test]
    fn sdp_recorded_inputs() {
        replay("sdp", sdp);
    }

    #[test]
    fn digest_recorded_inputs() {
        replay("digest", digest);
    }
}
