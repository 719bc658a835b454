//! Calls replicated for survival (`[ha] call_survival`): each call's snapshot is written
//! at each change of phase and at most every few seconds otherwise, removed when the call
//! ends; a node that is not active lets go, without a word, a call another node adopted.

use serde_json::Value;
use sip::message::Method;
use sip::transport::SipEvent;

use crate::harness::*;

const SURVIVAL: &str = "[ha]\ncall_survival = true\n";
const REPLICAS: &str = "live_calls";

/// The support queue without agents: its callers wait.
fn waiting_queue() -> String {
    format!("{}{SURVIVAL}", queue("", &[]))
}

/// The replicas written so far: (call, document), in order.
fn replicas(h: &Harness) -> Vec<(String, Value)> {
    h.written()
        .docs
        .into_iter()
        .filter(|(c, _, _)| c == REPLICAS)
        .map(|(_, k, v)| (k, v))
        .collect()
}

/// The flow step a replica was written in.
fn step(doc: &Value) -> Option<String> {
    doc["snapshot"]["interpreter"]["position"]["step"]
        .as_str()
        .map(str::to_string)
}

fn is_bye(e: &SipEvent) -> bool {
    matches!(e, SipEvent::Request { request, .. } if request.method == Method::Bye)
}

#[tokio::test]
async fn a_call_is_replicated_at_each_change_of_phase_and_removed_when_it_ends() {
    let mut h = Harness::start(&[("demo", &demo_flow())], &format!("{SUPPORT}{SURVIVAL}")).await;
    let mut caller = h.ua("caller");
    let call = caller.dial("3000", secs(5)).await;
    tokio::time::sleep(prompt_len("welcome") + secs(1)).await;
    h.media.key(caller.rtp, "1");
    caller.expect_bye(&call, secs(30)).await;
    let r = &h.records(1, secs(5)).await[0];
    let written = replicas(&h);
    assert!(
        written
            .iter()
            .all(|(k, d)| *k == r.id && d["node"] == "harness"),
        "{written:#?}"
    );
    let mut steps: Vec<String> = written.iter().filter_map(|(_, d)| step(d)).collect();
    steps.dedup();
    assert_eq!(steps, ["welcome", "main_menu", "option1"], "{written:#?}");
    // Written at changes of phase, not at every media event.
    assert!(written.len() <= 6, "{} writes", written.len());
    assert_eq!(
        h.written().deleted,
        [(REPLICAS.to_string(), r.id.clone())],
        "removed once, when the call ended"
    );
}

#[tokio::test]
async fn a_call_waiting_in_a_queue_is_written_again_at_most_every_three_seconds() {
    let mut h = Harness::start(&[("demo", &demo_flow())], &waiting_queue()).await;
    let (_caller, _call) = h.queued_caller("caller", 1).await;
    let before = replicas(&h).len();
    let queued = replicas(&h).last().expect("replicated").1.clone();
    assert_eq!(
        queued["snapshot"]["queue"]["queue"], "support",
        "{queued:#}"
    );
    tokio::time::sleep(secs(60)).await;
    let during = replicas(&h).len() - before;
    assert!(during <= 60 / 3 + 1, "{during} writes in 60 s of queue");
    assert!(h.written().deleted.is_empty(), "still up");
}

#[tokio::test]
async fn a_node_no_longer_active_lets_go_without_a_word_a_call_adopted_elsewhere() {
    let mut h = Harness::start(&[("demo", &demo_flow())], &waiting_queue()).await;
    let (mut caller, _call) = h.queued_caller("caller", 1).await;
    let (id, mut doc) = replicas(&h).last().expect("replicated").clone();
    // The replica as this node's state machine applied it: still this node's.
    h.storage
        .put_doc(REPLICAS, &id, &doc.to_string())
        .await
        .expect("stored");
    h.set_active(false);
    tokio::time::sleep(secs(5)).await;
    assert_eq!(h.handle.calls().await.expect("calls").len(), 1, "kept");
    // The other node adopted the call: its claim reaches this node through the log.
    doc["node"] = "other".into();
    h.storage
        .put_doc(REPLICAS, &id, &doc.to_string())
        .await
        .expect("stored");
    h.idle(secs(5)).await;
    assert!(!caller.got(is_bye), "nothing sent to the caller");
    tokio::time::sleep(secs(30)).await;
    assert!(!caller.got(is_bye), "nothing sent to the caller");
    let w = h.written();
    assert!(w.calls.is_empty(), "no record here: {:?}", w.calls);
    assert!(h.handle.calls().await.expect("calls").is_empty());
}
