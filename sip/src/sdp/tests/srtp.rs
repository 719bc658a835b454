//! SDES-keyed SRTP in offer/answer (RFC 4568): policies `off`, `optional` and `required`, as
//! answerer and offerer, and across re-offers.

use std::net::{IpAddr, Ipv4Addr};

use super::sdp;
use crate::sdp::{
    build_offer, negotiate, CryptoAttr, CryptoSuite, Direction, LocalMedia, MasterKey,
    NegotiationError, Proto, SdpSession, SrtpPolicy,
};

/// The key of RFC 4568's examples (section 9.1), as the peer's.
const PEER_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn local(policy: SrtpPolicy, key: u8) -> LocalMedia {
    LocalMedia::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 40000, 777)
        .with_srtp(policy, MasterKey::new([key; 30]))
}

fn offer(proto: &str, crypto: &[&str]) -> crate::sdp::SessionDescription {
    let mline = format!("m=audio 49170 {proto} 8 101");
    let cryptos: Vec<String> = crypto.iter().map(|c| format!("a=crypto:{c}")).collect();
    let mut lines = vec![
        "v=0",
        "o=peer 1 1 IN IP4 192.0.2.5",
        "s=-",
        "c=IN IP4 192.0.2.5",
        "t=0 0",
        mline.as_str(),
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
    ];
    lines.extend(cryptos.iter().map(String::as_str));
    sdp(&lines)
}

fn peer_line(tag: u32, suite: &str) -> String {
    format!("{tag} {suite} inline:{PEER_KEY}")
}

#[test]
fn an_encrypted_offer_is_answered_encrypted_with_our_key_and_its_tag() {
    let line = peer_line(3, "AES_CM_128_HMAC_SHA1_32");
    let mki = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{PEER_KEY}|2^20|1:4");
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
        let answer =
            negotiate(&offer("RTP/SAVP", &[&mki, &line]), &local(policy, 7)).expect("negotiates");
        let keys = answer.negotiated.srtp.expect("encrypted");
        assert_eq!(keys.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(keys.local, MasterKey::new([7; 30]));
        assert_eq!(
            Some(keys.remote),
            CryptoAttr::parse(&line).map(|a| a.key),
            "the line without MKI"
        );
        let m = &answer.sdp.media[0];
        assert_eq!(m.proto, Proto::RtpSavp);
        let ours: Vec<CryptoAttr> = m.cryptos().collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(
            (ours[0].tag, ours[0].suite),
            (3, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(ours[0].key, MasterKey::new([7; 30]));
    }
}

#[test]
fn best_effort_srtp_over_rtp_avp_is_honoured_unless_srtp_is_off() {
    let line = peer_line(1, "AES_CM_128_HMAC_SHA1_80");
    let best_effort = offer("RTP/AVP", &[&line]);
    let answer = negotiate(&best_effort, &local(SrtpPolicy::Optional, 1)).expect("negotiates");
    assert!(answer.negotiated.srtp.is_some());
    assert_eq!(answer.sdp.media[0].proto, Proto::RtpAvp);
    assert_eq!(answer.sdp.media[0].cryptos().count(), 1);

    let off = LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000, 1);
    let answer = negotiate(&best_effort, &off).expect("plain");
    assert_eq!(answer.negotiated.srtp, None);
    assert_eq!(answer.sdp.media[0].attribute("crypto"), None);
    assert!(matches!(
        negotiate(&offer("RTP/SAVP", &[&line]), &off),
        Err(NegotiationError::UnsupportedTransport { .. })
    ));
}

#[test]
fn required_srtp_refuses_plain_offers_and_savp_without_a_usable_key() {
    let required = local(SrtpPolicy::Required, 2);
    assert_eq!(
        negotiate(&offer("RTP/AVP", &[]), &required).map(|a| a.negotiated),
        Err(NegotiationError::SrtpRequired { media_index: 0 })
    );
    let unusable = format!("1 AES_256_CM_HMAC_SHA1_80 inline:{PEER_KEY}");
    assert_eq!(
        negotiate(
            &offer("RTP/SAVP", &[&unusable]),
            &local(SrtpPolicy::Optional, 2)
        )
        .map(|a| a.negotiated),
        Err(NegotiationError::NoUsableCrypto { media_index: 0 })
    );
    // Optional takes a plain offer as it is.
    let answer = negotiate(&offer("RTP/AVP", &[]), &local(SrtpPolicy::Optional, 2)).expect("plain");
    assert_eq!(answer.negotiated.srtp, None);
    assert_eq!(answer.sdp.media[0].attribute("crypto"), None);
}

#[test]
fn our_offers_follow_the_policy_and_answers_key_both_directions() {
    let required = build_offer(&local(SrtpPolicy::Required, 4), Direction::SendRecv);
    assert_eq!(required.media[0].proto, Proto::RtpSavp);
    let tags: Vec<(u32, CryptoSuite)> = required.media[0]
        .cryptos()
        .map(|c| (c.tag, c.suite))
        .collect();
    assert_eq!(
        tags,
        [
            (1, CryptoSuite::AesCm128HmacSha1_80),
            (2, CryptoSuite::AesCm128HmacSha1_32)
        ]
    );
    let optional = build_offer(&local(SrtpPolicy::Optional, 4), Direction::SendRecv);
    assert_eq!(optional.media[0].proto, Proto::RtpAvp);
    assert_eq!(optional.media[0].cryptos().count(), 2);

    // Both ends of the same exchange see each other's key.
    let mut uac = SdpSession::new(local(SrtpPolicy::Required, 4));
    let our_offer = uac.offer(Direction::SendRecv);
    let uas = negotiate(&our_offer, &local(SrtpPolicy::Optional, 9)).expect("answer");
    let agreed = uac.process_answer(&uas.sdp).expect("answer accepted");
    let (ours, theirs) = (
        agreed.srtp.expect("keys"),
        uas.negotiated.srtp.expect("keys"),
    );
    assert_eq!(
        (ours.local.clone(), ours.remote.clone()),
        (theirs.remote, theirs.local)
    );
    assert_eq!(ours.suite, CryptoSuite::AesCm128HmacSha1_80);

    // A re-offer keeps the agreed suite and our same key.
    let again = uac.hold();
    let lines: Vec<CryptoAttr> = again.media[0].cryptos().collect();
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0].suite, &lines[0].key), (ours.suite, &ours.local));
    assert_eq!(again.media[0].proto, Proto::RtpSavp);
}

#[test]
fn an_answer_refusing_required_srtp_fails_and_optional_falls_back_to_plain() {
    let plain_answerer = LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5000, 3);
    let mut optional = SdpSession::new(local(SrtpPolicy::Optional, 4));
    let offer = optional.offer(Direction::SendRecv);
    let answer = negotiate(&offer, &plain_answerer).expect("plain answer");
    assert_eq!(
        optional.process_answer(&answer.sdp).map(|n| n.srtp),
        Ok(None)
    );

    let mut required = SdpSession::new(local(SrtpPolicy::Required, 4));
    let offer = required.offer(Direction::SendRecv);
    // An answerer that keeps the profile but drops the key (a broken peer).
    let mut answer = negotiate(&offer, &local(SrtpPolicy::Optional, 5))
        .expect("answer")
        .sdp;
    answer.media[0].attributes.retain(|a| a.name != "crypto");
    assert_eq!(
        required.process_answer(&answer).map(|n| n.srtp),
        Err(NegotiationError::AnswerWithoutSrtp)
    );
}
