//! Transfers (blind and bridged), supervision, the bridge's recording, hangups in a bridge.

use super::queue::bridged;
use super::*;
use crate::media::Link;

const BRIDGED: &str = r#"flow: test
start: go
steps:
  go:
    transfer: '"sip:desk@127.0.0.1:5093"'
    mode: bridged
    timeout: 10s
    failed: sorry
  sorry:
    play: no_agent_available
    next: end
  end:
    hangup:
"#;

const BLIND: &str = r#"flow: test
start: go
steps:
  go:
    transfer: 2000
    failed: sorry
  sorry:
    play: no_agent_available
    next: end
  end:
    hangup:
"#;

fn transfer() -> (Sim, ReqId, Request) {
    let sim = Sim::new(BRIDGED, "", Some(offer("sendrecv")));
    let (req, invite) = sim.sent(Method::Invite, "desk");
    (sim, req, invite)
}

#[test]
fn a_bridged_transfer_rings_back_then_bridges_on_answer() {
    let (mut sim, req, invite) = transfer();
    assert_eq!(sim.playing(), ["ringback"]);
    sim.play_ends();
    assert_eq!(sim.plays(CALLER_STREAM).len(), 2, "ringback again");
    sim.answer(req, &invite, 180, None);
    sim.after(secs(3));
    sim.answer(req, &invite, 200, Some(43000));
    let bridges = sim
        .media_out()
        .iter()
        .filter(|m| matches!(m, MediaOut::Bridge { .. }))
        .count();
    assert_eq!(bridges, 1);
    assert!(!sim.core.is_ended(), "the flow is done, the bridge goes on");
    // Past the step's timeout nothing happens any more.
    sim.after(secs(60));
    assert!(!sim.core.is_ended());
    // Digits go through both ways.
    sim.key("5");
    assert!(matches!(
        sim.log.last(),
        Some(Output::Media(MediaOut::SendDtmf { stream, .. })) if *stream != CALLER_STREAM
    ));
    let bye = sim.leg_sends(&invite, "BYE", "");
    assert_eq!(status(&bye), [200]);
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(r.end_reason, EndReason::TargetHangup);
    assert_eq!(r.path, ["go"]);
}

#[test]
fn a_busy_target_takes_the_failed_branch() {
    let (mut sim, req, invite) = transfer();
    sim.answer(req, &invite, 486, None);
    assert_eq!(sim.playing(), ["no_agent_available"]);
}

#[test]
fn a_target_that_does_not_answer_in_time_is_cancelled() {
    let (mut sim, req, _) = transfer();
    sim.after(secs(10) - ms(1));
    assert_eq!(sim.playing(), ["ringback"]);
    sim.after(ms(1));
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Cancel { req: r }) if *r == req)));
    assert_eq!(sim.playing(), ["no_agent_available"]);
}

#[test]
fn a_target_answering_without_usable_sdp_is_hung_up() {
    let (mut sim, req, invite) = transfer();
    sim.answer(req, &invite, 200, None);
    let (_, bye) = sim.sent(Method::Bye, "desk");
    assert_eq!(bye.headers.call_id(), invite.headers.call_id());
    assert_eq!(sim.playing(), ["no_agent_available"]);
}

#[test]
fn a_target_outside_the_allowed_networks_fails_at_once() {
    let flow = BRIDGED.replace("127.0.0.1:5093", "192.0.2.9:5093");
    let sim = Sim::new(&flow, "", Some(offer("sendrecv")));
    assert_eq!(sim.playing(), ["no_agent_available"]);
    assert!(sim
        .requests()
        .iter()
        .all(|(_, r, _)| r.method != Method::Invite));
}

