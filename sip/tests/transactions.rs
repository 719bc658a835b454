//! The four RFC 3261 §17 transaction machines in virtual time: retransmission schedules over
//! UDP, timeouts at 64*T1, absorption of retransmissions, the ACK for non-2xx finals, the
//! RFC 6026 Accepted states, and the reliable-transport variants.

use std::time::{Duration, Instant};

use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage};
use sip::transaction::{
    AckDisposition, ClientEvent, InviteClient, InviteClientState, InviteServer, InviteServerState,
    NonInviteClient, NonInviteClientState, NonInviteServer, NonInviteServerState, ServerEvent,
    ServerKey, TimerConfig, TxTransmit,
};

const INVITE: &str = "INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1;rport\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: tx-test-1\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:alice@192.0.2.1>\r\n\
Content-Length: 0\r\n\r\n";

fn request(text: &str) -> Request {
    match parse_datagram(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn invite() -> Request {
    request(INVITE)
}

fn options() -> Request {
    request(
        &INVITE
            .replace("INVITE sip", "OPTIONS sip")
            .replace("10 INVITE", "10 OPTIONS"),
    )
}

fn response(req: &Request, status: u16, tag: Option<&str>) -> Response {
    let mut r = Response::for_request(req, status);
    if let Some(tag) = tag {
        let to = r.headers.to_addr().expect("to").with_tag(tag);
        r.headers.set(HeaderName::To, to.to_string());
    }
    r
}

fn parse_sent(t: &TxTransmit) -> SipMessage {
    parse_datagram(&t.bytes).expect("we send parseable messages")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Drives a machine through its timers until `end`, returning the offsets (from `t0`) at which
/// it transmitted retransmissions.
macro_rules! run_until {
    ($tx:expr, $t0:expr, $end:expr) => {{
        let mut sent = Vec::new();
        while let Some(at) = $tx.poll_timeout() {
            if at > $t0 + $end {
                break;
            }
            $tx.handle_timeout(at);
            while let Some(t) = $tx.poll_transmit() {
                assert!(t.retransmission);
                sent.push(at - $t0);
            }
        }
        sent
    }};
}

#[test]
fn invite_client_timer_a_doubles_and_timer_b_times_out() {
    let t0 = Instant::now();
    let mut tx = InviteClient::new(t0, invite(), false, TimerConfig::default()).expect("tx");
    let first = tx.poll_transmit().expect("sent at once");
    assert!(!first.retransmission);
    let sent = run_until!(tx, t0, Duration::from_secs(40));
    let expected: Vec<Duration> = [500, 1500, 3500, 7500, 15500, 31500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(sent, expected, "Timer A: T1, doubling, no cap");
    assert_eq!(
        tx.poll_event(),
        Some(ClientEvent::Timeout),
        "Timer B at 64*T1"
    );
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn invite_client_non_2xx_is_acked_by_the_transaction() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteClient::new(t0, inv.clone(), false, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    tx.handle_response(t0 + ms(100), response(&inv, 180, Some("b1")));
    assert_eq!(tx.state(), InviteClientState::Proceeding);
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 180));
    assert_eq!(
        tx.poll_timeout(),
        None,
        "no retransmission nor Timer B once Proceeding"
    );

    let busy = response(&inv, 486, Some("b1"));
    tx.handle_response(t0 + ms(200), busy.clone());
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 486));
    assert_eq!(tx.state(), InviteClientState::Completed);
    let SipMessage::Request(ack) = parse_sent(&tx.poll_transmit().expect("ACK")) else {
        panic!("request")
    };
    // RFC 3261 §17.1.1.3.
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    assert_eq!(ack.headers.vias().expect("via").len(), 1);
    assert_eq!(
        ack.headers.top_via().expect("via").branch(),
        Some("z9hG4bKinv1")
    );
    assert_eq!(ack.headers.call_id(), Some("tx-test-1"));
    assert_eq!(ack.headers.from_addr().expect("from").tag(), Some("a1"));
    assert_eq!(ack.headers.to_addr().expect("to").tag(), Some("b1"));
    assert_eq!(ack.headers.cseq().expect("cseq").seq, 10);
    assert_eq!(ack.headers.cseq().expect("cseq").method, Method::Ack);
    assert_eq!(
        ack.headers.get(&HeaderName::Route),
        Some("<sip:proxy.example.com;lr>")
    );

    // A retransmitted final: the ACK again, nothing for the TU.
    tx.handle_response(t0 + ms(700), busy);
    assert!(tx.poll_transmit().expect("ACK again").retransmission);
    assert_eq!(tx.poll_event(), None);
    // Timer D: 32 s on UDP.
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + ms(200) + Duration::from_secs(32))
    );
    tx.handle_timeout(t0 + ms(200) + Duration::from_secs(32));
    assert!(tx.is_terminated());
}

