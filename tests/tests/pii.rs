//! Caller data never reaches a log line (STYLE.md §12): a caller keys a PIN into a
//! `collect` step, through both DTMF paths a phone uses (RFC 4733 events, then SIP INFO),
//! the flow sends it to a data source and trips a condition over it, and the engine logs
//! everything it can (trace level). The PIN must have reached the data source (the lookup
//! finds its row) and appear in no log line; neither may the caller's number.

use std::time::Duration;

use svi_tests::path_of;
use svi_tests::phone::{deadline, Phone, PhoneConfig};
use svi_tests::proc::{EngineOptions, EngineProc};

const PIN: &str = "97531864";
const CALLER: &str = "33612345678";

/// Collects eight digits, looks them up, then uses them as a condition (an error whose
/// message must name the kind of value, not the value).
const PIN_FLOW: &str = "flow: pin
language: en
start: ask
on_error: end
steps:
  ask:
    collect: welcome
    into: pin
    min_digits: 8
    max_digits: 8
    timeout: 20s
    inter_digit_timeout: 10s
    exhausted: end
    next: check
  check:
    lookup: pins
    params:
      number: pin
    timeout: 5s
    into: holder
    ok: misuse
    not_found: end
    error: end
  misuse:
    branch: pin
    then: end
    else: end
  end:
    hangup:
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_pin_reaches_the_data_source_and_no_log_line() {
    let dir = tempfile::tempdir().expect("tmp");
    // The fixture's own SQL is logged (sqlx, debug): it spells the PIN in two halves, so
    // that only the caller's keying could put the whole PIN in a log line.
    let sql = dir.path().join("pins.sql");
    std::fs::write(
        &sql,
        format!(
            "CREATE TABLE IF NOT EXISTS holders (pin TEXT PRIMARY KEY, name TEXT);\n\
             INSERT OR IGNORE INTO holders VALUES ('{}' || '{}', 'Ann');\n",
            &PIN[..4],
            &PIN[4..]
        ),
    )
    .expect("sql");
    let extra = format!(
        "[[data_sources]]\nname = \"pins\"\nkind = \"sql\"\ndatabase = \"{db}\"\ninit_sql = \"{sql}\"\nquery = \"SELECT name FROM holders WHERE pin = :number\"\n",
        db = dir.path().join("pins.db").display(),
        sql = sql.display(),
    );
    let config = svi_tests::config::write(dir.path(), &[("pin", PIN_FLOW)], &extra);
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        extra: vec!["--log".into(), "trace".into()],
        ..EngineOptions::default()
    });

    let mut caller = Phone::start(PhoneConfig::new(CALLER))
        .await
        .expect("caller phone");
    caller
        .call(&format!("sip:pin@{}", engine.sip))
        .await
        .expect("call");
    caller.wait_answered(deadline(5)).await.expect("answered");
    // The first half as RFC 4733 events; once the engine has them all, the rest as SIP INFO
    // (so the digits arrive in order).
    caller.send_dtmf(&PIN[..4]).expect("dtmf");
    assert!(
        engine
            .wait_log_count("digit received", 4, Duration::from_secs(10))
            .is_some(),
        "the RFC 4733 digits did not arrive: {}",
        engine.log_text()
    );
    for d in PIN[4..].chars() {
        caller.send_dtmf_info(d).await.expect("INFO");
    }
    caller
        .wait_ended(deadline(10))
        .await
        .expect("the flow hangs up");

    let calls = engine.wait_calls(1, Duration::from_secs(10));
    assert_eq!(
        path_of(&calls[0]),
        ["ask", "check", "misuse", "end"],
        "the lookup found the PIN's row: {:#}",
        calls[0]
    );
    let log = engine.log_text();
    assert!(log.lines().count() > 50, "trace logging is on: {log}");
    for line in log.lines() {
        assert!(!line.contains(PIN), "the PIN leaked: {line}");
        assert!(!line.contains(CALLER), "the caller's number leaked: {line}");
        assert!(
            !line.contains("Signal="),
            "an INFO body (a digit) leaked: {line}"
        );
    }
    assert!(
        log.contains("gave text instead of true or false"),
        "the condition over the PIN failed and was logged"
    );
}
