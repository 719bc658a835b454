//! Flow steps that need more than prompts and digits, end to end: `record` (a message left
//! after the beep, ended by `#`). (Blind and bridged `transfer` run in virtual time in
//! `engine/tests/calls/transfer.rs`; `bridge_audio.rs` keeps the bridged audio.)

use std::time::Duration;

use svi_tests::path_of;
use svi_tests::pcap::{dtmf_pcm, write_rtp_pcap};
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

use svi_tests::config::prompt_len;

const RECORD_FLOW: &str = "flow: message
language: en
start: leave
steps:
  leave:
    record: welcome
    max_length: 10s
    into: msg
    next: thanks
  thanks:
    play: goodbye
    next: end
  end:
    hangup:
";

#[test]
fn record_step_keeps_the_callers_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = svi_tests::config::write(dir.path(), &[("message", RECORD_FLOW)], "");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    // Half a second of tones after the welcome and the beep, then `#`.
    let pcap = dir.path().join("voice.pcap");
    write_rtp_pcap(&pcap, &dtmf_pcm('5', 500, 20), 8).expect("pcap");
    let after_beep = prompt_len("welcome") + prompt_len("beep") + Duration::from_millis(300);
    let caller = Caller::new(Codec::Pcma)
        .dtmf(after_beep, Dtmf::InbandPcap(pcap))
        .dtmf(Duration::from_millis(1200), Dtmf::Info('#'));
    let run = Sipp::new(caller.xml())
        .calls(1)
        .with_media()
        .run(dir.path(), Some(engine.sip));
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(
        path_of(&calls[0]),
        ["leave", "thanks", "end"],
        "{:#}",
        calls[0]
    );
    let line = engine
        .wait_log("message recorded", Duration::from_secs(5))
        .expect("recorded");
    let messages = engine.data_dir().join("messages");
    let file = std::fs::read_dir(&messages)
        .expect("messages dir")
        .flatten()
        .next()
        .expect("one message")
        .path();
    let mut wav = hound::WavReader::open(&file).expect("wav");
    let spec = wav.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16),
        "{line}"
    );
    let samples: Vec<i16> = wav.samples::<i16>().map_while(Result::ok).collect();
    let secs = samples.len() as f64 / 8000.0;
    assert!(
        (0.8..4.0).contains(&secs),
        "the message lasts from the beep to `#`: {secs} s"
    );
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(
        loud > 2000,
        "the caller's tones are in the recording ({loud} loud samples)"
    );
}
