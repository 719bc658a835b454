use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{corpus_body, crlf, sdp, ASTERISK, CUCM, RFC4566};
use crate::sdp::{
    AddrType, Address, Bandwidth, Connection, Direction, Fmtp, MediaType, Proto, RtcpAttr, RtpMap,
    SdpError, SessionDescription,
};

fn err(lines: &[&str]) -> SdpError {
    SessionDescription::parse(&crlf(lines)).expect_err("SDP must be refused")
}

#[test]
fn rfc4566_example_parses_into_typed_fields() {
    let s = sdp(RFC4566);
    assert_eq!(s.origin.username, "jdoe");
    assert_eq!(s.origin.session_id, "2890844526");
    assert_eq!(s.origin.session_version, 2890842807);
    assert_eq!(s.origin.addr_type, AddrType::Ip4);
    assert_eq!(
        s.origin.address,
        Address::Ip(IpAddr::V4(Ipv4Addr::new(10, 47, 16, 5)))
    );
    assert_eq!(s.session_name, "SDP Seminar");
    let c = s.connection.as_ref().expect("session c=");
    assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(224, 2, 17, 12))));
    assert_eq!(c.multicast.as_deref(), Some("127"));
    assert_eq!(
        (s.timings[0].start, s.timings[0].stop),
        (2873397496, 2873404696)
    );
    assert_eq!(s.direction(), Some(Direction::RecvOnly));
    assert_eq!(s.other.len(), 3, "i=, u=, e= kept verbatim");

    assert_eq!(s.media.len(), 2);
    let audio = &s.media[0];
    assert_eq!(audio.media, MediaType::Audio);
    assert_eq!((audio.port, audio.proto.clone()), (49170, Proto::RtpAvp));
    assert_eq!(audio.formats, ["0"]);
    assert_eq!(audio.rtpmap(0), None, "no rtpmap line");
    assert_eq!(
        audio.encoding_of(0).map(|m| m.encoding),
        Some("PCMU".to_owned())
    );
    assert_eq!(
        s.direction_of(audio),
        Direction::RecvOnly,
        "inherits a=recvonly"
    );
    assert_eq!(s.connection_of(audio), Some(c));
    let video = &s.media[1];
    assert_eq!(video.media, MediaType::Video);
    assert_eq!(
        video.rtpmap(99),
        Some(RtpMap {
            payload_type: 99,
            encoding: "h263-1998".to_owned(),
            clock_rate: 90000,
            channels: None
        })
    );
}

#[test]
fn rfc4566_example_round_trips_byte_for_byte() {
    let text = crlf(RFC4566);
    assert_eq!(sdp(RFC4566).to_string(), text);
}

#[test]
fn pbx_offers_round_trip_and_expose_attributes() {
    for body in [ASTERISK, CUCM] {
        let s = sdp(body);
        assert_eq!(s.to_string(), crlf(body));
        assert_eq!(SessionDescription::parse(&s.to_string()), Ok(s));
    }
    let cucm = sdp(CUCM);
    let m = &cucm.media[0];
    assert_eq!(
        cucm.bandwidths,
        [
            Bandwidth {
                kind: "TIAS".into(),
                value: 64000
            },
            Bandwidth {
                kind: "AS".into(),
                value: 64
            }
        ]
    );
    assert_eq!(m.bandwidths.len(), 1);
    assert_eq!(
        m.fmtp("18"),
        Some(Fmtp {
            format: "18".into(),
            params: "annexb=no".into()
        })
    );
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 8, 18, 96]);
    assert_eq!(sdp(ASTERISK).media[0].maxptime(), Some(150));
}

#[test]
fn lf_line_endings_and_blank_lines_are_accepted() {
    let text = "v=0\no=- 1 2 IN IP4 192.0.2.1\n\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n\n";
    let s = SessionDescription::parse(text).expect("LF SDP parses");
    assert_eq!(s.media[0].port, 4000);
    assert!(s.to_string().contains("m=audio 4000 RTP/AVP 0\r\n"));
}

