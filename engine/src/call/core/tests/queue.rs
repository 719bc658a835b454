//! A call in the ACD: music, agents rung (ring-all too), ring-no-answer, the bridge,
//! overflow, hanging up while waiting, callbacks.

use super::*;
use crate::acd::{AgentId, CallbackResult, QueueId, RingFailure};
use crate::storage::QueueOutcome as Stored;

/// The demo caller, queued in `support` and hearing music.
fn queued() -> Sim {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.key("2");
    let call = sim.call_id();
    sim.acd(acd::Action::Hold {
        call,
        queue: QueueId::from("support"),
    });
    assert_eq!(sim.playing(), ["music_on_hold"]);
    sim
}

fn ring(sim: &mut Sim, agent: &str, contact: &str) -> (ReqId, Request) {
    let call = sim.call_id();
    sim.acd(acd::Action::RingAgent {
        call,
        queue: QueueId::from("support"),
        agent: AgentId::from(agent),
        contact: contact.into(),
        timeout: secs(15),
    });
    sim.sent(Method::Invite, agent)
}

fn leg_stream(sim: &Sim, invite: &Request) -> StreamId {
    let port = sip::sdp::SessionDescription::parse_bytes(&invite.body)
        .ok()
        .and_then(|s| {
            s.to_string().lines().find_map(|l| {
                l.strip_prefix("m=audio ")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|p| p.parse::<u16>().ok())
            })
        })
        .expect("the leg's offer");
    let _ = sim;
    StreamId(u32::from((port - 31000) / 2))
}

/// The queued call, bridged to agent 1001.
pub(super) fn bridged() -> (Sim, Request) {
    let mut sim = queued();
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    sim.answer(req, &invite, 200, Some(41000));
    let call = sim.call_id();
    sim.acd(acd::Action::Bridge {
        call,
        agent: AgentId::from("1001"),
    });
    (sim, invite)
}

#[test]
fn a_queued_caller_is_bridged_to_the_agent_who_answers() {
    let mut sim = queued();
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    let from = invite.headers.from_addr().expect("From");
    assert_eq!(
        from.uri.user(),
        Some("+33612345678"),
        "the agent sees the caller"
    );
    let agent = leg_stream(&sim, &invite);
    sim.answer(req, &invite, 180, None);
    sim.answer(req, &invite, 200, Some(41000));
    let acks = sim
        .log
        .iter()
        .filter(|o| matches!(o, Output::Sip(SipOut::Stateless { .. })))
        .count();
    assert_eq!(acks, 1);
    // A retransmitted 200 is acknowledged again.
    sim.answer(req, &invite, 200, Some(41000));
    let acks_after = sim
        .log
        .iter()
        .filter(|o| matches!(o, Output::Sip(SipOut::Stateless { .. })))
        .count();
    assert_eq!(acks_after, 2);
    let call = sim.call_id();
    sim.acd(acd::Action::Bridge {
        call: call.clone(),
        agent: AgentId::from("1001"),
    });
    let inputs = sim.acd_inputs();
    assert!(inputs.contains(&acd::Input::AgentRinging {
        call: call.clone(),
        agent: AgentId::from("1001")
    }));
    assert!(inputs.contains(&acd::Input::AgentAnswered {
        call: call.clone(),
        agent: AgentId::from("1001")
    }));
    let bridges: Vec<_> = sim
        .media_out()
        .into_iter()
        .filter_map(|m| match m {
            MediaOut::Bridge { caller, peer } => Some((*caller, *peer)),
            _ => None,
        })
        .collect();
    assert_eq!(bridges, [(CALLER_STREAM, agent)]);
    assert!(sim.log.iter().any(|o| matches!(
        o,
        Output::Recording(RecordingOut::Start { left, right, .. })
            if *left == CALLER_STREAM && *right == agent
    )));
    sim.core
        .handle_recording_started(sim.now, Ok("/rec/call.wav".into()));
    // The agent hangs up: the ACD hears the call ended; the caller gets BYE once the
    // recording is complete and the record stored.
    let bye = sim.leg_sends(&invite, "BYE", "");
    assert_eq!(status(&bye), [200]);
    assert!(sim.acd_inputs().contains(&acd::Input::CallEnded { call }));
    assert!(sim.left_acd());
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    assert!(!sim.core.is_ended(), "the recording is being completed");
    let file = RecordedFile {
        path: "/rec/x.wav".into(),
        sha256: "ab".into(),
        duration_ms: 1234,
    };
    sim.core.handle_recording_finished(sim.now, Some(file));
    sim.drain();
    assert!(matches!(
        sim.log.last(),
        Some(Output::Sip(SipOut::Request { request, .. })) if request.method == Method::Bye
    ));
    sim.caller_answers_bye();
    assert!(sim.core.is_ended());
    let r = sim.record();
    assert_eq!(r.end_reason, EndReason::AgentHangup);
    assert_eq!(r.agent.as_deref(), Some("1001"));
    assert_eq!(r.queue.as_deref(), Some("support"));
    assert_eq!(r.queue_outcome, Some(Stored::Answered));
    assert_eq!(r.recording_ms, Some(1234));
    assert!(r.agent_answered_at.is_some() && r.queued_at.is_some());
}

