//! Agents' phones under a password-guessing attack: the source is banned after a few wrong
//! passwords, and the ban shows both in the security log line and in the counters the
//! engine hands out for metrics (`EngineHandle::auth_stats`). (Over real sockets, with
//! SIPVicious' svcrack: `tests/tests/edge.rs`.)

use sip::register::RegistrationEvent;

use crate::harness::*;

#[tokio::test]
async fn wrong_passwords_ban_the_source_in_the_log_and_the_counters() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut phone = h.ua("1001");
    // Each attempt answers the registrar's challenges with a wrong password until the
    // client gives up; the default policy bans the source at the fifth failure.
    let mut attempts = 0;
    while h.handle.auth_stats().expect("engine").source_bans == 0 {
        attempts += 1;
        assert!(
            attempts <= 5,
            "no ban after {attempts} attempts: {}",
            h.log.text()
        );
        let failed = phone.try_register("wrong-password").await;
        assert!(
            matches!(failed, Err(RegistrationEvent::Failed { .. })),
            "{failed:?}"
        );
    }
    let stats = h.handle.auth_stats().expect("engine");
    assert_eq!(stats.failures, 5, "{stats:?}");
    assert_eq!(
        (stats.source_bans, stats.banned_sources_now),
        (1, 1),
        "{stats:?}"
    );
    let failures = h
        .log
        .lines()
        .iter()
        .filter(|l| l.contains("auth failure: src=") && l.contains("user=\"1001\""))
        .count();
    assert_eq!(
        failures,
        4,
        "four failures, the fifth bans: {}",
        h.log.text()
    );
    let ban = h
        .log
        .find(&["auth ban: src=", "method=REGISTER", "source_ban=60s"])
        .unwrap_or_else(|| panic!("no ban line: {}", h.log.text()));
    assert!(ban.contains("user=\"1001\""), "{ban}");
    assert!(
        !h.log.contains("wrong-password"),
        "a password never reaches the log"
    );

    // Banned: the right password is refused too, before it is looked at.
    let refused = phone.try_register("demo-1001").await;
    assert!(
        matches!(refused, Err(RegistrationEvent::Failed { status: 403, .. })),
        "{refused:?}"
    );
    let stats = h.handle.auth_stats().expect("engine");
    assert!(stats.refused_while_banned >= 1, "{stats:?}");
    assert_eq!(stats.failures, 5, "refusals are not failures: {stats:?}");

    // The first ban lasts 60 s; then the phone registers and no ban is in force.
    tokio::time::sleep(secs(61)).await;
    phone.register("demo-1001").await;
    let stats = h.handle.auth_stats().expect("engine");
    assert_eq!(
        (stats.source_bans, stats.banned_sources_now),
        (1, 0),
        "{stats:?}"
    );
}
