//! Flow versions on a real database: install, activate, roll back, refuse; the live set
//! following the active versions and the flows directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ivr_scripts::CheckContext;

use super::*;
use crate::replication::Replication;
use crate::storage::Storage;

fn ctx() -> CheckContext {
    CheckContext::builder("en")
        .prompts("en", ["welcome", "goodbye"])
        .build()
}

/// A flow named `name` that plays `prompt` then hangs up.
fn flow(name: &str, prompt: &str) -> String {
    format!("flow: {name}\nstart: hello\nsteps:\n  hello:\n    play: {prompt}\n    next: end\n  end:\n    hangup:\n")
}

async fn store(dir: &Path) -> (Storage, FlowStore) {
    let storage = Storage::open(dir).await.expect("database opens");
    let replication = Replication::local(storage.clone());
    let store = FlowStore::new(
        storage.clone(),
        replication.writer.clone(),
        replication.serving(),
    );
    (storage, store)
}

#[tokio::test]
async fn install_activate_and_roll_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, store) = store(dir.path()).await;
    let file = Path::new("demo.yaml");
    let v1 = store
        .install(&flow("demo", "welcome"), file, &ctx(), true)
        .await
        .expect("first version installs");
    assert!(v1.new && v1.active);
    let v2 = store
        .install(&flow("demo", "goodbye"), file, &ctx(), true)
        .await
        .expect("second version installs");
    assert_ne!(v1.version, v2.version);
    assert_eq!(
        store
            .active_of("demo")
            .await
            .expect("read")
            .map(|a| a.version),
        Some(v2.version.clone())
    );
    // The same source again is the same version, not a third one.
    let again = store
        .install(&flow("demo", "goodbye"), file, &ctx(), false)
        .await
        .expect("reinstall");
    assert!(!again.new && again.active);
    assert_eq!(store.versions(Some("demo")).await.expect("list").len(), 2);

    let back = store.rollback("demo").await.expect("rollback");
    assert_eq!(back.version, v1.version);
    assert!(matches!(
        store.rollback("demo").await,
        Err(FlowStoreError::NoPrevious(_))
    ));
    let forward = store.activate("demo", &v2.version).await.expect("activate");
    assert_eq!(forward.previous, vec![v1.version.clone()]);
    assert!(matches!(
        store.activate("demo", "000000000000").await,
        Err(FlowStoreError::UnknownVersion { .. })
    ));
    assert!(matches!(
        store.activate("nope", &v1.version).await,
        Err(FlowStoreError::UnknownFlow(_))
    ));
}

#[tokio::test]
async fn an_invalid_flow_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, store) = store(dir.path()).await;
    let err = store
        .install(
            &flow("demo", "no_such_prompt"),
            Path::new("demo.yaml"),
            &ctx(),
            true,
        )
        .await
        .expect_err("a missing prompt is refused");
    let FlowStoreError::Invalid { diagnostics, .. } = err else {
        panic!("not an invalid-flow error: {err}");
    };
    assert_eq!((diagnostics[0].line, diagnostics[0].column), (5, 11));
    assert!(store.versions(None).await.expect("list").is_empty());
}

#[tokio::test]
async fn a_node_that_does_not_serve_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path()).await.expect("database opens");
    let mut replication = Replication::local(storage.clone());
    let (standby, active) = tokio::sync::watch::channel(false);
    replication.active = active;
    let store = FlowStore::new(storage, replication.writer.clone(), replication.serving());
    assert!(matches!(
        store
            .install(&flow("demo", "welcome"), Path::new("d.yaml"), &ctx(), true)
            .await,
        Err(FlowStoreError::NotActive)
    ));
    drop(standby);
}

/// Waits (in virtual time) until the live set runs `version` of `name`.
async fn until_live(
    set: &mut tokio::sync::watch::Receiver<Arc<FlowSet>>,
    name: &str,
    version: &str,
) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if set
                .borrow_and_update()
                .get(name)
                .is_some_and(|f| f.version == version)
            {
                return;
            }
            set.changed().await.expect("sync task alive");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} {version} never became live"));
}

#[tokio::test]
async fn the_live_set_follows_the_directory_and_the_active_versions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flows_dir = dir.path().join("flows");
    std::fs::create_dir_all(&flows_dir).expect("flows dir");
    let file = flows_dir.join("demo.yaml");
    std::fs::write(&file, flow("demo", "welcome")).expect("write v1");
    let v1 = version_of(&flow("demo", "welcome"));
    let (storage, store) = store(&dir.path().join("data")).await;
    let mut changes = storage.watch_docs(&[super::store::ACTIVE]);
    let (sync, task) = start(
        flows_dir.clone(),
        ctx(),
        &storage,
        store,
        Duration::from_millis(50),
    )
    .await
    .expect("starts");
    let mut set = sync.set();
    // Live at once from the file, then installed and active in the database.
    assert_eq!(
        set.borrow().get("demo").map(|f| f.version.clone()),
        Some(v1.clone())
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while sync.active().await.expect("read").is_empty() {
            changes.changed().await.expect("storage alive");
        }
    })
    .await
    .expect("the file is installed");

    // An edited file becomes the live version.
    std::fs::write(&file, flow("demo", "goodbye")).expect("write v2");
    let v2 = version_of(&flow("demo", "goodbye"));
    until_live(&mut set, "demo", &v2).await;

    // A rollback by an operator is live at once, and the unchanged file does not undo it.
    sync.rollback("demo").await.expect("rollback");
    until_live(&mut set, "demo", &v1).await;

    // A broken edit is refused; the live version stays.
    std::fs::write(&file, "flow: demo\nstart: x\n").expect("write broken");
    sync.install("flow: demo\nstart: x\n", &file, true)
        .await
        .expect_err("broken source refused");
    assert_eq!(
        set.borrow().get("demo").map(|f| f.version.clone()),
        Some(v1)
    );
    task.abort();
}
