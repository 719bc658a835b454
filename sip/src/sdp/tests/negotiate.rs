use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{corpus_body, crlf, sdp, ASTERISK, CUCM, NO_G711, RFC3264_OFFER};
use crate::sdp::{
    negotiate, Codec, Direction, LocalMedia, NegotiatedCodec, NegotiationError, Proto,
    SessionDescription,
};

fn local() -> LocalMedia {
    LocalMedia::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 40000, 777)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

const PCMA: NegotiatedCodec = NegotiatedCodec {
    codec: Codec::Pcma,
    payload_type: 8,
};
const PCMU: NegotiatedCodec = NegotiatedCodec {
    codec: Codec::Pcmu,
    payload_type: 0,
};

#[test]
fn asterisk_offer_gives_pcma_with_telephone_event_101() {
    let answer = negotiate(&sdp(ASTERISK), &local()).expect("negotiates");
    let n = &answer.negotiated;
    assert_eq!(n.media_index, 0);
    assert_eq!(n.codec, PCMA);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.remote_rtp, Some(addr("192.168.1.10:14532")));
    assert_eq!(n.remote_rtcp, Some(addr("192.168.1.10:14533")));
    assert_eq!(n.remote_ptime, Some(20));
    assert_eq!(
        answer.sdp.to_string(),
        crlf(&[
            "v=0",
            "o=svi 777 0 IN IP4 198.51.100.9",
            "s=-",
            "c=IN IP4 198.51.100.9",
            "t=0 0",
            "m=audio 40000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ])
    );
}

#[test]
fn offerer_order_wins_over_local_order() {
    // CUCM lists PCMU first; we prefer PCMA locally but follow the offer (RFC 3264 §6.1).
    let n = negotiate(&sdp(CUCM), &local())
        .expect("negotiates")
        .negotiated;
    assert_eq!(n.codec, PCMU);
    assert_eq!(
        n.telephone_event,
        Some(96),
        "offerer's telephone-event number"
    );
    // Restricting our codec set still finds PCMA further down the offer.
    let only_pcma = LocalMedia {
        codecs: vec![Codec::Pcma],
        ..local()
    };
    let n = negotiate(&sdp(CUCM), &only_pcma)
        .expect("negotiates")
        .negotiated;
    assert_eq!(n.codec, PCMA);
}

#[test]
fn g729_g722_only_offer_has_no_common_codec() {
    assert_eq!(
        negotiate(&sdp(NO_G711), &local()),
        Err(NegotiationError::NoCommonCodec {
            media_index: 0,
            offered: vec!["G729".into(), "G722".into(), "telephone-event".into()]
        })
    );
}

#[test]
fn rfc3264_example_rejects_video_with_port_zero_and_same_formats() {
    let answer = negotiate(&sdp(RFC3264_OFFER), &local()).expect("negotiates");
    assert_eq!(answer.negotiated.codec, PCMU);
    assert_eq!(answer.negotiated.telephone_event, None, "none offered");
    let media = &answer.sdp.media;
    assert_eq!(media.len(), 2, "as many m-lines as the offer");
    assert_eq!(media[0].formats, ["0"]);
    assert_eq!(media[1].to_string(), "m=video 0 RTP/AVP 31 32\r\n");
}

#[test]
fn rfc3264_host_names_are_not_resolved() {
    // The RFC's own example uses c=IN IP4 host.atlanta.example.com; resolving it would be I/O.
    let mut offer = sdp(RFC3264_OFFER);
    offer.connection = SessionDescription::parse(&crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 host.atlanta.example.com",
    ]))
    .expect("parses")
    .connection;
    assert_eq!(
        negotiate(&offer, &local()),
        Err(NegotiationError::UnusableAddress {
            media_index: 0,
            address: "host.atlanta.example.com".into()
        })
    );
}

