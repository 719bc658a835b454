//! The registration client against a scripted registrar that uses the crate's own digest
//! server side: challenge, credentials, refresh, unregistration, 423, backoff, stale nonces.
//! Virtual time only.

use std::time::{Duration, Instant};

use sip::auth::{AuthError, DigestRequest, DigestServer, UserSecret};
use sip::message::{HeaderName, Method, Request, Response, Uri};
use sip::register::{
    RegisterError, RegistrationClient, RegistrationConfig, RegistrationEvent, RegistrationState,
};

const UNIX_BASE: u64 = 1_700_000_000;
const CONTACT: &str = "sip:ivr@192.0.2.10:5060";

fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

fn config() -> RegistrationConfig {
    RegistrationConfig::new(
        uri("sip:pbx.example.com"),
        uri("sip:ivr@pbx.example.com"),
        uri(CONTACT),
        "auth-user",
        "s3cret",
    )
}

/// A registrar: digest-protected, grants at most `max_grant`, optionally insists on a minimum.
struct Registrar {
    digest: DigestServer,
    password: String,
    min_expires: Option<u32>,
    max_grant: u32,
}

impl Registrar {
    fn new() -> Self {
        Registrar {
            digest: DigestServer::new("pbx.example.com", vec![7u8; 32]),
            password: "s3cret".into(),
            min_expires: None,
            max_grant: 1800,
        }
    }

    fn reply(req: &Request, status: u16) -> Response {
        let mut r = Response::for_request(req, status);
        let to = r.headers.to_addr().expect("to").with_tag("reg1");
        r.headers.set(HeaderName::To, to.to_string());
        r
    }

    fn challenge(&mut self, req: &Request, now_s: u64, stale: bool) -> Response {
        let mut r = Self::reply(req, 401);
        for c in self.digest.challenges(UNIX_BASE + now_s, stale) {
            r.headers.push(HeaderName::WwwAuthenticate, c.to_string());
        }
        r
    }

    fn answer(&mut self, req: &Request, now_s: u64) -> Response {
        assert_eq!(req.method, Method::Register);
        let auths: Vec<&str> = req.headers.get_all(&HeaderName::Authorization).collect();
        if auths.is_empty() {
            return self.challenge(req, now_s, false);
        }
        let target = req.uri.to_string();
        let dreq = DigestRequest {
            method: "REGISTER",
            uri: &target,
            body: None,
        };
        let password = self.password.clone();
        let verdict = self
            .digest
            .verify(&auths, &dreq, UNIX_BASE + now_s, |user, _| {
                (user == "auth-user").then_some(UserSecret::Password(password))
            });
        match verdict {
            Ok(user) => assert_eq!(user, "auth-user"),
            Err(AuthError::StaleNonce { .. }) => return self.challenge(req, now_s, true),
            Err(_) => return self.challenge(req, now_s, false),
        }
        let asked = req
            .headers
            .expires()
            .expect("expires")
            .expect("Expires present");
        if let Some(min) = self.min_expires.filter(|m| asked != 0 && asked < *m) {
            let mut r = Self::reply(req, 423);
            r.headers.push(HeaderName::MinExpires, min.to_string());
            return r;
        }
        let mut ok = Self::reply(req, 200);
        if asked > 0 {
            let granted = asked.min(self.max_grant);
            ok.headers.push(
                HeaderName::Contact,
                format!("<sip:other@192.0.2.77>;expires=99, <{CONTACT}>;expires={granted}"),
            );
        }
        ok
    }
}

struct Harness {
    client: RegistrationClient,
    registrar: Registrar,
    t0: Instant,
}

impl Harness {
    fn new(config: RegistrationConfig) -> Self {
        Harness {
            client: RegistrationClient::new(config),
            registrar: Registrar::new(),
            t0: Instant::now(),
        }
    }

    fn at(&self, s: u64) -> Instant {
        self.t0 + Duration::from_secs(s)
    }

    fn request(&mut self) -> Request {
        let r = self.client.poll_request().expect("a REGISTER");
        assert!(self.client.poll_request().is_none(), "one at a time");
        r
    }

    /// Lets the registrar answer every REGISTER the client has queued, at `s` seconds.
    fn exchange(&mut self, s: u64) -> Vec<Request> {
        let mut sent = Vec::new();
        while let Some(req) = self.client.poll_request() {
            let resp = self.registrar.answer(&req, s);
            self.client.handle_response(self.at(s), &resp);
            sent.push(req);
        }
        sent
    }

