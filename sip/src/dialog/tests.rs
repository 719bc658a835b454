use super::*;
use crate::endpoint::Transport;
use crate::message::{parse_datagram, SipMessage};

const INVITE: &str = "INVITE sip:ivr@192.0.2.99 SIP/2.0\r\n\
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\r\n\
Record-Route: <sip:p2.example.com;lr>\r\n\
Record-Route: <sip:p1.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:ivr@example.com>\r\n\
Call-ID: dlg-1\r\n\
CSeq: 100 INVITE\r\n\
Contact: <sip:alice@192.0.2.1:5062;transport=tcp>\r\n\
Content-Length: 0\r\n\r\n";

fn request(text: &str) -> Request {
    match parse_datagram(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

/// A request from Alice inside the UAS dialog.
fn in_dialog(method: &str, cseq: u32, contact: Option<&str>) -> Request {
    let mut text = format!(
        "{method} sip:ivr@192.0.2.99 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{cseq}\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:ivr@example.com>;tag=ivr1\r\nCall-ID: dlg-1\r\nCSeq: {cseq} {method}\r\n"
    );
    if let Some(c) = contact {
        text.push_str(&format!("Contact: <{c}>\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    request(&text)
}

fn uas() -> Dialog {
    Dialog::new_uas(&request(INVITE), "ivr1", uri("sip:ivr@192.0.2.99")).expect("dialog")
}

#[test]
fn uas_dialog_from_an_invite() {
    let d = uas();
    assert_eq!(
        d.id,
        DialogId {
            call_id: "dlg-1".into(),
            local_tag: "ivr1".into(),
            remote_tag: "a1".into()
        }
    );
    assert_eq!(
        d.remote_target,
        uri("sip:alice@192.0.2.1:5062;transport=tcp")
    );
    let routes: Vec<String> = d.route_set.iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        routes,
        vec!["sip:p2.example.com;lr", "sip:p1.example.com;lr"],
        "UAS keeps the received order"
    );
    assert_eq!(d.remote_cseq, Some(100));
    assert!(d.local_cseq >= 1 && d.local_cseq < (1 << 30));
    assert_eq!(d.remote_uri.display.as_deref(), Some("\"Alice\""));
    assert!(!d.secure);

    let mut ok = Response::for_request(&request(INVITE), 200);
    d.prepare_response(&mut ok);
    assert_eq!(ok.headers.to_addr().expect("to").tag(), Some("ivr1"));
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:ivr@192.0.2.99>")
    );
    assert_eq!(ok.headers.get_all(&HeaderName::RecordRoute).count(), 2);
}

#[test]
fn uas_requests_use_loose_routes_and_increment_cseq() {
    let mut d = uas();
    let start = d.local_cseq;
    let bye = d.create_request(Method::Bye);
    assert_eq!(
        bye.uri,
        uri("sip:alice@192.0.2.1:5062;transport=tcp"),
        "loose routing: R-URI = remote target"
    );
    let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
    assert_eq!(
        routes,
        vec!["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    );
    assert_eq!(bye.headers.from_addr().expect("from").tag(), Some("ivr1"));
    assert_eq!(bye.headers.to_addr().expect("to").tag(), Some("a1"));
    assert_eq!(
        bye.headers.to_addr().expect("to").uri,
        uri("sip:alice@example.com")
    );
    assert_eq!(
        bye.headers.cseq().expect("cseq"),
        CSeq {
            seq: start + 1,
            method: Method::Bye
        }
    );
    assert_eq!(bye.headers.max_forwards().expect("mf"), Some(70));
    assert_eq!(
        bye.headers.get(&HeaderName::Via),
        None,
        "the TU adds the Via"
    );
    assert_eq!(
        bye.headers.get(&HeaderName::Contact),
        None,
        "BYE is no target refresh"
    );
    let reinvite = d.create_request(Method::Invite);
    assert_eq!(reinvite.headers.cseq().expect("cseq").seq, start + 2);
    assert_eq!(
        reinvite.headers.get(&HeaderName::Contact),
        Some("<sip:ivr@192.0.2.99>")
    );
    let hop = d.target_addr().expect("hop");
    assert_eq!(
        (hop.host.as_str(), hop.transport),
        ("p2.example.com", Transport::Udp),
        "first route is the next hop"
    );
}

#[test]
fn uac_dialog_reverses_the_record_route_and_follows_strict_routers() {
    let invite = request(&INVITE.replace(
        "Record-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n",
        "",
    ));
    let mut ok = Response::for_request(&invite, 200);
    ok.headers
        .set(HeaderName::To, "<sip:ivr@example.com>;tag=b7");
    ok.headers.push(
        HeaderName::RecordRoute,
        "<sip:p2.example.com;lr>, <sip:p1.example.com>",
    );
    ok.headers.push(HeaderName::Contact, "<sip:bob@192.0.2.7>");
    let mut d = Dialog::new_uac(&invite, &ok).expect("dialog");
    assert_eq!(
        d.id,
        DialogId {
            call_id: "dlg-1".into(),
            local_tag: "a1".into(),
            remote_tag: "b7".into()
        }
    );
    assert_eq!(d.local_cseq, 100);
    assert_eq!(d.remote_cseq, None);
    let routes: Vec<String> = d.route_set.iter().map(|r| r.uri.to_string()).collect();
    assert_eq!(
        routes,
        vec!["sip:p1.example.com", "sip:p2.example.com;lr"],
        "UAC reverses"
    );

    // p1 has no `lr`: strict routing.
    let bye = d.create_request(Method::Bye);
    assert_eq!(bye.uri, uri("sip:p1.example.com"));
    let r: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
    assert_eq!(
        r,
        vec!["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.7>"],
        "remote target goes last"
    );
    assert_eq!(bye.headers.cseq().expect("cseq").seq, 101);

    let ack = d.create_ack(&ok);
    assert_eq!(
        ack.headers.cseq().expect("cseq"),
        CSeq {
            seq: 100,
            method: Method::Ack
        }
    );
    assert_eq!(ack.headers.to_addr().expect("to").tag(), Some("b7"));
    assert_eq!(d.local_cseq, 101, "ACK takes no new number");
}

#[test]
fn remote_cseq_must_not_go_down() {
    let mut d = uas();
    assert_eq!(d.handle_request(&in_dialog("ACK", 100, None)), Ok(()));
    assert_eq!(d.handle_request(&in_dialog("INFO", 101, None)), Ok(()));
    assert_eq!(d.remote_cseq, Some(101));
    assert_eq!(
        d.handle_request(&in_dialog("INFO", 99, None)),
        Err(DialogError::CSeqOutOfOrder {
            got: 99,
            remote: 101
        })
    );
    assert_eq!(d.remote_cseq, Some(101));
    let mut other = in_dialog("BYE", 200, None);
    other
        .headers
        .set(HeaderName::To, "<sip:ivr@example.com>;tag=nope");
    assert!(!d.matches(&other));
    assert_eq!(d.handle_request(&other), Err(DialogError::NotInDialog));
    let id = Dialog::id_of_request(&in_dialog("BYE", 102, None)).expect("in dialog");
    assert_eq!(id, d.id);
    assert_eq!(
        Dialog::id_of_request(&request(INVITE)),
        None,
        "no To tag: not in a dialog"
    );
}

#[test]
fn target_refresh_by_request_and_by_response() {
    let mut d = uas();
    d.handle_request(&in_dialog("INFO", 101, Some("sip:ignored@192.0.2.66")))
        .expect("info");
    assert_eq!(
        d.remote_target,
        uri("sip:alice@192.0.2.1:5062;transport=tcp"),
        "INFO refreshes nothing"
    );
    d.handle_request(&in_dialog("INVITE", 102, Some("sip:alice@198.51.100.3")))
        .expect("re-INVITE");
    assert_eq!(d.remote_target, uri("sip:alice@198.51.100.3"));
    d.handle_request(&in_dialog("UPDATE", 103, Some("sip:alice@198.51.100.4")))
        .expect("UPDATE");
    assert_eq!(d.remote_target, uri("sip:alice@198.51.100.4"));

    let reinvite = d.create_request(Method::Invite);
    let mut ok = Response::for_request(&reinvite, 200);
    ok.headers
        .push(HeaderName::Contact, "<sip:alice@198.51.100.5>");
    d.handle_response(&ok).expect("2xx");
    assert_eq!(d.remote_target, uri("sip:alice@198.51.100.5"));
    assert_eq!(
        d.handle_response(&Response::for_request(&reinvite, 481)),
        Err(DialogError::Ended { status: 481 })
    );
}

#[test]
fn missing_contact_and_secure_dialogs() {
    let no_contact =
        request(&INVITE.replace("Contact: <sip:alice@192.0.2.1:5062;transport=tcp>\r\n", ""));
    // RFC 2543 peers may send no Contact: the From URI becomes the remote target.
    let d = Dialog::new_uas(&no_contact, "t", uri("sip:ivr@192.0.2.99")).expect("dialog");
    assert_eq!(
        d.remote_target,
        no_contact.headers.from_addr().expect("from").uri
    );
    let sips = request(&INVITE.replace("INVITE sip:ivr@192.0.2.99", "INVITE sips:ivr@192.0.2.99"));
    assert!(
        Dialog::new_uas(&sips, "t", uri("sips:ivr@192.0.2.99"))
            .expect("dialog")
            .secure
    );
}

/// A dialog saved as JSON (a call snapshot) and read back is the same dialog: same ids,
/// route set (strict router included), CSeq both ways, target; it builds the same requests.
#[test]
fn a_saved_dialog_is_the_same_dialog() {
    let mut d = uas();
    d.route_set
        .insert(0, NameAddr::new(uri("sip:strict.example.com")));
    d.handle_request(&in_dialog("INFO", 101, None))
        .expect("in dialog");
    d.secure = true;
    let text = serde_json::to_string(&d).expect("serialise");
    assert!(
        text.contains("\"remote_target\":\"sip:alice@192.0.2.1:5062;transport=tcp\""),
        "{text}"
    );
    let mut back: Dialog = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, d);
    assert_eq!(back.remote_cseq, Some(101));
    assert_eq!(
        back.create_request(Method::Bye),
        d.create_request(Method::Bye)
    );
    assert!(serde_json::from_str::<Dialog>(&text.replace("sip:alice@", "sip:al ice@")).is_err());
}
