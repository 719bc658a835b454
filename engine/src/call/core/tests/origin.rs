//! Calls the engine places: the number rings on a leg through the trunk, its answer makes
//! the leg the caller side and runs the flow; no answer in time, busy or a shutdown end
//! the call without running the flow.

use super::*;

/// Announces, asks for 1, acknowledges for `called` (the number that answered).
const CALLOUT: &str = r#"
flow: callout
language: en
start: announce
steps:
  announce:
    play: welcome
    next: ask
  ask:
    menu: main_menu
    options:
      "1": acknowledge
    timeout: 5s
    attempts: 2
    exhausted: end
  acknowledge:
    action: ack_alarm
    params:
      by: called
    timeout: 5s
    ok: thanks
    error: end
  thanks:
    play: goodbye
    next: end
  end:
    hangup:
"#;

const TRUNK: &str = "[[trunks]]\nname = \"ipbx\"\nregistrar = \"sip:127.0.0.1:5080\"\n\
    username = \"svi-trunk\"\npassword = \"trunk-secret\"\nregister = false\n";

const ON_DUTY: &str = "+33600000001";

fn order(number: &str) -> Originate {
    Originate {
        flow: "callout".into(),
        number: number.into(),
        ring_timeout: secs(20),
        caller_id: "svi-alarm".into(),
    }
}

fn callout(number: &str) -> Sim {
    Sim::originate(CALLOUT, TRUNK, order(number)).expect("the call is placed")
}

/// The stream the number's leg opened (the first after the caller's).
const LEG: StreamId = StreamId(1);

fn connector_call(sim: &Sim) -> Option<(String, serde_json::Map<String, serde_json::Value>)> {
    sim.log.iter().find_map(|o| match o {
        Output::Connector { name, params, .. } => Some((name.clone(), params.reveal().clone())),
        _ => None,
    })
}

fn cancelled(sim: &Sim, req: ReqId) -> bool {
    sim.log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Cancel { req: r }) if *r == req))
}

fn last_play(sim: &Sim) -> Vec<String> {
    sim.plays(LEG)
        .last()
        .map(|(_, p)| p.clone())
        .unwrap_or_default()
}

fn play_ends(sim: &mut Sim) {
    let (id, _) = sim.plays(LEG).last().cloned().expect("something plays");
    sim.media(LEG, MediaEvent::PlaybackFinished { id });
}

#[test]
fn the_number_rings_through_the_trunk_and_the_flow_runs_when_it_answers() {
    let mut sim = callout(ON_DUTY);
    assert!(sim
        .media_out()
        .iter()
        .any(|m| matches!(m, MediaOut::Open { stream } if *stream == LEG)));
    let (req, invite) = sim.sent(Method::Invite, ON_DUTY);
    assert_eq!(
        invite.uri.to_string(),
        format!("sip:{ON_DUTY}@127.0.0.1:5080")
    );
    let to = sim.requests().last().map(|(_, _, to)| *to).expect("sent");
    assert_eq!(to, peer("127.0.0.1:5080"), "through the trunk's registrar");
    let from = invite.headers.from_addr().expect("From");
    assert_eq!(from.uri.user(), Some("svi-alarm"));
    assert!(!invite.body.is_empty(), "our offer");
    let call_id = invite.headers.call_id().expect("Call-ID").to_string();
    assert!(sim
        .log
        .iter()
        .any(|o| matches!(o, Output::Sip(SipOut::Route { call_id: c }) if *c == call_id)));

    sim.answer(req, &invite, 180, None);
    sim.after(secs(5));
    assert!(sim.plays(LEG).is_empty(), "nothing plays before the answer");
    sim.answer(req, &invite, 200, Some(40002));
    assert!(sim.media_out().iter().any(|m| matches!(
        m,
        MediaOut::Params { stream, params } if *stream == LEG
            && params.remote == Some("127.0.0.1:40002".parse().expect("addr"))
    )));
    assert_eq!(last_play(&sim), vec!["welcome"]);
    play_ends(&mut sim);
    sim.key_on(LEG, "1");
    let (name, params) = connector_call(&sim).expect("the acknowledgement");
    assert_eq!(name, "ack_alarm");
    assert_eq!(params.get("by"), Some(&serde_json::json!(ON_DUTY)));
    sim.core
        .handle_connector(sim.now, Ok(Some(Default::default())));
    sim.drain();
    assert_eq!(last_play(&sim), vec!["goodbye"]);
    play_ends(&mut sim);

    // The flow hangs up: our BYE, in the leg's dialog.
    let (bye_req, bye) = sim.sent(Method::Bye, ON_DUTY);
    assert_eq!(bye.headers.call_id(), Some(call_id.as_str()));
    sim.answer(bye_req, &bye, 200, None);
    let record = sim.record();
    assert_eq!(record.end_reason, EndReason::EngineHangup);
    assert_eq!(record.called, ON_DUTY);
    assert_eq!(record.caller, "svi-alarm");
    assert_eq!(record.sip_call_id, call_id);
    assert_eq!(record.flow.as_deref(), Some("callout"));
    assert!(record.answered_at.is_some());
    assert_eq!(record.path.first().map(String::as_str), Some("announce"));
    assert!(sim.core.is_ended());
}