    fn events(&mut self) -> Vec<RegistrationEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

#[test]
fn challenge_register_refresh_unregister() {
    let mut h = Harness::new(config());
    h.registrar.digest =
        DigestServer::new("pbx.example.com", vec![7u8; 32]).with_nonce_lifetime(3600);
    h.client.register(h.at(0));
    assert_eq!(h.client.state(), &RegistrationState::Registering);
    let sent = h.exchange(0);
    assert_eq!(
        sent.len(),
        2,
        "REGISTER, 401, REGISTER with credentials, 200"
    );
    let (first, second) = (&sent[0], &sent[1]);
    assert_eq!(first.uri, uri("sip:pbx.example.com"));
    assert_eq!(first.headers.get(&HeaderName::Authorization), None);
    assert_eq!(first.headers.to_addr().expect("to").tag(), None);
    assert_eq!(
        first.headers.to_addr().expect("to").uri,
        uri("sip:ivr@pbx.example.com")
    );
    assert_eq!(
        first.headers.contacts().expect("contact")[0].uri,
        uri(CONTACT)
    );
    assert_eq!(first.headers.expires().expect("expires"), Some(3600));
    assert_eq!(
        first.headers.get(&HeaderName::Via),
        None,
        "the TU adds the Via"
    );
    assert_eq!(first.headers.cseq().expect("cseq").seq, 1);
    assert_eq!(second.headers.cseq().expect("cseq").seq, 2);
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        second.headers.get(&HeaderName::From),
        first.headers.get(&HeaderName::From)
    );
    let auth = second
        .headers
        .get(&HeaderName::Authorization)
        .expect("credentials");
    assert!(
        auth.contains("username=\"auth-user\"") && auth.contains("algorithm=SHA-256"),
        "{auth}"
    );

    let expires_at = h.at(1800);
    assert_eq!(
        h.client.state(),
        &RegistrationState::Registered { expires_at }
    );
    assert_eq!(
        h.events(),
        vec![RegistrationEvent::Registered {
            expires: 1800,
            expires_at,
            refreshed: false
        }]
    );
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.at(900)),
        "refresh after half the granted time"
    );

    h.client.handle_timeout(h.at(900));
    let sent = h.exchange(900);
    assert_eq!(sent.len(), 1, "the refresh carries credentials at once");
    assert_eq!(sent[0].headers.cseq().expect("cseq").seq, 3);
    assert_eq!(sent[0].headers.call_id(), first.headers.call_id());
    assert!(sent[0]
        .headers
        .get(&HeaderName::Authorization)
        .expect("auth")
        .contains("nc=00000002"));
    let expires_at = h.at(2700);
    assert_eq!(
        h.events(),
        vec![RegistrationEvent::Registered {
            expires: 1800,
            expires_at,
            refreshed: true
        }]
    );

    h.client.unregister(h.at(1000));
    assert_eq!(h.client.state(), &RegistrationState::Unregistering);
    assert_eq!(
        h.client.poll_timeout(),
        None,
        "no refresh once unregistering"
    );
    let sent = h.exchange(1000);
    assert_eq!(sent[0].headers.expires().expect("expires"), Some(0));
    assert_eq!(
        sent[0].headers.get(&HeaderName::Contact),
        Some(format!("<{CONTACT}>").as_str()),
        "never `*`"
    );
    assert_eq!(
        h.events(),
        vec![RegistrationEvent::Unregistered { clean: true }]
    );
    assert_eq!(h.client.state(), &RegistrationState::Unregistered);
}

#[test]
fn stale_nonce_is_answered_silently() {
    let mut h = Harness::new(config());
    h.registrar.digest =
        DigestServer::new("pbx.example.com", vec![7u8; 32]).with_nonce_lifetime(60);
    h.client.register(h.at(0));
    h.exchange(0);
    h.events();
    // At the refresh the remembered nonce has expired: 401 stale=true, answered at once.
    h.client.handle_timeout(h.at(900));
    let sent = h.exchange(900);
    assert_eq!(sent.len(), 2);
    assert!(matches!(
        h.events().as_slice(),
        [RegistrationEvent::Registered {
            refreshed: true,
            ..
        }]
    ));
}

