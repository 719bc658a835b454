//! No double service: while this node is not active, it reads the replica of each call it
//! still runs whenever the replicated calls change (the log applied here from the active
//! node). A call whose replica names another node, or is gone, was adopted there (and may
//! have ended there): this node lets it go without a word to the caller
//! (`Replica::moved`). A node that is active owns what it runs, and never looks.

use std::collections::BTreeSet;

use tokio::sync::watch;

use super::{moved_away, COLLECTION};
use crate::call::live::LiveCalls;
use crate::replication::Serving;
use crate::storage::Storage;

/// The calls this node runs whose replica names another node or is gone, while it is not
/// active (empty while it is).
pub(super) async fn run(
    storage: Storage,
    serving: Serving,
    live: LiveCalls,
    node: String,
    out: watch::Sender<BTreeSet<String>>,
) {
    let mut changes = storage.watch_docs(&[COLLECTION]);
    let mut active = serving.active.clone();
    loop {
        let mut found = BTreeSet::new();
        if !serving.now() {
            for view in live.views() {
                let doc = match storage.get_doc(COLLECTION, &view.id).await {
                    Ok(doc) => doc,
                    Err(e) => {
                        tracing::warn!(call = %view.id, error = %e, "call replica unreadable");
                        continue;
                    }
                };
                if doc.is_none() || moved_away(doc.as_deref(), &node) {
                    found.insert(view.id);
                }
            }
        }
        out.send_if_modified(|moved| {
            let changed = *moved != found;
            *moved = found;
            changed
        });
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            r = active.changed() => if r.is_err() { return },
        }
    }
}
