//! The tokio transport driver over real UDP sockets: what it keeps per transaction goes when
//! the transaction ends, while a transaction still running keeps what its timeout needs.

use std::net::SocketAddr;
use std::time::Duration;

use sip::acl::{Acl, Network};
use sip::endpoint::{EndpointConfig, Peer, Transport};
use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage, Uri};
use sip::transport::{start, DriverConfig, DriverStats, EdgeConfig, SipEvent, SipHandle};
use tokio::net::UdpSocket;
use tokio::time::{timeout, Instant};

/// T1 of 40 ms: Timer F and Timer J (64 x T1) last 2.56 s, longer than one purge sweep (2 s).
fn config() -> DriverConfig {
    let edge = EdgeConfig {
        allowed: Acl::new(vec![Network::parse("127.0.0.1/32").expect("net")]),
        ..EdgeConfig::default()
    };
    DriverConfig {
        tcp: false,
        endpoint: EndpointConfig {
            t1: Duration::from_millis(40),
            t2: Duration::from_millis(160),
            t4: Duration::from_millis(200),
            ..EndpointConfig::default()
        },
        ..DriverConfig::new("127.0.0.1:0".parse().expect("address"), edge)
    }
}

fn options(i: usize, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {from};branch=z9hG4bKdrv{i}\r\n\
Max-Forwards: 70\r\n\
From: <sip:load@example.com>;tag=l{i}\r\n\
To: <sip:ivr@example.com>\r\n\
Call-ID: drv-{i}@example.com\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// Asks for the driver's statistics until `done` holds; fails after `within`.
async fn stats_until(
    sip: &SipHandle,
    within: Duration,
    what: &str,
    done: impl Fn(&DriverStats) -> bool,
) -> DriverStats {
    let deadline = Instant::now() + within;
    loop {
        let stats = sip.stats().await.expect("driver running");
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn call_ids_of_ended_transactions_are_dropped_and_live_ones_kept() {
    let (sip, mut events, _task) = start(config()).await.expect("driver starts");
    let target = sip.local_addr();

    // A peer that never answers: our OPTIONS to it runs until Timer F.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut lost = Request::new(
        Method::Options,
        Uri::parse(&format!(
            "sip:nobody@{}",
            silent.local_addr().expect("addr")
        ))
        .expect("uri"),
    );
    lost.headers
        .push(HeaderName::Via, format!("SIP/2.0/UDP {target};rport"));
    lost.headers
        .push(HeaderName::From, "<sip:ivr@example.com>;tag=i1");
    lost.headers
        .push(HeaderName::To, "<sip:nobody@example.com>");
    lost.headers.push(HeaderName::CallId, "lost-1");
    lost.headers.push(HeaderName::CSeq, "1 OPTIONS");
    let peer = Peer {
        transport: Transport::Udp,
        addr: silent.local_addr().expect("addr"),
    };
    let lost_tx = sip.send_request(lost, peer).await.expect("sent");

    // 500 requests from a caller, each answered 200 (one at a time: a burst would overflow
    // the sockets' buffers, and UDP has no flow control).
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let from = caller.local_addr().expect("addr");
    const N: usize = 500;
    let mut buf = vec![0u8; 4096];
    for i in 0..N {
        caller
            .send_to(options(i, from).as_bytes(), target)
            .await
            .expect("send");
        let (tx, request) = loop {
            let event = timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("the request reaches the TU")
                .expect("driver running");
            if let SipEvent::Request {
                tx: Some(tx),
                request,
                ..
            } = event
            {
                break (tx, request);
            }
        };
        sip.send_response(tx, Response::for_request(&request, 200));
        let (n, _) = timeout(Duration::from_secs(10), caller.recv_from(&mut buf))
            .await
            .expect("the request is answered")
            .expect("recv");
        match parse_datagram(&buf[..n]).expect("parseable") {
            SipMessage::Response(r) => assert_eq!(r.status, 200),
            other => panic!("expected a response, got {other:?}"),
        }
    }
    let peak = sip.stats().await.expect("stats");
    assert!(peak.endpoint.call_id_entries > N, "{peak:?}");

    // The lost request's transaction outlives a purge sweep and still reports its Call-ID.
    let timed_out = timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await.expect("driver running") {
                SipEvent::Timeout { tx, call_id } if tx == lost_tx => return call_id,
                _ => continue,
            }
        }
    })
    .await
    .expect("Timer F fires");
    assert_eq!(timed_out.as_deref(), Some("lost-1"));

    // Once every transaction has ended, the driver keeps nothing for them.
    let after = stats_until(&sip, Duration::from_secs(10), "tables emptied", |s| {
        let s = &s.endpoint;
        s.server_transactions == 0 && s.client_transactions == 0 && s.call_id_entries == 0
    })
    .await;
    assert!(after.endpoint.table_room <= 4 * 1024, "{after:?}");
    sip.shutdown();
}