#[test]
fn invite_client_accepted_state_passes_2xx_retransmissions_until_timer_m() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteClient::new(t0, inv.clone(), false, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    let ok = response(&inv, 200, Some("b1"));
    tx.handle_response(t0 + ms(300), ok.clone());
    assert_eq!(tx.state(), InviteClientState::Accepted);
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 200));
    assert_eq!(tx.poll_transmit(), None, "the ACK for a 2xx is the TU's");
    tx.handle_response(t0 + ms(800), ok.clone());
    assert!(
        matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 200),
        "retransmitted 2xx to the TU"
    );
    // A 2xx from another fork, too.
    tx.handle_response(t0 + ms(900), response(&inv, 200, Some("fork2")));
    assert!(
        matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.headers.to_addr().expect("to").tag() == Some("fork2"))
    );
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + ms(300) + Duration::from_secs(32)),
        "Timer M = 64*T1"
    );
    tx.handle_timeout(t0 + ms(300) + Duration::from_secs(32));
    assert!(tx.is_terminated());
}

#[test]
fn invite_client_over_tcp_never_retransmits() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteClient::new(t0, inv.clone(), true, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "only Timer B"
    );
    tx.handle_response(t0 + ms(50), response(&inv, 603, Some("x")));
    assert!(tx.poll_transmit().is_some(), "ACK");
    assert!(tx.is_terminated(), "Timer D is zero on reliable transports");

    let mut tx = InviteClient::new(t0, inv, true, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    assert!(run_until!(tx, t0, Duration::from_secs(40)).is_empty());
    assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
}

#[test]
fn non_invite_client_timer_e_caps_at_t2_and_timer_f_times_out() {
    let t0 = Instant::now();
    let mut tx = NonInviteClient::new(t0, options(), false, TimerConfig::default()).expect("tx");
    assert!(!tx.poll_transmit().expect("first").retransmission);
    let sent = run_until!(tx, t0, Duration::from_secs(40));
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sent, expected);
    assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
    assert!(tx.is_terminated());
}

#[test]
fn non_invite_client_proceeding_retransmits_at_t2_then_completes() {
    let t0 = Instant::now();
    let req = options();
    let mut tx = NonInviteClient::new(t0, req.clone(), false, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    tx.handle_response(t0 + ms(100), response(&req, 100, None));
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 100));
    // Timer E was armed for 500 ms; in Proceeding each firing re-arms it at T2.
    let sent = run_until!(tx, t0, ms(8600));
    assert_eq!(sent, vec![ms(500), ms(4500), ms(8500)]);
    let ok = response(&req, 200, Some("t"));
    tx.handle_response(t0 + Duration::from_secs(9), ok.clone());
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status == 200));
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    tx.handle_response(t0 + Duration::from_secs(10), ok);
    assert_eq!(tx.poll_event(), None, "retransmitted final absorbed");
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(14)),
        "Timer K = T4"
    );
    tx.handle_timeout(t0 + Duration::from_secs(14));
    assert!(tx.is_terminated());
}

#[test]
fn non_invite_client_over_tcp() {
    let t0 = Instant::now();
    let req = options();
    let mut tx = NonInviteClient::new(t0, req.clone(), true, TimerConfig::default()).expect("tx");
    tx.poll_transmit();
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "only Timer F"
    );
    tx.handle_response(t0 + ms(10), response(&req, 200, Some("t")));
    assert!(tx.is_terminated(), "Timer K is zero");
}

#[test]
fn invite_server_non_2xx_retransmits_with_timer_g_until_timer_h() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteServer::new(false, TimerConfig::default());
    tx.send_response(t0, &response(&inv, 100, None))
        .expect("100");
    assert!(!tx.poll_transmit().expect("100 sent").retransmission);
    tx.handle_retransmission();
    let again = tx.poll_transmit().expect("last provisional re-sent");
    assert!(again.retransmission);
    assert!(matches!(parse_sent(&again), SipMessage::Response(r) if r.status == 100));

    tx.send_response(t0 + ms(10), &response(&inv, 486, Some("s1")))
        .expect("486");
    assert_eq!(tx.state(), InviteServerState::Completed);
    tx.poll_transmit();
    tx.handle_retransmission();
    assert!(
        matches!(parse_sent(&tx.poll_transmit().expect("final re-sent")), SipMessage::Response(r) if r.status == 486)
    );
    let sent = run_until!(tx, t0 + ms(10), Duration::from_secs(40));
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sent, expected, "Timer G: T1 doubling, capped at T2");
    assert_eq!(
        tx.poll_event(),
        Some(ServerEvent::Timeout),
        "Timer H: no ACK"
    );
    assert!(tx.is_terminated());
}