#[test]
fn rfc3264_inactive_example_stays_inactive() {
    let offer = sdp(&[
        "v=0",
        "o=carol 28908764872 28908764872 IN IP4 192.0.2.33",
        "s=-",
        "t=0 0",
        "c=IN IP4 192.0.2.33",
        "m=audio 0 RTP/AVP 0 1 3",
        "m=audio 62986 RTP/AVP 0 4 18",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:4 G723/8000",
        "a=rtpmap:18 G729/8000",
        "a=inactive",
    ]);
    let answer = negotiate(&offer, &local()).expect("negotiates");
    assert_eq!(
        answer.negotiated.media_index, 1,
        "disabled first stream skipped"
    );
    assert_eq!(answer.negotiated.direction, Direction::Inactive);
    assert_eq!(answer.sdp.media[0].port, 0);
    assert_eq!(answer.sdp.media[0].formats, ["0", "1", "3"]);
    assert_eq!(answer.sdp.media[1].direction(), Some(Direction::Inactive));
}

#[test]
fn static_payload_types_without_rtpmap_and_dynamic_g711() {
    let bare = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]);
    assert_eq!(
        negotiate(&bare, &local()).expect("ok").negotiated.codec,
        PCMU
    );

    let dynamic = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 97 98",
        "a=rtpmap:97 pcma/8000",
        "a=rtpmap:98 telephone-event/8000",
    ]);
    let answer = negotiate(&dynamic, &local()).expect("ok");
    assert_eq!(
        answer.negotiated.codec,
        NegotiatedCodec {
            codec: Codec::Pcma,
            payload_type: 97
        }
    );
    assert_eq!(answer.sdp.media[0].formats, ["97", "98"]);
    assert_eq!(
        answer.sdp.media[0].rtpmap(97).map(|m| m.encoding),
        Some("PCMA".into())
    );
}

fn hold_offer(direction_line: Option<&str>, conn: &str) -> SessionDescription {
    let mut lines = vec![
        "v=0",
        "o=- 1 2 IN IP4 192.0.2.1",
        "s=-",
        conn,
        "t=0 0",
        "m=audio 4000 RTP/AVP 8 101",
        "a=rtpmap:101 telephone-event/8000",
    ];
    lines.extend(direction_line);
    sdp(&lines)
}

#[test]
fn directions_are_mirrored() {
    let cases = [
        (None, Direction::SendRecv),
        (Some("a=sendrecv"), Direction::SendRecv),
        (Some("a=sendonly"), Direction::RecvOnly),
        (Some("a=recvonly"), Direction::SendOnly),
        (Some("a=inactive"), Direction::Inactive),
    ];
    for (line, expected) in cases {
        let answer = negotiate(&hold_offer(line, "c=IN IP4 192.0.2.1"), &local()).expect("ok");
        assert_eq!(answer.negotiated.direction, expected, "{line:?}");
        assert_eq!(answer.sdp.media[0].direction(), Some(expected));
        assert_eq!(answer.negotiated.remote_rtp, Some(addr("192.0.2.1:4000")));
    }
}

#[test]
fn session_level_sendonly_is_hold() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 2 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "a=sendonly",
        "m=audio 4000 RTP/AVP 0",
    ]);
    let n = negotiate(&offer, &local()).expect("ok").negotiated;
    assert_eq!(n.direction, Direction::RecvOnly);
}

#[test]
fn connection_zero_is_legacy_hold() {
    let answer = negotiate(&hold_offer(None, "c=IN IP4 0.0.0.0"), &local()).expect("ok");
    assert_eq!(
        answer.negotiated.remote_rtp, None,
        "send nothing to 0.0.0.0"
    );
    assert_eq!(answer.negotiated.remote_rtcp, None);
    assert_eq!(answer.negotiated.direction, Direction::RecvOnly);
    assert_eq!(answer.sdp.media[0].direction(), Some(Direction::RecvOnly));
    let both = negotiate(
        &hold_offer(Some("a=recvonly"), "c=IN IP4 0.0.0.0"),
        &local(),
    );
    assert_eq!(both.expect("ok").negotiated.direction, Direction::Inactive);
}

