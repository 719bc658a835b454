use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::auth::digest::{ha1, Hash};
use crate::auth::{
    cnonce_from, parse_challenges, Algorithm, AuthError, ChallengeKind, DigestClient,
    DigestRequest, DigestServer, UserSecret,
};

const REALM: &str = "svi.example.com";
const NOW: u64 = 1_700_000_000;
const REGISTER: DigestRequest<'static> = DigestRequest {
    method: "REGISTER",
    uri: "sip:svi.example.com",
    body: None,
};

fn server() -> DigestServer {
    DigestServer::new(REALM, b"0123456789abcdef0123456789abcdef".to_vec())
}

fn lookup(user: &str, _: &Algorithm) -> Option<UserSecret> {
    (user == "agent1").then(|| UserSecret::Password("s3cret".into()))
}

/// Challenge → client → header values, the way a 401 travels.
fn answer(
    server: &mut DigestServer,
    client: &mut DigestClient,
    now: u64,
    stale: bool,
) -> Vec<String> {
    let headers: Vec<String> = server
        .challenges(now, stale)
        .iter()
        .map(ToString::to_string)
        .collect();
    let parsed: Vec<_> = headers
        .iter()
        .flat_map(|h| parse_challenges(h).expect("our challenge parses"))
        .collect();
    client
        .on_challenge(ChallengeKind::Www, &parsed)
        .expect("usable challenge");
    authorize_again(client)
}

fn authorize_again(client: &mut DigestClient) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    client
        .authorize(&REGISTER, &cnonce_from(&mut rng))
        .expect("authorizes")
        .iter()
        .map(|a| {
            assert_eq!(a.header_name(), "Authorization");
            a.header_value()
        })
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn round_trip_prefers_sha256_and_falls_back_to_md5() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    assert!(headers[0].contains("algorithm=SHA-256"), "{headers:?}");
    assert_eq!(
        s.verify(&refs(&headers), &REGISTER, NOW + 1, lookup),
        Ok("agent1".into())
    );

    let mut md5_only = server().with_algorithms(vec![Algorithm::Md5]);
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut md5_only, &mut client, NOW, false);
    assert!(headers[0].contains("algorithm=MD5"), "{headers:?}");
    assert_eq!(
        md5_only.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Ok("agent1".into())
    );
    // An MD5 answer is refused by a SHA-256-only registrar.
    let mut sha_only = server().with_algorithms(vec![Algorithm::Sha256]);
    assert_eq!(
        sha_only.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Err(AuthError::UnsupportedAlgorithm {
            algorithm: "MD5".into()
        })
    );
}

#[test]
fn precomputed_ha1_is_accepted() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    let stored = ha1(Hash::Sha256, "agent1", REALM, "s3cret").to_uppercase();
    let found = s.verify(&refs(&headers), &REGISTER, NOW, |_, alg| {
        assert_eq!(alg, &Algorithm::Sha256);
        Some(UserSecret::Ha1(stored))
    });
    assert_eq!(found, Ok("agent1".into()));
}

#[test]
fn wrong_password_and_unknown_user_are_rejected() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "guess");
    let headers = answer(&mut s, &mut client, NOW, false);
    assert_eq!(
        s.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Err(AuthError::BadResponse {
            username: "agent1".into()
        })
    );
    let mut client = DigestClient::new("mallory", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    assert_eq!(
        s.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Err(AuthError::UnknownUser {
            username: "mallory".into()
        })
    );
}

#[test]
fn expired_nonce_is_stale_only_if_the_response_is_right() {
    let mut s = server().with_nonce_lifetime(60);
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    assert_eq!(
        s.verify(&refs(&headers), &REGISTER, NOW + 61, lookup),
        Err(AuthError::StaleNonce {
            username: "agent1".into()
        })
    );
    let stale = s.challenges(NOW + 61, true);
    assert!(stale[0].to_string().contains("stale=TRUE"));

    let mut wrong = DigestClient::new("agent1", "guess");
    let headers = answer(&mut s, &mut wrong, NOW, false);
    assert!(matches!(
        s.verify(&refs(&headers), &REGISTER, NOW + 61, lookup),
        Err(AuthError::BadResponse { .. })
    ));
}

#[test]
fn nonce_count_increments_and_replays_are_refused() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let first = answer(&mut s, &mut client, NOW, false);
    assert!(first[0].contains("nc=00000001"));
    assert_eq!(
        s.verify(&refs(&first), &REGISTER, NOW, lookup),
        Ok("agent1".into())
    );
    assert_eq!(
        s.verify(&refs(&first), &REGISTER, NOW, lookup),
        Err(AuthError::NonceReplay {
            username: "agent1".into(),
            nc: 1
        })
    );
    let second = authorize_again(&mut client);
    assert!(second[0].contains("nc=00000002"), "{second:?}");
    assert_eq!(
        s.verify(&refs(&second), &REGISTER, NOW, lookup),
        Ok("agent1".into())
    );
}

