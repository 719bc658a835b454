//! The shutdown drain: calls in progress (one in the menu, one bridged to an agent) are
//! hung up with a BYE on every leg, their records written with the shutdown as the
//! reason, before the engine stops.

use engine::storage::EndReason;

use crate::harness::*;

#[tokio::test]
async fn shutdown_hangs_up_every_call_and_writes_its_record() {
    let mut h = Harness::start(&[("demo", &demo_flow())], SUPPORT).await;
    let mut agent = h.agent("1001", "demo-1001").await;
    let (mut queued, bridged) = h.queued_caller("caller1", 1).await;
    let ring = agent.ringing(secs(3)).await;
    let leg = agent.answer(ring, true).await;
    let mut in_menu = h.ua("caller2");
    let menu_call = in_menu.dial("3000", secs(5)).await;
    assert_eq!(h.handle.active_calls(), 2);

    let mut active = h.handle.watch_active_calls().expect("an engine");
    let engine = h.engine.take().expect("running");
    let stopped = tokio::spawn(engine.shutdown());
    // Each party gets a BYE and answers it; then no call is left.
    in_menu.expect_bye(&menu_call, secs(5)).await;
    queued.expect_bye(&bridged, secs(5)).await;
    agent.expect_bye(&leg, secs(5)).await;
    tokio::time::timeout(secs(5), active.wait_for(|n| *n == 0))
        .await
        .expect("drained")
        .expect("the dispatcher counts");
    let records = h.records(2, secs(5)).await;
    // The rest of the stop closes the storage on its own threads, in real time.
    stopped.await.expect("the engine stops");

    assert!(
        records.iter().all(|r| r.end_reason == EndReason::Shutdown),
        "{records:#?}"
    );
    assert!(records.iter().any(|r| r.agent.as_deref() == Some("1001")));
    assert_eq!(h.media.open_streams(), 0, "every stream closed");
}
