//! The driver's edge over real sockets: the allow-list before any parsing or state, the TCP
//! connection caps and timeouts, a peer that does not read, SIP over TLS.
//!
//! Timeouts run in virtual time (`start_paused`): the sockets are real loopback sockets,
//! whose data is in the kernel when the sending call returns, and the runtime polls them
//! before it advances the clock, so an idle connection meets its deadline exactly.

use std::net::SocketAddr;
use std::time::Duration;

use sip::acl::{Acl, Network};
use sip::endpoint::{Peer, Transport};
use sip::message::{parse_datagram, HeaderName, Response, SipMessage};
use sip::transport::{
    start, DriverConfig, EdgeConfig, Refusal, SipEvent, SipHandle, StreamLimits, TlsConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{timeout, Instant};

fn only_127_0_0_1(refusal: Refusal) -> EdgeConfig {
    EdgeConfig {
        allowed: Acl::new(vec![Network::parse("127.0.0.1/32").expect("net")]),
        refusal,
    }
}

fn limits() -> StreamLimits {
    StreamLimits {
        max_connections: 20,
        max_per_source: 5,
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        write_queue: 4,
        ..StreamLimits::default()
    }
}

async fn driver(edge: EdgeConfig) -> (SipHandle, UnboundedReceiver<SipEvent>) {
    let config = DriverConfig {
        stream_limits: limits(),
        ..DriverConfig::new("127.0.0.1:0".parse().expect("addr"), edge)
    };
    let (sip, events, _task) = start(config).await.expect("driver starts");
    (sip, events)
}

fn request(method: &str, call_id: &str, via: &str) -> String {
    format!(
        "{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=f\r\nTo: <sip:100@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn next_request(events: &mut UnboundedReceiver<SipEvent>) -> (String, Peer) {
    loop {
        let ev = timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event")
            .expect("driver running");
        if let SipEvent::Request { request, from, .. } = ev {
            return (request.headers.call_id().unwrap_or("").to_string(), from);
        }
    }
}

async fn udp_from(ip: &str) -> UdpSocket {
    UdpSocket::bind(format!("{ip}:0")).await.expect("bind")
}

/// An OPTIONS over UDP from an allowed address; the Call-ID of the next request the TU gets.
async fn options_from_127_0_0_1(
    target: SocketAddr,
    call_id: &str,
    events: &mut UnboundedReceiver<SipEvent>,
) -> String {
    let socket = udp_from("127.0.0.1").await;
    let via = format!("UDP {}", socket.local_addr().expect("addr"));
    socket
        .send_to(request("OPTIONS", call_id, &via).as_bytes(), target)
        .await
        .expect("send");
    next_request(events).await.0
}

#[tokio::test]
async fn a_spoofed_invite_from_outside_gets_nothing_and_leaves_no_state() {
    let (sip, mut events) = driver(only_127_0_0_1(Refusal::Silent)).await;
    let target = sip.local_addr();
    let outsider = udp_from("127.0.0.2").await;
    let via = format!("UDP {}", outsider.local_addr().expect("addr"));
    outsider
        .send_to(request("INVITE", "spoofed", &via).as_bytes(), target)
        .await
        .expect("send");
    // An allowed peer's request, sent after it, is the first the TU hears of.
    assert_eq!(
        options_from_127_0_0_1(target, "allowed", &mut events).await,
        "allowed"
    );

    let stats = sip.stats().await.expect("stats");
    assert_eq!(stats.edge_refused, 1);
    // Only the OPTIONS made a transaction: nothing exists that could retransmit to the
    // outsider, and no 100 Trying went out.
    assert_eq!(stats.endpoint.server_transactions, 1, "{stats:?}");
    let mut buf = [0u8; 2048];
    assert!(outsider.try_recv_from(&mut buf).is_err(), "no packet back");
}

#[tokio::test]
async fn with_forbidden_a_refused_request_gets_exactly_one_403() {
    let (sip, mut events) = driver(only_127_0_0_1(Refusal::Forbidden)).await;
    let target = sip.local_addr();
    let outsider = udp_from("127.0.0.2").await;
    // The Via names a third party: the answer goes to the source all the same.
    outsider
        .send_to(
            request("INVITE", "spoofed", "UDP 192.0.2.7:5060").as_bytes(),
            target,
        )
        .await
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, from) = timeout(Duration::from_secs(10), outsider.recv_from(&mut buf))
        .await
        .expect("a 403")
        .expect("recv");
    assert_eq!(from, target);
    let Ok(SipMessage::Response(r)) = parse_datagram(&buf[..n]) else {
        panic!("a response")
    };
    assert_eq!(r.status, 403);
    assert!(r.headers.get(&HeaderName::Server).is_none(), "no Server");

    assert_eq!(
        options_from_127_0_0_1(target, "allowed", &mut events).await,
        "allowed"
    );
    let stats = sip.stats().await.expect("stats");
    assert_eq!(
        (stats.edge_refused, stats.endpoint.server_transactions),
        (1, 1)
    );
    assert!(outsider.try_recv_from(&mut buf).is_err(), "one packet only");
}

async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{ip}:0").parse().expect("addr"))
        .expect("bind");
    socket.connect(to).await.expect("connect")
}

