//! The SIP edge of a real engine against an attacker's tools: a spoofed INVITE from outside
//! the allow-list, SIPVicious (`svcrack`, `svwar`, Debian's `sipvicious`), raw REGISTERs,
//! and 2,000 idle TCP connections (issue 13, acceptances 1, 2 and 4).

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use sip::auth::{parse_challenges, ChallengeKind, DigestClient, DigestRequest};
use sip::message::{parse_datagram, HeaderName, SipMessage};
use svi_tests::admin::{create_key, promtool, sample, Api, Auth};
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Sipp};

/// An engine whose `[sip]` is `sip` (with `allowed_networks`), with agent 1001.
fn engine(dir: &std::path::Path, sip: &str) -> EngineProc {
    let config = svi_tests::config::write_with_sip(
        dir,
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        sip,
        "[[agents]]\nid = \"1001\"\nname = \"A\"\npassword = \"correct-horse-191\"\n",
    );
    EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    })
}

fn invite(from: SocketAddr, to: SocketAddr) -> String {
    format!(
        "INVITE sip:100@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKspoof\r\nMax-Forwards: 70\r\nFrom: <sip:attacker@{from}>;tag=s1\r\nTo: <sip:100@{to}>\r\nCall-ID: spoofed-1\r\nCSeq: 1 INVITE\r\nContact: <sip:attacker@{from}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Every datagram `socket` receives before `deadline`.
fn collect(socket: &UdpSocket, deadline: Instant) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

/// A spoofed INVITE from 127.0.0.2 while only 127.0.0.1 is allowed: with T1 = 50 ms a
/// stateful 403 would be retransmitted within the second watched here; none is, and by
/// default nothing at all comes back. With `refusal = "403"`, exactly one 403.
#[test]
fn a_spoofed_invite_from_outside_the_allow_list_gets_at_most_one_packet() {
    for (refusal, expected) in [("silent", 0), ("403", 1)] {
        let dir = tempfile::tempdir().expect("tmp");
        let engine = engine(
            dir.path(),
            &format!(
                "allowed_networks = [\"127.0.0.1/32\"]\nt1_ms = 50\nrefusal = \"{refusal}\"\n"
            ),
        );
        let outsider = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let from = outsider.local_addr().expect("addr");
        outsider
            .send_to(invite(from, engine.sip).as_bytes(), engine.sip)
            .expect("send");
        let got = collect(&outsider, Instant::now() + Duration::from_secs(1));
        assert_eq!(got.len(), expected, "{refusal}: {got:?}");
        if let Some(answer) = got.first() {
            let Ok(SipMessage::Response(r)) = parse_datagram(answer.as_bytes()) else {
                panic!("a response: {answer}")
            };
            assert_eq!(r.status, 403);
            assert!(r.headers.get(&HeaderName::Server).is_none(), "{answer}");
        }
        let line = engine
            .wait_log(
                "SIP from outside sip.allowed_networks refused",
                Duration::from_secs(5),
            )
            .expect("a refusal line");
        assert!(line.contains("last_source=127.0.0.2"), "{line}");
        // No call was started for it.
        assert!(engine.calls(5).as_array().is_some_and(Vec::is_empty));
    }
}

/// A wordlist of 200 passwords with the real one at position 191.
fn wordlist(dir: &std::path::Path) -> std::path::PathBuf {
    let words: Vec<String> = (1..=200)
        .map(|i| {
            if i == 191 {
                "correct-horse-191".to_string()
            } else {
                format!("guess-{i:04}")
            }
        })
        .collect();
    let path = dir.join("words.txt");
    std::fs::write(&path, words.join("\n") + "\n").expect("wordlist");
    path
}

/// Runs svcrack against `engine` for at most `limit` (against a ban it never gives up: it
/// keeps asking, gets 403, and tries again when the ban ends); its output.
fn svcrack(engine: &EngineProc, words: &std::path::Path, limit: Duration) -> String {
    let child = Command::new("svcrack")
        .args(["-u1001", "-d"])
        .arg(words)
        .args(["-p", &engine.sip.port().to_string(), "127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("svcrack (Debian's sipvicious; the test script installs it)");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            rx.recv().expect("svcrack stopped")
        }
    }
    .expect("svcrack output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `/metrics` of `engine` read with `key`, checked by `promtool check metrics`.
fn scrape(rt: &tokio::runtime::Runtime, api: &Api, key: &str) -> String {
    let a = rt.block_on(api.get("/metrics", Auth::Key(key)));
    assert_eq!(a.status, 200, "{}", a.text);
    promtool(&a.text);
    a.text
}

/// Acceptance 1. The control run, with bans off, shows svcrack does find the password at
/// position 191 (so the tool works against this engine); with the default bans it does not,
/// the log shows the failures and the ban of its source, and so does `/metrics`: the ban
/// counter rose, the failures counter counts every wrong password tried.
#[test]
fn svcrack_does_not_find_a_password_at_position_191() {
    let dir = tempfile::tempdir().expect("tmp");
    let words = wordlist(dir.path());
    // svcrack computes MD5 digests only.
    let md5 = "allowed_networks = [\"127.0.0.0/8\"]\ndigest_algorithms = [\"MD5\"]\n";

    let control = engine(
        &dir.path().join("control"),
        &format!("{md5}auth_max_failures = 1000\n"),
    );
    let found = svcrack(&control, &words, Duration::from_secs(60));
    assert!(found.contains("correct-horse-191"), "{found}");
    drop(control);

    // Well within the first ban (60 s): every request after the fifth failure is refused.
    let guarded = engine(&dir.path().join("guarded"), md5);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api = Api::new(&guarded);
    let key = create_key(&guarded.data_dir(), None, "metrics", "prometheus");
    let before = scrape(&rt, &api, &key);
    let source_bans = "svi_sip_auth_bans_total{kind=\"source\"}";
    assert_eq!(sample(&before, source_bans), Some(0.0), "{before}");
    assert_eq!(sample(&before, "svi_sip_auth_failures_total"), Some(0.0));
    let out = svcrack(&guarded, &words, Duration::from_secs(20));
    assert!(!out.contains("correct-horse-191"), "{out}");
    let ban = guarded
        .wait_log(
            "auth ban: src=127.0.0.1 method=REGISTER",
            Duration::from_secs(5),
        )
        .expect("the source is banned");
    assert!(
        ban.contains("source_ban=60s") && ban.contains("user=\"1001\""),
        "{ban}"
    );
    let log = guarded.log_text();
    let failures = log
        .matches("auth failure: src=127.0.0.1 method=REGISTER user=\"1001\"")
        .count();
    assert_eq!(failures, 4, "four failures, the fifth bans");
    assert!(!log.contains("guess-0"), "no password in the log");
    assert!(!log.contains("agent phone registered"), "{log}");

    let after = scrape(&rt, &api, &key);
    assert_eq!(sample(&after, source_bans), Some(1.0), "{after}");
    assert_eq!(
        sample(&after, "svi_sip_banned{kind=\"source\"}"),
        Some(1.0),
        "{after}"
    );
    // Every wrong password tried: the four counted, and the fifth that banned.
    let bans = log
        .matches("auth ban: src=127.0.0.1 method=REGISTER")
        .count();
    assert_eq!(
        sample(&after, "svi_sip_auth_failures_total"),
        Some((failures + bans) as f64),
        "{after}"
    );
    // svcrack went on trying: refused unread while banned.
    assert!(
        sample(&after, "svi_sip_refused_while_banned_total") >= Some(1.0),
        "{after}"
    );
}

/// A REGISTER for `user` from `socket`: unauthenticated, or answering `challenge` with
/// `password`. Returns the answer.
fn register(
    socket: &UdpSocket,
    to: SocketAddr,
    user: &str,
    auth: Option<(&str, &str)>,
    n: u32,
) -> sip::message::Response {
    let from = socket.local_addr().expect("addr");
    let mut text = format!(
        "REGISTER sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKreg{n}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{to}>;tag=r{n}\r\nTo: <sip:{user}@{to}>\r\nCall-ID: reg-{user}-{n}\r\nCSeq: {n} REGISTER\r\nContact: <sip:{user}@{from}>\r\n"
    );
    if let Some((challenge, password)) = auth {
        let challenges = parse_challenges(challenge).expect("challenge");
        let mut client = DigestClient::new(user, password);
        client
            .on_challenge(ChallengeKind::Www, &challenges)
            .expect("usable");
        let uri = format!("sip:{to}");
        let value = client
            .authorize(
                &DigestRequest {
                    method: "REGISTER",
                    uri: &uri,
                    body: None,
                },
                "cnonce",
            )
            .expect("authorize")[0]
            .header_value();
        text.push_str(&format!("Authorization: {value}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    socket.send_to(text.as_bytes(), to).expect("send");
    let got = collect(socket, Instant::now() + Duration::from_secs(5));
    let answer = got.first().expect("an answer");
    match parse_datagram(answer.as_bytes()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// The answer with what differs by design removed (tags, nonces, branch): what is left must
/// be the same for a known and an unknown user.
fn shape(r: &sip::message::Response) -> (u16, String, Vec<String>) {
    let names = r.headers.iter().map(|h| h.name.to_string()).collect();
    (r.status, r.reason.clone(), names)
}

/// Acceptance 2: svwar finds no extension, and wrong passwords for a known and an unknown
/// user get the same answers, before and after the ban.
#[test]
fn svwar_and_wrong_passwords_cannot_tell_known_users_from_unknown_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine(dir.path(), "allowed_networks = [\"127.0.0.0/8\"]\n");
    let out = Command::new("svwar")
        .args(["-e1000-1010", "-m", "REGISTER", "-p"])
        .arg(engine.sip.port().to_string())
        .arg("127.0.0.1")
        .output()
        .expect("svwar (Debian's sipvicious)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("1001"), "svwar told 1001 apart: {text}");

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut answers = Vec::new();
    for (i, user) in ["1001", "9999"].iter().enumerate() {
        let n = i as u32 * 10;
        let first = register(&socket, engine.sip, user, None, n + 1);
        let challenge = first
            .headers
            .get(&HeaderName::WwwAuthenticate)
            .expect("challenged")
            .to_string();
        let wrong = register(
            &socket,
            engine.sip,
            user,
            Some((&challenge, "not-it")),
            n + 2,
        );
        answers.push((shape(&first), shape(&wrong)));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!((answers[0].0 .0, answers[0].1 .0), (401, 401));
}

/// Raises this process's open-file limit so that it can hold 2,000 connections.
fn raise_open_files(to: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(u64::MAX);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(to.min(hard)),
            maximum: now.maximum,
        },
    )
    .expect("raise the open-file limit");
}

/// Acceptance 4, second half: 2,000 idle TCP connections from one source (127.0.0.5) do
/// not stop a new call over UDP or TCP from another.
#[test]
fn two_thousand_idle_tcp_connections_do_not_stop_new_calls() {
    raise_open_files(4096);
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine(dir.path(), "allowed_networks = [\"127.0.0.0/8\"]\n");
    let mut idle = Vec::new();
    for _ in 0..2000 {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("socket");
        socket
            .bind(&"127.0.0.5:0".parse::<SocketAddr>().expect("addr").into())
            .expect("bind 127.0.0.5");
        // The engine may refuse (close) the connection at once: that is the point.
        if socket.connect(&engine.sip.into()).is_ok() {
            idle.push(TcpStream::from(socket));
        }
    }
    for transport in ["u1", "t1"] {
        let mut caller = Caller::new(Codec::Pcma);
        caller.hangup_after = Some(Duration::from_secs(1));
        let run = Sipp::new(caller.xml())
            .calls(1)
            .arg("-t")
            .arg(transport)
            .run(dir.path(), Some(engine.sip));
        assert!(run.success(), "{transport}: {}", run.report());
    }
    let calls = engine.wait_calls(2, Duration::from_secs(20));
    assert_eq!(calls.as_array().map(Vec::len), Some(2), "{calls:#}");
    drop(idle);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Data, databases, the directory of the control and admin sockets and the TLS key are the
/// engine user's only, whatever the umask it was started with.
#[test]
fn data_files_are_private() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine(
        dir.path(),
        "allowed_networks = [\"127.0.0.0/8\"]\ntransports = [\"udp\", \"tcp\", \"tls\"]\n[sip.tls]\nlisten = \"127.0.0.1:0\"\n",
    );
    let data = engine.data_dir();
    // The control socket comes up with the engine's other tasks, just after SIP.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !data.join("run/control.sock").exists() || !data.join("run/admin.sock").exists() {
        assert!(Instant::now() < deadline, "no control or admin socket");
        std::thread::yield_now();
    }
    for (path, expected) in [
        (data.clone(), 0o700),
        (data.join("svi.db"), 0o600),
        (data.join("raft-log.db"), 0o600),
        (data.join("run"), 0o700),
        (data.join("tls"), 0o700),
        (data.join("tls/sip-tls.key"), 0o600),
    ] {
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
    assert!(!data.join("admin.sock").exists(), "no socket outside run/");
}

/// The open-file limit: raised at start to what `sip.max_calls` needs, or the start is
/// refused with both numbers when the hard limit is too low.
#[test]
fn the_open_file_limit_fits_max_calls_or_the_start_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine(
        dir.path(),
        "allowed_networks = [\"127.0.0.0/8\"]\nmax_calls = 1000\n",
    );
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", engine.child.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let soft: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .expect("soft limit");
    // 1,000 calls x 6 descriptors + 1,024 TCP connections + 256.
    assert!(soft >= 7_280, "{line}");

    let config = svi_tests::config::write_with_sip(
        &dir.path().join("low"),
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        "allowed_networks = [\"127.0.0.0/8\"]\nmax_calls = 1000\n",
        "",
    );
    let out = Command::new("prlimit")
        .arg("--nofile=1024:2048")
        .arg(svi_tests::proc::svi_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("low-data"))
        .arg("--sip-listen")
        .arg("127.0.0.1:0")
        .output()
        .expect("prlimit (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the open-file limit is 1024 (hard limit 2048)")
            && err.contains("sip.max_calls = 1000")
            && err.contains("need 7280"),
        "{err}"
    );
}

/// A trunk whose registrar is `sips:` registers over TLS, checking the registrar's
/// certificate: engine A registers as user 1001 with engine B, where 1001 is an agent, and
/// trusts B's self-signed certificate; a trunk trusting another certificate never registers.
#[test]
fn a_trunk_registers_over_tls_with_a_verified_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let b_tls = svi_tests::ports::free_sip_port();
    let b = engine(
        &dir.path().join("b"),
        &format!(
            "allowed_networks = [\"127.0.0.0/8\"]\ntransports = [\"udp\", \"tls\"]\n[sip.tls]\nlisten = \"127.0.0.1:{b_tls}\"\n"
        ),
    );
    let b_cert = b.data_dir().join("tls/sip-tls.crt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b_cert.exists() {
        assert!(Instant::now() < deadline, "B made no certificate");
        std::thread::yield_now();
    }
    let other = tempfile::tempdir().expect("tmp");
    let (other_cert, _) =
        sip::transport::tls::self_signed(other.path(), &["127.0.0.1".to_string()]).expect("cert");

    for (ca, registers) in [(b_cert.clone(), true), (other_cert, false)] {
        let a_dir = dir.path().join(if registers { "a" } else { "a-wrong-ca" });
        let config = svi_tests::config::write_with_sip(
            &a_dir,
            &[("demo", svi_tests::config::sample_flow("demo").as_str())],
            &format!(
                "allowed_networks = [\"127.0.0.0/8\"]\ntransports = [\"udp\", \"tls\"]\n[sip.tls]\nlisten = \"127.0.0.1:0\"\nserver_ca = \"{}\"\n",
                ca.display()
            ),
            &format!(
                "[[trunks]]\nname = \"b\"\nregistrar = \"sips:127.0.0.1:{b_tls}\"\nusername = \"1001\"\npassword = \"correct-horse-191\"\nexpires = 60\n"
            ),
        );
        let a = EngineProc::start(EngineOptions {
            config: Some(config),
            ..EngineOptions::default()
        });
        if registers {
            assert!(
                a.wait_log("registered with the IPBX", Duration::from_secs(15))
                    .is_some(),
                "A:\n{}\nB:\n{}",
                a.log_text(),
                b.log_text()
            );
            assert!(b
                .wait_log(
                    "agent phone registered: agent ready agent=1001",
                    Duration::from_secs(5)
                )
                .is_some());
        } else {
            assert!(
                a.wait_log("registration failed", Duration::from_secs(15))
                    .is_some(),
                "{}",
                a.log_text()
            );
            assert_eq!(
                b.log_text().matches("agent phone registered").count(),
                1,
                "only the first A registered"
            );
        }
    }
}
