//! No acknowledged record lost, with real processes: under a load of short calls, a
//! `kill -9` of the active node at a random moment loses no record of a call the load
//! generator saw end. Each record was stored (committed, or spooled on disk) before the
//! engine answered the caller's BYE, and the restarted node commits what its spool holds
//! through the survivor.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use svi_tests::ha::{records, status, wait_role, HaSpec};
use svi_tests::sipp::{Caller, Codec, Sipp};

/// The Call-IDs of the calls whose BYE got its 200, from sipp's message trace (each
/// message follows a line of dashes, then a line that says whether it was sent or received).
fn calls_seen_ended(trace: &str) -> BTreeSet<String> {
    let mut ended = BTreeSet::new();
    let mut received = false;
    let (mut ok, mut bye, mut call_id) = (false, false, None::<String>);
    let mut finish = |received: bool, ok: bool, bye: bool, call_id: Option<String>| {
        if let (true, true, true, Some(id)) = (received, ok, bye, call_id) {
            ended.insert(id);
        }
    };
    for line in trace.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("----------") {
            finish(received, ok, bye, call_id.take());
            received = false;
            ok = false;
            bye = false;
            continue;
        }
        if line.contains("message received") {
            received = true;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("sip/2.0 200") {
            ok = true;
        } else if lower.starts_with("cseq:") && lower.contains("bye") {
            bye = true;
        } else if lower.starts_with("call-id:") || lower.starts_with("i:") {
            call_id = line.split_once(':').map(|(_, v)| v.trim().to_string());
        }
    }
    finish(received, ok, bye, call_id);
    ended
}

#[test]
fn a_kill_under_load_loses_no_record_of_a_call_seen_ended() {
    let work = tempfile::tempdir().expect("tmp");
    let spec = HaSpec::with_engine(&svi_tests::config::hold_engine(work.path(), ""), "");
    let (_witness, mut a, b) = spec.start_pair();
    // Short calls at 20 per second for 30 s, each hung up by the caller after 200 ms.
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(Duration::from_millis(200));
    let sip = a.sip;
    let dir = work.path().to_path_buf();
    let load = std::thread::spawn(move || {
        let mut run = Sipp::new(caller.xml())
            .calls(600)
            .arg("-r")
            .arg("20")
            .arg("-recv_timeout")
            .arg("3000");
        run.timeout = Duration::from_secs(45);
        run.run(&dir, Some(sip))
    });
    // A random moment within the load: the fault itself, not a wait for an event.
    let at = Duration::from_millis(5_000 + u64::from(rand_ms()) % 20_000);
    eprintln!("kill -9 of the active node {at:?} into the load");
    std::thread::sleep(at);
    a.kill9();
    let run = load.join().expect("load thread");
    let seen = calls_seen_ended(&run.messages());
    assert!(
        seen.len() >= 50,
        "the load ran before the kill: {} calls seen ended\n{}",
        seen.len(),
        run.report()
    );

    // B takes over; A restarts on its data and commits its spool through B.
    assert!(
        wait_role(&b.data_dir(), "active", Duration::from_secs(15)),
        "B takes over: {:?}",
        status(&b.data_dir())
    );
    let a2 = spec.node(0, Some(a.data_dir()));
    assert!(
        wait_role(&a2.data_dir(), "standby", Duration::from_secs(20)),
        "A back as standby: {:?}",
        status(&a2.data_dir())
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let on_b: BTreeSet<String> = records(&b.data_dir())
            .iter()
            .filter_map(|r| r["sip_call_id"].as_str().map(str::to_string))
            .collect();
        let missing: Vec<&String> = seen.difference(&on_b).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        std::thread::yield_now();
    };
    assert!(
        missing.is_empty(),
        "{} of the {} calls seen ended have no record on the survivor: {missing:?}\nA (restarted):\n{}",
        missing.len(),
        seen.len(),
        a2.log_text()
    );
}

/// A few random bits from the clock (the kill moment only needs to vary between runs).
fn rand_ms() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
