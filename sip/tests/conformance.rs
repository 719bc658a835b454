//! RFC 4475 and RFC 5118 torture messages through the parser: every file either parses or
//! is refused with a typed error, never a panic, and the verdict matches the manifest class.

use std::path::PathBuf;

use sip::message::{parse_datagram, SipMessage};

fn corpus(dir: &str) -> PathBuf {
    // The shared folder sits beside the repository (see the project README).
    let shared = std::env::var("SVI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("conformance").join(dir)
}

fn manifest(dir: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(corpus(dir).join("MANIFEST.tsv")).expect("manifest");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Some((cols.first()?.to_string(), cols.get(2)?.to_string()))
        })
        .collect()
}

/// Invalid messages that are answered by the UAS core or tolerated as the RFC allows,
/// rather than refused by the parser. Each is checked on the wire by the engine test.
const PARSER_ACCEPTS: &[(&str, &str)] = &[
    (
        "escruri.dat",
        "the escaped Route header in the Request-URI is ignored, never applied",
    ),
    (
        "baddate.dat",
        "the Date header is not used, so its form does not matter (RFC 4475 allows it)",
    ),
    (
        "mismatch02.dat",
        "answered 501: the unknown method is refused before the CSeq check",
    ),
    (
        "bcast.dat",
        "a response: dropped by the transaction layer as stray",
    ),
];

#[test]
fn rfc4475_verdicts_match_the_manifest() {
    for (file, class) in manifest("rfc4475") {
        let bytes = std::fs::read(corpus("rfc4475").join(&file)).expect("read");
        let parsed = parse_datagram(&bytes);
        let tolerated = PARSER_ACCEPTS.iter().any(|(f, _)| *f == file);
        match class.as_str() {
            "invalid" if !tolerated => {
                // Responses with absurd values are refused by the parser too (then dropped).
                assert!(
                    parsed.is_err(),
                    "{file} should be refused, parsed as {parsed:?}"
                );
            }
            "valid" | "transaction" | "compat" => {
                assert!(parsed.is_ok(), "{file} should parse: {:?}", parsed.err());
            }
            _ => {}
        }
    }
}

#[test]
fn specific_rfc4475_errors() {
    let check = |file: &str, status: u16| {
        let bytes = std::fs::read(corpus("rfc4475").join(file)).expect("read");
        let e = parse_datagram(&bytes).expect_err(file);
        assert_eq!(e.status(), status, "{file}: {e}");
        assert!(
            e.request_headers.is_some(),
            "{file}: headers kept for the answer"
        );
    };
    check("badvers.dat", 505);
    for f in [
        "clerr.dat",
        "ncl.dat",
        "scalar02.dat",
        "quotbal.dat",
        "ltgtruri.dat",
        "lwsruri.dat",
        "lwsstart.dat",
        "trws.dat",
        "badaspec.dat",
        "baddn.dat",
        "mismatch01.dat",
        "insuf.dat",
        "multi01.dat",
        "mcl01.dat",
        "badinv01.dat",
    ] {
        check(f, 400);
    }
}

#[test]
fn valid_messages_read_as_expected() {
    let read = |f: &str| {
        parse_datagram(&std::fs::read(corpus("rfc4475").join(f)).expect("read")).expect(f)
    };
    let SipMessage::Request(r) = read("wsinv.dat") else {
        panic!("request")
    };
    assert_eq!(r.headers.max_forwards().expect("mf"), Some(68));
    assert_eq!(r.headers.cseq().expect("cseq").seq, 9);
    assert_eq!(r.headers.vias().expect("vias").len(), 3);
    assert_eq!(
        r.headers
            .get(&sip::message::HeaderName::Other("NewFangledHeader".into())),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(r.body.len(), 150);
    let SipMessage::Request(r) = read("dblreq.dat") else {
        panic!("request")
    };
    assert_eq!(r.method, sip::message::Method::Register);
    let SipMessage::Request(r) = read("intmeth.dat") else {
        panic!("request")
    };
    assert!(matches!(r.method, sip::message::Method::Extension(_)));
    assert!(matches!(read("noreason.dat"), SipMessage::Response(_)));
}

#[test]
fn rfc5118_messages() {
    for (file, class) in manifest("rfc5118") {
        let bytes = std::fs::read(corpus("rfc5118").join(&file)).expect("read");
        let parsed = parse_datagram(&bytes);
        if class == "valid" {
            assert!(parsed.is_ok(), "{file} should parse: {:?}", parsed.err());
        }
    }
    let bad = std::fs::read(corpus("rfc5118").join("ipv6-bad")).expect("read");
    assert!(parse_datagram(&bad).is_err());
}

#[test]
fn every_prefix_and_flip_is_handled_without_panic() {
    let mut seed = 0x2545F4914F6CDD1Du64;
    for dir in ["rfc4475", "rfc5118"] {
        for entry in std::fs::read_dir(corpus(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            for cut in (0..bytes.len()).step_by(7) {
                let _ = parse_datagram(&bytes[..cut]);
            }
            for _ in 0..50 {
                let mut b = bytes.clone();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if b.is_empty() {
                    break;
                }
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 32) as u8;
                let _ = parse_datagram(&b);
            }
        }
    }
}

#[test]
fn serialise_then_parse_roundtrip() {
    let bytes = std::fs::read(corpus("rfc4475").join("wsinv.dat")).expect("read");
    let m = parse_datagram(&bytes).expect("parse");
    let again = parse_datagram(&m.to_bytes()).expect("reparse");
    let third = parse_datagram(&again.to_bytes()).expect("reparse twice");
    assert_eq!(again, third);
    assert_eq!(m.headers().vias(), again.headers().vias());
    assert_eq!(m.headers().cseq(), again.headers().cseq());
}

/// An OPTIONS with the given Call-ID and `vias` Via entries (one per line).
fn options_with(call_id: &str, vias: usize) -> String {
    let mut text = String::from("OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n");
    for i in 0..vias {
        text.push_str(&format!(
            "Via: SIP/2.0/UDP 192.0.2.{}:5060;branch=z9hG4bKcap{i}\r\n",
            i % 250
        ));
    }
    text.push_str(&format!(
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:ivr@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ));
    text
}

#[test]
fn call_id_length_and_via_count_are_capped() {
    use sip::message::{ParseErrorKind, MAX_CALL_ID, MAX_VIAS};
    let longest = "c".repeat(MAX_CALL_ID);
    assert!(parse_datagram(options_with(&longest, MAX_VIAS).as_bytes()).is_ok());

    let too_long = "c".repeat(MAX_CALL_ID + 1);
    let e = parse_datagram(options_with(&too_long, 1).as_bytes()).expect_err("long Call-ID");
    assert_eq!(e.kind, ParseErrorKind::CallIdTooLong(MAX_CALL_ID + 1));
    assert_eq!(e.status(), 400);
    assert!(e.request_headers.is_some(), "answerable with 400");

    let e = parse_datagram(options_with("x", MAX_VIAS + 1).as_bytes()).expect_err("Vias");
    assert_eq!(e.kind, ParseErrorKind::TooManyVias(MAX_VIAS + 1));
    // Several entries on one line count as well.
    let one_line = options_with("x", 1).replace(
        "Via: SIP/2.0/UDP 192.0.2.0:5060;branch=z9hG4bKcap0",
        &vec!["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKl"; MAX_VIAS + 1]
            .join(", ")
            .replacen("SIP", "Via: SIP", 1),
    );
    let e = parse_datagram(one_line.as_bytes()).expect_err("Vias on one line");
    assert_eq!(e.kind, ParseErrorKind::TooManyVias(MAX_VIAS + 1));
}
