//! A call in its flow: answer, prompts, menus and their timeouts, a message, digits by SIP
//! INFO, the caller's re-INVITEs, hangups from either side and the shutdown drain.

use super::*;

fn path(sim: &Sim) -> Vec<String> {
    sim.record().path.clone()
}

#[test]
fn answer_and_flow() {
    let mut sim = Sim::demo();
    let ok = sim.ok_to_caller().clone();
    assert_eq!(
        ok.headers.content_type().as_deref(),
        Some("application/sdp")
    );
    let answer = sip::sdp::SessionDescription::parse_bytes(&ok.body).expect("our SDP");
    assert!(answer.to_string().contains("PCMA/8000"), "{answer}");
    assert!(sim.media_out().iter().any(|m| matches!(
        m,
        MediaOut::Params { stream, params } if *stream == CALLER_STREAM
            && params.remote == Some("127.0.0.1:40000".parse().expect("addr"))
            && params.codec == crate::media::Codec::Pcma
    )));
    assert_eq!(sim.playing(), ["welcome"]);
    sim.play_ends();
    assert_eq!(sim.playing(), ["main_menu"]);
    sim.key("1");
    assert_eq!(sim.playing(), ["option1_info"]);
    sim.play_ends();
    // The flow hangs up: BYE, and the record once it is answered.
    let (_, bye) = sim.sent_to_caller(Method::Bye).expect("BYE to the caller");
    assert!(bye.headers.get(&HeaderName::Reason).is_some());
    assert!(!sim.core.is_ended());
    sim.caller_answers_bye();
    let r = sim.record();
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    assert_eq!(path(&sim), ["welcome", "main_menu", "option1", "end"]);
    assert_eq!(r.codec.as_deref(), Some("PCMA"));
    assert_eq!(r.caller, "+33612345678");
    assert!(r.answered_at.is_some());
    assert_eq!(r.flow.as_deref(), Some("demo"));
}

#[test]
fn menu_timeout_repeats_the_menu_then_says_goodbye() {
    let mut sim = Sim::demo();
    sim.play_ends();
    for round in 0..3 {
        assert_eq!(sim.playing(), ["main_menu"], "round {round}");
        let menu_played = sim.plays(CALLER_STREAM).len();
        sim.play_ends();
        // The 5 s timeout starts when the prompt ends.
        sim.after(ms(4999));
        assert_eq!(sim.plays(CALLER_STREAM).len(), menu_played, "not yet");
        sim.after(ms(1));
    }
    assert_eq!(sim.playing(), ["goodbye"]);
    sim.play_ends();
    sim.caller_answers_bye();
    assert_eq!(
        path(&sim),
        [
            "welcome",
            "main_menu",
            "main_menu",
            "main_menu",
            "goodbye",
            "end"
        ]
    );
}

const COLLECT: &str = r##"flow: test
start: ask
steps:
  ask:
    collect: main_menu
    into: ticket
    min_digits: 4
    terminator: "#"
    attempts: 5
    invalid: wrong
    no_input: silent
    exhausted: end
    next: end
  wrong:
    play: invalid_choice
    next: ask
  silent:
    play: goodbye
    next: ask
  end:
    hangup:
"##;

#[test]
fn too_few_digits_are_invalid_and_silence_is_no_input() {
    let mut sim = Sim::new(COLLECT, "", Some(offer("sendrecv")));
    // Ended by the terminator.
    sim.key("12#");
    assert_eq!(sim.playing(), ["invalid_choice"]);
    sim.play_ends();
    // Ended by the inter-digit timeout (3 s by default).
    sim.key("12");
    sim.after(secs(3));
    assert_eq!(sim.playing(), ["invalid_choice"]);
    sim.play_ends();
    // Nothing keyed: the collect's timeout (5 s) after its prompt.
    sim.play_ends();
    sim.after(secs(5));
    assert_eq!(sim.playing(), ["goodbye"]);
    sim.play_ends();
    sim.key("1234#");
    sim.caller_answers_bye();
    assert_eq!(
        path(&sim),
        ["ask", "wrong", "ask", "wrong", "ask", "silent", "ask", "end"]
    );
}

#[test]
fn digits_keyed_during_a_menu_prompt_barge_in() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.fresh();
    sim.key("7");
    assert!(sim
        .fresh()
        .iter()
        .any(|o| matches!(o, Output::Media(MediaOut::StopPlayback { .. }))));
    assert_eq!(sim.playing(), ["invalid_choice"]);
}

