//! Agents behind Kamailio (the sample, `samples/kamailio/`) and the brute-force guard
//! (`sip.trusted_proxies`, docs/adr/0009-trusted-proxies.md): every REGISTER reaches the
//! engine from Kamailio's address, and the engine counts failures and bans per client
//! address as Kamailio recorded it in the Via below its own.
//!
//! - Trusted: one agent's phone failing its password `auth_max_failures` times through
//!   Kamailio is banned (its address, in the security log line); another agent's phone
//!   registers through the same Kamailio at once; the banned phone's address stays refused
//!   whichever agent it claims.
//! - Not trusted (the default): the same failures ban Kamailio, and with it every phone
//!   behind it (what the setting is for).
//! - A REGISTER sent directly by an untrusted host with forged Vias (a proxy's on top, another
//!   address below) bans its real source, not the address it names.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use svi_tests::dispatcher::Dispatcher;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{agent_register_xml, Sipp, SippRun};

/// Failures before a ban (`sip.auth_max_failures`).
const MAX_FAILURES: usize = 3;

fn password(id: &str) -> String {
    format!("pw-{id}-secret")
}

/// An engine with agents 1001, 1002 and 1003 (MD5 digests: sipp's), banning after
/// `MAX_FAILURES`, trusting `trusted` (a `trusted_proxies` value, or none).
fn engine(dir: &Path, trusted: Option<&str>) -> EngineProc {
    std::fs::create_dir_all(dir).expect("dir");
    let agents: String = ["1001", "1002", "1003"]
        .iter()
        .map(|id| {
            format!(
                "[[agents]]\nid = \"{id}\"\nname = \"Agent {id}\"\npassword = \"{}\"\n",
                password(id)
            )
        })
        .collect();
    let mut sip =
        format!("[sip]\ndigest_algorithms = [\"MD5\"]\nauth_max_failures = {MAX_FAILURES}\n");
    if let Some(t) = trusted {
        sip.push_str(&format!("trusted_proxies = {t}\n"));
    }
    let text = svi_tests::config::hold_engine(dir, &agents).replacen("[sip]\n", &sip, 1);
    let config = dir.join("svi.toml");
    std::fs::write(&config, text).expect("write config");
    EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    })
}

/// Kamailio on the sample in front of `engine` (the one engine stands for both nodes of
/// pair 1), with agents 1001 to 1003 mapped to it.
fn kamailio(dir: &Path, engine: SocketAddr) -> Dispatcher {
    Dispatcher::start(
        &dir.join("kamailio"),
        &[[engine, engine]],
        &[("1001", 1), ("1002", 1), ("1003", 1)],
        1,
    )
}

/// One REGISTER (challenge, then the digest with `password`) by `user`'s phone on
/// `client` (a loopback address of its own) to `target`; `via` replaces the phone's Via line.
fn register(
    dir: &Path,
    target: SocketAddr,
    client: &str,
    user: &str,
    password: &str,
    via: Option<&str>,
) -> SippRun {
    let mut xml = agent_register_xml(user, password, svi_tests::ports::free_sip_port());
    if let Some(v) = via {
        xml = xml.replace(
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            v,
        );
    }
    let mut sipp = Sipp::new(xml).arg("-m").arg("1").arg("-i").arg(client);
    sipp.timeout = Duration::from_secs(10);
    sipp.run(dir, Some(target))
}

/// `user`'s phone on `client` registering with its right password.
fn right_password(dir: &Path, target: SocketAddr, client: &str, user: &str) -> SippRun {
    register(dir, target, client, user, &password(user), None)
}

/// The statuses the phone received, in order, one per request (a response to a
/// retransmission, received again, is counted once).
fn statuses(run: &SippRun) -> Vec<u16> {
    let mut seen: Vec<(String, u16)> = Vec::new();
    for block in run.messages().split("message received") {
        let status = block
            .lines()
            .find_map(|l| l.strip_prefix("SIP/2.0 "))
            .and_then(|l| l.get(..3)?.parse().ok());
        let cseq = block
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("cseq:"))
            .map(str::to_string);
        if let (Some(status), Some(cseq)) = (status, cseq) {
            if !seen.contains(&(cseq.clone(), status)) {
                seen.push((cseq, status));
            }
        }
    }
    seen.into_iter().map(|(_, s)| s).collect()
}

