//! The HA pair with real processes: the three samples (`samples/ha/`) form a cluster by
//! themselves; the standby refuses calls with 503; after a kill -9 of the active node the
//! standby takes over and holds every record of the calls that ended before; the old node
//! rejoins as standby and `svi ha promote` moves the active role back without a moment
//! where two nodes are active.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use svi_tests::ha::{call_ids, one_call, role, sample, status, wait_role, Witness};
use svi_tests::probe::Probe;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf, Sipp};

fn node(name: &str) -> EngineProc {
    EngineProc::start(EngineOptions {
        config: Some(sample(name)),
        ..EngineOptions::default()
    })
}

fn witness(dir: &Path) -> Witness {
    Witness::start(&sample("witness.toml"), dir, None)
}

/// Starts node A again on the data directory it had.
fn restart(old: &EngineProc) -> EngineProc {
    EngineProc::start(EngineOptions {
        config: Some(sample("node-a.toml")),
        data_dir: Some(old.data_dir()),
        ..EngineOptions::default()
    })
}

#[test]
fn pair_with_witness_forms_fails_over_and_fails_back() {
    let work = tempfile::tempdir().expect("tmp");
    let _w = witness(&work.path().join("witness"));
    let mut a = node("node-a.toml");
    let b = node("node-b.toml");
    assert!(
        wait_role(&a.data_dir(), "active", Duration::from_secs(20)),
        "A active: {:?}\n{}",
        status(&a.data_dir()),
        a.log_text()
    );
    assert!(
        wait_role(&b.data_dir(), "standby", Duration::from_secs(10)),
        "B standby: {:?}",
        status(&b.data_dir())
    );
    assert!(wait_role(
        &work.path().join("witness"),
        "witness",
        Duration::from_secs(10)
    ));

    // The standby keeps the PBX away (503), OPTIONS included (the answer an INVITE gets):
    // a dispatcher probing with OPTIONS sees it unavailable; the active node answers 200.
    let mut probe = Probe::new(b.sip);
    assert_eq!(probe.wait_answer(Duration::from_secs(5)), Some(503));
    assert_eq!(
        Probe::new(a.sip).wait_answer(Duration::from_secs(5)),
        Some(200)
    );
    // The monitoring check takes the standby's 503 for a standby, not a warning.
    let health = Command::new(svi_bin())
        .args([
            "health",
            "--sip",
            &b.sip.to_string(),
            "--timeout-ms",
            "1500",
        ])
        .output()
        .expect("svi health");
    let line = String::from_utf8_lossy(&health.stdout);
    assert!(
        health.status.code() == Some(0) && line.starts_with("SVI OK - standby node"),
        "svi health on the standby: {:?} {line}",
        health.status.code()
    );
    let caller = Caller::new(Codec::Pcma);
    let refused = Sipp::new(caller.xml())
        .calls(1)
        .run(work.path(), Some(b.sip));
    assert!(
        !refused.success() && refused.messages().contains("SIP/2.0 503"),
        "standby answers 503:\n{}",
        refused.messages()
    );

    // Calls through the active node, then kill -9 of it.
    let caller = Caller::new(Codec::Pcma).dtmf(Duration::from_millis(300), Dtmf::Info('1'));
    let mut twenty = caller;
    twenty.hangup_after = Some(Duration::from_millis(200));
    let run = Sipp::new(twenty.xml())
        .calls(20)
        .arg("-r")
        .arg("10")
        .run(work.path(), Some(a.sip));
    assert!(run.success(), "{}\n{}", run.report(), a.log_text());
    let before = a.wait_calls(20, Duration::from_secs(10));
    let ids: Vec<String> = before
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 20);
    a.kill9();
    assert!(
        wait_role(&b.data_dir(), "active", Duration::from_secs(15)),
        "B takes over: {:?}",
        status(&b.data_dir())
    );
    assert!(
        one_call(b.sip, work.path()),
        "the new active node takes calls:\n{}",
        b.log_text()
    );
    let after = call_ids(&b);
    for id in &ids {
        assert!(
            after.contains(id),
            "record {id} of a call that ended before the failure is on B: {after:?}"
        );
    }

    // The old active node restarts as standby; promote moves the role back.
    // The same data directory as before the kill: A restarts with its own log.
    let a2 = restart(&a);
    assert!(
        wait_role(&a2.data_dir(), "standby", Duration::from_secs(20)),
        "A rejoins as standby: {:?}",
        status(&a2.data_dir())
    );
    let promote = Command::new(svi_bin())
        .args(["ha", "promote", "--data-dir"])
        .arg(a2.data_dir())
        .spawn()
        .expect("promote");
    let mut samples = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut promote = promote;
    let mut both_active = false;
    loop {
        let (ra, rb) = (role(&a2.data_dir()), role(&b.data_dir()));
        samples += 1;
        both_active |= ra == "active" && rb == "active";
        if (ra == "active" && rb == "standby") || Instant::now() > deadline {
            break;
        }
    }
    let _ = promote.wait();
    assert!(!both_active, "two active nodes were seen");
    assert_eq!(
        (role(&a2.data_dir()), role(&b.data_dir())),
        ("active".to_string(), "standby".to_string()),
        "after {samples} samples"
    );
}
