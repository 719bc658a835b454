use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{crlf, sdp, RFC3264_OFFER};
use crate::sdp::{
    build_offer, negotiate, process_answer, Codec, Direction, LocalMedia, NegotiatedCodec,
    NegotiationError, SdpSession,
};

fn local(last: u8, port: u16) -> LocalMedia {
    LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port, 1000)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

#[test]
fn offer_lists_local_codecs_and_telephone_event() {
    assert_eq!(
        build_offer(&local(1, 4000), Direction::SendRecv).to_string(),
        crlf(&[
            "v=0",
            "o=svi 1000 0 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "m=audio 4000 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ])
    );
}

#[test]
fn our_offer_answered_by_ourselves_agrees_on_both_sides() {
    let caller = local(1, 4000);
    let callee = LocalMedia {
        codecs: vec![Codec::Pcmu],
        ..local(2, 5000)
    };
    let offer = build_offer(&caller, Direction::SendRecv);
    let answer = negotiate(&offer, &callee).expect("answer");
    let uac = process_answer(&offer, &answer.sdp).expect("answer accepted");
    let pcmu = NegotiatedCodec {
        codec: Codec::Pcmu,
        payload_type: 0,
    };
    assert_eq!((uac.codec, answer.negotiated.codec), (pcmu, pcmu));
    assert_eq!(uac.telephone_event, Some(101));
    assert_eq!(uac.remote_rtp, Some(addr("192.0.2.2:5000")));
    assert_eq!(answer.negotiated.remote_rtp, Some(addr("192.0.2.1:4000")));
    assert_eq!(uac.direction, Direction::SendRecv);
}

#[test]
fn answer_direction_restricts_ours() {
    let offer = build_offer(&local(1, 4000), Direction::SendRecv);
    let answer = |dir: &str, conn: &str| {
        sdp(&[
            "v=0",
            "o=pbx 5 5 IN IP4 192.0.2.9",
            "s=-",
            conn,
            "t=0 0",
            "m=audio 7000 RTP/AVP 0 101",
            dir,
        ])
    };
    let cases = [
        ("a=sendrecv", "c=IN IP4 192.0.2.9", Direction::SendRecv),
        ("a=sendonly", "c=IN IP4 192.0.2.9", Direction::RecvOnly),
        ("a=recvonly", "c=IN IP4 192.0.2.9", Direction::SendOnly),
        ("a=inactive", "c=IN IP4 192.0.2.9", Direction::Inactive),
        ("a=sendrecv", "c=IN IP4 0.0.0.0", Direction::RecvOnly),
    ];
    for (dir, conn, expected) in cases {
        let n = process_answer(&offer, &answer(dir, conn)).expect("accepted");
        assert_eq!(n.direction, expected, "{dir} {conn}");
        assert_eq!(n.codec.codec, Codec::Pcmu, "first answered codec");
        assert_eq!(
            n.telephone_event,
            Some(101),
            "number resolved through our offer"
        );
    }
}

#[test]
fn bad_answers_are_refused() {
    let offer = build_offer(&local(1, 4000), Direction::SendRecv);
    let two_lines = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "m=audio 7000 RTP/AVP 0",
        "m=video 0 RTP/AVP 31",
    ]);
    assert_eq!(
        process_answer(&offer, &two_lines),
        Err(NegotiationError::MediaCountMismatch {
            offer: 1,
            answer: 2
        })
    );
    let rejected = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "m=audio 0 RTP/AVP 0",
    ]);
    assert_eq!(
        process_answer(&offer, &rejected),
        Err(NegotiationError::AnswerRejected)
    );
    let not_offered = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "m=audio 7000 RTP/AVP 18",
    ]);
    assert!(matches!(
        process_answer(&offer, &not_offered),
        Err(NegotiationError::NoCommonCodec { media_index: 0, .. })
    ));
}

/// The peer's side of a call with audio + a video stream we refuse.
fn peer_offer(version: u32, direction: &str) -> crate::sdp::SessionDescription {
    let o = format!("o=alice 2890844526 {version} IN IP4 192.0.2.101");
    let mut lines: Vec<&str> = RFC3264_OFFER.to_vec();
    lines[1] = &o;
    lines.insert(9, direction);
    sdp(&lines)
}

