//! SDP tests: parser and writer, answerer, offerer, session (re-offers), garbage input.

mod fuzz;
mod negotiate;
mod offer;
mod parse;
mod srtp;

use super::SessionDescription;

/// Join lines with CRLF, as on the wire.
pub(super) fn crlf(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

pub(super) fn sdp(lines: &[&str]) -> SessionDescription {
    SessionDescription::parse(&crlf(lines)).expect("test SDP parses")
}

/// The SDP body of a message in the shared conformance corpus: what follows the blank line.
pub(super) fn corpus_body(path: &str) -> String {
    let full = format!(
        "{}/../../shared/conformance/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&full).expect("conformance corpus present at ../shared");
    let text = String::from_utf8(bytes).expect("corpus message is UTF-8");
    let (_, body) = text
        .split_once("\r\n\r\n")
        .expect("message has a header/body separator");
    body.to_owned()
}

/// RFC 4566 §5 (and RFC 8866 §5) example.
pub(super) const RFC4566: &[&str] = &[
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "c=IN IP4 224.2.17.12/127",
    "t=2873397496 2873404696",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
];

/// RFC 3264 §10.1 offer, host names replaced by documentation addresses (see
/// `negotiate::rfc3264_host_names_are_not_resolved` for the original).
pub(super) const RFC3264_OFFER: &[&str] = &[
    "v=0",
    "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com",
    "s=",
    "c=IN IP4 192.0.2.101",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0 8 97",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:97 iLBC/8000",
    "m=video 51372 RTP/AVP 31 32",
    "a=rtpmap:31 H261/90000",
    "a=rtpmap:32 MPV/90000",
];

/// An Asterisk (chan_pjsip) offer.
pub(super) const ASTERISK: &[&str] = &[
    "v=0",
    "o=- 1904263412 1904263412 IN IP4 192.168.1.10",
    "s=Asterisk",
    "c=IN IP4 192.168.1.10",
    "t=0 0",
    "m=audio 14532 RTP/AVP 8 0 3 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:3 GSM/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=maxptime:150",
    "a=sendrecv",
];

/// A Cisco CUCM style offer: bandwidth lines, G.729 annexb fmtp, telephone-event on 96.
pub(super) const CUCM: &[&str] = &[
    "v=0",
    "o=CiscoSystemsCCM-SIP 2000 1 IN IP4 10.10.10.1",
    "s=SIP Call",
    "c=IN IP4 10.10.20.5",
    "b=TIAS:64000",
    "b=AS:64",
    "t=0 0",
    "m=audio 24580 RTP/AVP 0 8 18 96",
    "b=TIAS:64000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-15",
    "a=ptime:20",
    "a=sendrecv",
];

/// G.729 and G.722 only.
pub(super) const NO_G711: &[&str] = &[
    "v=0",
    "o=- 42 42 IN IP4 203.0.113.7",
    "s=-",
    "c=IN IP4 203.0.113.7",
    "t=0 0",
    "m=audio 30000 RTP/AVP 18 9 101",
    "a=rtpmap:18 G729/8000",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
];