#[test]
fn rejected_credentials_fail_instead_of_looping() {
    let mut h = Harness::new(config());
    h.registrar.password = "other".into();
    h.client.register(h.at(0));
    let sent = h.exchange(0);
    assert_eq!(sent.len(), 2, "one answered challenge, then failure");
    let events = h.events();
    let [RegistrationEvent::Failed {
        status: 401,
        error: RegisterError::CredentialsRejected { .. },
        retry_at,
    }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(*retry_at, h.at(30));
    assert_eq!(
        h.client.state(),
        &RegistrationState::Failed {
            status: 401,
            retry_at: h.at(30)
        }
    );

    // Same nonce challenged twice, not stale: the digest client itself refuses.
    let mut h = Harness::new(config());
    h.client.register(h.at(0));
    let req = h.request();
    let challenge = h.registrar.challenge(&req, 0, false);
    h.client.handle_response(h.at(0), &challenge);
    let retry = h.request();
    let mut again = challenge.clone();
    again.headers.set(
        HeaderName::CSeq,
        retry.headers.get(&HeaderName::CSeq).expect("cseq"),
    );
    h.client.handle_response(h.at(0), &again);
    assert!(h.client.poll_request().is_none());
    assert!(matches!(
        h.client.state(),
        RegistrationState::Failed { status: 401, .. }
    ));
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let mut cfg = config();
    cfg.expires = 60;
    let mut h = Harness::new(cfg);
    h.registrar.min_expires = Some(300);
    h.client.register(h.at(0));
    let sent = h.exchange(0);
    let asked: Vec<Option<u32>> = sent
        .iter()
        .map(|r| r.headers.expires().expect("expires"))
        .collect();
    assert_eq!(asked, vec![Some(60), Some(60), Some(300)], "401, 423, 200");
    assert_eq!(h.client.expires(), 300);
    assert!(matches!(
        h.events().as_slice(),
        [RegistrationEvent::Registered { expires: 300, .. }]
    ));
    assert_eq!(h.client.poll_timeout(), Some(h.at(150)));
}

#[test]
fn failures_back_off_and_honour_retry_after() {
    let mut h = Harness::new(config());
    h.client.register(h.at(0));
    let mut now = 0;
    let mut delays = Vec::new();
    let answers: [Option<(u16, Option<&str>)>; 6] = [
        Some((403, None)),
        Some((503, Some("120 (maintenance)"))),
        None,
        Some((404, None)),
        Some((500, None)),
        Some((500, None)),
    ];
    for answer in answers {
        let req = h.request();
        match answer {
            Some((status, retry_after)) => {
                let mut r = Registrar::reply(&req, status);
                if let Some(v) = retry_after {
                    r.headers.push(HeaderName::RetryAfter, v);
                }
                h.client.handle_response(h.at(now), &r);
            }
            None => h.client.handle_transaction_timeout(h.at(now)),
        }
        let RegistrationState::Failed { retry_at, .. } = *h.client.state() else {
            panic!("{:?}", h.client.state())
        };
        delays.push((retry_at - h.at(now)).as_secs());
        assert_eq!(h.client.poll_timeout(), Some(retry_at));
        now = (retry_at - h.t0).as_secs();
        h.client.handle_timeout(retry_at);
        assert_eq!(h.client.state(), &RegistrationState::Registering);
    }
    assert_eq!(delays, vec![30, 120, 120, 240, 300, 300]);
    let statuses: Vec<u16> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            RegistrationEvent::Failed { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![403, 503, 408, 404, 500, 500]);
    // Success resets the backoff.
    h.exchange(now);
    assert!(matches!(
        h.client.state(),
        RegistrationState::Registered { .. }
    ));
}

#[test]
fn outbound_proxy_old_responses_and_unconfirmed_unregistration() {
    let mut cfg = config();
    cfg.outbound_proxy = Some(uri("sip:192.0.2.200:5070;lr"));
    let mut h = Harness::new(cfg);
    let hop = h.client.next_hop().expect("hop");
    assert_eq!(
        hop.peer().map(|p| p.addr.to_string()),
        Some("192.0.2.200:5070".into())
    );
    h.client.register(h.at(0));
    let first = h.request();
    assert_eq!(
        first.headers.get(&HeaderName::Route),
        Some("<sip:192.0.2.200:5070;lr>")
    );
    h.client
        .handle_response(h.at(0), &Registrar::reply(&first, 100));
    assert_eq!(
        h.client.state(),
        &RegistrationState::Registering,
        "provisionals ignored"
    );

    h.client.unregister(h.at(1));
    let unreg = h.request();
    // The answer to the superseded REGISTER is ignored.
    h.client
        .handle_response(h.at(1), &Registrar::reply(&first, 200));
    assert_eq!(h.client.state(), &RegistrationState::Unregistering);
    assert!(h.events().is_empty());
    assert_eq!(unreg.headers.cseq().expect("cseq").seq, 2);
    h.client.handle_transaction_timeout(h.at(33));
    assert_eq!(
        h.events(),
        vec![RegistrationEvent::Unregistered { clean: false }]
    );
    assert_eq!(
        h.client.poll_timeout(),
        None,
        "no retry after an unregistration"
    );
}

#[test]
fn proxy_and_registrar_challenges_in_one_attempt() {
    let mut h = Harness::new(config());
    let mut proxy = DigestServer::new("proxy.example.com", vec![9u8; 32]);
    h.client.register(h.at(0));
    let first = h.request();
    let mut r407 = Registrar::reply(&first, 407);
    for c in proxy.challenges(UNIX_BASE, false) {
        r407.headers
            .push(HeaderName::ProxyAuthenticate, c.to_string());
    }
    h.client.handle_response(h.at(0), &r407);
    let second = h.request();
    let proxy_auth: Vec<&str> = second
        .headers
        .get_all(&HeaderName::ProxyAuthorization)
        .collect();
    let target = second.uri.to_string();
    let dreq = DigestRequest {
        method: "REGISTER",
        uri: &target,
        body: None,
    };
    let user = proxy.verify(&proxy_auth, &dreq, UNIX_BASE, |_, _| {
        Some(UserSecret::Password("s3cret".into()))
    });
    assert_eq!(user, Ok("auth-user".to_string()));
    // The registrar behind the proxy challenges too: a second realm is no loop.
    let r401 = h.registrar.challenge(&second, 0, false);
    h.client.handle_response(h.at(0), &r401);
    let third = h.request();
    assert!(third.headers.get(&HeaderName::ProxyAuthorization).is_some());
    assert!(third.headers.get(&HeaderName::Authorization).is_some());
    let ok = h.registrar.answer(&third, 0);
    h.client.handle_response(h.at(0), &ok);
    assert!(matches!(
        h.client.state(),
        RegistrationState::Registered { .. }
    ));
}

#[test]
fn clear_first_removes_every_binding_before_adding_ours_and_not_on_refresh() {
    let mut cfg = config();
    cfg.clear_first = true;
    cfg.expires = 600;
    let mut h = Harness::new(cfg);
    h.client.register(h.at(0));
    let sent = h.exchange(0);
    // Clear (challenged), clear with credentials, then our binding.
    let contacts: Vec<(String, Option<u32>)> = sent
        .iter()
        .map(|r| {
            (
                r.headers
                    .get(&HeaderName::Contact)
                    .expect("contact")
                    .to_string(),
                r.headers.expires().expect("expires"),
            )
        })
        .collect();
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    assert_eq!(contacts[0], ("*".to_string(), Some(0)));
    assert_eq!(contacts[1], ("*".to_string(), Some(0)));
    assert_eq!(contacts[2], (format!("<{CONTACT}>"), Some(600)));
    assert!(!RegistrationClient::adds_binding(&sent[1]));
    assert!(RegistrationClient::adds_binding(&sent[2]));
    let events = h.events();
    assert!(
        matches!(events[0], RegistrationEvent::Cleared),
        "{events:?}"
    );
    assert!(matches!(
        events[1],
        RegistrationEvent::Registered {
            refreshed: false,
            ..
        }
    ));
    // The refresh only renews our binding.
    let refresh_at = h.client.poll_timeout().expect("refresh timer");
    h.client.handle_timeout(refresh_at);
    let refresh = h.request();
    assert_eq!(
        refresh.headers.get(&HeaderName::Contact),
        Some(format!("<{CONTACT}>").as_str())
    );
}

#[test]
fn a_refused_clear_is_reported_and_our_binding_added_anyway() {
    let mut cfg = config();
    cfg.clear_first = true;
    let mut h = Harness::new(cfg);
    h.client.register(h.at(0));
    let clear = h.request();
    assert_eq!(clear.headers.get(&HeaderName::Contact), Some("*"));
    h.client
        .handle_response(h.at(0), &Registrar::reply(&clear, 403));
    assert_eq!(
        h.events(),
        vec![RegistrationEvent::ClearRefused { status: 403 }]
    );
    let ours = h.request();
    assert!(RegistrationClient::adds_binding(&ours));
}

#[test]
fn a_shared_instance_goes_in_the_contact() {
    let mut cfg = config();
    cfg.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    cfg.reg_id = Some(1);
    let mut h = Harness::new(cfg);
    h.client.register(h.at(0));
    let req = h.request();
    assert_eq!(
        req.headers.get(&HeaderName::Contact),
        Some(
            format!(
                "<{CONTACT}>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\";reg-id=1"
            )
            .as_str()
        )
    );
}