#[test]
fn a_number_that_does_not_answer_in_time_is_cancelled_and_the_call_ends_no_answer() {
    let mut sim = callout(ON_DUTY);
    let (req, invite) = sim.sent(Method::Invite, ON_DUTY);
    sim.answer(req, &invite, 180, None);
    sim.after(secs(19));
    assert!(!cancelled(&sim, req));
    sim.after(secs(1));
    assert!(cancelled(&sim, req), "CANCEL after the ring timeout");
    let record = sim.record().clone();
    assert_eq!(record.end_reason, EndReason::NoAnswer);
    assert!(record.answered_at.is_none());
    assert!(record.path.is_empty(), "the flow never ran");
    // The CANCEL's 487 ends the leg; nothing is left.
    sim.answer(req, &invite, 487, None);
    assert!(sim.core.is_ended());
    assert!(sim.plays(LEG).is_empty());
}

#[test]
fn busy_and_no_final_answer_end_the_call_no_answer_and_a_server_error_ends_it_error() {
    let mut busy = callout(ON_DUTY);
    let (req, invite) = busy.sent(Method::Invite, ON_DUTY);
    busy.answer(req, &invite, 486, None);
    assert_eq!(busy.record().end_reason, EndReason::NoAnswer);
    assert!(busy.core.is_ended());

    let mut silent = callout(ON_DUTY);
    let (req, _) = silent.sent(Method::Invite, ON_DUTY);
    silent.core.handle_sip(silent.now, SipIn::Timeout { req });
    silent.drain();
    assert_eq!(silent.record().end_reason, EndReason::NoAnswer);

    let mut broken = callout(ON_DUTY);
    let (req, invite) = broken.sent(Method::Invite, ON_DUTY);
    broken.answer(req, &invite, 503, None);
    assert_eq!(broken.record().end_reason, EndReason::Error);
}

#[test]
fn the_trunk_challenge_is_answered_with_its_credentials() {
    let mut sim = callout(ON_DUTY);
    let (req, invite) = sim.sent(Method::Invite, ON_DUTY);
    let mut challenge = Response::for_request(&invite, 407).with_to_tag("pbx");
    challenge.headers.push(
        HeaderName::ProxyAuthenticate,
        "Digest realm=\"ipbx\", nonce=\"n1\", algorithm=MD5",
    );
    sim.core.handle_sip(
        sim.now,
        SipIn::Response {
            req,
            response: challenge,
        },
    );
    sim.drain();
    let (req2, again) = sim.sent(Method::Invite, ON_DUTY);
    assert_ne!(req2, req);
    let auth = again
        .headers
        .get(&HeaderName::ProxyAuthorization)
        .expect("credentials");
    assert!(auth.contains("username=\"svi-trunk\""), "{auth}");
    assert!(!auth.contains("trunk-secret"));
    sim.answer(req2, &again, 200, Some(40002));
    assert_eq!(last_play(&sim), vec!["welcome"]);
}

#[test]
fn the_called_party_hangs_up_and_a_shutdown_while_ringing_cancels() {
    let mut sim = callout(ON_DUTY);
    let (req, invite) = sim.sent(Method::Invite, ON_DUTY);
    sim.answer(req, &invite, 200, Some(40002));
    let answers = sim.leg_sends(&invite, "BYE", "");
    assert_eq!(status(&answers), vec![200]);
    assert_eq!(sim.record().end_reason, EndReason::CallerHangup);

    let mut ringing = callout(ON_DUTY);
    let (req, invite) = ringing.sent(Method::Invite, ON_DUTY);
    ringing.answer(req, &invite, 180, None);
    ringing.core.handle_shutdown(ringing.now);
    ringing.drain();
    assert!(cancelled(&ringing, req));
    assert_eq!(ringing.record().end_reason, EndReason::Shutdown);
}

#[test]
fn a_call_ringing_is_saved_and_rebuilt_and_still_gives_up_in_time() {
    let mut sim = callout(ON_DUTY);
    let (req, invite) = sim.sent(Method::Invite, ON_DUTY);
    sim.answer(req, &invite, 180, None);
    sim.after(secs(10));
    let json = sim.round_trip();
    assert!(json["phase"].get("Dialing").is_some(), "{json}");
    sim.after(secs(10));
    assert!(cancelled(&sim, req));
    assert_eq!(sim.record().end_reason, EndReason::NoAnswer);
}

#[test]
fn what_cannot_be_placed_is_refused_before_anything_is_sent() {
    let refused = |extra: &str, order: Originate| Sim::originate(CALLOUT, extra, order).err();
    let mut other = order(ON_DUTY);
    other.flow = "nope".into();
    assert_eq!(
        refused(TRUNK, other),
        Some(OriginateError::NoFlow("nope".into()))
    );
    assert_eq!(
        refused("", order(ON_DUTY)),
        Some(OriginateError::Target(TargetError::NoTrunk)),
        "a number needs a trunk"
    );
    assert!(matches!(
        refused(TRUNK, order("06 00; drop")),
        Some(OriginateError::Target(TargetError::NotANumber(_)))
    ));
    assert!(matches!(
        refused(TRUNK, order("sip:x@192.0.2.1")),
        Some(OriginateError::Target(TargetError::NotAllowed(_)))
    ));
    let mut bad_id = order(ON_DUTY);
    bad_id.caller_id = "a@b".into();
    assert!(matches!(
        refused(TRUNK, bad_id),
        Some(OriginateError::CallerId(_))
    ));
    let mut no_ring = order(ON_DUTY);
    no_ring.ring_timeout = Duration::ZERO;
    assert_eq!(refused(TRUNK, no_ring), Some(OriginateError::RingTimeout));
    // A registered extension rings its phone directly, trunk or not.
    let sim = Sim::originate(CALLOUT, "", order("1001")).expect("placed");
    let (_, invite) = sim.sent(Method::Invite, "1001");
    assert_eq!(invite.uri.to_string(), AGENT_1001);
    // The order's Debug never shows the number.
    assert!(!format!("{:?}", order(ON_DUTY)).contains("600000001"));
}
