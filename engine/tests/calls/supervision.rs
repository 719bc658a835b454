//! A bridged call supervised (listen, whisper, barge, stop) and its recording paused and
//! resumed, by commands through the `EngineHandle`. (Moved from
//! `tests/tests/bridge_audio.rs`, which keeps the audio of the recording on the wire.)

use std::net::SocketAddr;

use engine::call::{CallCommand, CommandOutcome, SuperviseMode};
use engine::storage::QueueOutcome;

use crate::harness::*;

/// The supervisor's phone.
const SUPERVISOR: u16 = 7100;

fn supervise(mode: Option<SuperviseMode>, target: Option<String>) -> CallCommand {
    CallCommand::Supervise { mode, target }
}

/// Who each of `parties` hears, as indexes into `parties`.
async fn hearing(h: &Harness, parties: &[SocketAddr]) -> Vec<Vec<usize>> {
    let heard = h.media.hearing(parties, ms(200)).await;
    heard
        .iter()
        .map(|l| {
            l.iter()
                .map(|a| parties.iter().position(|p| p == a).expect("a party"))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_supervisor_listens_whispers_barges_in_then_leaves() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut agent = h.agent("1001", "demo-1001").await;
    let mut sup = h.ua_at("supervisor", SUPERVISOR);
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(3)).await;
    let leg = agent.answer(ring, true).await;
    let parties = [caller.rtp, agent.rtp, sup.rtp];
    const CALLER: usize = 0;
    const AGENT: usize = 1;
    const SUP: usize = 2;

    // Listen: the supervisor hears both; nobody hears the supervisor.
    let target = format!("sip:supervisor@127.0.0.1:{SUPERVISOR}");
    let answer = h
        .handle
        .call_command("1001", supervise(Some(SuperviseMode::Listen), Some(target)))
        .await
        .expect("supervise");
    assert!(
        matches!(answer.outcome, CommandOutcome::SupervisorCalled { .. }),
        "{answer:?}"
    );
    let ring = sup.ringing(secs(5)).await;
    let sup_leg = sup.answer(ring, true).await;
    assert_eq!(
        hearing(&h, &parties).await,
        [vec![AGENT], vec![CALLER], vec![CALLER, AGENT]],
        "listen"
    );

    // Whisper: the agent hears the supervisor too; the caller still does not.
    let answer = h
        .handle
        .call_command("1001", supervise(Some(SuperviseMode::Whisper), None))
        .await
        .expect("whisper");
    assert_eq!(
        answer.outcome,
        CommandOutcome::SupervisionChanged {
            mode: SuperviseMode::Whisper
        }
    );
    assert_eq!(
        hearing(&h, &parties).await,
        [vec![AGENT], vec![CALLER, SUP], vec![CALLER, AGENT]],
        "whisper"
    );

    // Barge: everyone hears everyone.
    h.handle
        .call_command("1001", supervise(Some(SuperviseMode::Barge), None))
        .await
        .expect("barge");
    assert_eq!(
        hearing(&h, &parties).await,
        [vec![AGENT, SUP], vec![CALLER, SUP], vec![CALLER, AGENT]],
        "barge"
    );

    // Stop: the supervisor's phone is hung up; the call goes on.
    let answer = h
        .handle
        .call_command("1001", supervise(None, None))
        .await
        .expect("stop");
    assert_eq!(answer.outcome, CommandOutcome::SupervisionStopped);
    sup.expect_bye(&sup_leg, secs(5)).await;
    let after = hearing(&h, &parties[..2]).await;
    assert_eq!(after, [vec![AGENT], vec![CALLER]], "after stop");
    caller.hang_up(&mut call).await;
    agent.expect_bye(&leg, secs(5)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(r.queue_outcome, Some(QueueOutcome::Answered));
}

#[tokio::test]
async fn a_paused_recording_holds_silence_for_the_pause() {
    let config = SUPPORT.replace("announce =", "record = \"all\"\nannounce =");
    let mut h = Harness::start(&[("demo", &demo_flow())], &config).await;
    let mut agent = h.agent("1001", "demo-1001").await;
    let (mut caller, mut call) = h.queued_caller("caller", 1).await;
    let ring = agent.ringing(secs(3)).await;
    agent.answer(ring, true).await;
    tokio::time::sleep(secs(2)).await;
    let answer = h
        .handle
        .call_command("1001", CallCommand::Recording { pause: true })
        .await
        .expect("pause");
    assert_eq!(answer.outcome, CommandOutcome::RecordingPaused);
    tokio::time::sleep(secs(2)).await;
    let answer = h
        .handle
        .call_command("1001", CallCommand::Recording { pause: false })
        .await
        .expect("resume");
    assert_eq!(answer.outcome, CommandOutcome::RecordingResumed);
    tokio::time::sleep(secs(2)).await;
    caller.hang_up(&mut call).await;
    let r = &h.records(1, secs(10)).await[0];
    let path = r.recording.as_deref().expect("recorded");
    // Seconds 0-2 hold both voices, 2-4 silence on both channels, then both again.
    let mut wav = hound::WavReader::open(path).expect("a WAV file");
    assert_eq!(wav.spec().channels, 2);
    let samples: Vec<i16> = wav.samples::<i16>().map_while(Result::ok).collect();
    let frames: Vec<&[i16]> = samples.chunks(2 * 800).collect();
    let silent = frames.iter().filter(|f| f.iter().all(|s| *s == 0)).count();
    let voiced = frames.iter().filter(|f| f.iter().all(|s| *s != 0)).count();
    assert!(
        (18..=22).contains(&silent),
        "about 2 s of silence in {} × 100 ms: {silent} silent",
        frames.len()
    );
    assert!(voiced >= 30, "both voices for 4 s: {voiced} × 100 ms");
    assert!(
        h.log.contains("recording paused by an operator"),
        "the log says who paused: {}",
        h.log.text()
    );
}
