//! SRTP with SDES keys (issue 13, acceptance 5, over UDP, TCP and TLS): Debian's baresip
//! calls with `mediaenc=srtp-mand` (RTP/SAVP, AES_CM_128_HMAC_SHA1_80) an engine whose SRTP
//! policy is `required`; the call reaches the demo flow, its digit (in-band tones, decodable
//! only if the engine decrypted the audio) selects option 1, and baresip, which checks every
//! packet it gets, reports SRTP enabled and no packet it failed to decrypt. A plain RTP offer
//! from a trunk whose policy is `required` is refused with 488.

use std::path::Path;
use std::time::Duration;

use svi_tests::baresip::{self, Baresip};
use svi_tests::config::{prompt_len, sample_flow, write, write_with_sip};
use svi_tests::pcap::dtmf_pcm;
use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::proc::{EngineOptions, EngineProc};

/// The caller's microphone: silence until the menu plays, the key 1, then silence.
fn key_1_in_the_menu(path: &Path) {
    let lead = (prompt_len("welcome") + Duration::from_secs(1)).as_millis() as usize;
    baresip::write_mic(
        path,
        std::iter::repeat_n(0i16, lead * 8)
            .chain(dtmf_pcm('1', 120, 60))
            .chain(std::iter::repeat_n(0i16, 20 * 8000)),
    );
}

fn engine(extra: &str) -> (tempfile::TempDir, EngineProc) {
    let dir = tempfile::tempdir().expect("tmp");
    let demo = sample_flow("demo");
    let config = write(dir.path(), &[("demo", demo.as_str())], extra);
    start(dir, config)
}

fn start(dir: tempfile::TempDir, config: std::path::PathBuf) -> (tempfile::TempDir, EngineProc) {
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    (dir, engine)
}

fn baresip_call_reaches_option_1_over_srtp(transport: &str) {
    if !baresip::available() {
        return;
    }
    let (dir, engine) = engine("[rtp]\nsrtp = \"required\"\n");
    let wav = dir.path().join("key1.wav");
    key_1_in_the_menu(&wav);
    let uri = format!("sip:100@{};transport={transport}", engine.sip);
    let phone = Baresip::call(&dir.path().join("baresip"), &uri, "srtp-mand", &wav);
    assert_option_1_over_srtp(&engine, phone);
}

/// The call reached option 1 with SRTP both ways (`phone` made it).
fn assert_option_1_over_srtp(engine: &EngineProc, phone: Baresip) {
    let calls = engine.wait_calls(1, Duration::from_secs(40));
    let console = phone.stop();
    let call = &calls[0];
    assert_eq!(
        svi_tests::path_of(call),
        ["welcome", "main_menu", "option1", "end"],
        "{call:#}\nbaresip:\n{console}\nengine:\n{}",
        engine.log_text()
    );
    assert_eq!(call["end_reason"], "engine_hangup", "{call:#}");
    assert!(call["rtp_received"].as_u64().unwrap_or(0) > 100, "{call:#}");
    assert!(
        console.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{console}"
    );
    assert!(!console.contains("failed to decrypt"), "{console}");
}

#[test]
fn baresip_over_udp_with_srtp_reaches_the_demo_flow_and_its_digit_works() {
    baresip_call_reaches_option_1_over_srtp("udp");
}

#[test]
fn baresip_over_tcp_with_srtp_reaches_the_demo_flow_and_its_digit_works() {
    baresip_call_reaches_option_1_over_srtp("tcp");
}

/// Acceptance 5 whole: the same call with its signalling over TLS (the engine's certificate,
/// made at first start, is baresip's CA), so the SDES keys never cross the wire in clear.
#[test]
fn baresip_over_tls_with_srtp_reaches_the_demo_flow_and_its_digit_works() {
    if !baresip::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let tls = svi_tests::ports::free_sip_port();
    let demo = sample_flow("demo");
    let config = write_with_sip(
        dir.path(),
        &[("demo", demo.as_str())],
        &format!(
            "allowed_networks = [\"127.0.0.0/8\"]\ntransports = [\"udp\", \"tls\"]\n\
             [sip.tls]\nlisten = \"127.0.0.1:{tls}\"\n"
        ),
        "[rtp]\nsrtp = \"required\"\n",
    );
    let (dir, engine) = start(dir, config);
    let wav = dir.path().join("key1.wav");
    key_1_in_the_menu(&wav);
    let ca = format!(
        "sip_cafile {}",
        engine.data_dir().join("tls/sip-tls.crt").display()
    );
    let mut phone = Baresip::start_with_mic(
        &dir.path().join("baresip"),
        &format!(
            "<sip:caller@127.0.0.1:{tls};transport=tls>;regint=0;audio_codecs=PCMA;mediaenc=srtp-mand"
        ),
        &ca,
        &wav,
    );
    phone.keys(&format!("/dial sip:100@127.0.0.1:{tls};transport=tls\n"));
    // Only the TLS listener is on that port (the engine's UDP port is another, and it
    // serves no plain TCP here): an established call went over TLS.
    let established = phone.wait_log("Call established", Duration::from_secs(20));
    assert!(established.is_some(), "{}", phone.log_text());
    assert_ne!(engine.sip.port(), tls);
    assert_option_1_over_srtp(&engine, phone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_offer_from_a_trunk_requiring_srtp_gets_488() {
    let (_dir, engine) = engine(
        "[[trunks]]\nname = \"pbx\"\nregistrar = \"sip:127.0.0.1:9\"\nusername = \"svi\"\n\
         password = \"secret\"\nregister = false\nnetworks = [\"127.0.0.1\"]\nsrtp = \"required\"\n",
    );
    let mut caller = Phone::start(PhoneConfig::new("caller"))
        .await
        .expect("phone");
    caller
        .call(&format!("sip:100@{}", engine.sip))
        .await
        .expect("call");
    assert_eq!(
        caller.wait_ended(deadline(10)).await.expect("an answer"),
        Ended::Rejected { status: 488 }
    );
    let line = engine
        .wait_log("answering 488", Duration::from_secs(5))
        .expect("logged");
    assert!(line.contains("SRTP is required"), "{line}");
}
