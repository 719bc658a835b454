//! Two HA pairs behind Kamailio's dispatcher on the sample configuration
//! (`samples/kamailio/`): the dispatcher's OPTIONS probes see each pair's active node (200)
//! and not its standby (503), so 200 calls through Kamailio split evenly between the two
//! active nodes, with Kamailio in the Record-Route (the engine's own BYE comes back through
//! it); agents register through Kamailio with the pair that serves their queues (the
//! sample's mapping). After a `kill -9` of one pair's active node every new call is still
//! answered: first by the other pair while the pair fails over, then by the pair's former
//! standby as well; with the whole pair down, by the other pair. When every node Kamailio
//! tries fails (a dead node, a standby that cannot take over), the caller gets the sample's
//! `503 No Active Node`, whichever failed last, and a request it does not dispatch a `405`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use svi_tests::central::{self, stats, Central, BATCH};
use svi_tests::dispatcher::{Dispatcher, CALL_SET};
use svi_tests::ha::{record_ids, role_changes, status, wait_role, wait_role_in, HaSpec, Witness};
use svi_tests::probe::{status_of, Probe};
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{agent_register_xml, Caller, Codec, Sipp, SippRun};

/// Follower lease + election timeout + first commit, with room for a loaded machine.
const FAILOVER: Duration = Duration::from_secs(15);
/// The dispatcher's probe interval (seconds): the sample's.
const PROBE_INTERVAL_S: u32 = 1;

/// The welcome prompt, then the engine hangs up.
const BYE_FLOW: &str = "flow: bye
language: en
start: hello
steps:
  hello:
    play: welcome
    next: end
  end:
    hangup:
";

/// Every call waits in queue `support`, where no agent is logged in: it goes to the
/// overflow, a held prompt, until the caller hangs up (ACD events for every call).
const QUEUED_FLOW: &str = "flow: queued
language: en
start: wait
steps:
  wait:
    queue: support
    overflow: talk
  talk:
    play: welcome
    next: talk
";

/// One pair: its spec (configurations, directories), witness and two nodes; `active` is the
/// index of the node that is active.
struct Pair {
    /// The configurations (kept until the end).
    spec: HaSpec,
    witness: Witness,
    nodes: [Option<EngineProc>; 2],
    active: usize,
}

impl Pair {
    /// A pair whose agents are `agents` (`[[agents]]` tables), exporting to `central` (a
    /// `[central]` section, or nothing); MD5 digests only (sipp's). Calls to `bye` play the
    /// welcome prompt and get the engine's BYE, calls to `queued` wait in queue `support`
    /// (no agent: its overflow, held), others hold.
    fn start(dir: &Path, agents: &str, central: &str) -> Pair {
        let flows = dir.join("flows");
        std::fs::create_dir_all(&flows).expect("flows dir");
        std::fs::write(flows.join("bye.yaml"), BYE_FLOW).expect("write flow");
        std::fs::write(flows.join("queued.yaml"), QUEUED_FLOW).expect("write flow");
        let routes = "[[routes]]\nnumber = \"bye\"\nflow = \"bye\"\n\n[[routes]]\nnumber = \"queued\"\nflow = \"queued\"\n\n[[queues]]\nid = \"support\"\n\n";
        let engine = svi_tests::config::hold_engine(dir, &format!("{routes}{agents}{central}"))
            .replacen("[sip]\n", "[sip]\ndigest_algorithms = [\"MD5\"]\n", 1);
        let spec = HaSpec::with_engine(&engine, "");
        let witness = spec.witness();
        let node = |i: usize| {
            EngineProc::start(EngineOptions {
                config: Some(spec.configs[i].clone()),
                env: Central::env(),
                ..EngineOptions::default()
            })
        };
        let nodes = [Some(node(0)), Some(node(1))];
        Pair {
            spec,
            witness,
            nodes,
            active: 0,
        }
    }

    fn node(&self, i: usize) -> &EngineProc {
        self.nodes[i].as_ref().expect("node running")
    }

