//! svi's end-to-end test harness: real `svi` processes on loopback, real peers (sipp), and
//! helpers that wait on events with deadlines (never a bare sleep).
//!
//! - `admin`: the admin API over HTTPS (client, accounts made with the CLI);
//! - `baresip`: Debian's baresip as a headless softphone (commands in, log lines out);
//! - `browser`: Debian's chromium, headless, over WebDriver (chromedriver);
//! - `config`: configuration files on the sample prompts with the test's own flows;
//! - `contact`: contact-center scenarios with test phones (queued caller, agent phone, `svi` commands);
//! - `phone`: a scriptable test softphone (tones, digits, what it hears);
//! - `intruder`: an RTP sprayer from outside the allow-list (media hijack attempts);
//! - `ha`: HA pairs of real processes (samples or generated), status, role history;
//! - `kamailio`: Kamailio as the IPBX's registrar, and a watch on its bindings;
//! - `dispatcher`: Kamailio on the sample configuration (`samples/kamailio/`) in front of pairs;
//! - `proc`: start, probe, stop and inspect an engine process in a temporary data directory;
//! - `sipp`: build sipp scenarios (caller, registrar) and run sipp against the engine;
//! - `pcap`: write pcap files of RTP streams (e.g. in-band DTMF tones) for sipp to play;
//! - `probe`: raw SIP over UDP (OPTIONS pings, sending torture messages, reading answers);
//! - `smtp`: a mail server with STARTTLS and authentication that keeps what it receives;
//! - `acs`: a reference access-control server (REST, tokens, TLS with its own CA, faults);
//! - `postgres`: a private PostgreSQL server (helpdesk fixtures in `tests/fixtures`);
//! - `site`: `svi run` with the sample plug-in connectors pointed at the reference servers.

pub mod acs;
pub mod admin;
pub mod baresip;
pub mod browser;
pub mod config;
pub mod contact;
pub mod dispatcher;
pub mod ha;
pub mod intruder;
pub mod kamailio;
pub mod pcap;
pub mod phone;
pub mod ports;
pub mod postgres;
pub mod probe;
pub mod proc;
pub mod sipp;
pub mod site;
pub mod smtp;

use std::path::PathBuf;

/// A one-thread runtime and a listener on a free loopback port, for the test servers that
/// run beside a test's blocking code (the alarm webhook sink, the SMTP sink).
pub fn server_runtime() -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind a loopback port");
    (runtime, listener)
}

/// The repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared folder beside the repository (`SVI_SHARED` overrides).
pub fn shared_dir() -> PathBuf {
    std::env::var("SVI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared"))
}

/// The flow steps of a call record (`svi calls --json`).
pub fn path_of(call: &serde_json::Value) -> Vec<String> {
    call["path"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
