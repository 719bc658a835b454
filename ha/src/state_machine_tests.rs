//! The state machine on its own: atomic apply, restart, snapshot recovery, and a rough
//! measurement of snapshot build/install.

use std::path::Path;
use std::time::Instant;

use engine::storage::Storage;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};

use super::StateMachine;
use crate::tests::call;
use crate::types::{Command, Entry, LogId, Outcome};

fn entry(index: u64, payload: EntryPayload<crate::types::TypeConfig>) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload,
    }
}

async fn open(dir: &Path) -> StateMachine {
    let storage = Storage::open(dir).await.expect("storage");
    StateMachine::open(storage, dir)
        .await
        .expect("state machine")
}

#[tokio::test]
async fn apply_moves_last_applied_with_the_data_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path()).await;
    let put = Command::Put {
        collection: "agents".into(),
        key: "a1".into(),
        value: serde_json::json!({"state": "ready"}),
    };
    let replies = sm
        .apply(vec![
            entry(1, EntryPayload::Blank),
            entry(
                2,
                EntryPayload::Normal(Command::InsertCall(Box::new(call(1)))),
            ),
            entry(3, EntryPayload::Normal(put)),
        ])
        .await
        .expect("apply");
    assert_eq!(
        replies.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    drop(sm);

    let mut sm = open(dir.path()).await;
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(applied.map(|l| l.index), Some(3));
    assert_eq!(sm.storage.latest_calls(10).await.expect("calls").len(), 1);
    let doc = sm.storage.get_doc("agents", "a1").await.expect("doc");
    assert_eq!(doc.as_deref(), Some(r#"{"state":"ready"}"#));
}

/// A batch entry (the writer's group commit) applies each of its writes, in order, with the
/// entry's one response; a delete in it sees the put before it.
#[tokio::test]
async fn a_batch_entry_applies_every_write_it_holds_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path()).await;
    let put = |v: &str| Command::Put {
        collection: "agents".into(),
        key: "a1".into(),
        value: serde_json::json!({ "state": v }),
    };
    let batch = Command::Batch(vec![
        Command::InsertCall(Box::new(call(1))),
        put("ready"),
        Command::InsertCall(Box::new(call(2))),
        Command::Batch(vec![put("busy"), Command::InsertCall(Box::new(call(3)))]),
    ]);
    let replies = sm
        .apply(vec![
            entry(1, EntryPayload::Normal(batch)),
            entry(
                2,
                EntryPayload::Normal(Command::Batch(vec![
                    Command::Delete {
                        collection: "agents".into(),
                        key: "a1".into(),
                    },
                    put("away"),
                ])),
            ),
            entry(3, EntryPayload::Blank),
        ])
        .await
        .expect("apply");
    assert_eq!(
        replies
            .iter()
            .map(|r| (r.index, r.outcome))
            .collect::<Vec<_>>(),
        vec![
            (1, Outcome::Applied),
            (2, Outcome::Applied),
            (3, Outcome::Internal)
        ]
    );
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(applied.map(|l| l.index), Some(3));
    assert_eq!(sm.storage.latest_calls(10).await.expect("calls").len(), 3);
    let doc = sm.storage.get_doc("agents", "a1").await.expect("doc");
    assert_eq!(doc.as_deref(), Some(r#"{"state":"away"}"#));
}

#[tokio::test]
async fn a_database_behind_its_snapshot_is_restored_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path()).await;
    let entries = (1..=5)
        .map(|i| {
            entry(
                i,
                EntryPayload::Normal(Command::InsertCall(Box::new(call(i as usize)))),
            )
        })
        .collect::<Vec<_>>();
    sm.apply(entries).await.expect("apply");
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot");
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(5));
    drop(sm);

    // The engine database is lost (or went back in time after an OS crash); the snapshot
    // directory survives.
    for f in ["svi.db", "svi.db-wal", "svi.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let mut sm = open(dir.path()).await;
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(applied.map(|l| l.index), Some(5));
    assert_eq!(sm.storage.latest_calls(10).await.expect("calls").len(), 5);
}

/// `cargo test -p svi-ha measure_snapshot -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn measure_snapshot() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path()).await;
    let t = Instant::now();
    for chunk in (1..=N).collect::<Vec<_>>().chunks(500) {
        let entries = chunk
            .iter()
            .map(|i| {
                entry(
                    *i as u64,
                    EntryPayload::Normal(Command::InsertCall(Box::new(call(*i)))),
                )
            })
            .collect::<Vec<_>>();
        sm.apply(entries).await.expect("apply");
    }
    println!(
        "apply {N} call records in batches of 500: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot");
    let size = std::fs::metadata(snap.snapshot.path()).expect("size").len();
    println!(
        "build (VACUUM INTO): {:?}, {} KiB",
        t.elapsed(),
        size / 1024
    );

    let other = tempfile::tempdir().expect("tempdir");
    let mut follower = open(other.path()).await;
    let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
    let mut src = tokio::fs::File::open(snap.snapshot.path())
        .await
        .expect("src");
    tokio::io::copy(&mut src, &mut *receiving)
        .await
        .expect("copy");
    let t = Instant::now();
    follower
        .install_snapshot(&snap.meta, receiving)
        .await
        .expect("install");
    println!(
        "install (ATTACH + copy in one transaction): {:?}",
        t.elapsed()
    );
    assert_eq!(
        follower.storage.latest_calls(1).await.expect("calls").len(),
        1
    );
}