#[test]
fn secure_or_non_audio_offers_are_refused() {
    let savp = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "m=audio 4000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ]);
    assert_eq!(
        negotiate(&savp, &local()),
        Err(NegotiationError::UnsupportedTransport {
            media_index: 0,
            proto: "RTP/SAVP".into()
        })
    );
    let video = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "m=video 4000 RTP/AVP 31",
    ]);
    assert_eq!(negotiate(&video, &local()), Err(NegotiationError::NoAudio));
    let no_c = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "m=audio 4000 RTP/AVP 0",
    ]);
    assert_eq!(
        negotiate(&no_c, &local()),
        Err(NegotiationError::NoConnection { media_index: 0 })
    );
}

#[test]
fn avpf_is_answered_with_avpf_and_rtcp_attribute_is_used() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "m=audio 4000 RTP/AVPF 0",
        "a=rtcp:4005",
        "a=rtcp-mux",
    ]);
    let answer = negotiate(&offer, &local()).expect("ok");
    assert_eq!(answer.sdp.media[0].proto, Proto::RtpAvpf);
    assert_eq!(answer.negotiated.remote_rtcp, Some(addr("192.0.2.1:4005")));
    assert!(!answer.sdp.media[0].rtcp_mux(), "rtcp-mux is not accepted");
}

#[test]
fn rfc5118_ipv6_offer_with_ipv6_local_address() {
    let offer = SessionDescription::parse(&corpus_body("rfc5118/ipv6-in-sdp")).expect("parses");
    // Its only audio codec is G.726-32.
    assert!(matches!(
        negotiate(&offer, &local()),
        Err(NegotiationError::NoCommonCodec { media_index: 0, .. })
    ));

    let mut g711 = offer.clone();
    g711.media[0].formats = vec!["0".into()];
    assert_eq!(
        negotiate(&g711, &local()),
        Err(NegotiationError::UnusableAddress {
            media_index: 0,
            address: "2001:db8::20".into()
        }),
        "an IPv4-only engine cannot reach an IPv6 peer"
    );
    let v6 = LocalMedia::new("::1".parse().expect("v6"), 40000, 1);
    let answer = negotiate(&g711, &v6).expect("ok");
    assert_eq!(
        answer.negotiated.remote_rtp,
        Some(addr("[2001:db8::20]:6000"))
    );
    let text = answer.sdp.to_string();
    assert!(text.contains("o=svi 1 0 IN IP6 ::1\r\n"), "{text}");
    assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
    assert!(
        text.contains("t=3338481189 3370017201\r\n"),
        "t= copied from the offer"
    );
    assert!(text.contains("m=video 0 RTP/AVP 107\r\n"), "{text}");
}

#[test]
fn rfc5118_mixed_families_picks_the_ipv4_audio_stream() {
    let offer = SessionDescription::parse(&corpus_body("rfc5118/mult-ip-in-sdp")).expect("parses");
    let answer = negotiate(&offer, &local()).expect("ok");
    assert_eq!(answer.negotiated.remote_rtp, Some(addr("192.0.2.1:22334")));
    assert_eq!(answer.sdp.media[1].port, 0);
}

#[test]
fn telephone_event_is_omitted_when_locally_disabled_or_not_at_8000() {
    let no_dtmf = LocalMedia {
        telephone_event: None,
        ..local()
    };
    let answer = negotiate(&sdp(ASTERISK), &no_dtmf).expect("ok");
    assert_eq!(answer.negotiated.telephone_event, None);
    assert_eq!(answer.sdp.media[0].formats, ["8"]);

    let wideband_only = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "m=audio 4000 RTP/AVP 0 100",
        "a=rtpmap:100 telephone-event/48000",
    ]);
    let n = negotiate(&wideband_only, &local()).expect("ok").negotiated;
    assert_eq!(n.telephone_event, None);
}