#[test]
fn forged_or_foreign_nonces_are_invalid() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    let forged = headers[0].replace("nonce=\"", "nonce=\"0");
    assert_eq!(
        s.verify(&[forged.as_str()], &REGISTER, NOW, lookup),
        Err(AuthError::InvalidNonce)
    );
    let mut other_key = DigestServer::new(REALM, b"another key".to_vec());
    assert_eq!(
        other_key.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Err(AuthError::InvalidNonce)
    );
    // A nonce dated far in the future is not ours either.
    let mut early = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let future = answer(&mut early, &mut client, NOW + 3600, false);
    assert_eq!(
        s.verify(&refs(&future), &REGISTER, NOW, lookup),
        Err(AuthError::InvalidNonce)
    );
}

#[test]
fn uri_realm_qop_and_missing_headers_are_checked() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "s3cret");
    let headers = answer(&mut s, &mut client, NOW, false);
    let elsewhere = DigestRequest {
        uri: "sip:other.example.com",
        ..REGISTER
    };
    assert!(matches!(
        s.verify(&refs(&headers), &elsewhere, NOW, lookup),
        Err(AuthError::UriMismatch { .. })
    ));
    assert_eq!(
        s.verify(&[], &REGISTER, NOW, lookup),
        Err(AuthError::Missing)
    );
    let mut other_realm = DigestServer::new("other", b"0123456789abcdef0123456789abcdef".to_vec());
    assert_eq!(
        other_realm.verify(&refs(&headers), &REGISTER, NOW, lookup),
        Err(AuthError::Missing)
    );
    let no_qop = headers[0]
        .replace(", qop=auth", "")
        .replace(", nc=00000001", "");
    assert_eq!(
        s.verify(&[no_qop.as_str()], &REGISTER, NOW, lookup),
        Err(AuthError::MissingParam { param: "qop" })
    );
    assert_eq!(
        s.verify(&["Digest realm=\"x"], &REGISTER, NOW, lookup),
        Err(AuthError::Malformed {
            offset: 13,
            expected: "a closing quote"
        })
    );
    // regaut01: an unknown scheme alone means "no credentials": challenge it.
    assert_eq!(
        s.verify(
            &["NoOneKnowsThisScheme opaque-data=here"],
            &REGISTER,
            NOW,
            lookup
        ),
        Err(AuthError::Missing)
    );
}

#[test]
fn client_stops_when_the_same_nonce_is_challenged_again() {
    let mut s = server();
    let mut client = DigestClient::new("agent1", "guess");
    let challenges = s.challenges(NOW, false);
    client
        .on_challenge(ChallengeKind::Www, &challenges)
        .expect("first challenge");
    let _ = authorize_again(&mut client);
    assert_eq!(
        client.on_challenge(ChallengeKind::Www, &challenges),
        Err(AuthError::CredentialsRejected {
            realm: REALM.into()
        })
    );
    // stale=TRUE with the same nonce is not a rejection; nor is a fresh nonce.
    let stale: Vec<_> = challenges
        .iter()
        .cloned()
        .map(|mut c| {
            c.stale = true;
            c
        })
        .collect();
    assert_eq!(client.on_challenge(ChallengeKind::Www, &stale), Ok(()));
    let headers = authorize_again(&mut client);
    assert!(
        headers[0].contains("nc=00000001"),
        "nc restarts with a new challenge"
    );
    assert_eq!(
        client.on_challenge(ChallengeKind::Www, &s.challenges(NOW, false)),
        Ok(())
    );
}

#[test]
fn proxy_and_registrar_challenges_both_apply() {
    let mut registrar = server();
    let mut proxy = DigestServer::new("proxy.example.com", b"k".to_vec());
    let mut client = DigestClient::new("agent1", "s3cret");
    client
        .on_challenge(ChallengeKind::Www, &registrar.challenges(NOW, false))
        .expect("401");
    client
        .on_challenge(ChallengeKind::Proxy, &proxy.challenges(NOW, false))
        .expect("407");
    let auths = client.authorize(&REGISTER, "c").expect("ok");
    let names: Vec<_> = auths.iter().map(|a| a.header_name()).collect();
    assert_eq!(names, ["Authorization", "Proxy-Authorization"]);
    let values: Vec<String> = auths.iter().map(|a| a.header_value()).collect();
    assert_eq!(
        registrar.verify(&refs(&values), &REGISTER, NOW, lookup),
        Ok("agent1".into())
    );
    assert_eq!(
        proxy.verify(&refs(&values), &REGISTER, NOW, lookup),
        Ok("agent1".into())
    );
    assert_eq!(
        client.on_challenge(ChallengeKind::Www, &[]),
        Err(AuthError::NoUsableChallenge)
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let mut client = DigestClient::new("agent1", "s3cret");
    let mut s = DigestServer::new(REALM, b"the-shared-key".to_vec());
    client
        .on_challenge(ChallengeKind::Www, &s.challenges(NOW, false))
        .expect("ok");
    let printed = format!(
        "{client:?} {s:?} {:?} {:?}",
        UserSecret::Password("s3cret".into()),
        UserSecret::Ha1("abcdef".into())
    );
    for secret in ["s3cret", "the-shared-key", "abcdef"] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