/// `user`'s phone on `client` fails its password `MAX_FAILURES` times: challenged again
/// after each wrong digest, then 403 (the ban).
fn fail_until_banned(dir: &Path, target: SocketAddr, client: &str, user: &str, via: Option<&str>) {
    for i in 1..=MAX_FAILURES {
        let run = register(dir, target, client, user, "wrong-password", via);
        let want = if i == MAX_FAILURES {
            vec![401, 403]
        } else {
            vec![401, 401]
        };
        assert_eq!(statuses(&run), want, "failure {i} of {user} from {client}");
    }
}

#[test]
fn behind_a_trusted_kamailio_one_phone_is_banned_and_the_others_register() {
    let work = tempfile::tempdir().expect("tmp");
    let svi = engine(&work.path().join("svi"), Some("[\"127.0.0.1/32\"]"));
    let k = kamailio(work.path(), svi.sip);
    fail_until_banned(work.path(), k.addr, "127.0.0.2", "1001", None);
    let log = svi.log_text();
    assert!(
        log.contains("auth ban: src=127.0.0.2 ") && !log.contains("src=127.0.0.1 "),
        "the phone's address is banned, never Kamailio's:\n{log}"
    );
    // Another phone through the same Kamailio, at once.
    let run = right_password(work.path(), k.addr, "127.0.0.3", "1002");
    assert!(
        run.success(),
        "1002 registers through Kamailio:\n{}",
        run.report()
    );
    assert_eq!(statuses(&run), vec![401, 200]);
    // The banned address stays refused before its credentials are read, whoever it claims.
    let run = right_password(work.path(), k.addr, "127.0.0.2", "1002");
    assert_eq!(statuses(&run), vec![403], "the banned phone, as 1002");
}

#[test]
fn behind_an_untrusted_kamailio_one_phone_bans_every_phone() {
    let work = tempfile::tempdir().expect("tmp");
    let svi = engine(&work.path().join("svi"), None);
    let k = kamailio(work.path(), svi.sip);
    fail_until_banned(work.path(), k.addr, "127.0.0.2", "1001", None);
    let log = svi.log_text();
    assert!(
        log.contains("auth ban: src=127.0.0.1 "),
        "Kamailio's address is banned:\n{log}"
    );
    let run = right_password(work.path(), k.addr, "127.0.0.3", "1002");
    assert_eq!(
        statuses(&run),
        vec![403],
        "every phone behind the banned proxy"
    );
}

#[test]
fn a_forged_via_from_an_untrusted_host_bans_its_real_source() {
    let work = tempfile::tempdir().expect("tmp");
    let svi = engine(&work.path().join("svi"), Some("[\"127.0.0.1/32\"]"));
    // Sent directly from 127.0.0.4: a Via claiming the trusted proxy on top, one naming
    // 127.0.0.9 (received too) below it.
    let forged = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=[branch]\n\
                  Via: SIP/2.0/UDP 127.0.0.9:5099;received=127.0.0.9;rport=5099;branch=z9hG4bKforged";
    fail_until_banned(work.path(), svi.sip, "127.0.0.4", "1003", Some(forged));
    let log = svi.log_text();
    assert!(
        log.contains("auth ban: src=127.0.0.4 ") && !log.contains("src=127.0.0.9 "),
        "the real source is banned, not the named one:\n{log}"
    );
    let run = right_password(work.path(), svi.sip, "127.0.0.4", "1002");
    assert_eq!(statuses(&run), vec![403], "the real source stays banned");
    let run = right_password(work.path(), svi.sip, "127.0.0.9", "1002");
    assert_eq!(
        statuses(&run),
        vec![401, 200],
        "the named address is not banned"
    );
}
