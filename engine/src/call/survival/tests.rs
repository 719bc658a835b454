//! The replication pace in virtual time (instants given by the test), the merging of
//! waiting writes, and the publisher on a paused runtime. Adoption of a real call is
//! tested with the call core's scenarios (`call::core::tests::survival`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::call::core::PhaseMark;
use crate::replication::{BoxFuture, WriteError};
use crate::storage::CallRecord;

fn mark(phase: &'static str, step: &str) -> Option<PhaseMark> {
    Some(PhaseMark {
        phase,
        waits: "playing",
        step: Some(step.to_string()),
        legs: 0,
    })
}

const REFRESH: Duration = Duration::from_secs(3);

#[test]
fn a_change_of_phase_is_written_at_once_and_other_changes_at_most_every_refresh() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut p = Pacer::new(REFRESH);
    assert_eq!(p.handle_input(at(0), None), Pace::Wait, "not answered yet");
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(p.handle_input(at(10), mark("flow", "welcome")), Pace::Write);
    assert_eq!(p.poll_timeout(), None, "nothing changed since");
    // Inputs in the same step: written once, `REFRESH` after the last write.
    assert_eq!(p.handle_input(at(500), mark("flow", "welcome")), Pace::Wait);
    assert_eq!(p.handle_input(at(900), mark("flow", "welcome")), Pace::Wait);
    assert_eq!(p.poll_timeout(), Some(at(3010)));
    assert_eq!(p.handle_timeout(at(3009)), Pace::Wait, "not due yet");
    assert_eq!(p.handle_timeout(at(3010)), Pace::Write);
    assert_eq!(
        p.poll_timeout(),
        None,
        "no input since: nothing more to write"
    );
    assert_eq!(p.handle_timeout(at(9000)), Pace::Wait);
    // A new step is written at once, whatever the time since the last write.
    assert_eq!(
        p.handle_input(at(3020), mark("flow", "main_menu")),
        Pace::Write
    );
    assert_eq!(
        p.handle_input(at(3030), mark("queued", "main_menu")),
        Pace::Write
    );
    // An input after `REFRESH` is written at once.
    assert_eq!(
        p.handle_input(at(6030), mark("queued", "main_menu")),
        Pace::Write
    );
}

#[test]
fn a_call_that_cannot_be_adopted_any_more_is_removed_once() {
    let t0 = Instant::now();
    let mut p = Pacer::new(REFRESH);
    assert_eq!(p.handle_input(t0, mark("flow", "welcome")), Pace::Write);
    assert_eq!(p.handle_input(t0, mark("flow", "welcome")), Pace::Wait);
    assert_eq!(p.handle_input(t0, None), Pace::Remove, "ending");
    assert_eq!(p.poll_timeout(), None, "the pending refresh is dropped");
    assert_eq!(p.handle_input(t0, None), Pace::Wait, "removed once");
    assert_eq!(p.handle_timeout(t0 + REFRESH * 2), Pace::Wait);
}

#[test]
fn waiting_writes_are_merged_by_call_the_newest_kept() {
    let mut b = Backlog::default();
    b.push("c1".into(), Update::Put(json!(1)));
    b.push("c2".into(), Update::Put(json!(2)));
    b.push("c1".into(), Update::Put(json!(3)));
    b.push("c2".into(), Update::Remove);
    assert_eq!(
        b.take(),
        [
            ("c1".to_string(), Update::Put(json!(3))),
            ("c2".to_string(), Update::Remove)
        ]
    );
    assert!(b.is_empty());
}

/// What the publisher wrote: `Some(doc)` for a put, `None` for a removal.
type Log = Vec<(String, Option<serde_json::Value>)>;

struct Recorder {
    log: Arc<Mutex<Log>>,
    writes: mpsc::UnboundedSender<()>,
}

impl Recorder {
    fn note(
        &self,
        key: String,
        doc: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        self.log.lock().expect("log").push((key, doc));
        let _ = self.writes.send(());
        Box::pin(async { Ok(()) })
    }
}

impl RecordWriter for Recorder {
    fn write_call(&self, _: CallRecord) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async { Err(WriteError::Failed("not a call record writer".into())) })
    }

    fn put_doc(
        &self,
        _: String,
        _: String,
        _: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async { Err(WriteError::Failed("replicas are live state".into())) })
    }

    fn write_live(
        &self,
        collection: String,
        key: String,
        value: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<(), WriteError>> {
        assert_eq!(collection, COLLECTION);
        self.note(key, value)
    }
}

#[tokio::test(start_paused = true)]
async fn the_publisher_writes_each_call_once_per_round_and_nothing_when_not_active() {
    let log = Arc::new(Mutex::new(Log::new()));
    let (writes, mut written) = mpsc::unbounded_channel();
    let writer = Arc::new(Recorder {
        log: log.clone(),
        writes,
    });
    let (active_tx, active) = watch::channel(true);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(publish(writer, Serving::new(active), rx));
    let survival = Survival {
        node: "a".into(),
        refresh: REFRESH,
        tx,
        moved: watch::channel(Default::default()).1,
    };
    // Sent before the publisher runs: one round, merged by call.
    for (call, update) in [
        ("c1", Update::Put(json!(1))),
        ("c2", Update::Put(json!(2))),
        ("c1", Update::Put(json!(3))),
    ] {
        survival.tx.send((call.into(), update)).expect("publisher");
    }
    for _ in 0..2 {
        written.recv().await.expect("a write");
    }
    let mut seen = log.lock().expect("log").clone();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [("c1".into(), Some(json!(3))), ("c2".into(), Some(json!(2)))]
    );
    // Not active: the round is dropped (another node may own these calls now).
    active_tx.send_replace(false);
    survival
        .tx
        .send(("c1".into(), Update::Remove))
        .expect("publisher");
    let quiet = tokio::time::timeout(Duration::from_secs(10), written.recv()).await;
    assert!(quiet.is_err(), "nothing written while not active");
    active_tx.send_replace(true);
    survival
        .tx
        .send(("c2".into(), Update::Remove))
        .expect("publisher");
    written.recv().await.expect("a write");
    assert_eq!(log.lock().expect("log").len(), 3);
    assert_eq!(log.lock().expect("log")[2], ("c2".into(), None));
}