#[test]
fn agent_ring_no_answer_keeps_the_caller_waiting() {
    let mut sim = queued();
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    sim.answer(req, &invite, 180, None);
    // The ACD's ring timer gives up on the agent: its leg only is cancelled.
    let call = sim.call_id();
    sim.acd(acd::Action::CancelRing {
        call: call.clone(),
        agent: AgentId::from("1001"),
    });
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Cancel { req: r }) if *r == req)));
    sim.answer(req, &invite, 487, None);
    let failures = sim
        .acd_inputs()
        .into_iter()
        .filter(|i| matches!(i, acd::Input::RingFailed { .. }))
        .count();
    assert_eq!(failures, 0, "the ACD decided; 487 is our CANCEL's answer");
    // The caller keeps its music.
    let played = sim.plays(CALLER_STREAM).len();
    let (music, _) = sim.plays(CALLER_STREAM).last().cloned().expect("music");
    sim.media(CALLER_STREAM, MediaEvent::PlaybackFinished { id: music });
    assert_eq!(sim.playing(), ["music_on_hold"]);
    assert_eq!(sim.plays(CALLER_STREAM).len(), played + 1);
    // The next agent's phone gives up by itself (480): the ACD hears it did not answer.
    let (req, invite) = ring(&mut sim, "1002", "sip:1002@127.0.0.1:5095");
    sim.answer(req, &invite, 480, None);
    assert!(sim.acd_inputs().contains(&acd::Input::RingFailed {
        call,
        agent: AgentId::from("1002"),
        failure: RingFailure::NoAnswer,
    }));
    assert!(!sim.core.is_ended());
}

#[test]
fn an_agent_without_transaction_answer_is_reported_as_no_answer() {
    let mut sim = queued();
    let (req, _) = ring(&mut sim, "1001", AGENT_1001);
    sim.core.handle_sip(sim.now, SipIn::Timeout { req });
    sim.drain();
    assert!(matches!(
        sim.acd_inputs().last(),
        Some(acd::Input::RingFailed {
            failure: RingFailure::NoAnswer,
            ..
        })
    ));
}

#[test]
fn an_agent_answering_with_an_unoffered_codec_is_hung_up() {
    let mut sim = queued();
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    sim.answer(req, &invite, 200, None);
    assert!(matches!(
        sim.acd_inputs().last(),
        Some(acd::Input::RingFailed {
            failure: RingFailure::Failed(_),
            ..
        })
    ));
    assert_eq!(
        sim.sent(Method::Bye, "1001").1.headers.call_id(),
        invite.headers.call_id()
    );
}

#[test]
fn ring_all_bridges_the_first_to_answer_and_hangs_up_late_answers() {
    let mut sim = queued();
    let (r1, i1) = ring(&mut sim, "1001", AGENT_1001);
    let (r2, i2) = ring(&mut sim, "1002", "sip:1002@127.0.0.1:5095");
    sim.answer(r2, &i2, 200, Some(41002));
    sim.answer(r1, &i1, 200, Some(41000));
    // The late answer is acknowledged, then hung up.
    let (_, bye) = sim.sent(Method::Bye, "1001");
    assert_eq!(bye.headers.call_id(), i1.headers.call_id());
    let call = sim.call_id();
    sim.acd(acd::Action::Bridge {
        call,
        agent: AgentId::from("1002"),
    });
    assert_eq!(sim.record_agent(), Some("1002"));
}

#[test]
fn overflow_sends_the_call_back_to_its_flow() {
    let mut sim = queued();
    let call = sim.call_id();
    sim.acd(acd::Action::Overflow {
        call,
        queue: QueueId::from("support"),
        reason: acd::OverflowReason::MaxWait,
        target: acd::ExitTarget::Flow { step: None },
    });
    assert!(sim.left_acd());
    assert_eq!(sim.playing(), ["no_agent_available"]);
    sim.play_ends();
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(r.queue_outcome, Some(Stored::Overflow));
    assert_eq!(
        r.path,
        ["welcome", "main_menu", "support", "no_agent", "end"]
    );
}