/// Reads until the peer closes; the bytes read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    timeout(Duration::from_secs(3600), stream.read_to_end(&mut all))
        .await
        .expect("closed within the deadline")
        .expect("read");
    all
}

#[tokio::test(start_paused = true)]
async fn tcp_from_outside_is_closed_at_accept() {
    let (sip, _events) = driver(only_127_0_0_1(Refusal::Silent)).await;
    let mut outsider = connect_from("127.0.0.2", sip.local_addr()).await;
    let t0 = Instant::now();
    assert!(read_to_close(&mut outsider).await.is_empty());
    assert_eq!(t0.elapsed(), Duration::ZERO, "closed at once");
    let stats = sip.stats().await.expect("stats");
    assert_eq!((stats.edge_refused, stats.tcp.accepted), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn tcp_connections_are_capped_per_source_and_in_all() {
    let everyone = EdgeConfig {
        allowed: Acl::new(vec![Network::parse("127.0.0.0/8").expect("net")]),
        refusal: Refusal::Silent,
    };
    let (sip, mut events) = driver(everyone).await;
    let target = sip.local_addr();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from("127.0.0.5", target).await);
    }
    // Connections beyond the per-source cap (5) are closed at once; the others are open.
    let t0 = Instant::now();
    let mut closed = 0;
    for c in held.iter_mut().rev().take(3) {
        assert!(read_to_close(c).await.is_empty());
        closed += 1;
    }
    assert_eq!((closed, t0.elapsed()), (3, Duration::ZERO));
    let stats = sip.stats().await.expect("stats");
    assert_eq!(
        (stats.tcp.open, stats.tcp.refused_by_cap),
        (5, 3),
        "{stats:?}"
    );

    // Other sources fill the total cap (20)...
    for i in 0..15 {
        held.push(connect_from(&format!("127.0.1.{i}"), target).await);
    }
    let mut late = connect_from("127.0.0.9", target).await;
    assert!(read_to_close(&mut late).await.is_empty());
    assert_eq!(t0.elapsed(), Duration::ZERO);
    let stats = sip.stats().await.expect("stats");
    assert_eq!((stats.tcp.open, stats.tcp.refused_by_cap), (20, 4));

    // ...while UDP keeps working, and TCP again once the idle ones are gone.
    assert_eq!(
        options_from_127_0_0_1(target, "udp-call", &mut events).await,
        "udp-call"
    );
    drop(held);
    while sip.stats().await.expect("stats").tcp.open > 0 {
        tokio::task::yield_now().await;
    }
    let mut tcp_caller = connect_from("127.0.0.1", target).await;
    let via = format!("TCP {}", tcp_caller.local_addr().expect("addr"));
    tcp_caller
        .write_all(request("OPTIONS", "tcp-call", &via).as_bytes())
        .await
        .expect("write");
    assert_eq!(next_request(&mut events).await.0, "tcp-call");
}

#[tokio::test(start_paused = true)]
async fn a_slow_head_is_cut_at_the_head_timeout_and_a_quiet_peer_at_the_idle_timeout() {
    let (sip, mut events) = driver(only_127_0_0_1(Refusal::Silent)).await;
    let target = sip.local_addr();

    // Silent from the start: closed at the head timeout.
    let mut silent = connect_from("127.0.0.1", target).await;
    let t0 = Instant::now();
    read_to_close(&mut silent).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(10));

    // Half a head: the same.
    let mut slow = connect_from("127.0.0.1", target).await;
    slow.write_all(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x")
        .await
        .expect("write");
    let t0 = Instant::now();
    read_to_close(&mut slow).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(10));

    // A whole message, then silence: the idle timeout, counted from that message.
    let mut quiet = connect_from("127.0.0.1", target).await;
    let via = format!("TCP {}", quiet.local_addr().expect("addr"));
    quiet
        .write_all(request("OPTIONS", "quiet", &via).as_bytes())
        .await
        .expect("write");
    assert_eq!(next_request(&mut events).await.0, "quiet");
    let t0 = Instant::now();
    read_to_close(&mut quiet).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(60));
    let stats = sip.stats().await.expect("stats");
    assert_eq!((stats.tcp.timed_out, stats.tcp.open), (3, 0), "{stats:?}");
}