    /// Waits until one node is active and the other standby; remembers which.
    fn formed(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let roles: Vec<String> = (0..2)
                .map(|i| {
                    wait_role_in(
                        &self.node(i).data_dir(),
                        &["active", "standby"],
                        Duration::from_millis(200),
                    )
                    .unwrap_or_default()
                })
                .collect();
            if let Some(a) = roles.iter().position(|r| r == "active") {
                if roles[1 - a] == "standby" {
                    self.active = a;
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the pair forms: {roles:?}\n{}",
                self.node(0).log_text()
            );
        }
    }

    fn sip(&self, i: usize) -> SocketAddr {
        self.node(i).sip
    }

    fn addrs(&self) -> [SocketAddr; 2] {
        [self.sip(0), self.sip(1)]
    }

    /// The call records of the pair (on its active node: every record is replicated).
    fn records(&self) -> usize {
        record_ids(&self.node(self.active).data_dir()).len()
    }
}

/// `n` calls through Kamailio at `rate` a second (the hold flow; the caller hangs up after
/// 200 ms).
fn calls(k: &Dispatcher, dir: &Path, n: u32, rate: u32) -> SippRun {
    calls_to(k, dir, "service", n, rate)
}

/// As `calls`, to the number `service`.
fn calls_to(k: &Dispatcher, dir: &Path, service: &str, n: u32, rate: u32) -> SippRun {
    let mut caller = Caller::new(Codec::Pcma);
    caller.hangup_after = Some(Duration::from_millis(200));
    Sipp::new(caller.xml())
        .calls(n)
        .arg("-r")
        .arg(rate.to_string())
        .arg("-s")
        .arg(service)
        .run(dir, Some(k.addr))
}

/// Waits until the central database holds every record of `pair` (named `name` there),
/// and exactly those; returns how many.
fn exported(central: &Central, name: &str, pair: &Pair, data_dir: &Path) -> usize {
    let mut local = record_ids(data_dir);
    local.sort();
    let sql = format!("SELECT count(*) FROM central_calls WHERE pair = '{name}'");
    let got = central.wait_number(&sql, local.len() as i64, Duration::from_secs(30));
    assert_eq!(
        got,
        Some(local.len() as i64),
        "{name} exported every record:\n{}",
        pair.node(pair.active).log_text()
    );
    assert_eq!(central.call_ids(name), local, "{name}: the same call ids");
    local.len()
}

/// An agent with a password (`pw-ID-secret`).
fn agent(id: &str) -> String {
    format!("[[agents]]\nid = \"{id}\"\nname = \"Agent {id}\"\npassword = \"pw-{id}-secret\"\n")
}

/// An agent's phone registering through Kamailio (its Contact on a free port).
fn register(k: &Dispatcher, dir: &Path, user: &str, password: &str) -> SippRun {
    let contact = svi_tests::ports::free_sip_port();
    Sipp::new(agent_register_xml(user, password, contact))
        .calls(1)
        .run(dir, Some(k.addr))
}

/// Prints how long after the kill the dispatcher stopped sending to the dead node, the
/// survivor took over (its own log) and the dispatcher sent to it (measured, not asserted).
fn report_switch(
    changes: &[(Instant, Vec<SocketAddr>)],
    killed: (Instant, chrono::DateTime<chrono::Utc>),
    dead: SocketAddr,
    survivor: SocketAddr,
    survivor_log: &str,
) {
    let after = |pred: &dyn Fn(&Vec<SocketAddr>) -> bool| {
        changes
            .iter()
            .find(|(_, set)| pred(set))
            .map(|(at, _)| at.saturating_duration_since(killed.0))
    };
    let takeover = role_changes(survivor_log)
        .iter()
        .rev()
        .find(|c| c.to == "active")
        .and_then(|c| (c.at - killed.1).to_std().ok());
    eprintln!(
        "after the kill: dead node inactive in the dispatcher {:?}, survivor active {:?} \
         (its log), survivor active in the dispatcher {:?}",
        after(&|s| !s.contains(&dead)),
        takeover,
        after(&|s| s.contains(&survivor)),
    );
}

/// Waits until the pairs' records add up to at least `total`; returns each pair's count.
fn wait_counts(pairs: &[&Pair], total: usize) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts: Vec<usize> = pairs.iter().map(|p| p.records()).collect();
        if counts.iter().sum::<usize>() >= total || Instant::now() > deadline {
            return counts;
        }
        std::thread::yield_now();
    }
}