#[test]
fn an_exit_message_plays_then_the_engine_hangs_up() {
    let mut sim = queued();
    let call = sim.call_id();
    sim.acd(acd::Action::Overflow {
        call,
        queue: QueueId::from("support"),
        reason: acd::OverflowReason::QueueFull,
        target: acd::ExitTarget::Message {
            prompt: "goodbye".into(),
        },
    });
    assert_eq!(sim.playing(), ["goodbye"]);
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    sim.play_ends();
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(r.queue_outcome, Some(Stored::Overflow));
    assert_eq!(r.end_reason, EndReason::EngineHangup);
}

#[test]
fn a_caller_who_hangs_up_while_the_agent_rings_abandons() {
    let mut sim = queued();
    let (req, _) = ring(&mut sim, "1001", AGENT_1001);
    sim.caller_hangs_up();
    let call = sim.call_id();
    assert!(sim
        .acd_inputs()
        .contains(&acd::Input::CallAbandoned { call }));
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Cancel { req: r }) if *r == req)));
    assert!(sim.left_acd());
    let r = sim.record();
    assert_eq!(r.queue_outcome, Some(Stored::Abandoned));
    assert_eq!(r.end_reason, EndReason::CallerHangup);
}

/// The queued caller asks for a callback and is hung up.
fn away() -> Sim {
    let mut sim = queued();
    sim.key("1");
    let call = sim.call_id();
    assert!(sim
        .acd_inputs()
        .contains(&acd::Input::CallbackRequested { call: call.clone() }));
    sim.acd(acd::Action::CallbackAccepted { call });
    assert_eq!(sim.playing(), ["queue_callback_confirm"]);
    sim.play_ends();
    assert!(
        sim.sent_to_caller(Method::Bye).is_some(),
        "hung up after the confirmation"
    );
    assert!(sim
        .media_out()
        .iter()
        .any(|m| matches!(m, MediaOut::Close { stream } if *stream == CALLER_STREAM)));
    sim
}

fn callback_call(sim: &mut Sim) -> (ReqId, Request) {
    let call = sim.call_id();
    sim.acd(acd::Action::CallbackCall {
        call,
        queue: QueueId::from("support"),
        agent: AgentId::from("1001"),
        contact: AGENT_1001.into(),
    });
    sim.sent(Method::Invite, "1001")
}

#[test]
fn a_callback_keeps_its_place_and_dials_the_caller_back() {
    let mut sim = away();
    assert!(!sim.core.is_ended(), "the call lives on in the ACD");
    let (req, invite) = callback_call(&mut sim);
    sim.answer(req, &invite, 200, Some(41000));
    // The agent answered: the caller is dialled back through the PBX it called from.
    let (creq, cinvite) = sim.sent(Method::Invite, "+33612345678");
    let from = cinvite.headers.from_addr().expect("From");
    assert_eq!(
        from.uri.user(),
        Some("5000"),
        "the caller sees the number it called"
    );
    let agent = leg_stream(&sim, &invite);
    let customer = leg_stream(&sim, &cinvite);
    assert_eq!(
        sim.plays(agent).last().map(|(_, p)| p.clone()),
        Some(vec!["ringback".to_string()])
    );
    sim.answer(creq, &cinvite, 200, Some(42000));
    let call = sim.call_id();
    assert!(sim.acd_inputs().contains(&acd::Input::CallbackResult {
        call: call.clone(),
        result: CallbackResult::Connected
    }));
    sim.acd(acd::Action::Bridge {
        call,
        agent: AgentId::from("1001"),
    });
    sim.core
        .handle_recording_started(sim.now, Err("not this time".into()));
    assert!(sim.media_out().iter().any(|m| matches!(
        m,
        MediaOut::Bridge { caller, peer } if *caller == customer && *peer == agent
    )));
    // The caller, on its new leg, hangs up.
    let bye = sim.leg_sends(&cinvite, "BYE", "");
    assert_eq!(status(&bye), [200]);
    let r = sim.record();
    assert_eq!(r.end_reason, EndReason::CallerHangup);
    assert_eq!(r.queue_outcome, Some(Stored::Callback));
}

