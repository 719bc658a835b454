//! The endpoint as the engine drives it, in virtual time and without sockets: what goes on the
//! wire, what the TU is told, and what is absorbed, for the scenarios RFC 3261 cares about,
//! plus the whole RFC 4475 corpus fed through `handle_datagram`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sip::endpoint::{
    new_branch, Endpoint, EndpointConfig, EndpointEvent, Peer, ServerTxId, Transmit, Transport,
};
use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage, Uri};

fn udp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().expect("socket address"),
    }
}

fn tcp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: addr.parse().expect("socket address"),
    }
}

const ALICE: &str = "192.0.2.1:5060";

fn invite_text(branch: &str) -> String {
    format!(
        "INVITE sip:ivr@192.0.2.99 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:ivr@example.com>\r\n\
Call-ID: call-1@example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.1>\r\n\
Timestamp: 54\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn with_method(text: &str, method: &str) -> String {
    text.replacen("INVITE sip", &format!("{method} sip"), 1)
        .replace("1 INVITE", &format!("1 {method}"))
}

struct Harness {
    ep: Endpoint,
    t0: Instant,
}

impl Harness {
    fn new() -> Self {
        Harness {
            ep: Endpoint::new(EndpointConfig::default()),
            t0: Instant::now(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn feed(&mut self, ms: u64, from: Peer, text: &str) {
        let now = self.at(ms);
        self.ep.handle_datagram(now, from, text.as_bytes());
    }

    fn sent(&mut self) -> Vec<(Peer, SipMessage)> {
        let mut out = Vec::new();
        while let Some(Transmit { peer, bytes }) = self.ep.poll_transmit() {
            out.push((
                peer,
                parse_datagram(&bytes).expect("the endpoint sends parseable messages"),
            ));
        }
        out
    }

    fn statuses(&mut self) -> Vec<u16> {
        self.sent()
            .into_iter()
            .map(|(_, m)| match m {
                SipMessage::Response(r) => r.status,
                SipMessage::Request(r) => panic!("unexpected request {}", r.method),
            })
            .collect()
    }

    fn events(&mut self) -> Vec<EndpointEvent> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Runs timers up to `ms`, returning when each transmit went out.
    fn run_until(&mut self, ms: u64) -> Vec<(Duration, SipMessage)> {
        let mut out = Vec::new();
        while let Some(at) = self.ep.poll_timeout() {
            if at > self.at(ms) {
                break;
            }
            self.ep.handle_timeout(at);
            for (_, m) in self.sent() {
                out.push((at - self.t0, m));
            }
        }
        out
    }

    /// Feeds a request and returns the server transaction the TU got it on.
    fn incoming(&mut self, ms: u64, from: Peer, text: &str) -> (ServerTxId, Request) {
        self.feed(ms, from, text);
        match self.events().as_slice() {
            [EndpointEvent::Request {
                tx: Some(tx),
                request,
                ..
            }] => (*tx, request.clone()),
            other => panic!("expected one request event, got {other:?}"),
        }
    }
}

fn answer(req: &Request, status: u16) -> Response {
    let mut r = Response::for_request(req, status);
    let to = r.headers.to_addr().expect("to").with_tag("ivr1");
    r.headers.set(HeaderName::To, to.to_string());
    r
}

fn response_text(req: &Request, status: u16, tag: &str) -> String {
    let mut r = Response::for_request(req, status);
    if !tag.is_empty() {
        let to = r.headers.to_addr().expect("to").with_tag(tag);
        r.headers.set(HeaderName::To, to.to_string());
    }
    String::from_utf8(r.to_bytes()).expect("utf8")
}

fn outgoing(method: Method, via_branch: Option<&str>) -> Request {
    let mut req = Request::new(
        method.clone(),
        Uri::parse("sip:bob@192.0.2.50").expect("uri"),
    );
    let via = match via_branch {
        Some(b) => format!("SIP/2.0/UDP 192.0.2.99:5060;rport;branch={b}"),
        None => "SIP/2.0/UDP 192.0.2.99:5060;rport".to_string(),
    };
    req.headers.push(HeaderName::Via, via);
    req.headers
        .push(HeaderName::From, "<sip:ivr@example.com>;tag=i1");
    req.headers.push(HeaderName::To, "<sip:bob@example.com>");
    req.headers.push(HeaderName::CallId, "out-1");
    req.headers.push(HeaderName::CSeq, format!("5 {method}"));
    req.headers
        .push(HeaderName::Contact, "<sip:ivr@192.0.2.99>");
    req
}

#[test]
fn options_round_trip_as_client() {
    let mut h = Harness::new();
    let bob = udp("192.0.2.50:5060");
    let tx =
        h.ep.send_request(h.at(0), outgoing(Method::Options, None), bob);
    let sent = h.sent();
    let [(peer, SipMessage::Request(req))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(*peer, bob);
    let branch = req
        .headers
        .top_via()
        .expect("via")
        .branch()
        .map(str::to_string)
        .expect("branch added");
    assert!(branch.starts_with("z9hG4bK") && branch.len() > 7);
    assert_eq!(req.headers.get(&HeaderName::UserAgent), Some("svi"));
    assert_eq!(req.headers.max_forwards().expect("mf"), Some(70));

    h.feed(300, bob, &response_text(req, 200, "b1"));
    assert!(
        matches!(h.events().as_slice(), [EndpointEvent::Response { tx: t, response }] if *t == tx && response.status == 200)
    );
    // Retransmitted 200: absorbed by the Completed transaction, then Timer K (T4) ends it.
    h.feed(400, bob, &response_text(req, 200, "b1"));
    assert!(h.events().is_empty());
    assert_eq!(h.ep.stats().retransmissions_absorbed, 1);
    assert!(h.run_until(6000).is_empty());
    assert_eq!(h.ep.stats().client_transactions, 0);
    assert_eq!(h.ep.poll_timeout(), None);
}

#[test]
fn options_round_trip_as_server_absorbs_retransmissions() {
    let mut h = Harness::new();
    let text = with_method(&invite_text("z9hG4bKopt1"), "OPTIONS");
    let (tx, req) = h.incoming(0, udp(ALICE), &text);
    assert!(h.sent().is_empty(), "no 100 Trying for non-INVITE");
    h.feed(500, udp(ALICE), &text);
    assert!(
        h.events().is_empty() && h.sent().is_empty(),
        "absorbed in Trying"
    );
    h.ep.send_response(h.at(600), tx, answer(&req, 200));
    let sent = h.sent();
    let [(peer, SipMessage::Response(ok))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(*peer, udp(ALICE));
    assert_eq!(ok.headers.get(&HeaderName::Server), Some("svi"));
    h.feed(1500, udp(ALICE), &text);
    assert_eq!(h.statuses(), vec![200], "the 200 re-sent from memory");
    assert!(h.events().is_empty());
    assert_eq!(h.ep.stats().retransmissions_absorbed, 2);
    h.run_until(600 + 32_000);
    assert_eq!(h.ep.stats().server_transactions, 0, "Timer J");
}

#[test]
fn tables_give_back_their_room_after_a_burst() {
    // A burst of 5,000 requests, each answered: their transactions stay for Timer J, then the
    // tables shrink instead of keeping the room of the peak.
    let mut h = Harness::new();
    for i in 0..5_000 {
        let text = with_method(&invite_text(&format!("z9hG4bKburst{i}")), "OPTIONS")
            .replace("call-1@", &format!("call-{i}@"));
        let (tx, req) = h.incoming(0, udp(ALICE), &text);
        h.ep.send_response(h.at(0), tx, answer(&req, 200));
    }
    h.sent();
    let peak = h.ep.stats();
    assert_eq!(peak.server_transactions, 5_000);
    assert!(peak.table_room >= 10_000, "{peak:?}");
    h.run_until(32_000 + 1);
    let after = h.ep.stats();
    assert_eq!(after.server_transactions, 0, "Timer J");
    assert!(
        after.table_room <= 4 * 1024,
        "the tables still hold room for {} entries",
        after.table_room
    );
    // And they grow again when needed.
    let text = with_method(&invite_text("z9hG4bKafter"), "OPTIONS");
    let (tx, req) = h.incoming(40_000, udp(ALICE), &text);
    h.ep.send_response(h.at(40_000), tx, answer(&req, 200));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(h.ep.stats().server_transactions, 1);
}

#[test]
fn invite_gets_100_at_once_and_2xx_is_retransmitted_until_the_ack() {
    let mut h = Harness::new();
    let text = invite_text("z9hG4bKinv1");
    let (tx, req) = h.incoming(0, udp(ALICE), &text);
    let sent = h.sent();
    let [(peer, SipMessage::Response(trying))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!((*peer, trying.status), (udp(ALICE), 100));
    assert_eq!(
        trying.headers.to_addr().expect("to").tag(),
        None,
        "To copied as received"
    );
    assert_eq!(trying.headers.get(&HeaderName::Timestamp), Some("54"));

    // The INVITE retransmitted while the TU thinks: the 100 again, nothing for the TU.
    h.feed(400, udp(ALICE), &text);
    assert_eq!(h.statuses(), vec![100]);
    assert!(h.events().is_empty());

    h.ep.send_response(h.at(1000), tx, answer(&req, 180));
    h.ep.send_response(h.at(2000), tx, answer(&req, 200));
    assert_eq!(h.statuses(), vec![180, 200]);
    let resent: Vec<u64> = h
        .run_until(10_000)
        .iter()
        .map(|(at, _)| at.as_millis() as u64)
        .collect();
    assert_eq!(
        resent,
        vec![2500, 3500, 5500, 9500],
        "T1, doubling to T2, from the first 2xx"
    );
    // An INVITE retransmission now is absorbed by the Accepted transaction (RFC 6026).
    h.feed(9600, udp(ALICE), &text);
    assert!(h.sent().is_empty() && h.events().is_empty());

    let ack = "ACK sip:ivr@192.0.2.99 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:ivr@example.com>;tag=ivr1\r\nCall-ID: call-1@example.com\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    h.feed(9700, udp(ALICE), ack);
    assert!(
        matches!(h.events().as_slice(), [EndpointEvent::Request { tx: None, request, .. }] if request.method == Method::Ack)
    );
    assert_eq!(h.ep.stats().awaiting_ack, 0);
    assert!(h.run_until(60_000).is_empty(), "no more 2xx after the ACK");
    assert!(h.events().is_empty());
    assert_eq!(h.ep.stats().server_transactions, 0, "Timer L");
}

#[test]
fn unacknowledged_2xx_ends_in_ack_timeout() {
    let mut h = Harness::new();
    let (tx, req) = h.incoming(0, udp(ALICE), &invite_text("z9hG4bKinv2"));
    h.sent();
    h.ep.send_response(h.at(100), tx, answer(&req, 200));
    h.sent();
    let resent = h.run_until(40_000);
    assert_eq!(resent.len(), 10, "T1, 2T1, 4T1, then every T2 until 64*T1");
    assert_eq!(h.events(), vec![EndpointEvent::AckTimeout { tx }]);
    assert_eq!(h.ep.poll_timeout(), None);
}

#[test]
fn cancel_answers_200_then_the_tu_answers_487_and_the_ack_is_absorbed() {
    let mut h = Harness::new();
    let text = invite_text("z9hG4bKinv3");
    let (tx, req) = h.incoming(0, udp(ALICE), &text);
    h.sent();
    h.ep.send_response(h.at(100), tx, answer(&req, 180));
    h.sent();
    let cancel = with_method(&text, "CANCEL");
    h.feed(1000, udp(ALICE), &cancel);
    let sent = h.sent();
    let [(_, SipMessage::Response(ok))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.cseq().expect("cseq").method, Method::Cancel);
    assert_eq!(
        ok.headers.to_addr().expect("to").tag(),
        Some("ivr1"),
        "same To tag as the 180"
    );
    assert_eq!(h.events(), vec![EndpointEvent::Cancelled { tx }]);
    // A retransmitted CANCEL: its 200 again, no second Cancelled.
    h.feed(1400, udp(ALICE), &cancel);
    assert_eq!(h.statuses(), vec![200]);
    assert!(h.events().is_empty());

    h.ep.send_response(h.at(1100), tx, answer(&req, 487));
    assert_eq!(h.statuses(), vec![487]);
    let ack = with_method(&text, "ACK").replace(
        "To: <sip:ivr@example.com>",
        "To: <sip:ivr@example.com>;tag=ivr1",
    );
    h.feed(1300, udp(ALICE), &ack);
    assert!(
        h.events().is_empty(),
        "the ACK of a non-2xx stays in the transaction"
    );
    let after: Vec<u16> = h
        .run_until(60_000)
        .into_iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Response(r) => Some(r.status),
            SipMessage::Request(_) => None,
        })
        .collect();
    assert!(
        !after.contains(&487),
        "Timer G stopped by the ACK: {after:?}"
    );
    assert_eq!(h.ep.stats().server_transactions, 0);
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut h = Harness::new();
    h.feed(
        0,
        udp(ALICE),
        &with_method(&invite_text("z9hG4bKnothing"), "CANCEL"),
    );
    let sent = h.sent();
    let [(_, SipMessage::Response(r))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(r.status, 481);
    assert!(r.headers.to_addr().expect("to").tag().is_some());
    assert!(h.events().is_empty());
}

#[test]
fn malformed_requests_get_400_or_505_with_their_headers() {
    let mut h = Harness::new();
    let bad = invite_text("z9hG4bKbad").replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    h.feed(0, udp(ALICE), &bad);
    let sent = h.sent();
    let [(peer, SipMessage::Response(r))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!((*peer, r.status), (udp(ALICE), 400));
    assert_eq!(r.headers.call_id(), Some("call-1@example.com"));
    assert_eq!(r.headers.get(&HeaderName::CSeq), Some("1 OPTIONS"));
    assert_eq!(
        r.headers.top_via().expect("via").branch(),
        Some("z9hG4bKbad")
    );
    assert_eq!(r.headers.from_addr().expect("from").tag(), Some("a1"));
    assert!(r
        .headers
        .get(&HeaderName::Warning)
        .expect("warning")
        .starts_with("399 - \"CSeq method"));
    assert!(h.events().is_empty());

    h.feed(
        10,
        udp(ALICE),
        &invite_text("z9hG4bKv").replace(
            "INVITE sip:ivr@192.0.2.99 SIP/2.0",
            "INVITE sip:ivr@192.0.2.99 SIP/7.0",
        ),
    );
    assert_eq!(h.statuses(), vec![505]);
    h.feed(20, udp(ALICE), "garbage\r\n\r\n");
    h.feed(30, udp(ALICE), "SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n");
    h.feed(40, udp(ALICE), "\r\n\r\n");
    assert!(h.sent().is_empty());
    let stats = h.ep.stats();
    assert_eq!((stats.malformed_answered, stats.malformed_dropped), (2, 2));
}

#[test]
fn stray_responses_are_dropped_and_counted() {
    let mut h = Harness::new();
    let req = outgoing(Method::Options, Some("z9hG4bKnotours"));
    h.feed(0, udp("192.0.2.50:5060"), &response_text(&req, 200, "x"));
    assert!(h.sent().is_empty() && h.events().is_empty());
    assert_eq!(h.ep.stats().stray_responses, 1);
}

#[test]
fn rfc2543_invite_is_a_transaction_too() {
    let mut h = Harness::new();
    let text = String::from_utf8(std::fs::read(corpus().join("inv2543.dat")).expect("corpus"))
        .expect("utf8");
    let from = udp("192.0.2.77:5090");
    let (tx, req) = h.incoming(0, from, &text);
    let sent = h.sent();
    let [(peer, SipMessage::Response(trying))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(trying.status, 100);
    // sent-by is a name: answer to the source IP at the sent-by port (5060), with `received`.
    assert_eq!(*peer, udp("192.0.2.77:5060"));
    assert_eq!(
        trying.headers.top_via().expect("via").received(),
        Some("192.0.2.77")
    );
    h.feed(500, from, &text);
    assert_eq!(h.statuses(), vec![100], "retransmission absorbed");
    assert!(h.events().is_empty());
    h.ep.send_response(h.at(600), tx, answer(&req, 486));
    assert_eq!(h.statuses(), vec![486]);
    // The RFC 2543 ACK: no branch, our To tag.
    let ack = text
        .replacen(
            "INVITE sip:UserB@example.com",
            "ACK sip:UserB@example.com",
            1,
        )
        .replace("CSeq: 56 INVITE", "CSeq: 56 ACK")
        .replace(
            "To: sip:+16505552222@ss1.example.net;user=phone",
            "To: <sip:+16505552222@ss1.example.net;user=phone>;tag=ivr1",
        );
    h.feed(700, from, &ack);
    assert!(
        h.events().is_empty(),
        "ACK matched by the RFC 2543 rules and absorbed"
    );
    assert!(h.run_until(60_000).is_empty(), "Timer G stopped");
}

#[test]
fn responses_follow_rport_and_received() {
    let mut h = Harness::new();
    let natted = udp("203.0.113.5:34567");
    let text =
        invite_text("z9hG4bKnat").replace("192.0.2.1:5060;branch", "10.0.0.7:5060;rport;branch");
    let (tx, req) = h.incoming(0, natted, &text);
    let via = req.headers.top_via().expect("via");
    assert_eq!(
        (via.received(), via.rport()),
        (Some("203.0.113.5"), Some(Some("34567")))
    );
    let sent = h.sent();
    assert_eq!(sent[0].0, natted, "100 to the source address and port");
    h.ep.send_response(h.at(10), tx, answer(&req, 486));
    assert_eq!(h.sent()[0].0, natted);

    // No rport: source IP with the sent-by port; over TCP: back to the connection.
    let text = invite_text("z9hG4bKnat2").replace("192.0.2.1:5060", "10.0.0.7:5070");
    h.feed(20, udp("203.0.113.5:34567"), &text);
    assert_eq!(h.sent()[0].0, udp("203.0.113.5:5070"));
    let text = invite_text("z9hG4bKnat3").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    h.feed(30, tcp("192.0.2.1:50123"), &text);
    assert_eq!(h.sent()[0].0, tcp("192.0.2.1:50123"));
}

#[test]
fn client_invite_cancel_and_non_2xx_ack() {
    let mut h = Harness::new();
    let bob = udp("192.0.2.50:5060");
    let tx =
        h.ep.send_request(h.at(0), outgoing(Method::Invite, Some(&new_branch())), bob);
    let sent = h.sent();
    let [(_, SipMessage::Request(invite))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let invite = invite.clone();
    // Before any provisional, the CANCEL waits (§9.1).
    let cancel_tx = h.ep.cancel(h.at(100), tx).expect("cancel accepted");
    assert_eq!(h.ep.cancel(h.at(100), tx), Some(cancel_tx), "idempotent");
    assert!(h.sent().is_empty());
    h.feed(200, bob, &response_text(&invite, 180, "b1"));
    assert!(
        matches!(h.events().as_slice(), [EndpointEvent::Response { response, .. }] if response.status == 180)
    );
    let sent = h.sent();
    let [(peer, SipMessage::Request(cancel))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!((*peer, &cancel.method), (bob, &Method::Cancel));
    assert_eq!(
        cancel.headers.top_via().expect("via"),
        invite.headers.top_via().expect("via")
    );
    assert_eq!(cancel.headers.cseq().expect("cseq").seq, 5);
    assert_eq!(cancel.headers.to_addr().expect("to").tag(), None);

    h.feed(300, bob, &response_text(cancel, 200, "b1"));
    assert!(
        matches!(h.events().as_slice(), [EndpointEvent::Response { tx: t, response }] if *t == cancel_tx && response.status == 200)
    );
    h.feed(350, bob, &response_text(&invite, 487, "b1"));
    assert!(
        matches!(h.events().as_slice(), [EndpointEvent::Response { tx: t, response }] if *t == tx && response.status == 487)
    );
    let sent = h.sent();
    let [(_, SipMessage::Request(ack))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.to_addr().expect("to").tag(), Some("b1"));
}

#[test]
fn client_2xx_retransmissions_reach_the_tu_until_timer_m() {
    let mut h = Harness::new();
    let bob = udp("192.0.2.50:5060");
    let tx =
        h.ep.send_request(h.at(0), outgoing(Method::Invite, None), bob);
    let sent = h.sent();
    let [(_, SipMessage::Request(invite))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let ok = response_text(invite, 200, "b1");
    assert!(h.ep.cancel(h.at(1), tx).is_some());
    h.feed(100, bob, &ok);
    assert!(matches!(h.events().as_slice(), [EndpointEvent::Response { tx: t, .. }] if *t == tx));
    assert!(
        h.sent().is_empty(),
        "the held CANCEL is dropped: the INVITE got its final"
    );
    assert_eq!(h.ep.cancel(h.at(101), tx), None, "nothing left to cancel");
    h.feed(600, bob, &ok);
    assert_eq!(
        h.events().len(),
        1,
        "2xx retransmission passed up for the ACK"
    );
    h.run_until(100 + 32_000);
    h.feed(33_000, bob, &ok);
    assert!(h.events().is_empty());
    assert_eq!(h.ep.stats().stray_responses, 1, "after Timer M it is stray");
}

#[test]
fn timeouts_and_transport_errors_reach_the_tu() {
    let mut h = Harness::new();
    let bob = udp("192.0.2.50:5060");
    let tx =
        h.ep.send_request(h.at(0), outgoing(Method::Options, None), bob);
    h.sent();
    assert_eq!(h.run_until(40_000).len(), 10);
    assert_eq!(h.events(), vec![EndpointEvent::Timeout { tx }]);

    let peer = tcp("192.0.2.50:5060");
    let tx =
        h.ep.send_request(h.at(41_000), outgoing(Method::Invite, None), peer);
    h.ep.handle_transport_error(h.at(41_001), peer);
    assert_eq!(h.events(), vec![EndpointEvent::Timeout { tx }]);
    assert_eq!(h.ep.stats().client_transactions, 0);
}

fn corpus() -> PathBuf {
    std::env::var("SVI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("conformance/rfc4475")
}

#[test]
fn rfc4475_corpus_through_the_endpoint() {
    let mut h = Harness::new();
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    files.sort();
    assert!(files.len() >= 49);
    let mut answered = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let bytes = std::fs::read(path).expect("read");
        let from = udp(&format!("192.0.2.{}:5060", 100 + i));
        h.ep.handle_datagram(h.at(i as u64), from, &bytes);
        // Answers echo the request's headers, broken ones included: read the status line only.
        while let Some(t) = h.ep.poll_transmit() {
            assert_eq!(
                t.peer.addr.ip(),
                from.addr.ip(),
                "{name}: answered to the source"
            );
            let status = t
                .bytes
                .get(8..11)
                .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u16>().ok());
            answered.push((name.clone(), status.expect("a status line")));
        }
        // Each parseable request reaches the TU once (even those reusing another's branch);
        // nothing else does.
        let events = h.events();
        let is_request = matches!(parse_datagram(&bytes), Ok(SipMessage::Request(_)));
        assert_eq!(events.len(), usize::from(is_request), "{name}: {events:?}");
        assert!(
            events
                .iter()
                .all(|e| matches!(e, EndpointEvent::Request { tx: Some(_), .. })),
            "{name}"
        );
    }
    let status_of = |f: &str| {
        answered
            .iter()
            .filter(|(n, _)| n == f)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
    };
    assert_eq!(status_of("badvers.dat"), vec![505]);
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
        assert_eq!(status_of(f), vec![400], "{f}");
    }
    for f in ["wsinv.dat", "inv2543.dat", "esc01.dat"] {
        assert_eq!(status_of(f), vec![100], "{f}: a normal INVITE, never 400");
    }
    for f in [
        "badbranch.dat",
        "intmeth.dat",
        "unreason.dat",
        "noreason.dat",
        "bigcode.dat",
        "scalarlg.dat",
        "bcast.dat",
    ] {
        assert!(
            status_of(f).is_empty(),
            "{f}: TU's business or dropped, got {:?}",
            status_of(f)
        );
    }
    let stats = h.ep.stats();
    assert_eq!(
        (stats.stray_responses, stats.malformed_dropped),
        (3, 2),
        "unreason/noreason/bcast; bigcode/scalarlg"
    );
    // Still serving afterwards.
    let (_, _) = h.incoming(
        10_000,
        udp(ALICE),
        &with_method(&invite_text("z9hG4bKafter"), "OPTIONS"),
    );
}

#[test]
fn mutated_corpus_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4475);
    let mut h = Harness::new();
    let seeds: Vec<Vec<u8>> = [
        "wsinv.dat",
        "inv2543.dat",
        "badbranch.dat",
        "unreason.dat",
        "escnull.dat",
    ]
    .iter()
    .map(|f| std::fs::read(corpus().join(f)).expect("corpus"))
    .collect();
    for i in 0..3000u64 {
        let mut bytes = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = rng.gen(),
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(
                    at,
                    *b";,<>\"\r\n :@".get(rng.gen_range(0..11)).unwrap_or(&b' '),
                ),
            }
        }
        h.ep.handle_datagram(h.at(i), udp("192.0.2.9:5060"), &bytes);
        while h.ep.poll_transmit().is_some() {}
        h.events();
        h.ep.handle_timeout(h.at(i));
    }
}
