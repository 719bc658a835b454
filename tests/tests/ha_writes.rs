//! Calls kept when the active role moves, with real processes: a planned `svi ha promote`
//! moves new calls to the other node while the calls in progress continue to their end on
//! the old one, and their records reach both nodes (written through the new active node).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use svi_tests::ha::{record_ids, records, status, wait_role, HaSpec};
use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::proc::svi_bin;

/// Audio frames (20 ms each) that show media flowing: half a second.
const FRAMES: u64 = 25;

/// Polls until every id of `want` is among the records of `data_dir`.
fn wait_all_records(data_dir: &Path, want: &BTreeSet<String>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let have: BTreeSet<String> = record_ids(data_dir).into_iter().collect();
        if want.is_subset(&have) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        // `svi calls` takes a few milliseconds: the loop is bounded by it.
        std::thread::yield_now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promote_keeps_the_calls_in_progress_to_their_end_and_their_records_on_both() {
    let work = tempfile::tempdir().expect("tmp");
    let spec = HaSpec::with_engine(&svi_tests::config::hold_engine(work.path(), ""), "");
    let (_witness, a, b) = spec.start_pair();
    let mut callers = Vec::new();
    for i in 0..5 {
        let mut phone = Phone::start(PhoneConfig::new(&format!("caller{i}")))
            .await
            .expect("phone");
        phone
            .call(&format!("sip:hold@{}", a.sip))
            .await
            .expect("call");
        phone.wait_answered(deadline(10)).await.expect("answered");
        phone.wait_frames(FRAMES, deadline(5)).await.expect("media");
        callers.push(phone);
    }

    let out = Command::new(svi_bin())
        .args(["ha", "promote", "--data-dir"])
        .arg(b.data_dir())
        .output()
        .expect("svi ha promote");
    assert!(
        out.status.success(),
        "promote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_role(&b.data_dir(), "active", Duration::from_secs(15)),
        "B active: {:?}",
        status(&b.data_dir())
    );
    assert!(
        wait_role(&a.data_dir(), "standby", Duration::from_secs(15)),
        "A standby: {:?}",
        status(&a.data_dir())
    );
    // New calls go to B now: A refuses them.
    let mut late = Phone::start(PhoneConfig::new("late")).await.expect("phone");
    late.call(&format!("sip:hold@{}", a.sip))
        .await
        .expect("call");
    match late.wait_answered(deadline(10)).await {
        Err(svi_tests::phone::PhoneError::CallEnded(Ended::Rejected { status: 503 }, _)) => {}
        other => panic!("the old active node refuses new calls with 503: {other:?}"),
    }

    // The calls on A go on: media flows, and they end when the callers hang up.
    for phone in &mut callers {
        phone.clear_received();
        phone
            .wait_frames(FRAMES, deadline(5))
            .await
            .expect("media goes on after the promote");
        phone.hangup().await.expect("hang up");
        assert_eq!(
            phone.wait_ended(deadline(5)).await.expect("ended"),
            Ended::LocalBye,
            "the engine did not hang up:\n{}",
            a.log_text()
        );
    }
    // Written by A through B (committed there, then applied on A): polled with a deadline.
    let ended_on_a = |data_dir: &Path| -> BTreeSet<String> {
        records(data_dir)
            .iter()
            .filter(|r| r["end_reason"] == "caller_hangup" && r["node"] == "node-a")
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ids = ended_on_a(&a.data_dir());
    while ids.len() < 5 && Instant::now() < deadline {
        std::thread::yield_now();
        ids = ended_on_a(&a.data_dir());
    }
    assert_eq!(
        ids.len(),
        5,
        "the 5 records on A: {:#?}",
        records(&a.data_dir())
    );
    assert!(
        wait_all_records(&b.data_dir(), &ids, Duration::from_secs(10)),
        "the 5 records on B: {:?}",
        record_ids(&b.data_dir())
    );
}
