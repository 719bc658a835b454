//! The test phone against itself and a tiny registrar: no engine. Two phones call each other
//! on loopback, each hears the other's tone and only that, digits cross both ways (RFC 4733
//! and SIP INFO), and every way a call ends is reported to both sides. Registration is
//! checked with MD5 and SHA-256 challenges, and an INVITE answers a 407 once.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sip::auth::{parse_credentials, Algorithm, DigestRequest, DigestServer, UserSecret};
use sip::message::{parse_datagram, HeaderName, Method, Request, Response, SipMessage};
use svi_tests::phone::{
    deadline, AnswerMode, Codec, DtmfVia, Ended, Phone, PhoneConfig, PhoneError, TONE_1100_HZ,
    TONE_1700_HZ, TONE_2300_HZ, TONE_500_HZ,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Long enough to hold a dozen frames, short enough to follow a tone change quickly.
const WINDOW: Duration = Duration::from_millis(300);

async fn phone(config: PhoneConfig) -> Phone {
    Phone::start(config).await.expect("start a test phone")
}

/// A calls B (auto-answer after ringing 200 ms) and both wait for the call to be up.
async fn connected(a: PhoneConfig, b: PhoneConfig) -> (Phone, Phone) {
    let mut a = phone(a).await;
    let mut b = phone(b.answer(AnswerMode::Auto {
        ring: Duration::from_millis(200),
    }))
    .await;
    a.call(&b.uri()).await.expect("A places the call");
    let from = b.wait_incoming(deadline(5)).await.expect("B rings");
    assert!(from.starts_with("sip:alice@"), "caller {from}");
    a.wait_ringing(deadline(5)).await.expect("A hears ringing");
    a.wait_answered(deadline(5)).await.expect("A: answered");
    b.wait_answered(deadline(5)).await.expect("B: ACK received");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_hear_each_other_exchange_digits_and_hang_up() {
    let (mut a, mut b) = connected(PhoneConfig::new("alice"), PhoneConfig::new("bob")).await;
    a.set_tone(TONE_500_HZ, -12.0);
    b.set_tone(TONE_1700_HZ, -12.0);

    let heard = b
        .wait_hears(TONE_500_HZ, WINDOW, deadline(5))
        .await
        .expect("B hears A's 500 Hz");
    assert!(heard > 0.9, "B: 500 Hz share {heard}");
    a.wait_hears(TONE_1700_HZ, WINDOW, deadline(5))
        .await
        .expect("A hears B's 1700 Hz");
    // A full window of the tones alone, then both directions at once.
    a.clear_received();
    b.clear_received();
    let frames = (WINDOW.as_millis() / 20) as u64 + 2;
    a.wait_frames(frames, deadline(5))
        .await
        .expect("A receives");
    b.wait_frames(frames, deadline(5))
        .await
        .expect("B receives");
    assert!(
        a.hears(TONE_1700_HZ, WINDOW),
        "A: {}",
        a.heard(TONE_1700_HZ, WINDOW)
    );
    assert!(
        !a.hears(TONE_500_HZ, WINDOW),
        "A: {}",
        a.heard(TONE_500_HZ, WINDOW)
    );
    assert!(
        b.hears(TONE_500_HZ, WINDOW),
        "B: {}",
        b.heard(TONE_500_HZ, WINDOW)
    );
    assert!(
        !b.hears(TONE_1700_HZ, WINDOW),
        "B: {}",
        b.heard(TONE_1700_HZ, WINDOW)
    );
    for f in [TONE_1100_HZ, TONE_2300_HZ] {
        assert!(
            a.heard(f, WINDOW) < 0.05 && b.heard(f, WINDOW) < 0.05,
            "{f} Hz"
        );
    }
    assert!(
        a.level_dbfs(WINDOW) > -20.0,
        "A's level {}",
        a.level_dbfs(WINDOW)
    );

    // The tone changes during the call.
    a.set_tone(TONE_2300_HZ, -20.0);
    b.wait_hears(TONE_2300_HZ, WINDOW, deadline(5))
        .await
        .expect("B hears the new tone");
    a.set_silence();

    a.send_dtmf("5#").expect("queue digits");
    assert_eq!(
        b.wait_dtmf(deadline(5)).await.expect("first digit"),
        ('5', DtmfVia::Rfc4733)
    );
    assert_eq!(
        b.wait_dtmf(deadline(5)).await.expect("second digit"),
        ('#', DtmfVia::Rfc4733)
    );
    b.send_dtmf_info('7').await.expect("send INFO");
    assert_eq!(
        a.wait_dtmf(deadline(5)).await.expect("INFO digit"),
        ('7', DtmfVia::SipInfo)
    );
    assert!(matches!(a.send_dtmf("x"), Err(PhoneError::BadDigit('x'))));

    a.hangup().await.expect("A hangs up");
    assert_eq!(
        b.wait_ended(deadline(5)).await.expect("B sees the end"),
        Ended::RemoteBye
    );
    assert_eq!(
        a.wait_ended(deadline(5)).await.expect("A's BYE answered"),
        Ended::LocalBye
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_are_negotiated_and_the_callee_can_hang_up() {
    // A prefers A-law, B accepts only A-law: the tone crosses PCMA both ways.
    let (mut a, mut b) = connected(
        PhoneConfig::new("alice").codecs(&[Codec::Pcma, Codec::Pcmu]),
        PhoneConfig::new("bob").codecs(&[Codec::Pcma]),
    )
    .await;
    a.set_tone(TONE_1100_HZ, -6.0);
    b.set_tone(TONE_2300_HZ, -30.0);
    b.wait_hears(TONE_1100_HZ, WINDOW, deadline(5))
        .await
        .expect("B hears 1100 Hz over PCMA");
    a.wait_hears(TONE_2300_HZ, WINDOW, deadline(5))
        .await
        .expect("A hears a quiet 2300 Hz over PCMA");
    b.hangup().await.expect("B hangs up");
    assert_eq!(
        a.wait_ended(deadline(5)).await.expect("A"),
        Ended::RemoteBye
    );
    assert_eq!(b.wait_ended(deadline(5)).await.expect("B"), Ended::LocalBye);

    // A second call on the same phones: waits refer to the new call, not the old one.
    a.call(&b.uri()).await.expect("second call");
    a.wait_answered(deadline(5))
        .await
        .expect("second call answered");
    b.wait_answered(deadline(5))
        .await
        .expect("second call confirmed");
    a.hangup().await.expect("hang up again");
    assert_eq!(
        b.wait_ended(deadline(5)).await.expect("B"),
        Ended::RemoteBye
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reject_and_busy() {
    let mut a = phone(PhoneConfig::new("alice")).await;
    let mut b = phone(PhoneConfig::new("bob").answer(AnswerMode::Manual)).await;

    // Cancelled while ringing.
    a.call(&b.uri()).await.expect("call");
    b.wait_incoming(deadline(5)).await.expect("B rings");
    a.wait_ringing(deadline(5)).await.expect("A hears ringing");
    a.hangup().await.expect("cancel");
    assert_eq!(
        a.wait_ended(deadline(5)).await.expect("A"),
        Ended::LocalCancel
    );
    assert_eq!(
        b.wait_ended(deadline(5)).await.expect("B"),
        Ended::RemoteCancel
    );

    // Rejected: the caller's wait for the answer fails at once with the status.
    a.call(&b.uri()).await.expect("call");
    b.wait_incoming(deadline(5)).await.expect("B rings again");
    b.reject(486).await.expect("reject");
    match a.wait_answered(deadline(5)).await {
        Err(PhoneError::CallEnded(Ended::Rejected { status: 486 }, _)) => {}
        other => panic!("expected a 486, got {other:?}"),
    }

    // Busy: B in a call answers a second INVITE 486.
    let mut c = phone(PhoneConfig::new("carol")).await;
    a.call(&b.uri()).await.expect("call");
    b.wait_incoming(deadline(5))
        .await
        .expect("B rings a third time");
    b.answer().await.expect("manual answer");
    a.wait_answered(deadline(5)).await.expect("answered");
    c.call(&b.uri()).await.expect("C calls");
    assert_eq!(
        c.wait_ended(deadline(5)).await.expect("C refused"),
        Ended::Rejected { status: 486 }
    );
    a.hangup().await.expect("hang up");
    assert_eq!(
        b.wait_ended(deadline(5)).await.expect("B"),
        Ended::RemoteBye
    );

    assert_eq!(a.wait_ended(deadline(5)).await.expect("A"), Ended::LocalBye);

    // The phone does no DNS: a URI must carry an IP address.
    assert!(matches!(
        a.call("sip:nobody@example.invalid").await,
        Err(PhoneError::BadUri(_))
    ));
    // A call in progress (not yet ended) refuses a second one.
    a.call(&b.uri()).await.expect("call");
    assert!(matches!(a.call(&b.uri()).await, Err(PhoneError::Busy)));
    b.wait_incoming(deadline(5)).await.expect("B rings");
    b.reject(603).await.expect("decline");
    assert_eq!(
        a.wait_ended(deadline(5)).await.expect("A"),
        Ended::Rejected { status: 603 }
    );
}

/// What the tiny registrar saw.
#[derive(Debug, PartialEq)]
enum Seen {
    /// A REGISTER, with the algorithm of its valid credentials if it had some.
    Register {
        authorized: Option<Algorithm>,
        expires: Option<u32>,
        contact: String,
    },
    Invite {
        authorized: bool,
    },
}

/// A registrar (and challenging proxy) on loopback: REGISTER with valid digest credentials for
/// user 1001 / `pw` gets 200, without them 401; INVITE without valid Proxy-Authorization gets
/// 407, with them 486 (it only checks the credentials).
async fn tiny_registrar(algorithm: Algorithm) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind registrar");
    let addr = socket.local_addr().expect("registrar address");
    let (seen, rx) = mpsc::unbounded_channel();
    let mut server = DigestServer::new("test.example", b"registrar key".to_vec())
        .with_algorithms(vec![algorithm]);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(SipMessage::Request(req)) = parse_datagram(&buf[..n]) else {
                continue;
            };
            let (header, method, challenge_status, challenge_header) = match req.method {
                Method::Register => (
                    HeaderName::Authorization,
                    "REGISTER",
                    401,
                    HeaderName::WwwAuthenticate,
                ),
                Method::Invite => (
                    HeaderName::ProxyAuthorization,
                    "INVITE",
                    407,
                    HeaderName::ProxyAuthenticate,
                ),
                _ => continue,
            };
            let response = answer(&mut server, &req, header, method, &seen);
            let response = response.unwrap_or_else(|| {
                let mut r = Response::for_request(&req, challenge_status).with_to_tag("reg");
                for c in server.challenges(unix_now(), false) {
                    r.headers.push(challenge_header.clone(), c.to_string());
                }
                r
            });
            let _ = socket.send_to(&response.to_bytes(), from).await;
        }
    });
    (addr, rx)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The final answer to an authorised request, `None` when it must be challenged.
fn answer(
    server: &mut DigestServer,
    req: &Request,
    header: HeaderName,
    method: &str,
    seen: &mpsc::UnboundedSender<Seen>,
) -> Option<Response> {
    let values: Vec<&str> = req.headers.get_all(&header).collect();
    let uri = req.uri.to_string();
    let dreq = DigestRequest {
        method,
        uri: &uri,
        body: Some(&req.body),
    };
    let verified = server
        .verify(&values, &dreq, unix_now(), |user, _| {
            (user == "1001").then(|| UserSecret::Password("pw".to_string()))
        })
        .is_ok();
    let algorithm = values
        .iter()
        .filter_map(|v| parse_credentials(v).ok())
        .flatten()
        .map(|c| c.algorithm)
        .next();
    if req.method == Method::Invite {
        let _ = seen.send(Seen::Invite {
            authorized: verified,
        });
        return verified.then(|| Response::for_request(req, 486).with_to_tag("reg"));
    }
    let expires = req.headers.expires().ok().flatten();
    let contact = req
        .headers
        .get(&HeaderName::Contact)
        .unwrap_or("")
        .to_string();
    let _ = seen.send(Seen::Register {
        authorized: algorithm.filter(|_| verified),
        expires,
        contact: contact.clone(),
    });
    verified.then(|| {
        let mut ok = Response::for_request(req, 200).with_to_tag("reg");
        ok.headers.push(
            HeaderName::Contact,
            format!("{contact};expires={}", expires.unwrap_or(300)),
        );
        ok
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_md5_and_sha256_and_unregisters() {
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let (registrar, mut seen) = tiny_registrar(algorithm.clone()).await;
        let phone = phone(PhoneConfig::new("1001").password("pw")).await;
        phone
            .register(registrar, deadline(5))
            .await
            .expect("registered");
        let contact = format!("<{}>", phone.uri());
        let first = seen.recv().await.expect("first REGISTER");
        assert_eq!(
            first,
            Seen::Register {
                authorized: None,
                expires: Some(300),
                contact: contact.clone()
            }
        );
        let second = seen.recv().await.expect("second REGISTER");
        assert_eq!(
            second,
            Seen::Register {
                authorized: Some(algorithm.clone()),
                expires: Some(300),
                contact: contact.clone()
            }
        );
        phone.unregister(deadline(5)).await.expect("unregistered");
        let last = loop {
            match seen.recv().await.expect("un-REGISTER") {
                Seen::Register {
                    authorized: Some(a),
                    expires,
                    ..
                } => break (a, expires),
                _ => continue,
            }
        };
        assert_eq!(last, (algorithm, Some(0)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_and_an_invite_answers_a_407() {
    let (registrar, mut seen) = tiny_registrar(Algorithm::Sha256).await;
    let wrong = phone(PhoneConfig::new("1001").password("not it")).await;
    assert!(matches!(
        wrong.register(registrar, deadline(5)).await,
        Err(PhoneError::Registration(_))
    ));

    let mut caller = phone(PhoneConfig::new("1001").password("pw")).await;
    while seen.try_recv().is_ok() {}
    caller
        .call(&format!("sip:queue@{registrar}"))
        .await
        .expect("call");
    match caller.wait_answered(deadline(5)).await {
        Err(PhoneError::CallEnded(Ended::Rejected { status: 486 }, _)) => {}
        other => panic!("expected the proxy's 486 after authentication, got {other:?}"),
    }
    assert_eq!(seen.recv().await, Some(Seen::Invite { authorized: false }));
    assert_eq!(seen.recv().await, Some(Seen::Invite { authorized: true }));
}
