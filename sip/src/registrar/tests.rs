//! The registrar's scenarios: digest, bindings, expiry, sources.

use super::*;
use crate::auth::{parse_challenges, DigestClient};
use crate::endpoint::Transport;
use crate::message::{parse_datagram, SipMessage};

fn register(contact: &str, expires: Option<u32>, cseq: u32, auth: Option<&str>) -> Request {
    let mut text = format!(
        "REGISTER sip:svi.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\nFrom: <sip:1001@svi.test>;tag=a\r\nTo: <sip:1001@svi.test>\r\nCall-ID: reg-1001\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
    );
    if let Some(e) = expires {
        text.push_str(&format!("Expires: {e}\r\n"));
    }
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_datagram(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn secret(u: &str) -> Option<String> {
    (u == "1001").then(|| "pw1001".to_string())
}

/// Answers the registrar's challenge like a phone would.
/// The `Authorization` value answering `challenge` (a 401) as `user` with `password`.
fn answer(challenge: &Response, user: &str, password: &str) -> String {
    let challenges: Vec<_> = challenge
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .flat_map(|v| parse_challenges(v).expect("challenge"))
        .collect();
    let mut client = DigestClient::new(user, password);
    client
        .on_challenge(crate::auth::ChallengeKind::Www, &challenges)
        .expect("usable challenge");
    client
        .authorize(
            &DigestRequest {
                method: "REGISTER",
                uri: "sip:svi.test",
                body: None,
            },
            "cnonce1",
        )
        .expect("authorize")[0]
        .header_value()
}

fn authorise(
    reg: &mut Registrar,
    now: Instant,
    contact: &str,
    expires: Option<u32>,
    cseq: u32,
) -> (Response, BindingChange) {
    authorise_from(reg, now, contact, expires, cseq, udp(), false)
}

/// As `authorise`, from `source`, with user 1001 on a call or not.
fn authorise_from(
    reg: &mut Registrar,
    now: Instant,
    contact: &str,
    expires: Option<u32>,
    cseq: u32,
    source: impl Into<Origin> + Copy,
    on_call: bool,
) -> (Response, BindingChange) {
    let first = reg.handle(
        now,
        1_000,
        &register(contact, expires, cseq, None),
        source,
        secret,
        |_| on_call,
    );
    assert_eq!(
        (first.response.status, &first.change, &first.auth),
        (401, &BindingChange::None, &AuthOutcome::Challenged)
    );
    let value = answer(&first.response, "1001", "pw1001");
    let r = reg.handle(
        now,
        1_001,
        &register(contact, expires, cseq + 1, Some(&value)),
        source,
        secret,
        |_| on_call,
    );
    assert_eq!(
        r.auth,
        AuthOutcome::Passed {
            user: "1001".into()
        }
    );
    (r.response, r.change)
}

fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().expect("addr"),
    }
}

fn registrar() -> Registrar {
    Registrar::new("svi.test", b"key", vec![Algorithm::Sha256, Algorithm::Md5])
}

#[test]
fn challenge_then_binding_then_expiry() {
    let mut reg = registrar();
    let t0 = Instant::now();
    let (ok, change) = authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(120), 1);
    assert_eq!(ok.status, 200);
    assert_eq!(
        change,
        BindingChange::Registered {
            user: "1001".into()
        }
    );
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:1001@127.0.0.1:5070>;expires=120")
    );
    assert_eq!(reg.contacts("1001", t0).len(), 1);
    assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    assert_eq!(
        reg.expire(t0 + Duration::from_secs(121)),
        vec!["1001".to_string()]
    );
    assert!(reg
        .contacts("1001", t0 + Duration::from_secs(121))
        .is_empty());
}

#[test]
fn unregister_min_expires_and_wrong_password() {
    let mut reg = registrar();
    let t0 = Instant::now();
    let (r, _) = authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(10), 1);
    assert_eq!(
        (r.status, r.headers.get(&HeaderName::MinExpires)),
        (423, Some("60"))
    );
    authorise(&mut reg, t0, "<sip:1001@127.0.0.1:5070>", Some(300), 3);
    let (r, change) = authorise(&mut reg, t0, "*", Some(0), 5);
    assert_eq!(
        (r.status, change),
        (
            200,
            BindingChange::Unregistered {
                user: "1001".into()
            }
        )
    );
    let bad = register("<sip:1001@x>", None, 9, Some("Digest username=\"1001\", realm=\"svi.test\", nonce=\"x\", uri=\"sip:svi.test\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\""));
    let r = reg.handle(t0, 1_000, &bad, udp(), secret, |_| false);
    // A nonce that is not ours: nothing was checked.
    assert_eq!((r.response.status, r.auth), (401, AuthOutcome::Challenged));
}

/// `reg`'s answer to a REGISTER without credentials.
fn unauthenticated(reg: &mut Registrar) -> Registration {
    reg.handle(
        Instant::now(),
        1_000,
        &register("<sip:x@h>", None, 1, None),
        udp(),
        secret,
        |_| false,
    )
}

/// Credentials for `user` with `password`, answering a challenge of `reg`.
fn guess(reg: &mut Registrar, user: &str, password: &str) -> Registration {
    let challenge = unauthenticated(reg);
    let auth = answer(&challenge.response, user, password);
    let text = format!(
        "REGISTER sip:svi.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKg\r\nFrom: <sip:{user}@svi.test>;tag=a\r\nTo: <sip:{user}@svi.test>\r\nCall-ID: g\r\nCSeq: 2 REGISTER\r\nContact: <sip:{user}@127.0.0.1:5070>\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n"
    );
    let Ok(SipMessage::Request(req)) = parse_datagram(text.as_bytes()) else {
        panic!("request")
    };
    reg.handle(Instant::now(), 1_001, &req, udp(), secret, |_| false)
}

