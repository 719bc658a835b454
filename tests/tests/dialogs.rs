//! Dialog behaviour seen from a raw SIP peer on UDP: calls beyond the call rate refused;
//! the process's own refusals of a bad configuration or flow at start; personal data kept
//! out of the log. (488, hold and resume, BYE and 481, the RTP timeout and `max_calls` run
//! in virtual time in `engine/tests/calls/dialogs.rs`.)

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use sip::message::{parse_datagram, HeaderName, Response, SipMessage};
use svi_tests::probe::Probe;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

struct Peer {
    probe: Probe,
    local: SocketAddr,
    call_id: String,
    cseq: u32,
    to_tag: Option<String>,
    branch: u32,
}

impl Peer {
    fn new(engine: SocketAddr, call_id: &str) -> Peer {
        let probe = Probe::new(engine);
        let local = probe.local_addr();
        Peer {
            probe,
            local,
            call_id: call_id.into(),
            cseq: 0,
            to_tag: None,
            branch: 0,
        }
    }

    fn send(&mut self, method: &str, body: Option<&str>, new_cseq: bool) {
        if new_cseq {
            self.cseq += 1;
        }
        self.branch += 1;
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let cseq_method = method;
        let (ctype, body) = match body {
            Some(b) => ("Content-Type: application/sdp\r\n", b.replace('\n', "\r\n")),
            None => ("", String::new()),
        };
        let msg = format!(
            "{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKraw{c}x{b};rport\r\nMax-Forwards: 70\r\nFrom: <sip:raw@{l}>;tag=raw1\r\nTo: <sip:100@127.0.0.1>{to_tag}\r\nCall-ID: {id}\r\nCSeq: {n} {cseq_method}\r\nContact: <sip:raw@{l}>\r\n{ctype}Content-Length: {len}\r\n\r\n{body}",
            l = self.local,
            c = self.cseq,
            b = self.branch,
            id = self.call_id,
            n = self.cseq,
            len = body.len(),
        );
        self.probe.send_raw(msg.as_bytes());
    }

    /// The next final response (or the given status), skipping provisional ones.
    fn final_response(&mut self) -> Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(text) = self.probe.recv_until(deadline) {
            if let Ok(SipMessage::Response(r)) = parse_datagram(text.as_bytes()) {
                if r.status >= 200 && r.headers.call_id() == Some(self.call_id.as_str()) {
                    if let Some(tag) = r
                        .headers
                        .to_addr()
                        .ok()
                        .and_then(|t| t.tag().map(str::to_string))
                    {
                        self.to_tag.get_or_insert(tag);
                    }
                    return r;
                }
            }
        }
        panic!("no final response for {}", self.call_id);
    }

    fn ack(&mut self) {
        self.send("ACK", None, false);
    }
}

fn offer(formats: &str, extra: &str, direction: &str) -> String {
    format!(
        "v=0\no=raw 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 49170 RTP/AVP {formats}\n{extra}a={direction}\n"
    )
}

fn svi(args: &[&str]) -> (i32, String) {
    let out = Command::new(svi_bin())
        .args(args)
        .output()
        .expect("run svi");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_configuration_value_is_refused_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[rtp]\nports = \"20000-10\"\n").expect("write");
    let (code, err) = svi(&[
        "run",
        "--config",
        &file.to_string_lossy(),
        "--data-dir",
        &dir.path().join("d").to_string_lossy(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.toml: rtp.ports: `20000-10`"), "{err}");
}

#[test]
fn an_invalid_flow_refuses_the_start_with_its_position() {
    let dir = tempfile::tempdir().expect("tmp");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).expect("dir");
    std::fs::write(
        flows.join("demo.yaml"),
        "flow: demo\nstart: a\nsteps:\n  a:\n    play: welcome\n    next: nowhere\n",
    )
    .expect("flow");
    let config = dir.path().join("svi.toml");
    std::fs::write(
        &config,
        format!(
            "[prompts]\ndir = \"{}\"\n[flows]\ndir = \"{}\"\n",
            svi_tests::repo_root().join("samples/prompts").display(),
            flows.display()
        ),
    )
    .expect("config");
    let (code, err) = svi(&[
        "run",
        "--config",
        &config.to_string_lossy(),
        "--sip-listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("demo.yaml:6:11"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn caller_numbers_and_digits_stay_out_of_the_log() {
    let engine = EngineProc::start(EngineOptions {
        extra: vec!["--log".into(), "debug".into()],
        ..EngineOptions::default()
    });
    let probe = Probe::new(engine.sip);
    let local = probe.local_addr();
    let sdp =
        offer("8 101", "a=rtpmap:101 telephone-event/8000\n", "sendrecv").replace('\n', "\r\n");
    let invite = format!(
        "INVITE sip:+33987654321@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKpii1;rport\r\nMax-Forwards: 70\r\nFrom: \"Ada\" <sip:+33612345678@{local}>;tag=pii\r\nTo: <sip:+33987654321@127.0.0.1>\r\nCall-ID: pii@test\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    probe.send_raw(invite.as_bytes());
    assert!(
        engine
            .wait_log("call started", Duration::from_secs(10))
            .is_some(),
        "{}",
        engine.log_text()
    );
    let calls = {
        let (_status, log) = engine.terminate(Duration::from_secs(15));
        log
    };
    assert!(calls.contains("call ended"), "{calls}");
    for secret in ["612345678", "987654321"] {
        assert!(
            !calls.contains(secret),
            "personal data `{secret}` in the log:\n{calls}"
        );
    }
}

/// An engine on the sample flow with extra `[sip]` settings (the overload limits).
fn engine_with_sip(sip: &str) -> (tempfile::TempDir, EngineProc) {
    let dir = tempfile::tempdir().expect("tmp");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).expect("flows");
    std::fs::write(
        flows.join("demo.yaml"),
        svi_tests::config::sample_flow("demo"),
    )
    .expect("demo");
    let config = dir.path().join("svi.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\n{sip}\n[prompts]\ndir = \"{}\"\n[flows]\ndir = \"{}\"\n[[queues]]\nid = \"support\"\n",
            svi_tests::repo_root().join("samples/prompts").display(),
            flows.display()
        ),
    )
    .expect("config");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    (dir, engine)
}

/// A first call is answered, a second one at once is refused with 503 and `retry_after`.
fn second_call_refused(engine: &EngineProc, retry_after: &str, warning: &str) {
    let mut first = Peer::new(engine.sip, "first@test");
    first.send("INVITE", Some(&offer("8", "", "sendrecv")), true);
    assert_eq!(first.final_response().status, 200);
    first.ack();
    let mut second = Peer::new(engine.sip, "second@test");
    second.send("INVITE", Some(&offer("8", "", "sendrecv")), true);
    let r = second.final_response();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some(retry_after));
    assert_eq!(r.headers.get(&HeaderName::Warning), Some(warning));
    second.ack();
    first.send("BYE", None, true);
    assert_eq!(first.final_response().status, 200);
}

#[test]
fn calls_beyond_max_calls_per_second_are_refused_with_503() {
    // One call a second: the second INVITE, sent right after the first, finds no token.
    let (_dir, engine) = engine_with_sip("max_calls_per_second = 1");
    second_call_refused(&engine, "1", "399 svi \"call rate limit\"");
    assert!(
        engine
            .log_text()
            .contains("sip.max_calls_per_second exceeded"),
        "{}",
        engine.log_text()
    );
}