#[test]
fn a_blind_transfer_completes_on_a_2xx_notify() {
    let mut sim = Sim::new(BLIND, "", Some(offer("sendrecv")));
    let (req, refer) = sim.sent_to_caller(Method::Refer).expect("REFER");
    let to = refer.headers.get(&HeaderName::ReferTo).expect("Refer-To");
    assert_eq!(to, "<sip:2000@127.0.0.1:5070>");
    sim.answer(req, &refer, 202, None);
    let notify = sim.caller_sends_typed("NOTIFY", "message/sipfrag", "SIP/2.0 200 OK\r\n");
    assert_eq!(status(&notify), [200]);
    sim.caller_answers_bye();
    assert_eq!(sim.record().end_reason, EndReason::EngineHangup);
}

/// Toll-fraud protection: a number the dial plan does not allow is never sent in a REFER;
/// the flow takes its failed branch and the record says why.
#[test]
fn a_transfer_outside_the_dial_plan_is_refused_and_recorded() {
    let flow = BLIND.replace("transfer: 2000", "transfer: 9000");
    let mut sim = Sim::new(&flow, "", Some(offer("sendrecv")));
    assert!(sim.sent_to_caller(Method::Refer).is_none());
    assert_eq!(sim.playing(), ["no_agent_available"]);
    sim.caller_hangs_up();
    assert_eq!(
        sim.record().dial_refused.as_deref(),
        Some("transfer to <redacted: 4 chars> refused: no prefix the PBX the call came from allows (2, +336)")
    );
}

#[test]
fn a_refused_refer_takes_the_failed_branch() {
    let mut sim = Sim::new(BLIND, "", Some(offer("sendrecv")));
    let (req, refer) = sim.sent_to_caller(Method::Refer).expect("REFER");
    sim.answer(req, &refer, 603, None);
    assert_eq!(sim.playing(), ["no_agent_available"]);
}

