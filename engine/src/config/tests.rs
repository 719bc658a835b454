use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<EngineConfig, ConfigError> {
    EngineConfig::parse(
        &with_loopback_allowed(text),
        Path::new("t.toml"),
        Path::new("/base"),
    )
}

fn error(text: &str) -> String {
    parse(text).expect_err(text).to_string()
}

#[test]
fn defaults() {
    let c = parse("").expect("empty config is valid");
    assert_eq!(
        c.sip.listen,
        "127.0.0.1:5060".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!((c.rtp.port_low, c.rtp.port_high), (20000, 29999));
    assert_eq!(c.data_dir, PathBuf::from("/base/svi-data"));
    assert_eq!(c.flow_for("123"), "demo");
}

#[test]
fn errors_name_file_and_key() {
    let e = parse("[sip]\nlisten = \"5060\"\n")
        .expect_err("bad listen")
        .to_string();
    assert_eq!(
        e,
        "t.toml: sip.listen: `5060` is not IP:PORT (e.g. 127.0.0.1:5060)"
    );
    let e = parse("[rtp]\nports = \"30000-20000\"\n")
        .expect_err("bad range")
        .to_string();
    assert!(e.starts_with("t.toml: rtp.ports: `30000-20000`"), "{e}");
    let e = parse("[sip]\nlisen = \"x\"\n")
        .expect_err("typo")
        .to_string();
    assert!(e.contains("t.toml") && e.contains("lisen"), "{e}");
    let e = parse("[[trunks]]\nname='a'\nregistrar='pbx'\nusername='u'\npassword='p'\n")
        .expect_err("trunk")
        .to_string();
    assert!(e.contains("trunks[0].registrar"), "{e}");
}

#[test]
fn routes_pick_flows() {
    let c = parse("[[routes]]\nnumber = \"33*\"\nflow = \"fr\"\n[[routes]]\nnumber = \"100\"\nflow = \"hundred\"\n").expect("routes");
    assert_eq!(c.flow_for("3312"), "fr");
    assert_eq!(c.flow_for("100"), "hundred");
    assert_eq!(c.flow_for("200"), "demo");
}

#[test]
fn srtp_policies_by_trunk_address_agent_and_default() {
    use ::sip::sdp::SrtpPolicy;
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    assert_eq!(parse("").expect("valid").rtp.srtp, SrtpPolicy::Optional);
    let c = parse(
        "[rtp]\nsrtp = 'off'\n\
         [[trunks]]\nname='cucm'\nregistrar='sip:192.0.2.10:5061'\nusername='u'\npassword='p'\nsrtp='required'\n\
         [[trunks]]\nname='oxe'\nregistrar='sip:pbx.example.com'\nusername='u'\npassword='p'\nsrtp='optional'\nnetworks=['198.51.100.0/28']\n\
         [[agents]]\nid='1001'\npassword='secret-1'\nsrtp='required'\n\
         [[agents]]\nid='1002'\npassword='secret-2'\n",
    )
    .expect("valid");
    assert_eq!(c.srtp_for_peer(ip("192.0.2.10")), SrtpPolicy::Required);
    assert_eq!(c.srtp_for_peer(ip("198.51.100.3")), SrtpPolicy::Optional);
    assert_eq!(
        c.srtp_for_peer(ip("192.0.2.11")),
        SrtpPolicy::Off,
        "no trunk: the default"
    );
    assert_eq!(c.srtp_for_agent("1001"), SrtpPolicy::Required);
    assert_eq!(c.srtp_for_agent("1002"), SrtpPolicy::Off);

    for (text, key) in [
        ("[rtp]\nsrtp = 'yes'\n", "rtp.srtp"),
        (
            "[[trunks]]\nname='a'\nregistrar='sip:192.0.2.1'\nusername='u'\npassword='p'\nsrtp='mandatory'\n",
            "trunks[0].srtp",
        ),
        (
            "[[trunks]]\nname='a'\nregistrar='sip:192.0.2.1'\nusername='u'\npassword='p'\nnetworks=['x']\n",
            "trunks[0].networks[0]",
        ),
        ("[[agents]]\nid='1'\npassword='secret-1'\nsrtp=true\n", "agents[0].srtp"),
    ] {
        let e = parse(text).expect_err(key).to_string();
        assert!(e.starts_with(&format!("t.toml: {key}: ")), "{e}");
    }
}

#[test]
fn backup_schedule() {
    let c = parse("").expect("no [backup]");
    assert_eq!(c.backup.schedule(Path::new("/d")), None);
    assert_eq!(c.backup.dir(Path::new("/d")), PathBuf::from("/d/backups"));
    let c = parse("[backup]\ndir = \"b\"\nevery_hours = 72\nkeep = 3\n").expect("schedule");
    let s = c.backup.schedule(Path::new("/d")).expect("scheduled");
    assert_eq!(s.dir, PathBuf::from("/base/b"));
    assert_eq!(s.every, std::time::Duration::from_secs(72 * 3600));
    assert_eq!((s.keep, s.recordings), (3, false));
    for bad in ["every_hours = 0", "keep = 0", "every = 3"] {
        let e = parse(&format!("[backup]\n{bad}\n"))
            .expect_err(bad)
            .to_string();
        assert!(e.contains("backup") || e.contains("every"), "{bad}: {e}");
    }
}

#[test]
fn admin_is_https_on_loopback_by_default_and_checked() {
    let c = parse("").expect("defaults");
    assert!(c.admin.enabled);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(
        (c.admin.tls_files.clone(), c.admin.http_redirect),
        (None, None)
    );
    let c = parse(
        "[admin]\nlisten='0.0.0.0:9443'\ncert='tls/a.crt'\nkey='/k.pem'\nhttp_redirect='0.0.0.0:8080'\n",
    )
    .expect("valid");
    assert_eq!(
        c.admin.tls_files,
        Some((PathBuf::from("/base/tls/a.crt"), PathBuf::from("/k.pem")))
    );
    assert_eq!(c.admin.http_redirect.map(|a| a.port()), Some(8080));
    for (text, key) in [
        ("[admin]\nlisten='8443'\n", "admin.listen"),
        ("[admin]\ncert='a.crt'\n", "admin.cert"),
        (
            "[admin]\nhttp_redirect='127.0.0.1:8443'\n",
            "admin.http_redirect",
        ),
        (
            "[admin]\nsession_idle_minutes=0\n",
            "admin.session_idle_minutes",
        ),
    ] {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.starts_with(&format!("t.toml: {key}: ")), "{e}");
    }
}

