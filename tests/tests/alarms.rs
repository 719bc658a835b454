//! Alarms end to end: a pair and a witness whose nodes mail alarms through a local SMTP
//! server (STARTTLS, authentication) and post them to a webhook. Killing the standby raises
//! `peer_down` on the active node: logged, listed by `svi alarms`, mailed and posted;
//! starting it again clears the alarm, which is mailed too.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use svi_tests::contact::svi;
use svi_tests::ha::{wait_role, AlarmSink, HaSpec};
use svi_tests::proc::EngineProc;
use svi_tests::smtp::{Mail, SmtpSink};

const USER: &str = "svi-alarms";
const PASSWORD: &str = "sink-password-0123";

fn engine_config(dir: &Path, sink: &SmtpSink, webhook: &str) -> String {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("flows dir");
    let demo = svi_tests::config::sample_flow("demo");
    std::fs::write(flows.join("demo.yaml"), demo).expect("demo flow");
    format!(
        "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\n\n[prompts]\ndir = \"{prompts}\"\n\n[flows]\ndir = \"{flows}\"\ndefault = \"demo\"\n\n[[queues]]\nid = \"support\"\n\n[alarms]\nwebhook = \"{webhook}\"\nmin_interval_secs = 1\npeer_down_secs = 2\n\n[alarms.mail]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nfrom = \"svi@example.org\"\nto = [\"ops@example.org\", \"oncall@example.org\"]\nca_file = \"{ca}\"\n",
        prompts = svi_tests::repo_root().join("samples/prompts").display(),
        flows = flows.display(),
        port = sink.addr.port(),
        ca = sink.ca.display(),
    )
}

fn alarms(data_dir: &Path, engine: &EngineProc) -> Value {
    let (code, text) = svi(engine, &["alarms", "--json"]);
    assert_eq!(code, 0, "svi alarms on {}: {text}", data_dir.display());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The mail with `subject` received after `mark`; fails with every subject received, what
/// the server refused and the node's log.
fn wait_mail(sink: &SmtpSink, mark: usize, subject: &str, node: &EngineProc) -> Mail {
    sink.wait_after(mark, Duration::from_secs(20), |m| m.subject() == subject)
        .unwrap_or_else(|| {
            panic!(
                "no mail `{subject}`; mails: {:?}\nrefused: {:?}\n{}",
                sink.mails().iter().map(|m| m.subject()).collect::<Vec<_>>(),
                sink.refusals(),
                node.log_text()
            )
        })
}

fn peer_down_on(v: &Value, node: &str) -> bool {
    v["active"].as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["kind"] == "peer_down" && x["subject"] == node)
    })
}

#[test]
fn killing_the_standby_mails_peer_down_and_its_return_mails_the_clear() {
    let sink = SmtpSink::start(USER, PASSWORD);
    let hook = AlarmSink::start();
    let work = tempfile::tempdir().expect("tmp");
    let spec = HaSpec::with_engine(&engine_config(work.path(), &sink, &hook.url), "");
    let _witness = spec.witness();
    let a = spec.node(0, None);
    let mut b = spec.node(1, None);
    assert!(
        wait_role(&a.data_dir(), "active", Duration::from_secs(20)),
        "A active:\n{}",
        a.log_text()
    );
    assert!(wait_role(&b.data_dir(), "standby", Duration::from_secs(10)));
    // Every member answers: nothing active on A once the members met (a member started a
    // moment later may have been reported down, then cleared).
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while peer_down_on(&alarms(&a.data_dir(), &a), "node 2") {
        assert!(std::time::Instant::now() < end, "{}", a.log_text());
        std::thread::yield_now();
    }

    let mark = sink.count();
    let b_data = b.data_dir();
    b.kill9();
    let raised = wait_mail(
        &sink,
        mark,
        "[svi node-a] RAISED major: peer down (node 2)",
        &a,
    );
    assert!(raised.tls, "the mail went over STARTTLS");
    assert_eq!(raised.user.as_deref(), Some(USER), "and was authenticated");
    assert_eq!(raised.from, "svi@example.org");
    assert_eq!(raised.to, vec!["ops@example.org", "oncall@example.org"]);
    let body = raised.body();
    assert!(
        body.contains(&format!(
            "member 2 (full node, {}) has not answered for",
            spec.cluster[1]
        )),
        "{body}"
    );
    assert!(
        body.contains("Active alarms on this node now (1)"),
        "{body}"
    );
    // The same change in the log, on the alarm screen and at the webhook.
    let log = a.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("alarm raised") && l.contains("peer_down") && l.contains("node 2")),
        "{log}"
    );
    let now = alarms(&a.data_dir(), &a);
    assert!(peer_down_on(&now, "node 2"), "{now:#}");
    assert_eq!(now["active"][0]["severity"], "major");
    let posted = hook
        .wait(Duration::from_secs(10), |v| {
            v["alarms"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|c| c["kind"] == "peer_down" && c["state"] == "raised")
            })
        })
        .expect("webhook post of the raised alarm");
    assert_eq!(posted["node"], "node-a");

    // B comes back: cleared, and mailed (within the rate limit's interval).
    let mark = sink.count();
    let b = spec.node(1, Some(b_data));
    assert!(wait_role(&b.data_dir(), "standby", Duration::from_secs(20)));
    let cleared = wait_mail(&sink, mark, "[svi node-a] CLEARED: peer down (node 2)", &a);
    assert!(cleared.tls && cleared.user.is_some());
    let body = cleared.body();
    assert!(
        body.contains("No alarm is active on this node now."),
        "{body}"
    );
    let now = alarms(&a.data_dir(), &a);
    assert!(!peer_down_on(&now, "node 2"), "{now:#}");
    assert!(
        now["cleared_total"]["peer_down"].as_u64() >= Some(1),
        "{now:#}"
    );
    // Nothing was refused by the server: no clear-text AUTH, no mail without AUTH.
    assert!(sink.refusals().is_empty(), "{:?}", sink.refusals());
}
