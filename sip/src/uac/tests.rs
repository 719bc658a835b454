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
