//! The process's own refusals of a bad configuration or flow at start, and personal data
//! kept out of its log (a raw SIP peer on UDP calls it). (Dialog behaviour: 488, hold and
//! resume, BYE and 481, the RTP timeout, `max_calls` and the call rate run in virtual time
//! in `engine/tests/calls/dialogs.rs`.)

use std::process::Command;
use std::time::Duration;

use svi_tests::probe::Probe;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

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
    std::fs::write(
        &file,
        "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\n[rtp]\nports = \"20000-10\"\n",
    )
    .expect("write");
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
            "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\n[prompts]\ndir = \"{}\"\n[flows]\ndir = \"{}\"\n",
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