#[test]
fn admin_timezone_defaults_to_paris_and_bad_names_are_refused() {
    let c = parse("").expect("defaults");
    assert_eq!(c.admin.timezone, chrono_tz::Europe::Paris);
    let c = parse("[admin]\ntimezone = \"America/New_York\"\n").expect("valid");
    assert_eq!(c.admin.timezone, chrono_tz::America::New_York);
    for bad in ["Europe/Pariss", "CET+1", ""] {
        let e = parse(&format!("[admin]\ntimezone = \"{bad}\"\n"))
            .expect_err(bad)
            .to_string();
        assert!(
            e.starts_with(&format!(
                "t.toml: admin.timezone: `{bad}` is not an IANA time zone"
            )),
            "{e}"
        );
    }
}

#[test]
fn allowed_networks_must_be_given() {
    let raw = |text: &str| EngineConfig::parse(text, Path::new("t.toml"), Path::new("/base"));
    let needed = |e: String| {
        assert!(
            e.starts_with("t.toml: sip.allowed_networks: must list")
                && e.contains(r#"["0.0.0.0/0", "::/0"]"#),
            "{e}"
        );
    };
    // Empty: refused at load. Missing: loads (a witness serves no SIP), refused to serve.
    needed(
        raw("[sip]\nallowed_networks = []\n")
            .expect_err("empty")
            .to_string(),
    );
    let missing = raw("").expect("loads");
    needed(missing.check_serving().expect_err("missing").to_string());
    let everyone = raw("[sip]\nallowed_networks = [\"0.0.0.0/0\", \"::/0\"]\n").expect("explicit");
    assert!(everyone.check_serving().is_ok());
    assert!(everyone
        .sip
        .allowed
        .allows("198.51.100.7".parse().expect("ip")));
}

#[test]
fn edge_settings() {
    let c = parse("").expect("defaults");
    assert_eq!(c.sip.refusal, ::sip::transport::Refusal::Silent);
    assert!(c.sip.tls.is_none());
    assert_eq!(
        c.sip.agent_auth.algorithms,
        vec![::sip::auth::Algorithm::Sha256, ::sip::auth::Algorithm::Md5]
    );
    let c = parse(
        "[sip]\nrefusal = \"403\"\ndigest_algorithms = [\"md5\"]\nauth_max_failures = 3\ntcp_max_per_source = 8\ntransports = [\"udp\", \"tls\"]\n[sip.tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
    )
    .expect("set");
    assert_eq!(c.sip.refusal, ::sip::transport::Refusal::Forbidden);
    assert_eq!(
        c.sip.agent_auth.algorithms,
        vec![::sip::auth::Algorithm::Md5]
    );
    assert_eq!(c.sip.agent_auth.bans.max_failures, 3);
    assert_eq!(c.sip.stream_limits.max_per_source, 8);
    let tls = c.sip.tls.expect("tls");
    assert_eq!(
        tls.listen,
        "127.0.0.1:5061".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(tls.certificate, Some(PathBuf::from("/base/c.pem")));

    for (text, key) in [
        ("[sip]\nrefusal = \"loud\"\n", "sip.refusal"),
        ("[sip]\ndigest_algorithms = []\n", "sip.digest_algorithms"),
        (
            "[sip]\ndigest_algorithms = [\"SHA-512\"]\n",
            "sip.digest_algorithms[0]",
        ),
        ("[sip]\ntcp_max_per_source = 0\n", "sip.tcp_max_per_source"),
        ("[sip]\n[sip.tls]\n", "sip.tls"),
        (
            "[sip]\ntransports = [\"tls\"]\n[sip.tls]\nkey = \"k.pem\"\n",
            "sip.tls",
        ),
    ] {
        let e = error(text);
        assert!(e.starts_with(&format!("t.toml: {key}: ")), "{text}: {e}");
    }
}

#[test]
fn agents_need_long_passwords_and_distinct_ids() {
    let e = error("[[agents]]\nid = \"1001\"\npassword = \"1234\"\n");
    assert_eq!(
        e,
        "t.toml: agents[0].password: is 4 characters; at least 8 are needed (one captured REGISTER lets anyone try passwords offline)"
    );
    let e = error(
        "[[agents]]\nid = \"1001\"\npassword = \"long-enough\"\n[[agents]]\nid = \"1001\"\npassword = \"long-enough-too\"\n",
    );
    assert_eq!(e, "t.toml: agents[1].id: `1001` is defined twice");
}

#[test]
fn a_route_number_ending_with_a_multibyte_character_is_checked_not_a_panic() {
    let c = parse("[[routes]]\nnumber = \"12é\"\nflow = \"f\"\n").expect("a number");
    assert_eq!(c.flow_for("12é"), "f");
    let e = error("[[routes]]\nnumber = \"1*é\"\nflow = \"f\"\n");
    assert!(e.starts_with("t.toml: routes[0].number"), "{e}");
}

/// Every key of the sample configuration (and the edge's keys it leaves commented out) set
/// to random values of every TOML type, and random bytes written over the sample text:
/// loading answers with a configuration or an error, never a panic.
#[test]
fn no_panic_on_any_value_of_any_key() {
    use rand::{Rng, SeedableRng};
    let sample = include_str!("../../../samples/svi.toml");
    let table: toml::Table = sample.parse().expect("the sample parses");
    let mut paths = Vec::new();
    leaves(
        &toml::Value::Table(table.clone()),
        &mut Vec::new(),
        &mut paths,
    );
    for extra in [
        "sip.refusal",
        "sip.digest_algorithms",
        "sip.auth_max_failures",
        "sip.auth_window_secs",
        "sip.auth_ban_secs",
        "sip.auth_max_ban_secs",
        "sip.tcp_max_connections",
        "sip.tcp_max_per_source",
        "sip.tcp_head_timeout_secs",
        "sip.tcp_idle_timeout_secs",
        "sip.tls.listen",
        "sip.tls.certificate",
        "sip.tls.key",
        "sip.tls.client_ca",
        "sip.tls.server_ca",
        "routes.0.number",
        "trunks.0.allowed_prefixes",
        "trunks.0.max_digits",
    ] {
        paths.push(extra.split('.').map(str::to_string).collect());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut tried = 0;
    for path in &paths {
        // Every tricky string once (a number ending with a multibyte character...), then
        // random values of every type.
        let values = STRINGS
            .iter()
            .map(|s| toml::Value::String(s.to_string()))
            .chain((0..10).map(|_| random_value(&mut rng, 2)))
            .collect::<Vec<_>>();
        for value in values {
            let mut doc = toml::Value::Table(table.clone());
            set(&mut doc, path, value);
            let text = toml::to_string(&doc).unwrap_or_default();
            let _ = EngineConfig::parse(&text, Path::new("t.toml"), Path::new("/base"));
            tried += 1;
        }
    }
    for _ in 0..500 {
        let mut bytes = sample.as_bytes().to_vec();
        for _ in 0..rng.gen_range(1..8) {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] = rng.gen();
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = EngineConfig::parse(&text, Path::new("t.toml"), Path::new("/base"));
    }
    assert!(
        tried > 2000,
        "{tried} values tried over {} keys",
        paths.len()
    );
}

fn leaves(v: &toml::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                at.push(k.clone());
                leaves(v, at, out);
                at.pop();
            }
        }
        toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                at.push(i.to_string());
                leaves(v, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

/// Sets `path` in `doc`, making tables (and array entries) on the way.
fn set(doc: &mut toml::Value, path: &[String], value: toml::Value) {
    let Some((first, rest)) = path.split_first() else {
        *doc = value;
        return;
    };
    let next = match doc {
        toml::Value::Array(a) => {
            let i: usize = first.parse().unwrap_or(0);
            while a.len() <= i {
                a.push(toml::Value::Table(toml::Table::new()));
            }
            &mut a[i]
        }
        toml::Value::Table(t) => {
            let index_next = rest.first().is_some_and(|r| r.parse::<usize>().is_ok());
            t.entry(first.clone()).or_insert_with(|| {
                if index_next {
                    toml::Value::Array(Vec::new())
                } else {
                    toml::Value::Table(toml::Table::new())
                }
            })
        }
        other => {
            *other = toml::Value::Table(toml::Table::new());
            return set(other, path, value);
        }
    };
    set(next, rest, value);
}

const STRINGS: &[&str] = &[
    "",
    "*",
    "é",
    "12é",
    "1*",
    "*é",
    "0.0.0.0/0",
    "::/0",
    "127.0.0.1:0",
    "[::1]:5060",
    "udp",
    "tls",
    "sips:x",
    "sip:",
    "20000-20001",
    "65535-1",
    "-1",
    "\u{0}",
    "🦀🦀",
    "a/b/../c",
    "all",
    "none",
    "SHA-256",
];

fn random_value(rng: &mut impl rand::Rng, depth: u32) -> toml::Value {
    match rng.gen_range(0..if depth == 0 { 6 } else { 8 }) {
        0 => toml::Value::String(STRINGS[rng.gen_range(0..STRINGS.len())].to_string()),
        1 => toml::Value::String(
            (0..rng.gen_range(0..12))
                .map(|_| char::from_u32(rng.gen_range(0..0x1_0000)).unwrap_or('x'))
                .collect(),
        ),
        2 => toml::Value::Integer(
            *[
                0,
                1,
                -1,
                3,
                60,
                65535,
                65536,
                i64::MAX,
                i64::MIN,
                4_294_967_296,
            ]
            .get(rng.gen_range(0..10))
            .unwrap_or(&0),
        ),
        3 => toml::Value::Integer(rng.gen()),
        4 => toml::Value::Float([0.0, -1.5, 1e300, f64::NAN][rng.gen_range(0..4)]),
        5 => toml::Value::Boolean(rng.gen()),
        6 => toml::Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut t = toml::Table::new();
            for _ in 0..rng.gen_range(0..3) {
                t.insert(
                    STRINGS[rng.gen_range(0..STRINGS.len())].to_string(),
                    random_value(rng, depth - 1),
                );
            }
            toml::Value::Table(t)
        }
    }
}

#[test]
fn the_alarm_callout_is_off_unless_configured_and_checked_when_it_is() {
    assert_eq!(parse("").expect("empty").alarm_callout, None, "fail closed");
    let source = "[[data_sources]]\nname = \"current_alarm\"\nkind = \"access_control\"\n";
    let c = parse(&format!(
        "{source}[alarm_callout]\nsource = \"current_alarm\"\nflow = \"alarm-callout\"\n\
         numbers = [\"2001\", \"+33600000002\"]\nring_timeout = \"20s\"\n"
    ))
    .expect("valid");
    let a = c.alarm_callout.expect("on");
    assert_eq!(a.numbers.len(), 2);
    assert_eq!(a.ring_timeout, std::time::Duration::from_secs(20));
    assert_eq!((a.rounds, a.caller_id.as_str()), (1, "svi"));
    assert!(!format!("{a:?}").contains("600000002"), "numbers redacted");
    let err = |extra: &str| {
        parse(&format!(
            "{source}[alarm_callout]\nflow = \"f\"\nnumbers = [\"2001\"]\n{extra}"
        ))
        .expect_err("refused")
        .to_string()
    };
    assert!(err("source = \"nope\"\n").contains("alarm_callout.source"));
    let e = err("source = \"current_alarm\"\nring_timeout = \"0s\"\n");
    assert!(e.contains("alarm_callout.ring_timeout"), "{e}");
    let e = err("source = \"current_alarm\"\nrounds = 0\n");
    assert!(e.contains("alarm_callout.rounds"), "{e}");
    let e = err("source = \"current_alarm\"\ncaller_id = \"a@b\"\n");
    assert!(e.contains("alarm_callout.caller_id"), "{e}");
    let e = parse(&format!(
        "{source}[alarm_callout]\nsource = \"current_alarm\"\nflow = \"f\"\nnumbers = []\n"
    ))
    .expect_err("no number")
    .to_string();
    assert!(e.contains("alarm_callout.numbers"), "{e}");
    // The webhook's secret is never in clear; without it there is no webhook.
    assert_eq!(a.webhook_secret, None);
    let e = err("source = \"current_alarm\"\nwebhook_secret = \"hunter2\"\n");
    assert!(e.contains("alarm_callout.webhook_secret"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    for ok in ["${SVI_ALARM_HOOK}", "enc:v1:AAAA"] {
        let c = parse(&format!(
            "{source}[alarm_callout]\nsource = \"current_alarm\"\nflow = \"f\"\nnumbers = [\"2001\"]\nwebhook_secret = \"{ok}\"\n"
        ))
        .expect("valid");
        let a = c.alarm_callout.expect("on");
        assert_eq!(a.webhook_secret.as_deref(), Some(ok));
        assert!(!format!("{a:?}").contains(ok), "not in the dump");
    }
}

#[test]
fn central_reporting_is_off_unless_configured_and_never_takes_a_clear_password() {
    assert_eq!(parse("").expect("empty").central, None, "off by default");
    let url = "url = \"postgres://svi@db:5432/reporting\"\n";
    let c = parse(&format!(
        "[central]\n{url}pair = \"paris-1\"\npassword = \"${{SVI_PG}}\"\n"
    ))
    .expect("valid")
    .central
    .expect("on");
    assert_eq!((c.pair.as_str(), c.batch), ("paris-1", 500));
    assert_eq!(c.poll, std::time::Duration::from_secs(1));
    let err = |body: &str| error(&format!("[central]\n{body}"));
    let e = err("url = \"postgres://svi:hunter2@db/r\"\npair = \"p\"\n");
    assert!(e.contains("central.url") && !e.contains("hunter2"), "{e}");
    let e = err(&format!("{url}pair = \"p\"\npassword = \"hunter2\"\n"));
    assert!(
        e.contains("central.password") && !e.contains("hunter2"),
        "{e}"
    );
    assert!(err(&format!("{url}pair = \"a b\"\n")).contains("central.pair"));
    assert!(err(url).contains("central.pair"));
    assert!(err("url = \"mysql://db/r\"\npair = \"p\"\n").contains("central.url"));
    assert!(err(&format!("{url}pair = \"p\"\nbatch = 0\n")).contains("central.batch"));
}