#[test]
fn a_digit_by_sip_info_counts_like_rfc_4733() {
    let mut sim = Sim::demo();
    sim.play_ends();
    let answers = sim.caller_sends("INFO", "");
    assert_eq!(status(&answers), [200], "an empty INFO is fine");
    let mut info = sim.caller_sends_typed("INFO", "application/dtmf-relay", "Signal=2\r\n");
    assert_eq!(status(&info), [200]);
    info = sim.caller_sends_typed("INFO", "text/plain", "hello");
    assert_eq!(status(&info), [415]);
    assert!(matches!(
        sim.acd_inputs().first(),
        Some(acd::Input::CallArrived { queue, .. }) if queue.as_str() == "support"
    ));
}

#[test]
fn reinvite_hold_and_resume() {
    let mut sim = Sim::demo();
    sim.fresh();
    let held = sim.caller_sends("INVITE", &offer("inactive"));
    assert_eq!(status(&held), [200]);
    let sdp = String::from_utf8_lossy(&held[0].body).to_string();
    assert!(sdp.contains("a=inactive"), "{sdp}");
    let params = |sim: &Sim| {
        sim.media_out()
            .iter()
            .rev()
            .find_map(|m| match m {
                MediaOut::Params { stream, params } if *stream == CALLER_STREAM => {
                    Some(params.clone())
                }
                _ => None,
            })
            .expect("params")
    };
    let on_hold = params(&sim);
    assert_eq!(on_hold.remote, None, "nothing is sent to a holding caller");
    assert_eq!(on_hold.rtp_timeout, env::HOLD_RTP_TIMEOUT);
    let resumed = sim.caller_sends("INVITE", &offer("sendrecv"));
    assert_eq!(status(&resumed), [200]);
    assert!(String::from_utf8_lossy(&resumed[0].body).contains("a=sendrecv"));
    let back = params(&sim);
    assert_eq!(back.remote, Some("127.0.0.1:40000".parse().expect("addr")));
    assert_eq!(back.rtp_timeout, secs(30));
    let refused = sim.caller_sends("INVITE", "v=0\r\nbroken");
    assert_eq!(status(&refused), [488]);
    assert!(
        !sim.core.is_ended(),
        "a bad re-INVITE does not end the call"
    );
}

#[test]
fn bye_from_the_caller_ends_at_once() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.caller_hangs_up();
    assert!(sim.sent_to_caller(Method::Bye).is_none(), "no BYE back");
    let r = sim.record();
    assert_eq!(r.end_reason, EndReason::CallerHangup);
    assert_eq!(path(&sim), ["welcome", "main_menu"]);
    // Requests after the end find no call.
    assert!(sim.core.is_ended());
}

#[test]
fn shutdown_drain_sends_bye_and_waits_for_it_boundedly() {
    let mut sim = Sim::demo();
    sim.play_ends();
    sim.core.handle_shutdown(sim.now);
    sim.drain();
    let (_, bye) = sim.sent_to_caller(Method::Bye).expect("BYE");
    assert_eq!(bye.headers.call_id(), Some("call-1"));
    // A request crossing our BYE is answered; the call still waits for its BYE's answer.
    let crossing = sim.caller_sends("INFO", "");
    assert_eq!(status(&crossing), [200]);
    assert!(sim.core.handle_command(sim.now, CallCommand::Hangup) == Err(CommandError::Ending));
    sim.after(BYE_WAIT - ms(1));
    assert!(!sim.core.is_ended());
    sim.after(ms(1));
    assert_eq!(sim.record().end_reason, EndReason::Shutdown);
}

#[test]
fn an_operator_hangs_up_a_call() {
    let mut sim = Sim::demo();
    let reply = sim.core.handle_command(sim.now, CallCommand::Hangup);
    assert_eq!(reply, Ok(CommandOutcome::HangingUp));
    sim.drain();
    sim.caller_answers_bye();
    assert_eq!(sim.record().end_reason, EndReason::OperatorHangup);
}

#[test]
fn refusals_before_the_call_starts() {
    let refused =
        |flow: &str, sdp: Option<String>| Sim::try_new(flow, "", sdp).err().expect("refused");
    let bad = refused(DEMO, Some("v=0\r\nnonsense".into()));
    assert_eq!(bad.response.status, 488);
    assert_eq!(bad.record.end_reason, EndReason::Rejected);
    assert_eq!(bad.record.flow.as_deref(), Some("demo"));
    let g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let unoffered = refused(DEMO, Some(g729.into()));
    assert_eq!(unoffered.response.status, 488);
    let warning = unoffered.response.headers.get(&HeaderName::Warning);
    assert!(
        warning.is_some_and(|w| w.starts_with("305 ")),
        "{warning:?}"
    );
}