#[test]
fn optional_lines_out_of_order_are_accepted_and_written_in_rfc_order() {
    let s = sdp(&[
        "v=0",
        "s=-",
        "t=0 0",
        "a=tool:x",
        "c=IN IP4 192.0.2.1",
        "o=- 1 1 IN IP4 192.0.2.1",
        "m=audio 4000 RTP/AVP 0",
    ]);
    assert_eq!(
        s.to_string(),
        crlf(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "a=tool:x",
            "m=audio 4000 RTP/AVP 0",
        ])
    );
}

#[test]
fn unknown_lines_and_attributes_are_kept_verbatim() {
    let body = &[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "x=vendor extension",
        "a=X-nat:0",
        "m=audio 4000 RTP/AVP 0",
        "y=media level",
        "a=rtpmap:31 LPC",
        "a=weird value with spaces",
    ];
    let s = sdp(body);
    assert_eq!(s.other[0].kind, 'x');
    assert_eq!(
        s.attribute("x-nat").and_then(|a| a.value.as_deref()),
        Some("0")
    );
    let m = &s.media[0];
    assert_eq!(m.other[0].value, "media level");
    assert_eq!(
        m.rtpmaps().count(),
        0,
        "malformed rtpmap kept but not recognised"
    );
    assert_eq!(s.to_string(), crlf(body));
}

#[test]
fn rtcp_and_rtcp_mux_accessors() {
    let s = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "m=audio 4000 RTP/AVP 97",
        "c=IN IP4 192.0.2.1",
        "a=rtpmap:97 opus/48000/2",
        "a=rtcp:53020 IN IP6 2001:db8::7",
        "a=rtcp-mux",
        "a=ptime:20.5",
    ]);
    let m = &s.media[0];
    assert_eq!(m.rtpmap(97).and_then(|r| r.channels), Some(2));
    assert_eq!(
        m.rtcp(),
        Some(RtcpAttr {
            port: 53020,
            connection: Some(Connection::from_ip(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, 7
            ))))
        })
    );
    assert!(m.rtcp_mux());
    assert_eq!(m.ptime(), Some(20), "fractional ptime truncated");
    assert!(s.timings.is_empty());
    assert!(s.to_string().contains("t=0 0\r\n"), "t= supplied on output");
}

#[test]
fn rfc5118_ipv6_in_sdp() {
    let body = corpus_body("rfc5118/ipv6-in-sdp");
    let s = SessionDescription::parse(&body).expect("RFC 5118 §4.5 SDP parses");
    let v6: IpAddr = "2001:db8::20".parse().expect("literal");
    assert_eq!(s.origin.addr_type, AddrType::Ip6);
    assert_eq!(s.origin.address, Address::Ip(v6));
    assert_eq!(s.connection.as_ref().and_then(Connection::ip), Some(v6));
    assert_eq!(s.media.len(), 2);
    assert_eq!(
        s.media[0].rtpmap(2).map(|m| m.encoding),
        Some("G726-32".into())
    );
    assert_eq!(s.to_string(), body);
}

#[test]
fn rfc5118_multiple_address_families_in_sdp() {
    let body = corpus_body("rfc5118/mult-ip-in-sdp");
    let s = SessionDescription::parse(&body).expect("RFC 5118 §4.6 SDP parses");
    assert_eq!(s.session_name, "", "empty s= tolerated");
    assert_eq!(s.origin.address, Address::Host("host.example.com".into()));
    let ips: Vec<_> = s
        .media
        .iter()
        .map(|m| s.connection_of(m).and_then(Connection::ip))
        .collect();
    assert_eq!(
        ips,
        [
            Some("192.0.2.1".parse().expect("v4")),
            Some("2001:db8::1".parse().expect("v6"))
        ]
    );
    assert_eq!(s.to_string(), body);
}

#[test]
fn ipv6_loopback_and_host_names() {
    let s = sdp(&[
        "v=0",
        "o=- 1 1 IN IP6 ::1",
        "s=-",
        "c=IN IP4 media.example.com",
    ]);
    assert_eq!(
        s.origin.address,
        Address::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
    );
    let c = s.connection.expect("c=");
    assert_eq!(c.address, Address::Host("media.example.com".into()));
    assert_eq!(c.ip(), None);
}