#[test]
fn invite_server_ack_confirms_and_timer_i_cleans_up() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteServer::new(false, TimerConfig::default());
    tx.send_response(t0, &response(&inv, 404, Some("s1")))
        .expect("404");
    tx.poll_transmit();
    assert_eq!(tx.handle_ack(t0 + ms(100)), AckDisposition::Absorbed);
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert_eq!(
        tx.handle_ack(t0 + ms(200)),
        AckDisposition::Absorbed,
        "ACK retransmission"
    );
    tx.handle_retransmission();
    assert_eq!(tx.poll_transmit(), None, "nothing re-sent once Confirmed");
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + ms(100) + Duration::from_secs(5)),
        "Timer I = T4"
    );
    tx.handle_timeout(t0 + ms(100) + Duration::from_secs(5));
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_event(), None);
}

#[test]
fn invite_server_accepted_absorbs_invites_and_passes_acks() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteServer::new(false, TimerConfig::default());
    let ok = response(&inv, 200, Some("s1"));
    tx.send_response(t0, &ok).expect("200");
    tx.poll_transmit();
    assert_eq!(tx.state(), InviteServerState::Accepted);
    tx.handle_retransmission();
    assert_eq!(
        tx.poll_transmit(),
        None,
        "INVITE retransmission absorbed, not re-answered"
    );
    tx.send_response(t0 + ms(500), &ok)
        .expect("2xx retransmission from the TU");
    assert!(
        tx.poll_transmit()
            .expect("passed to the wire")
            .retransmission
    );
    assert_eq!(tx.handle_ack(t0 + ms(600)), AckDisposition::PassToTu);
    assert!(tx
        .send_response(t0 + ms(700), &response(&inv, 486, None))
        .is_err());
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "Timer L = 64*T1"
    );
    tx.handle_timeout(t0 + Duration::from_secs(32));
    assert!(tx.is_terminated());
}

#[test]
fn invite_server_over_tcp() {
    let t0 = Instant::now();
    let inv = invite();
    let mut tx = InviteServer::new(true, TimerConfig::default());
    tx.send_response(t0, &response(&inv, 486, Some("s1")))
        .expect("486");
    tx.poll_transmit();
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "only Timer H"
    );
    assert_eq!(tx.handle_ack(t0 + ms(10)), AckDisposition::Absorbed);
    assert!(tx.is_terminated(), "Timer I is zero");
}

#[test]
fn non_invite_server_absorbs_and_lingers_with_timer_j() {
    let t0 = Instant::now();
    let req = options();
    let mut tx = NonInviteServer::new(false, TimerConfig::default());
    tx.handle_retransmission();
    assert_eq!(tx.poll_transmit(), None, "Trying: absorbed silently");
    tx.send_response(t0, &response(&req, 183, None))
        .expect("1xx");
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    tx.poll_transmit();
    tx.handle_retransmission();
    assert!(
        matches!(parse_sent(&tx.poll_transmit().expect("1xx again")), SipMessage::Response(r) if r.status == 183)
    );
    tx.send_response(t0 + ms(100), &response(&req, 200, Some("t")))
        .expect("final");
    tx.poll_transmit();
    tx.handle_retransmission();
    assert!(
        matches!(parse_sent(&tx.poll_transmit().expect("final again")), SipMessage::Response(r) if r.status == 200)
    );
    assert!(
        tx.send_response(t0 + ms(200), &response(&req, 500, Some("t")))
            .is_err(),
        "second final discarded"
    );
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + ms(100) + Duration::from_secs(32)),
        "Timer J = 64*T1"
    );
    tx.handle_timeout(t0 + ms(100) + Duration::from_secs(32));
    assert!(tx.is_terminated());

    let mut tx = NonInviteServer::new(true, TimerConfig::default());
    tx.send_response(t0, &response(&req, 200, Some("t")))
        .expect("final");
    assert!(tx.is_terminated(), "Timer J is zero on TCP");
}

#[test]
fn configured_timers_scale_the_schedule() {
    let t0 = Instant::now();
    let config = TimerConfig {
        t1: ms(100),
        t2: ms(400),
        t4: ms(1000),
    };
    let mut tx = NonInviteClient::new(t0, options(), false, config).expect("tx");
    tx.poll_transmit();
    let sent = run_until!(tx, t0, Duration::from_secs(10));
    assert_eq!(sent.first(), Some(&ms(100)));
    assert_eq!(sent.last(), Some(&ms(6300)));
    assert_eq!(
        tx.poll_event(),
        Some(ClientEvent::Timeout),
        "Timer F at 64*T1 = 6.4 s"
    );
}

#[test]
fn rfc2543_keys_for_the_torture_messages() {
    let dir = std::env::var("SVI_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
        })
        .join("conformance/rfc4475");
    for file in ["badbranch.dat", "inv2543.dat"] {
        let bytes = std::fs::read(dir.join(file)).expect("corpus file");
        let Ok(SipMessage::Request(req)) = parse_datagram(&bytes) else {
            panic!("{file} parses")
        };
        let key = ServerKey::of_request(&req).expect("key");
        assert!(key.is_rfc2543(), "{file}: {key:?}");
        assert_eq!(
            ServerKey::of_request(&req).expect("key"),
            key,
            "a retransmission finds it again"
        );
    }
}