#[test]
fn a_caller_who_does_not_answer_the_callbacks_ends_the_call() {
    let mut sim = away();
    for attempt in 1..=2 {
        let (req, invite) = callback_call(&mut sim);
        sim.answer(req, &invite, 200, Some(41000));
        let (creq, cinvite) = sim.sent(Method::Invite, "+33612345678");
        sim.answer(creq, &cinvite, 486, None);
        assert!(
            matches!(
                sim.acd_inputs().last(),
                Some(acd::Input::CallbackResult {
                    result: CallbackResult::NoAnswer,
                    ..
                })
            ),
            "attempt {attempt}"
        );
        let (_, agent_bye) = sim.sent(Method::Bye, "1001");
        assert_eq!(agent_bye.headers.call_id(), invite.headers.call_id());
    }
    let r = sim.record();
    assert_eq!(r.queue_outcome, Some(Stored::CallbackFailed));
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    assert!(sim.left_acd());
}

#[test]
fn hanging_up_during_the_callback_confirmation_keeps_the_callback() {
    let mut sim = queued();
    sim.key("1");
    let call = sim.call_id();
    sim.acd(acd::Action::CallbackAccepted { call });
    sim.caller_hangs_up();
    assert!(!sim.core.is_ended());
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    let (req, invite) = callback_call(&mut sim);
    sim.answer(req, &invite, 200, Some(41000));
    let _ = sim.sent(Method::Invite, "+33612345678");
}

impl Sim {
    fn record_agent(&mut self) -> Option<&str> {
        self.core.handle_shutdown(self.now);
        self.drain();
        self.after(BYE_WAIT);
        self.core.handle_recording_finished(self.now, None);
        self.drain();
        self.record().agent.as_deref()
    }
}

#[test]
fn an_agent_answer_that_crosses_our_cancel_is_acknowledged_and_hung_up() {
    let mut sim = queued();
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    sim.answer(req, &invite, 180, None);
    let call = sim.call_id();
    sim.acd(acd::Action::CancelRing {
        call,
        agent: AgentId::from("1001"),
    });
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Route { .. }))));
    // The phone answered before our CANCEL reached it.
    sim.answer(req, &invite, 200, Some(41000));
    let acked = sim.log.iter().any(|o| {
        matches!(o, Output::Sip(SipOut::Stateless { message: sip::message::SipMessage::Request(r), .. })
            if r.method == Method::Ack)
    });
    assert!(acked, "ACKed");
    let (bye_req, bye) = sim.sent(Method::Bye, "1001");
    assert_eq!(bye.headers.call_id(), invite.headers.call_id());
    assert!(!sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Unroute { .. }))));
    // Its BYE answered and the CANCEL's 487 come: the leg is done, its route released.
    sim.answer(bye_req, &bye, 200, None);
    sim.answer(req, &invite, 487, None);
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Unroute { .. }))));
    assert!(sim
        .acd_inputs()
        .iter()
        .all(|i| !matches!(i, acd::Input::AgentAnswered { .. })));
}

#[test]
fn the_view_follows_the_call_from_the_menu_to_the_queue_an_agent_and_the_bridge() {
    use crate::call::live::CallPhase;
    let mut sim = Sim::demo();
    let v = sim.core.view();
    assert_eq!(
        (v.flow.as_deref(), v.step.as_deref(), v.phase),
        (Some("demo"), Some("welcome"), CallPhase::Flow)
    );
    assert!(v.answered_at.is_some());
    sim.play_ends();
    assert_eq!(sim.core.view().step.as_deref(), Some("main_menu"));
    sim.key("2");
    let call = sim.call_id();
    sim.acd(acd::Action::Hold {
        call,
        queue: QueueId::from("support"),
    });
    let v = sim.core.view();
    assert_eq!(
        (
            v.phase,
            v.queue.as_deref(),
            v.step.as_deref(),
            v.agent.as_deref()
        ),
        (CallPhase::Queued, Some("support"), Some("support"), None)
    );
    let (req, invite) = ring(&mut sim, "1001", AGENT_1001);
    let v = sim.core.view();
    assert_eq!(
        (v.phase, v.agent.as_deref()),
        (CallPhase::AgentRinging, Some("1001"))
    );
    sim.answer(req, &invite, 200, Some(41000));
    let call = sim.call_id();
    sim.acd(acd::Action::Bridge {
        call,
        agent: AgentId::from("1001"),
    });
    let v = sim.core.view();
    assert_eq!(
        (v.phase, v.agent.as_deref()),
        (CallPhase::Bridged, Some("1001"))
    );
    assert!(v.bridged_at.is_some());
    // The view carries the caller's number for operators, never in its Debug form.
    assert!(!format!("{v:?}").contains("612345678"));
    // The caller hangs up: the call ends (our 200 waits for the recording and the record).
    let _ = sim.caller_sends("BYE", "");
    assert_ne!(sim.core.view().phase, CallPhase::Bridged);
}
