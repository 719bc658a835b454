//! A call saved mid-way (as JSON), rebuilt as another node would, and continued: in a
//! menu, queued with an agent ringing, bridged with its recording and a supervisor.

use serde_json::Value;

use super::queue::bridged;
use super::*;
use crate::acd::{AgentId, QueueId};
use crate::storage::QueueOutcome as Stored;

/// Every value of `key`, anywhere in `v`.
fn all<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == key {
                    found.push(x);
                }
                found.extend(all(x, key));
            }
        }
        Value::Array(items) => items.iter().for_each(|x| found.extend(all(x, key))),
        _ => {}
    }
    found
}

fn has(v: &Value, key: &str, want: &Value) -> bool {
    all(v, key).into_iter().any(|x| x == want)
}

#[test]
fn a_call_in_a_menu_continues_after_a_round_trip() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.play_ends();
    sim.after(secs(2));
    let json = sim.round_trip();
    // The caller's dialog: Call-ID, tags, CSeq both ways, remote target; the SDP session
    // with what it negotiated; the flow's position.
    assert!(has(&json, "call_id", &"call-1".into()), "{json:#}");
    assert!(has(&json, "remote_tag", &"caller-tag".into()));
    assert!(!all(&json, "local_cseq").is_empty() && !all(&json, "remote_cseq").is_empty());
    assert!(has(
        &json,
        "remote_target",
        &"sip:caller@127.0.0.1:5070".into()
    ));
    assert!(!all(&json, "route_set").is_empty());
    assert!(has(&json, "telephone_event", &101.into()));
    assert!(!all(&json, "negotiated").is_empty());
    assert!(
        has(&json, "step", &"main_menu".into()),
        "the flow's position"
    );
    // The menu's timeout, 5 s after its prompt ended, survived: 3 s are left.
    let played = sim.plays(CALLER_STREAM).len();
    sim.after(secs(3) - ms(1));
    assert_eq!(sim.plays(CALLER_STREAM).len(), played);
    sim.after(ms(1));
    assert_eq!(sim.playing(), ["main_menu"], "asked again");
    sim.play_ends();
    sim.key("1");
    sim.play_ends();
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(
        r.path,
        ["welcome", "main_menu", "main_menu", "option1", "end"]
    );
    assert_eq!(r.codec.as_deref(), Some("PCMA"));
}

#[test]
fn a_queued_call_with_an_agent_ringing_continues_after_a_round_trip() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.key("2");
    let call = sim.call_id();
    sim.acd(acd::Action::Announce {
        call: call.clone(),
        queue: QueueId::from("support"),
        position: 3,
        expected_wait: None,
    });
    sim.acd(acd::Action::RingAgent {
        call: call.clone(),
        queue: QueueId::from("support"),
        agent: AgentId::from("1001"),
        contact: AGENT_1001.into(),
        timeout: secs(15),
    });
    let (req, invite) = sim.sent(Method::Invite, "1001");
    sim.answer(req, &invite, 180, None);
    let json = sim.round_trip();
    assert!(has(&json, "queue", &"support".into()), "{json:#}");
    assert!(has(&json, "priority", &"normal".into()));
    assert!(has(&json, "position", &3.into()));
    assert!(
        has(&json, "call_id", &invite.headers.call_id().into()),
        "the agent's leg"
    );
    // The agent answers on the rebuilt call: its INVITE client went along.
    sim.answer(req, &invite, 200, Some(41000));
    assert!(sim.acd_inputs().contains(&acd::Input::AgentAnswered {
        call: call.clone(),
        agent: AgentId::from("1001"),
    }));
    sim.acd(acd::Action::Bridge {
        call: call.clone(),
        agent: AgentId::from("1001"),
    });
    sim.core
        .handle_recording_started(sim.now, Err("not this time".into()));
    sim.caller_hangs_up();
    assert!(sim.acd_inputs().contains(&acd::Input::CallEnded { call }));
    let r = sim.record();
    assert_eq!(r.queue_outcome, Some(Stored::Answered));
    assert_eq!(r.agent.as_deref(), Some("1001"));
}

#[test]
fn a_bridged_call_with_its_recording_and_a_supervisor_continues_after_a_round_trip() {
    let (mut sim, invite) = bridged();
    sim.core
        .handle_recording_started(sim.now, Ok("/rec/call.wav".into()));
    let listen = CallCommand::Supervise {
        mode: Some(SuperviseMode::Listen),
        target: Some("2000".into()),
    };
    assert!(sim.core.handle_command(sim.now, listen).is_ok());
    sim.drain();
    let (sreq, sinvite) = sim.sent(Method::Invite, "2000");
    sim.answer(sreq, &sinvite, 200, Some(44000));
    sim.after(secs(10));
    let json = sim.round_trip();
    assert!(has(&json, "file", &"/rec/call.wav".into()), "{json:#}");
    assert!(has(&json, "paused", &false.into()));
    assert!(has(&json, "mode", &"listen".into()));
    // Commands and hangups work on the rebuilt call.
    let pause = CallCommand::Recording { pause: true };
    assert_eq!(
        sim.core.handle_command(sim.now, pause),
        Ok(CommandOutcome::RecordingPaused)
    );
    let bye = sim.leg_sends(&invite, "BYE", "");
    assert_eq!(status(&bye), [200]);
    let (_, sup_bye) = sim.sent(Method::Bye, "2000");
    assert_eq!(sup_bye.headers.call_id(), sinvite.headers.call_id());
    sim.core.handle_recording_finished(sim.now, None);
    sim.drain();
    assert_eq!(sim.record().end_reason, EndReason::AgentHangup);
    sim.caller_answers_bye();
    assert!(sim.core.is_over());
}

#[test]
fn a_snapshot_of_another_flow_version_is_refused() {
    let mut sim = Sim::demo();
    let mut saved = sim.core.snapshot(sim.now);
    saved.flow_version = "000000000000".into();
    let env = sim.env.clone();
    let refused = CallCore::restore(sim.now, wall(), env, &sim.flows, saved);
    assert!(matches!(refused, Err(RestoreError::FlowVersion { .. })));
    sim.drain();
}

#[test]
fn a_queued_calls_desk_values_are_in_its_view_and_survive_a_round_trip() {
    let flow = "flow: desk\nstart: q\nvars: { ticket: '\"4242\"', pin: '\"9876\"' }\nsteps:\n  \
                q: { queue: support, desk: { ticket: ticket }, overflow: bye }\n  bye: { hangup: }\n";
    let mut sim = Sim::new(flow, SUPPORT_QUEUE, Some(offer("sendrecv")));
    let desk = |sim: &Sim| -> Vec<(String, Value)> {
        sim.core
            .view()
            .desk
            .reveal()
            .iter()
            .map(|d| (d.name.clone(), d.value.clone()))
            .collect()
    };
    assert_eq!(desk(&sim), [("ticket".to_string(), Value::from("4242"))]);
    // Only the named values: the flow's other variables stay out of the view.
    let view = serde_json::to_string(&sim.core.view()).expect("json");
    assert!(!view.contains("9876"), "{view}");
    sim.round_trip();
    assert_eq!(desk(&sim), [("ticket".to_string(), Value::from("4242"))]);
}