#[tokio::test]
async fn keep_alive_pings_get_a_pong() {
    let (sip, _events) = driver(only_127_0_0_1(Refusal::Silent)).await;
    let mut phone = connect_from("127.0.0.1", sip.local_addr()).await;
    phone.write_all(b"\r\n\r\n").await.expect("ping");
    let mut pong = [0u8; 2];
    timeout(Duration::from_secs(10), phone.read_exact(&mut pong))
        .await
        .expect("a pong")
        .expect("read");
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn a_peer_that_does_not_read_is_disconnected() {
    let (sip, mut events) = driver(only_127_0_0_1(Refusal::Silent)).await;
    let mut deaf = connect_from("127.0.0.1", sip.local_addr()).await;
    let via = format!("TCP {}", deaf.local_addr().expect("addr"));
    deaf.write_all(request("OPTIONS", "deaf", &via).as_bytes())
        .await
        .expect("write");
    let (_, from) = next_request(&mut events).await;
    assert_eq!(from.transport, Transport::Tcp);
    // Large messages until the socket buffers and the queue (4 messages) are full.
    let mut big = Response::new(200);
    big.body = bytes::Bytes::from(vec![b'x'; 60_000]);
    for _ in 0..1_000 {
        sip.send_stateless(SipMessage::Response(big.clone()), from);
        let stats = sip.stats().await.expect("stats");
        if stats.tcp.write_stalled > 0 {
            assert_eq!(stats.tcp.write_stalled, 1);
            return;
        }
    }
    panic!("the connection was never closed");
}

#[tokio::test]
async fn sip_over_tls_round_trip_with_a_client_certificate_check() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = sip::transport::tls::self_signed(dir.path(), &["127.0.0.1".to_string()])
        .expect("certificate");
    // The engine trusts its own certificate as a client CA: only a client holding that
    // identity gets through.
    let tls = TlsConfig::from_pem_files(&cert, &key, Some(&cert), Some(&cert)).expect("tls");
    let config = DriverConfig {
        tls: Some(("127.0.0.1:0".parse().expect("addr"), tls.clone())),
        stream_limits: limits(),
        ..DriverConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            only_127_0_0_1(Refusal::Silent),
        )
    };
    let (server, mut server_events, _t) = start(config.clone()).await.expect("server");
    let server_tls = server.tls_addr().expect("TLS bound");
    let (client, _client_events, _t2) = start(config).await.expect("client");

    // The client driver connects over TLS, presenting its certificate, and is heard.
    let mut options = sip::message::Request::new(
        sip::message::Method::Options,
        sip::message::Uri::parse(&format!("sips:100@{server_tls}")).expect("uri"),
    );
    let client_tls = client.tls_addr().expect("TLS bound");
    for (name, value) in [
        (
            "Via",
            format!("SIP/2.0/TLS {client_tls};branch=z9hG4bKtls1"),
        ),
        ("From", "<sips:a@example.com>;tag=t".to_string()),
        ("To", "<sips:100@example.com>".to_string()),
        ("Call-ID", "tls-1".to_string()),
        ("CSeq", "1 OPTIONS".to_string()),
    ] {
        options.headers.push(HeaderName::parse(name), value);
    }
    client
        .send_request(
            options,
            Peer {
                transport: Transport::Tls,
                addr: server_tls,
            },
        )
        .await
        .expect("sent");
    let (call_id, from) = next_request(&mut server_events).await;
    assert_eq!(
        (call_id.as_str(), from.transport),
        ("tls-1", Transport::Tls)
    );

    // A TLS client that trusts the server but has no certificate fails the handshake and is
    // never heard.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.cert_chain[0].clone()).expect("root");
    let no_cert = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(no_cert));
    let tcp = connect_from("127.0.0.1", server_tls).await;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    // TLS 1.3 reports the refusal on the first read after the handshake.
    if let Ok(mut stream) = connector.connect(name, tcp).await {
        let _ = stream
            .write_all(request("OPTIONS", "no-cert", "TLS 127.0.0.1:1").as_bytes())
            .await;
        let mut buf = Vec::new();
        let read = timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
            .await
            .expect("closed");
        assert!(read.is_err() || buf.is_empty(), "refused: {read:?}");
    }
    let stats = server.stats().await.expect("stats");
    assert_eq!(stats.endpoint.server_transactions, 1, "{stats:?}");
    assert_eq!(stats.tls.accepted, 2);
}