#[test]
fn two_pairs_behind_kamailio_share_calls_and_survive_a_pair_going_down() {
    let work = tempfile::tempdir().expect("tmp");
    // Both pairs export to one PostgreSQL (central reporting), where it can be started.
    let central = Central::start()
        .map_err(|why| eprintln!("NOTICE: central reporting not checked: {why}"))
        .ok();
    let section = |name: &str| {
        central
            .as_ref()
            .map(|c| c.section(name))
            .unwrap_or_default()
    };
    let mut one = Pair::start(work.path(), &agent("1001"), &section("pair-1"));
    let mut two = Pair::start(work.path(), &agent("2001"), &section("pair-2"));
    // Calls the load generator saw answered.
    let mut answered = 0;
    one.formed();
    two.formed();
    let k = Dispatcher::start(
        &work.path().join("kamailio"),
        &[one.addrs(), two.addrs()],
        &[("1001", 1), ("2001", 2)],
        PROBE_INTERVAL_S,
    );
    let actives = [one.sip(one.active), two.sip(two.active)];
    assert!(
        k.wait_active(CALL_SET, &actives, Duration::from_secs(10)),
        "the dispatcher sends to the active nodes {actives:?} only: {:?}\n{}",
        k.destinations(CALL_SET),
        k.log_text()
    );

    // 200 calls through Kamailio: an even split between the pairs, within 10 %.
    let run = calls(&k, work.path(), 200, 20);
    answered += 200;
    assert!(
        run.success(),
        "200 calls through Kamailio:\n{}",
        run.report()
    );
    let record_route = format!("Record-Route: <sip:{}", k.addr);
    assert!(
        run.messages().contains(&record_route),
        "Kamailio stays in the dialog's path ({record_route})"
    );
    let counts = wait_counts(&[&one, &two], 200);
    assert_eq!(counts.iter().sum::<usize>(), 200, "records: {counts:?}");
    for c in &counts {
        assert!(
            (90..=110).contains(c),
            "each pair takes 100 calls within 10 %: {counts:?}"
        );
    }
    eprintln!("split of 200 calls between the pairs: {counts:?}");

    // The engine's own BYE comes back through Kamailio too (the node follows the route set).
    let run = Sipp::new(Caller::new(Codec::Pcma).xml())
        .calls(1)
        .arg("-s")
        .arg("bye")
        .run(work.path(), Some(k.addr));
    assert!(run.success(), "a call the engine ends:\n{}", run.report());
    let messages = run.messages();
    let bye = messages
        .find("BYE sip:")
        .map(|at| &messages[at..])
        .and_then(|m| m.split("-----").next())
        .unwrap_or_default();
    assert!(
        bye.contains(&format!("Via: SIP/2.0/UDP {}", k.addr)),
        "the engine's BYE passed through Kamailio:\n{messages}"
    );
    answered += 1;

    // Calls through a queue (ACD events in both pairs), then central reporting: each pair's
    // records exported exactly once, and `svi stats --source central` the sum of both
    // pairs' local statistics.
    let run = calls_to(&k, work.path(), "queued", 20, 10);
    assert!(run.success(), "20 queued calls:\n{}", run.report());
    answered += 20;
    let counts = wait_counts(&[&one, &two], 221);
    assert_eq!(counts.iter().sum::<usize>(), 221, "records: {counts:?}");
    if let Some(c) = &central {
        let one_dir = one.node(one.active).data_dir();
        let two_dir = two.node(two.active).data_dir();
        exported(c, "pair-1", &one, &one_dir);
        exported(c, "pair-2", &two, &two_dir);
        let queued =
            "SELECT count(*) FROM central_acd_events WHERE event->>'event' = 'call_queued'";
        assert_eq!(
            c.wait_number(queued, 20, Duration::from_secs(30)),
            Some(20),
            "every queued call's event exported"
        );
        // A call's last ACD event (its abandon) may be committed after its call record:
        // read until the pairs' figures and the central ones agree, or the deadline.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (local1, local2, all, sum) = loop {
            let local1 = central::counts(&stats(&one.spec.configs[0], Some(&one_dir)));
            let local2 = central::counts(&stats(&two.spec.configs[0], Some(&two_dir)));
            let all = central::counts(&stats(&one.spec.configs[0], None));
            let sum: Vec<_> = local1
                .iter()
                .zip(&local2)
                .map(|(a, b)| (a.0.clone(), a.1 + b.1, a.2 + b.2, a.3 + b.3, a.4 + b.4))
                .collect();
            if all == sum || Instant::now() > deadline {
                break (local1, local2, all, sum);
            }
        };
        assert_eq!(local1.len(), 1, "one queue: {local1:?}");
        assert_eq!(sum[0].1, 20, "the 20 queued calls offered: {sum:?}");
        assert_eq!(all, sum, "central {all:?}, local {local1:?} + {local2:?}");
    }

    // Agents register through Kamailio with the pair that serves their queues (each pair
    // knows only its own agents: a REGISTER sent to the other pair would fail its digest);
    // an agent missing from the mapping is refused by Kamailio.
    for (user, pair) in [("1001", &one), ("2001", &two)] {
        let reg = register(&k, work.path(), user, &format!("pw-{user}-secret"));
        assert!(reg.success(), "agent {user} registers:\n{}", reg.report());
        let node = pair.node(pair.active);
        assert!(
            node.wait_log("agent phone registered", Duration::from_secs(5))
                .is_some(),
            "agent {user} is registered on its pair's active node:\n{}",
            node.log_text()
        );
    }
    let unmapped = register(&k, work.path(), "3001", "pw-3001-secret");
    assert!(
        !unmapped.success() && unmapped.messages().contains("SIP/2.0 403"),
        "an unmapped agent is refused:\n{}",
        unmapped.messages()
    );

    // kill -9 of pair one's active node while calls keep coming.
    let (before_one, before_two) = (counts[0], counts[1]);
    let dead = one.active;
    let watch = k.watch(CALL_SET, Duration::from_millis(20));
    let killed_at = (Instant::now(), chrono::Utc::now());
    one.nodes[dead].as_mut().expect("active node").kill9();
    let run = calls(&k, work.path(), 30, 10);
    assert!(
        run.success(),
        "calls during pair one's failover are answered:\n{}",
        run.report()
    );
    answered += 30;
    let survivor = 1 - dead;
    assert!(
        wait_role(&one.node(survivor).data_dir(), "active", FAILOVER),
        "pair one's standby takes over: {:?}",
        status(&one.node(survivor).data_dir())
    );
    one.active = survivor;
    let actives = [one.sip(survivor), two.sip(two.active)];
    assert!(
        k.wait_active(CALL_SET, &actives, FAILOVER),
        "the dispatcher sends to pair one's new active node: {:?}",
        k.destinations(CALL_SET)
    );
    report_switch(
        &watch.finish(),
        killed_at,
        one.sip(dead),
        one.sip(survivor),
        &one.node(survivor).log_text(),
    );
    let counts = wait_counts(&[&one, &two], before_one + before_two + 30);
    assert_eq!(
        counts.iter().sum::<usize>(),
        before_one + before_two + 30,
        "every call during the failover has its record: {counts:?}"
    );

    // Pair one's former standby now takes its share.
    let (before_one, before_two) = (counts[0], counts[1]);
    let run = calls(&k, work.path(), 40, 20);
    assert!(run.success(), "40 calls:\n{}", run.report());
    answered += 40;
    let counts = wait_counts(&[&one, &two], before_one + before_two + 40);
    let (got_one, got_two) = (counts[0] - before_one, counts[1] - before_two);
    assert_eq!(got_one + got_two, 40, "records: {counts:?}");
    assert!(
        got_one >= 10 && got_two >= 10,
        "both pairs take calls again: pair one {got_one}, pair two {got_two}"
    );

    // The whole of pair one down: pair two answers every call. Pair one's survivor has
    // exported what it holds first (else nothing of that pair could export it later).
    if let Some(c) = &central {
        exported(c, "pair-1", &one, &one.node(survivor).data_dir());
    }
    let before_two = counts[1];
    one.nodes[survivor].as_mut().expect("node").kill9();
    let run = calls(&k, work.path(), 20, 10);
    assert!(
        run.success(),
        "with pair one down, calls are answered:\n{}",
        run.report()
    );
    answered += 20;
    let deadline = Instant::now() + Duration::from_secs(20);
    while two.records() < before_two + 20 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(
        two.records(),
        before_two + 20,
        "pair two answered the 20 calls"
    );

    // After the failover: the central count equals the calls the load generator saw
    // answered, each call once (a page whose cursor died with the node is upserted again,
    // never a second row).
    if let Some(c) = &central {
        let one_dir = one.node(survivor).data_dir();
        let two_dir = two.node(two.active).data_dir();
        let n = exported(c, "pair-1", &one, &one_dir) + exported(c, "pair-2", &two, &two_dir);
        assert_eq!(
            n, answered,
            "records of both pairs, against the calls answered"
        );
        let total = c.number("SELECT count(*) FROM central_calls");
        let distinct = c.number("SELECT count(DISTINCT (pair, id)) FROM central_calls");
        assert_eq!(
            total,
            Some(answered as i64),
            "central calls, against the answered"
        );
        assert_eq!(distinct, total, "no call twice");
        let resent = c.number("SELECT count(*) FROM central_calls WHERE sends > 1");
        eprintln!("{resent:?} call records sent again after the failover (upserted)");
        assert!(
            resent.is_some_and(|r| r <= BATCH),
            "at most the page whose cursor was lost: {resent:?}"
        );
    }
}

