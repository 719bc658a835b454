//! The demo flow: menus, their timeouts, wrong keys, digits by RFC 4733 and SIP INFO; a
//! collect validated and read back.
//! (Moved from `tests/tests/spine.rs`, which keeps the wire: sipp with RFC 4733 on PCMA and
//! PCMU, in-band tones and the 50-call load.)

use engine::storage::EndReason;

use crate::harness::*;

#[tokio::test]
async fn no_input_repeats_the_menu_three_times_then_goodbye() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut caller = h.ua("caller");
    let t0 = tokio::time::Instant::now();
    let call = caller.dial("3000", secs(5)).await;
    let expected =
        prompt_len("welcome") + 3 * (prompt_len("main_menu") + secs(5)) + prompt_len("goodbye");
    caller.expect_bye(&call, expected + secs(5)).await;
    // Three menus with their 5 s timeouts, the welcome and the goodbye: the BYE came last.
    assert!(
        t0.elapsed() >= expected,
        "{:?} < {expected:?}",
        t0.elapsed()
    );
    assert_eq!(
        h.media.heard(caller.rtp),
        ["welcome", "main_menu", "main_menu", "main_menu", "goodbye"]
    );
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(
        r.path,
        [
            "welcome",
            "main_menu",
            "main_menu",
            "main_menu",
            "goodbye",
            "end"
        ]
    );
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    assert!(r.answered_at.is_some(), "{r:?}");
}

#[tokio::test]
async fn invalid_digit_says_so_and_asks_again() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut caller = h.ua("caller");
    let mut call = caller.dial("3000", secs(5)).await;
    tokio::time::sleep(prompt_len("welcome") + secs(1)).await;
    caller.info(&mut call, "9").await;
    tokio::time::sleep(prompt_len("invalid_choice") + secs(1)).await;
    caller.info(&mut call, "1").await;
    caller.expect_bye(&call, secs(30)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(
        r.path,
        [
            "welcome",
            "main_menu",
            "invalid_choice",
            "main_menu",
            "option1",
            "end"
        ]
    );
    assert_eq!(r.end_reason, EndReason::EngineHangup);
    // The menu prompt was cut by the key; the information message was played whole.
    assert_eq!(
        h.media.heard(caller.rtp),
        [
            "welcome",
            "main_menu",
            "invalid_choice",
            "main_menu",
            "option1_info"
        ]
    );
}

#[tokio::test]
async fn a_digit_by_rfc_4733_or_by_sip_info_chooses_the_option() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    for by_info in [false, true] {
        let mut caller = h.ua("caller");
        let mut call = caller.dial("3000", secs(5)).await;
        tokio::time::sleep(prompt_len("welcome") + secs(1)).await;
        if by_info {
            caller.info(&mut call, "1").await;
        } else {
            h.media.key(caller.rtp, "1");
        }
        // The information message, then the engine hangs up.
        caller
            .expect_bye(&call, prompt_len("option1_info") + secs(2))
            .await;
    }
    let records = h.records(2, secs(5)).await;
    for r in &records {
        assert_eq!(r.path, ["welcome", "main_menu", "option1", "end"], "{r:?}");
        assert_eq!(r.end_reason, EndReason::EngineHangup);
        assert_eq!(r.flow.as_deref(), Some("demo"));
        assert_eq!(r.codec.as_deref(), Some("PCMA"), "{r:?}");
    }
    h.idle(secs(5)).await;
}

/// Collects a 4 to 6 digit number starting with 4 and reads it back.
const COLLECT: &str = r##"flow: collect
language: en
start: ask
steps:
  ask:
    collect: main_menu
    into: ticket
    min_digits: 4
    max_digits: 6
    terminator: "#"
    inter_digit_timeout: 3s
    validate: ticket.starts_with("4")
    invalid: wrong
    exhausted: goodbye
    next: read_back
  wrong:
    play: invalid_choice
    next: ask
  read_back:
    say: ticket
    as: digits
    next: goodbye
  goodbye:
    play: goodbye
    next: end
  end:
    hangup:
"##;

#[tokio::test]
async fn collected_digits_are_validated_then_read_back() {
    let mut h = Harness::start(&[("collect", COLLECT)], "").await;
    let mut caller = h.ua("caller");
    let call = caller.dial("3000", secs(5)).await;
    tokio::time::sleep(secs(1)).await;
    // Not starting with 4: said so, asked again.
    h.media.key(caller.rtp, "1234#");
    tokio::time::sleep(prompt_len("invalid_choice") + secs(1)).await;
    // Two digits then silence: the inter-digit timeout ends the input, too short.
    h.media.key(caller.rtp, "43");
    tokio::time::sleep(secs(3) + prompt_len("invalid_choice") + secs(1)).await;
    h.media.key(caller.rtp, "4321#");
    caller.expect_bye(&call, secs(10)).await;
    let r = &h.records(1, secs(5)).await[0];
    assert_eq!(
        r.path,
        [
            "ask",
            "wrong",
            "ask",
            "wrong",
            "ask",
            "read_back",
            "goodbye",
            "end"
        ]
    );
    // Each wrong input is said so; the valid one is read back digit by digit.
    assert_eq!(
        h.media.heard(caller.rtp),
        [
            "main_menu",
            "invalid_choice",
            "main_menu",
            "invalid_choice",
            "main_menu",
            "digits/4",
            "digits/3",
            "digits/2",
            "digits/1",
            "goodbye"
        ]
    );
}