#[test]
fn an_invite_without_offer_gets_ours_and_the_ack_answers() {
    let mut sim = Sim::new(DEMO, "", None);
    let ok = sim.ok_to_caller().clone();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 30000"));
    let before = sim.media_out().len();
    let acked = sim.caller_sends("ACK", &phone_sdp(40010));
    assert!(acked.is_empty());
    let params = sim.media_out()[before..].iter().find_map(|m| match m {
        MediaOut::Params { params, .. } => Some(params.remote),
        _ => None,
    });
    assert_eq!(params, Some(Some("127.0.0.1:40010".parse().expect("addr"))));
}

#[test]
fn an_ack_without_answer_to_our_offer_ends_the_call() {
    let mut sim = Sim::new(DEMO, "", None);
    sim.caller_sends("ACK", "");
    sim.caller_answers_bye();
    assert_eq!(sim.record().end_reason, EndReason::Error);
}

const RECORD: &str = r#"flow: test
start: msg
steps:
  msg:
    record: leave_message
    max_length: 30s
    terminator: '#'
    into: message
    next: bye
  bye:
    play: goodbye
    next: end
  end:
    hangup:
"#;

#[test]
fn a_message_is_captured_until_the_terminator() {
    let mut sim = Sim::new(RECORD, "", Some(offer("sendrecv")));
    assert_eq!(sim.playing(), ["leave_message", "beep"]);
    sim.key("#");
    assert!(
        !sim.log.iter().any(|o| matches!(o, Output::Message(_))),
        "keys during the prompt do not end it"
    );
    sim.play_ends();
    let started = sim.log.iter().any(|o| {
        matches!(o, Output::Message(MessageOut::Start { stream, max_length, .. })
            if *stream == CALLER_STREAM && *max_length == secs(30))
    });
    assert!(started);
    sim.after(secs(3));
    sim.key("#");
    assert!(matches!(
        sim.log.last(),
        Some(Output::Message(MessageOut::Save))
    ));
    let path = std::path::PathBuf::from("/nonexistent/svi-core-tests/messages/x-msg.wav");
    sim.core.handle_message_saved(
        sim.now,
        Ok(SavedMessage {
            path,
            duration: secs(3),
        }),
    );
    sim.drain();
    assert_eq!(sim.playing(), ["goodbye"]);
}

#[test]
fn a_message_stops_at_its_maximum_length() {
    let mut sim = Sim::new(RECORD, "", Some(offer("sendrecv")));
    sim.play_ends();
    sim.after(secs(30) - ms(1));
    assert!(!matches!(
        sim.log.last(),
        Some(Output::Message(MessageOut::Save))
    ));
    sim.after(ms(1));
    assert!(matches!(
        sim.log.last(),
        Some(Output::Message(MessageOut::Save))
    ));
}

#[test]
fn a_caller_who_hangs_up_while_leaving_a_message_keeps_it() {
    let mut sim = Sim::new(RECORD, "", Some(offer("sendrecv")));
    sim.play_ends();
    sim.after(secs(4));
    let answers = sim.caller_sends("BYE", "");
    assert!(answers.is_empty(), "our 200 waits for the record");
    assert!(matches!(
        sim.log.last(),
        Some(Output::Message(MessageOut::Save))
    ));
    assert!(!sim.core.is_ended(), "the record waits for the message");
    let saved = Err("disk full".to_string());
    sim.core.handle_message_saved(sim.now, saved);
    sim.drain();
    assert_eq!(sim.record().end_reason, EndReason::CallerHangup);
    let ok = sim.fresh().iter().any(
        |o| matches!(o, Output::Sip(SipOut::Respond { response, .. }) if response.status == 200),
    );
    assert!(ok, "the 200 to the BYE once the record is stored");
    assert!(sim.core.is_ended());
}

#[test]
fn no_rtp_from_the_caller_ends_the_call() {
    let mut sim = Sim::demo();
    sim.media(CALLER_STREAM, MediaEvent::RtpTimeout);
    sim.caller_answers_bye();
    assert_eq!(sim.record().end_reason, EndReason::RtpTimeout);
    assert!(!sim
        .media_out()
        .iter()
        .any(|m| matches!(m, MediaOut::Bridge { .. })));
}