#[test]
fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let mut reg = registrar();
    let wrong = guess(&mut reg, "1001", "not-it");
    let unknown = guess(&mut reg, "9999", "pw1001");
    for (r, user) in [(&wrong, "1001"), (&unknown, "9999")] {
        assert_eq!(r.response.status, 401);
        assert_eq!(r.auth, AuthOutcome::Failed { user: user.into() });
    }
    let names = |r: &Registration| -> Vec<String> {
        r.response
            .headers
            .iter()
            .map(|h| h.name.to_string())
            .collect()
    };
    assert_eq!(names(&wrong), names(&unknown));
    assert_eq!(guess(&mut reg, "1001", "pw1001").response.status, 200);
}

#[test]
fn behind_one_proxy_the_client_address_tells_devices_apart() {
    let mut reg = registrar();
    let t0 = Instant::now();
    let proxy = Peer {
        transport: Transport::Udp,
        addr: "192.0.2.10:5060".parse().expect("addr"),
    };
    let from = |client: &str| Origin {
        peer: proxy,
        client: client.parse().expect("ip"),
    };
    let phone = "<sip:1001@198.51.100.7:5070>";
    authorise_from(
        &mut reg,
        t0,
        phone,
        Some(300),
        1,
        from("198.51.100.7"),
        false,
    );
    // Another device through the same proxy, while the agent is on a call: refused.
    let (r, change) = authorise_from(
        &mut reg,
        t0,
        "<sip:1001@198.51.100.8:5070>",
        Some(300),
        10,
        from("198.51.100.8"),
        true,
    );
    assert_eq!((r.status, change), (403, BindingChange::None));
    // The agent's own phone, through the proxy, refreshes during the call.
    let (r, _) = authorise_from(
        &mut reg,
        t0,
        phone,
        Some(300),
        20,
        from("198.51.100.7"),
        true,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_register_from_elsewhere_does_not_take_an_agent_on_a_call() {
    let mut reg = registrar();
    let t0 = Instant::now();
    let phone = "<sip:1001@127.0.0.1:5070>";
    authorise(&mut reg, t0, phone, Some(300), 1);
    let intruder = Peer {
        transport: Transport::Udp,
        addr: "127.0.0.9:5099".parse().expect("addr"),
    };
    for contact in ["<sip:1001@127.0.0.9:5099>", "*"] {
        let expires = (contact == "*").then_some(0).or(Some(300));
        let (r, change) = authorise_from(&mut reg, t0, contact, expires, 10, intruder, true);
        assert_eq!((r.status, change), (403, BindingChange::None), "{contact}");
        assert!(r.headers.get(&HeaderName::Warning).is_some());
    }
    assert_eq!(
        reg.contacts("1001", t0),
        vec![Uri::parse("sip:1001@127.0.0.1:5070").expect("uri")]
    );
    // Its own phone refreshes during the call; once the call ends, another may come.
    let (r, _) = authorise_from(&mut reg, t0, phone, Some(300), 20, udp(), true);
    assert_eq!(r.status, 200);
    let (r, _) = authorise_from(
        &mut reg,
        t0,
        "<sip:1001@127.0.0.9:5099>",
        Some(300),
        30,
        intruder,
        false,
    );
    assert_eq!(r.status, 200);
    assert_eq!(reg.contacts("1001", t0).len(), 2);
}

#[test]
fn a_phone_on_a_stream_is_reached_on_its_connection() {
    let mut reg = registrar();
    let t0 = Instant::now();
    let tls = Peer {
        transport: Transport::Tls,
        addr: "127.0.0.1:40123".parse().expect("addr"),
    };
    let first = reg.handle(
        t0,
        1_000,
        &register(
            "<sip:1001@127.0.0.1:5071;transport=tls>",
            Some(300),
            1,
            None,
        ),
        tls,
        secret,
        |_| false,
    );
    let value = answer(&first.response, "1001", "pw1001");
    let ok = reg.handle(
        t0,
        1_001,
        &register(
            "<sip:1001@127.0.0.1:5071;transport=tls>",
            Some(300),
            2,
            Some(&value),
        ),
        tls,
        secret,
        |_| false,
    );
    // The phone sees its own Contact; the engine rings its connection.
    assert_eq!(
        ok.response.headers.get(&HeaderName::Contact),
        Some("<sip:1001@127.0.0.1:5071;transport=tls>;expires=300")
    );
    assert_eq!(
        reg.contacts("1001", t0),
        vec![Uri::parse("sip:1001@127.0.0.1:40123;transport=tls").expect("uri")]
    );
}

#[test]
fn challenges_follow_the_configured_algorithms() {
    for (algorithms, expected) in [
        (
            vec![Algorithm::Sha256, Algorithm::Md5],
            vec!["SHA-256", "MD5"],
        ),
        (vec![Algorithm::Md5], vec!["MD5"]),
    ] {
        let mut reg = Registrar::new("svi.test", b"key", algorithms);
        let r = unauthenticated(&mut reg);
        let offered: Vec<String> = r
            .response
            .headers
            .get_all(&HeaderName::WwwAuthenticate)
            .flat_map(|v| parse_challenges(v).expect("challenge"))
            .map(|c| c.algorithm.to_string())
            .collect();
        assert_eq!(offered, expected);
    }
}
