//! The committer's acknowledgement rule, with a proposer the test answers by hand: a write is
//! acknowledged only once the batch that holds it is committed, and a failed batch fails every
//! write in it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

use super::group::{Group, MAX_BATCH};
use super::{commit_groups, Ticket};
use crate::error::HaError;
use crate::types::Command;

fn cmd(key: &str) -> Command {
    Command::Delete {
        collection: "c".into(),
        key: key.into(),
    }
}

/// A proposal the test holds: what was proposed, and how to answer it.
type Held = (Command, oneshot::Sender<Result<(), HaError>>);

struct Committer {
    group: Arc<Mutex<Group<Ticket>>>,
    wake: Arc<Notify>,
    proposals: mpsc::UnboundedReceiver<Held>,
    task: tokio::task::JoinHandle<()>,
}

impl Committer {
    fn start() -> Committer {
        let group = Arc::new(Mutex::new(Group::new(MAX_BATCH)));
        let wake = Arc::new(Notify::new());
        let (tx, proposals) = mpsc::unbounded_channel::<Held>();
        let propose = move |command: Command| {
            let tx = tx.clone();
            async move {
                let (answer, answered) = oneshot::channel();
                tx.send((command, answer))
                    .map_err(|_| HaError::Raft("test gone".into()))?;
                answered
                    .await
                    .map_err(|_| HaError::Raft("test gone".into()))?
            }
        };
        let task = tokio::spawn(commit_groups(propose, group.clone(), wake.clone()));
        Committer {
            group,
            wake,
            proposals,
            task,
        }
    }

    /// Queues a write as `ReplicatedWriter::propose` does; the receiver is its acknowledgement.
    fn write(&self, key: &str) -> oneshot::Receiver<Result<(), Arc<HaError>>> {
        let (tx, rx) = oneshot::channel();
        self.group.lock().expect("group").push(cmd(key), tx);
        self.wake.notify_one();
        rx
    }

    async fn next_proposal(&mut self) -> Held {
        tokio::time::timeout(Duration::from_secs(5), self.proposals.recv())
            .await
            .expect("a proposal within 5 s")
            .expect("committer running")
    }
}

fn unanswered(ack: &mut oneshot::Receiver<Result<(), Arc<HaError>>>) -> bool {
    matches!(ack.try_recv(), Err(oneshot::error::TryRecvError::Empty))
}

async fn answer(ack: oneshot::Receiver<Result<(), Arc<HaError>>>) -> Result<(), Arc<HaError>> {
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .expect("acknowledged within 5 s")
        .expect("committer answered")
}

#[tokio::test]
async fn a_write_is_acknowledged_only_when_its_batch_commits_and_a_failed_batch_fails_all() {
    let mut c = Committer::start();
    let mut first = c.write("a");
    let (proposed, commit_first) = c.next_proposal().await;
    assert_eq!(proposed, cmd("a"), "a lone write goes out as it is");

    // These arrive while the first proposal is in flight: they wait for the next one.
    let mut rest: Vec<_> = ["b", "c", "d"].into_iter().map(|k| c.write(k)).collect();
    assert!(unanswered(&mut first), "not acknowledged before its commit");
    assert!(rest.iter_mut().all(unanswered));

    commit_first.send(Ok(())).expect("committer waits");
    assert!(answer(first).await.is_ok(), "acknowledged at commit");

    let (proposed, fail_second) = c.next_proposal().await;
    assert_eq!(
        proposed,
        Command::Batch(vec![cmd("b"), cmd("c"), cmd("d")]),
        "the writes that waited together go out as one batch"
    );
    assert!(
        rest.iter_mut().all(unanswered),
        "a write of a batch in flight is not acknowledged"
    );
    fail_second
        .send(Err(HaError::Timeout(Duration::from_secs(2))))
        .expect("committer waits");
    for ack in rest {
        let outcome = answer(ack).await;
        assert!(
            matches!(
                outcome.as_ref().map_err(|e| e.as_ref()),
                Err(HaError::Timeout(_))
            ),
            "every write of a failed batch fails: {outcome:?}"
        );
    }
    c.task.abort();
}
