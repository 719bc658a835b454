//! The pair behind a real registrar (Kamailio, registrar + usrloc + digest auth): across ten
//! `kill -9` of the active node and a fail-back, the registrar never holds two bindings of
//! the trunk user at any 100 ms poll (a node that becomes active removes every binding of
//! the user, the dead node's included, before adding its own), and a call through Kamailio
//! is answered by the survivor each time.

use std::time::Duration;

use svi_tests::ha::{status, wait_role, HaSpec};
use svi_tests::kamailio::{BindingWatch, Kamailio, PASSWORD};
use svi_tests::proc::EngineProc;
use svi_tests::sipp::{Caller, Codec, Sipp};

const USER: &str = "ivr";
const KILLS: usize = 10;
/// Follower lease (1 s) + election timeout (up to 1 s) + election and first commit, with
/// room for a loaded machine.
const FAILOVER: Duration = Duration::from_secs(15);

fn engine_config(dir: &std::path::Path, registrar: std::net::SocketAddr) -> String {
    let trunk = format!(
        "[[trunks]]\nname = \"ipbx\"\nregistrar = \"sip:{registrar}\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\ndomain = \"127.0.0.1\"\nexpires = 60\n"
    );
    svi_tests::config::hold_engine(dir, &trunk)
}

/// Waits until Kamailio's only binding of the user is `node`'s contact.
fn wait_bound_to(k: &Kamailio, node: &EngineProc, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let port = format!(":{}", node.sip.port());
    loop {
        let b = k.bindings(USER);
        if b.len() == 1 && b[0].contains(&port) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// One short call to the trunk user through Kamailio (relayed to the registered node).
fn call_through(k: &Kamailio, dir: &std::path::Path) -> Result<(), String> {
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(Duration::from_millis(300));
    // sipp's `-s`: the user part of the Request-URI (the trunk user, which Kamailio looks up).
    let run = Sipp::new(caller.xml())
        .calls(1)
        .arg("-s")
        .arg(USER)
        .run(dir, Some(k.addr));
    if run.success() {
        Ok(())
    } else {
        Err(run.report())
    }
}

#[test]
fn never_two_bindings_at_the_registrar_across_kills_and_fail_back() {
    let work = tempfile::tempdir().expect("tmp");
    let k = Kamailio::start(&work.path().join("kamailio"));
    let spec = HaSpec::with_engine(&engine_config(work.path(), k.addr), "");
    let _witness = spec.witness();
    let mut nodes = [Some(spec.node(0, None)), Some(spec.node(1, None))];
    let watch = BindingWatch::start(&k, USER, Duration::from_millis(100));
    let node = |nodes: &[Option<EngineProc>; 2], i: usize| {
        nodes[i].as_ref().expect("node running").data_dir()
    };
    assert!(
        wait_role(&node(&nodes, 0), "active", Duration::from_secs(20)),
        "A active: {:?}",
        status(&node(&nodes, 0))
    );
    let mut active = 0;
    assert!(
        wait_bound_to(&k, nodes[0].as_ref().expect("A"), Duration::from_secs(10)),
        "A registered with Kamailio: {:?}\n{}",
        k.bindings(USER),
        k.log_text()
    );
    call_through(&k, work.path()).expect("a call through Kamailio to A");

    // Killed processes own their data directories (temporary): kept until the end.
    let mut killed = Vec::new();
    for round in 0..KILLS {
        let standby = 1 - active;
        assert!(
            wait_role(&node(&nodes, standby), "standby", FAILOVER),
            "round {round}: the other node is standby: {:?}",
            status(&node(&nodes, standby))
        );
        let mut dead = nodes[active].take().expect("active node");
        dead.kill9();
        let survivor = nodes[standby].as_ref().expect("survivor");
        assert!(
            wait_role(&survivor.data_dir(), "active", FAILOVER),
            "round {round}: the survivor takes over: {:?}",
            status(&survivor.data_dir())
        );
        assert!(
            wait_bound_to(&k, survivor, Duration::from_secs(10)),
            "round {round}: the survivor alone is bound: {:?}",
            k.bindings(USER)
        );
        call_through(&k, work.path())
            .unwrap_or_else(|e| panic!("round {round}: a call through Kamailio: {e}"));
        nodes[active] = Some(spec.node(active, Some(dead.data_dir())));
        killed.push(dead);
        active = standby;
    }

    // Fail-back: the restarted node is promoted; the old one steps aside.
    let back = 1 - active;
    assert!(
        wait_role(&node(&nodes, back), "standby", FAILOVER),
        "the restarted node is standby: {:?}",
        status(&node(&nodes, back))
    );
    let out = std::process::Command::new(svi_tests::proc::svi_bin())
        .args(["ha", "promote", "--data-dir"])
        .arg(node(&nodes, back))
        .output()
        .expect("svi ha promote");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_bound_to(
            &k,
            nodes[back].as_ref().expect("node"),
            Duration::from_secs(15)
        ),
        "after the fail-back the promoted node alone is bound: {:?}",
        k.bindings(USER)
    );
    call_through(&k, work.path()).expect("a call after the fail-back");

    let (max, samples, over) = watch.finish();
    assert!(samples > 100, "the registrar was polled: {samples} samples");
    assert!(
        max <= 1,
        "never two bindings of {USER} at once ({samples} polls): {over:?}"
    );
}
