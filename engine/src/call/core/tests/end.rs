//! The end of a call: the caller learns that its call ended (our 200 to its BYE, or our
//! BYE) only once the driver reports the record stored, however long that takes, so that a
//! crash loses no record of a call the caller saw end.

use super::*;

/// Answers the core gave in the server transactions of the caller's requests.
fn responses(outputs: &[Output]) -> Vec<u16> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Sip(SipOut::Respond { response, .. }) => Some(response.status),
            _ => None,
        })
        .collect()
}

fn records(sim: &Sim) -> usize {
    sim.log
        .iter()
        .filter(|o| matches!(o, Output::Record { .. }))
        .count()
}

#[test]
fn the_callers_bye_is_answered_once_the_record_is_stored() {
    let mut sim = Sim::demo();
    sim.hold_record = true;
    sim.play_ends();
    let answers = sim.caller_sends("BYE", "");
    assert!(answers.is_empty(), "no 200 before the record is stored");
    assert_eq!(sim.record().end_reason, EndReason::CallerHangup);
    // The store takes its time (a commit, a spool's fsync): the caller waits for it.
    sim.after(secs(30));
    assert!(responses(sim.fresh()).is_empty());
    assert!(!sim.core.is_ended());
    sim.record_stored();
    assert_eq!(responses(sim.fresh()), [200]);
    assert!(sim.sent_to_caller(Method::Bye).is_none(), "no BYE back");
    assert!(sim.core.is_ended());
    assert_eq!(records(&sim), 1);
}

#[test]
fn our_bye_goes_out_once_the_record_is_stored() {
    let mut sim = Sim::demo();
    sim.hold_record = true;
    sim.play_ends();
    sim.key("1");
    sim.play_ends();
    // The flow hangs up: the record first, then the BYE.
    assert_eq!(sim.record().end_reason, EndReason::EngineHangup);
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    sim.after(secs(30));
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    sim.record_stored();
    let (_, bye) = sim.sent_to_caller(Method::Bye).expect("our BYE");
    assert!(bye.headers.get(&HeaderName::Reason).is_some());
    // Its answer is awaited, boundedly, from when it was sent.
    sim.after(BYE_WAIT - ms(1));
    assert!(!sim.core.is_ended());
    sim.caller_answers_bye();
    assert!(sim.core.is_ended());
    assert_eq!(records(&sim), 1);
}

#[test]
fn a_caller_leaving_while_the_record_is_stored_gets_no_bye() {
    let mut sim = Sim::demo();
    sim.hold_record = true;
    sim.core.handle_shutdown(sim.now);
    sim.drain();
    assert_eq!(sim.record().end_reason, EndReason::Shutdown);
    let answers = sim.caller_sends("BYE", "");
    assert!(answers.is_empty(), "no 200 before the record is stored");
    sim.record_stored();
    assert_eq!(responses(sim.fresh()), [200]);
    assert!(sim.sent_to_caller(Method::Bye).is_none(), "the caller left");
    assert!(sim.core.is_ended());
    assert_eq!(records(&sim), 1);
}

#[test]
fn a_bye_crossing_ours_is_answered_at_once() {
    let mut sim = Sim::demo();
    sim.core.handle_shutdown(sim.now);
    sim.drain();
    assert!(sim.sent_to_caller(Method::Bye).is_some());
    // The record is stored already: the crossing BYE gets its 200 now.
    assert_eq!(status(&sim.caller_sends("BYE", "")), [200]);
    assert!(!sim.core.is_ended(), "our BYE's answer is still awaited");
    sim.caller_answers_bye();
    assert!(sim.core.is_ended());
    assert_eq!(records(&sim), 1);
}

#[test]
fn a_stored_report_out_of_turn_changes_nothing() {
    let mut sim = Sim::demo();
    sim.hold_record = true;
    sim.record_stored();
    assert!(!sim.core.is_ended());
    assert!(sim.sent_to_caller(Method::Bye).is_none());
    assert_eq!(records(&sim), 0);
}