#[test]
fn missing_mandatory_lines_are_named() {
    assert_eq!(
        err(&["v=0", "s=-", "t=0 0"]),
        SdpError::Missing { kind: 'o' }
    );
    assert_eq!(
        err(&["v=0", "o=- 1 1 IN IP4 192.0.2.1"]),
        SdpError::Missing { kind: 's' }
    );
    assert_eq!(SessionDescription::parse("\r\n \r\n"), Err(SdpError::Empty));
    assert!(matches!(
        err(&["o=- 1 1 IN IP4 192.0.2.1", "s=-"]),
        SdpError::BadVersion { line: 1, .. }
    ));
    assert!(matches!(
        err(&["v=1", "o=- 1 1 IN IP4 192.0.2.1", "s=-"]),
        SdpError::BadVersion { .. }
    ));
}

/// Lines of an SDP body and a check on the error it must produce.
type Case = (&'static [&'static str], fn(&SdpError) -> bool);

#[test]
fn errors_name_the_line_number_and_text() {
    let e = err(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "m=audio 70000 RTP/AVP 0",
    ]);
    assert_eq!(
        e,
        SdpError::BadField {
            line: 4,
            text: "m=audio 70000 RTP/AVP 0".into(),
            field: "m= port",
            value: "70000".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "SDP line 4 `m=audio 70000 RTP/AVP 0`: bad m= port `70000`"
    );
    let cases: &[Case] = &[
        (&["v=0", "o=- 1 IN IP4 x", "s=-"], |e| {
            matches!(
                e,
                SdpError::FieldCount {
                    line: 2,
                    kind: 'o',
                    found: 5,
                    ..
                }
            )
        }),
        (&["v=0", "o=- 1 x IN IP4 192.0.2.1", "s=-"], |e| {
            matches!(
                e,
                SdpError::BadField {
                    field: "o= sess-version",
                    ..
                }
            )
        }),
        (
            &[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
            ],
            |e| {
                matches!(
                    e,
                    SdpError::Duplicate {
                        line: 3,
                        kind: 'o',
                        ..
                    }
                )
            },
        ),
        (
            &[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "m=audio 1 RTP/AVP 0",
                "t=0 0",
            ],
            |e| {
                matches!(
                    e,
                    SdpError::Misplaced {
                        line: 5,
                        kind: 't',
                        ..
                    }
                )
            },
        ),
        (
            &[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "c=IN IP4 300.1.1.1",
            ],
            |e| {
                matches!(
                    e,
                    SdpError::BadField {
                        line: 4,
                        field: "IP4 address",
                        ..
                    }
                )
            },
        ),
        (
            &[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "c=IN IP4 2001:db8::1",
            ],
            |e| {
                matches!(
                    e,
                    SdpError::BadField {
                        field: "IP4 address",
                        ..
                    }
                )
            },
        ),
        (
            &[
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "c=IN IP6 2001:db8:::1",
            ],
            |e| {
                matches!(
                    e,
                    SdpError::BadField {
                        field: "IP6 address",
                        ..
                    }
                )
            },
        ),
        (
            &["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "m=audio"],
            |e| {
                matches!(
                    e,
                    SdpError::FieldCount {
                        kind: 'm',
                        found: 1,
                        ..
                    }
                )
            },
        ),
        (&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "b=AS"], |e| {
            matches!(
                e,
                SdpError::BadField {
                    field: "b= bandwidth",
                    ..
                }
            )
        }),
        (&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0"], |e| {
            matches!(e, SdpError::FieldCount { kind: 't', .. })
        }),
        (
            &["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "garbage"],
            |e| matches!(e, SdpError::NotTypeValue { line: 4, .. }),
        ),
        (&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "a=:x"], |e| {
            matches!(
                e,
                SdpError::BadField {
                    field: "a= attribute name",
                    ..
                }
            )
        }),
    ];
    for (lines, check) in cases {
        let e = err(lines);
        assert!(check(&e), "{lines:?} gave {e:?}");
    }
}

#[test]
fn non_utf8_bytes_are_refused_with_offset() {
    assert_eq!(
        SessionDescription::parse_bytes(b"v=0\r\ns=\xff"),
        Err(SdpError::NotUtf8 { offset: 7 })
    );
}

#[test]
fn embedded_nul_is_refused() {
    let e = err(&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=a\0b"]);
    assert!(matches!(e, SdpError::BadField { line: 3, .. }), "{e:?}");
}
