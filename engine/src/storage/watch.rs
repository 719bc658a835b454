//! Change notices for replicated documents: a task that serves data kept in a collection
//! (the live flow set) or a caller waiting for its own write to be applied hears when that
//! collection changes on this node, whoever applied it (the local writer, or the raft state
//! machine applying the leader's log). Only collections someone listens to are counted.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::sync::watch;

/// Listeners by collection. A std mutex: held only to look up or insert a sender, never
/// across an await, and the map changes only when a new collection gets its first listener.
#[derive(Debug, Default)]
pub(super) struct DocWatch(std::sync::Mutex<HashMap<String, watch::Sender<u64>>>);

impl DocWatch {
    pub(super) fn subscribe(&self, collection: &str) -> watch::Receiver<u64> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(collection.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// `collection` changed (after the transaction that changed it committed).
    pub(super) fn touched(&self, collection: &str) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(collection) {
            tx.send_modify(|generation| *generation += 1);
        }
    }

    /// Every collection may have changed (a snapshot was installed).
    pub(super) fn touched_all(&self) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for tx in map.values() {
            tx.send_modify(|generation| *generation += 1);
        }
    }
}

/// Changes of one or more collections, from the moment of the subscription.
#[derive(Debug)]
pub struct DocChanges {
    receivers: Vec<watch::Receiver<u64>>,
}

impl DocChanges {
    pub(super) fn new(receivers: Vec<watch::Receiver<u64>>) -> Self {
        DocChanges { receivers }
    }

    /// Waits for the next change of any of the collections; an error once the storage is
    /// gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        let mut waits: Vec<Pin<Box<_>>> = self
            .receivers
            .iter_mut()
            .map(|r| Box::pin(r.changed()))
            .collect();
        std::future::poll_fn(|cx| {
            for wait in waits.iter_mut() {
                if let Poll::Ready(r) = wait.as_mut().poll(cx) {
                    return Poll::Ready(r);
                }
            }
            Poll::Pending
        })
        .await
    }
}
