//! Unit tests of the pieces the scenario tests (`sip/tests/uac.rs`) do not isolate.

use super::*;

#[test]
fn reason_header_forms() {
    assert_eq!(
        Reason::q850(16, "Normal call clearing").to_string(),
        "Q.850;cause=16;text=\"Normal call clearing\""
    );
    assert_eq!(
        Reason::sip(200, "Call completed \"elsewhere\"\r\n").to_string(),
        "SIP;cause=200;text=\"Call completed elsewhere\""
    );
    let bare = Reason {
        protocol: ReasonProtocol::Sip,
        cause: 480,
        text: None,
    };
    assert_eq!(bare.to_string(), "SIP;cause=480");
}

#[test]
fn credentials_never_print_the_password() {
    let c = Credentials {
        username: "trunk".into(),
        password: "s3cret".into(),
    };
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn debug_output_never_prints_the_parties() {
    let peer = Peer {
        transport: crate::endpoint::Transport::Udp,
        addr: "192.0.2.20:5060".parse().expect("addr"),
    };
    let uri = |s: &str| Uri::parse(s).expect("uri");
    let config = UacConfig::new(
        uri("sip:0611223344@pbx.example.com"),
        NameAddr::new(uri("sip:+33123456789@192.0.2.10")),
        uri("sip:svi@192.0.2.10"),
        peer,
    );
    let shown = format!("{config:?}");
    assert!(shown.contains("192.0.2.20:5060"), "{shown}");
    let uac = Uac::new(
        std::time::Instant::now(),
        config,
        SdpSession::new(crate::sdp::LocalMedia::new(
            "192.0.2.10".parse().expect("ip"),
            4000,
            1,
        )),
        None,
    );
    let now = std::time::Instant::now();
    let whole = format!("{shown} {uac:?} {:?}", uac.snapshot(now));
    assert!(whole.contains("Calling"), "{whole}");
    for number in ["0611223344", "33123456789"] {
        assert!(!whole.contains(number), "{whole}");
    }
}