#[test]
fn session_versions_follow_rfc3264_section_8() {
    let mut session = SdpSession::new(local(1, 4000));
    assert_eq!(
        session.process_answer(&peer_offer(1, "a=sendrecv")),
        Err(NegotiationError::NoPendingOffer)
    );

    let first = session
        .answer(&peer_offer(1, "a=sendrecv"))
        .expect("initial answer");
    assert_eq!(first.sdp.origin.session_version, 0);

    // Session refresh: same offer, same answer, same version.
    let refresh = session
        .answer(&peer_offer(1, "a=sendrecv"))
        .expect("refresh");
    assert_eq!(refresh.sdp, first.sdp);

    // Peer holds us: our answer changes, version + 1.
    let held = session.answer(&peer_offer(2, "a=sendonly")).expect("hold");
    assert_eq!(held.sdp.origin.session_version, 1);
    assert_eq!(held.negotiated.direction, Direction::RecvOnly);
    assert_eq!(session.negotiated(), Some(&held.negotiated));

    // A refused re-offer leaves the previous state in place.
    let before = session.negotiated().cloned();
    assert!(session.answer(&sdp(super::NO_G711)).is_err());
    assert_eq!(session.negotiated().cloned(), before);
}

/// The peer's answer to our hold offer: `recvonly`, video still refused.
fn peer_hold_answer() -> crate::sdp::SessionDescription {
    sdp(&[
        "v=0",
        "o=alice 2890844526 3 IN IP4 192.0.2.101",
        "s=-",
        "c=IN IP4 192.0.2.101",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "a=recvonly",
        "m=video 0 RTP/AVP 31",
    ])
}

#[test]
fn hold_and_resume_reoffers_keep_layout_and_numbers() {
    let mut session = SdpSession::new(local(1, 4000));
    let offer = session
        .answer(&peer_offer(1, "a=sendrecv"))
        .expect("answer")
        .sdp;
    assert_eq!(offer.media.len(), 2);

    let hold = session.hold();
    assert_eq!(hold.origin.session_version, 1);
    assert_eq!(hold.origin.session_id, "1000");
    assert_eq!(hold.media.len(), 2, "never fewer m-lines than before");
    assert_eq!(hold.media[0].direction(), Some(Direction::SendOnly));
    assert_eq!(
        hold.media[0].formats,
        ["0", "8", "101"],
        "negotiated codec first"
    );
    assert_eq!(hold.media[1].to_string(), "m=video 0 RTP/AVP 31 32\r\n");

    let peer_answer = peer_hold_answer();
    let n = session.process_answer(&peer_answer).expect("hold accepted");
    assert_eq!(n.direction, Direction::SendOnly);

    let resume = session.resume();
    assert_eq!(resume.origin.session_version, 2);
    assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));

    // Re-sending the same offer (e.g. after 491) keeps the version.
    session.offer_failed();
    assert_eq!(session.resume().origin.session_version, 2);
}

#[test]
fn initial_offer_from_session_then_answer() {
    let mut session = SdpSession::new(LocalMedia {
        session_version: 5,
        ..local(1, 4000)
    });
    let offer = session.offer(Direction::SendRecv);
    assert_eq!(offer.origin.session_version, 5);
    let answer = negotiate(&offer, &local(2, 6000)).expect("answer");
    let n = session.process_answer(&answer.sdp).expect("accepted");
    assert_eq!(n.codec.codec, Codec::Pcma);
    assert_eq!(n.remote_rtp, Some(addr("192.0.2.2:6000")));
    assert_eq!(
        session.process_answer(&answer.sdp),
        Err(NegotiationError::NoPendingOffer),
        "an answer is consumed once"
    );
}

/// A saved session (JSON, as a call snapshot holds it) is the same session: it answers, keeps
/// the version rule and the negotiated numbers as if it had never left memory.
#[test]
fn a_session_saved_and_restored_carries_on() {
    let mut session = SdpSession::new(local(1, 4000));
    session
        .answer(&peer_offer(1, "a=sendrecv"))
        .expect("answer");
    let hold = session.hold();
    let text = serde_json::to_string(&session).expect("serialise");
    let mut restored: SdpSession = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(restored, session);
    assert_eq!(restored.negotiated(), session.negotiated());
    // The pending hold offer survived: the peer's answer completes it.
    let peer_answer = peer_hold_answer();
    let n = restored
        .process_answer(&peer_answer)
        .expect("answer to the saved offer");
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(n.codec.codec, Codec::Pcmu);
    // Same SDP again: same version; a change: version + 1.
    restored.offer_failed();
    let again = restored.offer(Direction::SendOnly);
    assert_eq!(again.origin.session_version, hold.origin.session_version);
    restored.offer_failed();
    assert_eq!(
        restored.resume().origin.session_version,
        hold.origin.session_version + 1
    );
}

#[test]
fn a_saved_session_with_a_broken_body_is_refused() {
    let session = SdpSession::new(local(1, 4000));
    let mut value = serde_json::to_value(&session).expect("serialise");
    value["last_sent"] = serde_json::Value::String("v=0\r\nnot sdp\r\n".into());
    assert!(serde_json::from_value::<SdpSession>(value).is_err());
}