#[test]
fn supervision_joins_changes_mode_and_leaves() {
    let (mut sim, _) = bridged();
    sim.core
        .handle_recording_started(sim.now, Ok("/rec/call.wav".into()));
    let listen = CallCommand::Supervise {
        mode: Some(SuperviseMode::Listen),
        target: Some("2000".into()),
    };
    let reply = sim.core.handle_command(sim.now, listen);
    assert_eq!(
        reply,
        Ok(CommandOutcome::SupervisorCalled {
            target: "2000".into(),
            mode: SuperviseMode::Listen
        })
    );
    sim.drain();
    let (req, invite) = sim.sent(Method::Invite, "2000");
    sim.answer(req, &invite, 200, Some(44000));
    let wired = |sim: &Sim| {
        sim.media_out()
            .iter()
            .filter_map(|m| match m {
                MediaOut::Route { tap, feed, .. } => Some((*tap, *feed)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        wired(&sim),
        [
            (Link::Supervisor, Link::Caller),
            (Link::Supervisor, Link::Agent)
        ],
        "the supervisor hears both; nobody hears the supervisor"
    );
    let barge = CallCommand::Supervise {
        mode: Some(SuperviseMode::Barge),
        target: None,
    };
    assert_eq!(
        sim.core.handle_command(sim.now, barge),
        Ok(CommandOutcome::SupervisionChanged {
            mode: SuperviseMode::Barge
        })
    );
    sim.drain();
    assert_eq!(wired(&sim).len(), 2 + 4, "rewired with both ways in");
    // The supervisor hangs up: out of the mix, the call goes on.
    let bye = sim.leg_sends(&invite, "BYE", "");
    assert_eq!(status(&bye), [200]);
    let unrouted = sim
        .media_out()
        .iter()
        .filter(|m| matches!(m, MediaOut::Unroute { .. }))
        .count();
    assert!(unrouted >= 4);
    assert!(!sim.core.is_ended());
    let stop = CallCommand::Supervise {
        mode: None,
        target: None,
    };
    assert_eq!(
        sim.core.handle_command(sim.now, stop),
        Err(CommandError::NotSupervised)
    );
}

#[test]
fn supervision_needs_a_bridge_and_a_target() {
    let mut sim = Sim::demo();
    let listen = CallCommand::Supervise {
        mode: Some(SuperviseMode::Listen),
        target: Some("2000".into()),
    };
    assert_eq!(
        sim.core.handle_command(sim.now, listen),
        Err(CommandError::NotBridged)
    );
    let (mut sim, _) = bridged();
    let nobody = CallCommand::Supervise {
        mode: Some(SuperviseMode::Whisper),
        target: None,
    };
    assert_eq!(
        sim.core.handle_command(sim.now, nobody),
        Err(CommandError::NoSupervisor)
    );
}

#[test]
fn the_recording_pauses_by_command_and_by_the_agents_feature_code() {
    let (mut sim, invite) = bridged();
    let pause = CallCommand::Recording { pause: true };
    assert_eq!(
        sim.core.handle_command(sim.now, pause.clone()),
        Err(CommandError::NotRecorded),
        "not started yet"
    );
    sim.core
        .handle_recording_started(sim.now, Ok("/rec/call.wav".into()));
    assert_eq!(
        sim.core.handle_command(sim.now, pause),
        Ok(CommandOutcome::RecordingPaused)
    );
    sim.drain();
    assert!(matches!(
        sim.log.last(),
        Some(Output::Recording(RecordingOut::Pause))
    ));
    let agent = sim
        .media_out()
        .iter()
        .find_map(|m| match m {
            MediaOut::Bridge { peer, .. } => Some(*peer),
            _ => None,
        })
        .expect("the agent's stream");
    for d in ['*', '8'] {
        let digit = pii::Pii::new(crate::media::DtmfDigit::from_char(d).expect("digit"));
        let source = crate::media::DtmfSource::Rfc4733;
        sim.media(agent, MediaEvent::Dtmf { digit, source });
    }
    assert!(matches!(
        sim.log.last(),
        Some(Output::Recording(RecordingOut::Resume))
    ));
    let _ = invite;
}

#[test]
fn the_caller_hangs_up_a_bridged_call() {
    let (mut sim, invite) = bridged();
    sim.core
        .handle_recording_started(sim.now, Err("read-only".into()));
    sim.caller_hangs_up();
    let (_, bye) = sim.sent(Method::Bye, "1001");
    assert_eq!(bye.headers.call_id(), invite.headers.call_id());
    let call = sim.call_id();
    assert!(sim.acd_inputs().contains(&acd::Input::CallEnded { call }));
    assert_eq!(sim.record().end_reason, EndReason::CallerHangup);
}

#[test]
fn a_silent_agent_phone_ends_the_bridged_call() {
    let (mut sim, _) = bridged();
    sim.core
        .handle_recording_started(sim.now, Err("off".into()));
    let agent = StreamId(1);
    sim.media(agent, MediaEvent::RtpTimeout);
    sim.caller_answers_bye();
    assert_eq!(sim.record().end_reason, EndReason::RtpTimeout);
    assert!(sim.sent(Method::Bye, "1001").1.headers.call_id().is_some());
}

#[test]
fn shutdown_of_a_bridged_call_hangs_up_both_sides_and_completes_the_recording() {
    let (mut sim, _) = bridged();
    sim.core
        .handle_recording_started(sim.now, Ok("/rec/call.wav".into()));
    sim.core.handle_shutdown(sim.now);
    sim.drain();
    let (agent_req, agent_bye) = sim.sent(Method::Bye, "1001");
    assert!(matches!(
        sim.log
            .iter()
            .rev()
            .find(|o| matches!(o, Output::Recording(_))),
        Some(Output::Recording(RecordingOut::Stop))
    ));
    // The caller's BYE waits for the recording and the record.
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    sim.core.handle_recording_finished(sim.now, None);
    sim.drain();
    assert_eq!(sim.record().end_reason, EndReason::Shutdown);
    assert!(sim.sent_to_caller(Method::Bye).is_some());
    assert!(!sim.core.is_over());
    sim.caller_answers_bye();
    assert!(sim.core.is_over());
    assert!(
        !sim.core.is_ended(),
        "the agent's leg still awaits its BYE's answer"
    );
    sim.answer(agent_req, &agent_bye, 200, None);
    assert!(sim.core.is_ended());
}