#[test]
fn a_pair_without_an_active_node_gets_one_503_whichever_node_failed_last() {
    let work = tempfile::tempdir().expect("tmp");
    let mut pair = Pair::start(work.path(), "", "");
    pair.formed();
    // No quorum left: the witness and the active node die; the standby stays standby.
    pair.witness.kill9();
    let dead = pair.active;
    pair.nodes[dead].as_mut().expect("active node").kill9();
    // A probe interval longer than the test: the dispatcher still takes both nodes for
    // active (the list's initial state), as it does between two probes during a failover.
    let k = Dispatcher::start(&work.path().join("kamailio"), &[pair.addrs()], &[], 60);
    assert!(
        k.wait_active(CALL_SET, &pair.addrs(), Duration::from_secs(5)),
        "both nodes active in the dispatcher before the call: {:?}",
        k.destinations(CALL_SET)
    );
    let run = calls(&k, work.path(), 1, 1);
    let messages = run.messages();
    assert!(
        !run.success() && messages.contains("SIP/2.0 503 No Active Node"),
        "the caller gets the proxy's 503:\n{messages}"
    );
    // Not the 408 of the dead node's timeout, nor tm's 500 for the standby's 503, nor a
    // Retry-After.
    assert!(
        !messages.contains("SIP/2.0 408")
            && !messages.contains("SIP/2.0 500")
            && !messages.contains("Retry-After"),
        "one answer for the service:\n{messages}"
    );
    // Both nodes were tried (the dead one timed out, the standby answered 503): each is
    // marked inactive, with no probe in between.
    assert!(
        k.wait_active(CALL_SET, &[], Duration::from_secs(1)),
        "both nodes marked inactive: {:?}",
        k.destinations(CALL_SET)
    );
    // With no node active, the next call is refused by the proxy itself, at once.
    let run = calls(&k, work.path(), 1, 1);
    assert!(
        !run.success() && run.messages().contains("SIP/2.0 503 No Active Node"),
        "no node active: the proxy's 503:\n{}",
        run.messages()
    );
    // Fail closed: a request the sample does not dispatch (MESSAGE) gets 405.
    let probe = Probe::new(k.addr);
    let local = probe.local_addr();
    probe.send_raw(
        format!(
            "MESSAGE sip:service@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKmsg1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=m1\r\nTo: <sip:service@{t}>\r\nCall-ID: message-{n}@test\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
            t = k.addr,
            n = std::process::id()
        )
        .as_bytes(),
    );
    let answer = probe.recv_until(Instant::now() + Duration::from_secs(5));
    assert_eq!(
        answer.as_deref().and_then(status_of),
        Some(405),
        "MESSAGE through the proxy: {answer:?}"
    );
    assert_eq!(
        wait_role_in(
            &pair.node(1 - dead).data_dir(),
            &["standby"],
            Duration::from_secs(1)
        )
        .as_deref(),
        Some("standby"),
        "the survivor cannot take over without a quorum"
    );
}
