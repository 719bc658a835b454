use md5::{Digest, Md5};

use crate::auth::{
    authorize, parse_challenges, parse_credentials, select_challenge, Algorithm, AuthError,
    Challenge, Credentials, DigestRequest, Qop,
};

fn one(value: &str) -> Challenge {
    let mut all = parse_challenges(value).expect("challenge parses");
    assert_eq!(all.len(), 1, "{value}");
    all.remove(0)
}

const GET_DIR: DigestRequest<'static> = DigestRequest {
    method: "GET",
    uri: "/dir/index.html",
    body: None,
};

#[test]
fn rfc2617_section_3_5_md5_qop_auth() {
    let challenge = one(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    );
    assert_eq!(challenge.algorithm, Algorithm::Md5, "default when absent");
    assert_eq!(challenge.qop, [Qop::Auth, Qop::AuthInt]);
    let creds = authorize(
        &challenge,
        "Mufasa",
        "Circle Of Life",
        &GET_DIR,
        "0a4f113b",
        1,
    )
    .expect("authorizes");
    assert_eq!(creds.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(
        creds.to_string(),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5"
    );
    assert_eq!(parse_credentials(&creds.to_string()), Ok(vec![creds]));
}

/// RFC 7616 §3.9.1, both challenges as the RFC prints them (folded over several lines).
const RFC7616: [&str; 2] = [
    "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    \
     algorithm=SHA-256,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    \
     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    \
     algorithm=MD5,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    \
     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
];
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

#[test]
fn rfc7616_section_3_9_1_sha256_and_md5() {
    let sha = one(RFC7616[0]);
    let md5 = one(RFC7616[1]);
    assert_eq!(sha.algorithm, Algorithm::Sha256);
    let answer = |c: &Challenge| {
        authorize(c, "Mufasa", "Circle of Life", &GET_DIR, RFC7616_CNONCE, 1)
            .expect("authorizes")
            .response
    };
    assert_eq!(
        answer(&sha),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(answer(&md5), "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn strongest_supported_challenge_is_chosen_whatever_the_order() {
    let sha = one(RFC7616[0]);
    let md5 = one(RFC7616[1]);
    let exotic = Challenge {
        algorithm: Algorithm::Other("SHA-512-256".into()),
        ..sha.clone()
    };
    let list = [md5.clone(), exotic.clone(), sha.clone()];
    assert_eq!(select_challenge(&list), Some(&sha));
    assert_eq!(select_challenge(&[exotic.clone(), md5.clone()]), Some(&md5));
    assert_eq!(select_challenge(&[exotic]), None);
    let int_only = Challenge {
        qop: vec![Qop::Other("auth-conf".into())],
        ..md5
    };
    assert_eq!(select_challenge(&[int_only]), None);
}

#[test]
fn no_qop_is_rfc2069_compatible() {
    let c =
        one("Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"");
    let creds = authorize(&c, "Mufasa", "Circle Of Life", &GET_DIR, "ignored", 7).expect("ok");
    let md5 = |s: &str| hex::encode(Md5::digest(s.as_bytes()));
    let ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life");
    let ha2 = md5("GET:/dir/index.html");
    assert_eq!(
        creds.response,
        md5(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"))
    );
    assert_eq!((&creds.qop, creds.nc, &creds.cnonce), (&None, None, &None));
    assert!(!creds.to_string().contains("nc="));
}

#[test]
fn auth_int_hashes_the_body_and_sess_rekeys_ha1() {
    let md5 = |s: &str| hex::encode(Md5::digest(s.as_bytes()));
    let c = one("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\", algorithm=MD5-sess");
    let request = DigestRequest {
        method: "INVITE",
        uri: "sip:bob@example.com",
        body: Some(b"v=0\r\n"),
    };
    let creds = authorize(&c, "u", "p", &request, "cn", 2).expect("ok");
    let ha1 = md5(&format!("{}:n:cn", md5("u:r:p")));
    let ha2 = md5(&format!("INVITE:sip:bob@example.com:{}", md5("v=0\r\n")));
    assert_eq!(
        creds.response,
        md5(&format!("{ha1}:n:00000002:cn:auth-int:{ha2}"))
    );
    assert_eq!(creds.qop, Some(Qop::AuthInt));
}

#[test]
fn unsupported_algorithm_and_qop_are_typed_errors() {
    let c = one("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256");
    assert_eq!(
        authorize(&c, "u", "p", &GET_DIR, "c", 1),
        Err(AuthError::UnsupportedAlgorithm {
            algorithm: "SHA-512-256".into()
        })
    );
    let c = one("Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"");
    assert_eq!(
        authorize(&c, "u", "p", &GET_DIR, "c", 1),
        Err(AuthError::UnsupportedQop {
            qop: "auth-conf".into()
        })
    );
}

#[test]
fn odd_spacing_escapes_case_and_unknown_params() {
    let c = one(
        "dIgEsT   REALM = \"a \\\"quoted\\\" realm\\\\\" ,nonce=\"n1\",Algorithm=sha-256 , \
         QOP=\"auth\" ,stale=true\tdomain=\"sip:example.com\", x-vendor=42",
    );
    assert_eq!(c.realm, "a \"quoted\" realm\\");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert!(c.stale);
    assert_eq!(c.domain.as_deref(), Some("sip:example.com"));
    assert_eq!(c.other.len(), 1);
    assert_eq!(
        (c.other[0].name.as_str(), c.other[0].value.as_str()),
        ("x-vendor", "42")
    );
    // Written back with escapes, it parses to the same challenge.
    assert_eq!(parse_challenges(&c.to_string()), Ok(vec![c]));
}

#[test]
fn several_schemes_in_one_value() {
    let all = parse_challenges(
        "Basic realm=\"x\", Digest realm=\"a\", nonce=\"1\", NTLM, Negotiate YWJj/ZA==, \
         Digest realm=\"b\", nonce=\"2\", algorithm=SHA-256, Bearer realm=\"z\"",
    )
    .expect("parses");
    let realms: Vec<_> = all
        .iter()
        .map(|c| (c.realm.as_str(), &c.algorithm))
        .collect();
    assert_eq!(realms, [("a", &Algorithm::Md5), ("b", &Algorithm::Sha256)]);
}

#[test]
fn rfc4475_regaut01_unknown_scheme_is_ignored() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/rfc4475/regaut01.dat"
    );
    let message = std::fs::read_to_string(path).expect("corpus present at ../shared");
    let value = message
        .lines()
        .find_map(|l| l.strip_prefix("Authorization:"))
        .expect("regaut01 has an Authorization header")
        .trim();
    assert_eq!(value, "NoOneKnowsThisScheme opaque-data=here");
    assert_eq!(parse_credentials(value), Ok(vec![]));
    assert_eq!(parse_challenges(value), Ok(vec![]));
}

#[test]
fn malformed_values_are_typed_errors() {
    let cases: &[(&str, AuthError)] = &[
        (
            "Digest realm=\"unterminated",
            AuthError::Malformed {
                offset: 13,
                expected: "a closing quote",
            },
        ),
        (
            "realm=\"x\"",
            AuthError::Malformed {
                offset: 0,
                expected: "an auth-scheme before the first parameter",
            },
        ),
        (
            "Digest realm=\"a\", nonce=\"1\", =x",
            AuthError::Malformed {
                offset: 29,
                expected: "an auth-scheme or parameter name",
            },
        ),
        (
            "Digest nonce=\"1\"",
            AuthError::MissingParam { param: "realm" },
        ),
        (
            "Digest realm=\"a\", realm=\"b\", nonce=\"1\"",
            AuthError::DuplicateParam {
                param: "realm".into(),
            },
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_challenges(value).as_ref(), Err(expected), "{value}");
    }
    let creds = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"";
    assert_eq!(
        parse_credentials(&format!("{creds}, qop=auth, cnonce=\"c\", nc=1")),
        Err(AuthError::InvalidParam {
            param: "nc",
            value: "1".into()
        })
    );
    assert_eq!(
        parse_credentials(&format!("{creds}, qop=auth, nc=00000001")),
        Err(AuthError::MissingParam { param: "cnonce" })
    );
    let ok: Vec<Credentials> = parse_credentials(creds).expect("no-qop credentials parse");
    assert_eq!(ok[0].algorithm, Algorithm::Md5);
}

#[test]
fn credentials_quote_what_rfc3261_quotes() {
    let c = one("Digest realm=\"r\", nonce=\"n\", qop=auth");
    let creds = authorize(&c, "al\"ice\\", "p", &GET_DIR, "c", 0x1f).expect("ok");
    let text = creds.to_string();
    assert!(
        text.starts_with("Digest username=\"al\\\"ice\\\\\", realm=\"r\""),
        "{text}"
    );
    assert!(
        text.contains(", qop=auth, nc=0000001f, cnonce=\"c\", "),
        "{text}"
    );
    assert!(text.ends_with(", algorithm=MD5"), "{text}");
    assert_eq!(parse_credentials(&text), Ok(vec![creds]));
}
