//! Group commit: the writes that arrive while a proposal is in flight go out together in the
//! next one, as one log entry (`Command::Batch`).
//!
//! openraft 0.9's core appends one client write at a time and waits for each append to be
//! flushed (and for the committed pointer to be saved) before it takes the next one, so a
//! proposal per write caps the write rate at one or two fsyncs per write. With one proposal
//! in flight and everything that waited meanwhile in the next, the fsyncs are shared by every
//! write of a batch; a write alone is proposed as it is (its own kind, so a lightly loaded
//! pair writes the same log entries as before). Acknowledgement does not change: a write's
//! future resolves once the batch that holds it is committed.
//!
//! Sans-IO: `Group` only queues and cuts batches; the writer's committer task proposes them.

use crate::types::Command;

/// The most writes in one batch. A call record is a few KiB of JSON; with at most
/// `MAX_PAYLOAD_ENTRIES` entries per AppendEntries (`HaConfig::raft_config`), one request to
/// a follower stays far below the cluster link's 32 MiB frame limit.
pub(crate) const MAX_BATCH: usize = 256;

/// Log entries per AppendEntries request (openraft's default is 300, sized for single
/// writes; a batch entry holds up to `MAX_BATCH`).
pub(crate) const MAX_PAYLOAD_ENTRIES: u64 = 8;

/// One log entry's command for these writes: a lone write as it is, several as a batch.
pub(crate) fn combine(mut commands: Vec<Command>) -> Command {
    if commands.len() == 1 {
        if let Some(only) = commands.pop() {
            return only;
        }
    }
    Command::Batch(commands)
}

/// The writes waiting for the next proposal, each with what tells its writer the outcome.
pub(crate) struct Group<T> {
    waiting: Vec<(Command, T)>,
    max: usize,
}

impl<T> Group<T> {
    pub(crate) fn new(max: usize) -> Group<T> {
        Group {
            waiting: Vec::new(),
            max: max.max(1),
        }
    }

    /// Queues a write for the next proposal.
    pub(crate) fn push(&mut self, command: Command, ticket: T) {
        self.waiting.push((command, ticket));
    }

    /// The next proposal, oldest writes first (at most `max` of them), and the tickets of
    /// the writes it holds; `None` when nothing waits.
    pub(crate) fn next_batch(&mut self) -> Option<(Command, Vec<T>)> {
        if self.waiting.is_empty() {
            return None;
        }
        let take = self.waiting.len().min(self.max);
        let (commands, tickets): (Vec<Command>, Vec<T>) = self.waiting.drain(..take).unzip();
        Some((combine(commands), tickets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any command will do: the group never looks inside.
    fn cmd(key: &str) -> Command {
        Command::Delete {
            collection: "c".into(),
            key: key.into(),
        }
    }

    #[test]
    fn a_lone_write_is_proposed_as_it_is() {
        let mut g = Group::new(MAX_BATCH);
        g.push(cmd("a"), 1);
        let (command, tickets) = g.next_batch().expect("one write waits");
        assert_eq!(command, cmd("a"));
        assert_eq!(tickets, vec![1]);
        assert!(g.next_batch().is_none());
    }

    #[test]
    fn writes_that_waited_together_go_out_as_one_batch_in_order() {
        let mut g = Group::new(MAX_BATCH);
        g.push(cmd("a"), 1);
        let first = g.next_batch().expect("first");
        assert_eq!(first.0, cmd("a"));
        // Arrive while the first proposal is in flight.
        g.push(cmd("b"), 2);
        g.push(cmd("c"), 3);
        g.push(cmd("d"), 4);
        let (command, tickets) = g.next_batch().expect("second");
        assert_eq!(command, Command::Batch(vec![cmd("b"), cmd("c"), cmd("d")]));
        assert_eq!(tickets, vec![2, 3, 4]);
        assert!(g.next_batch().is_none());
    }

    #[test]
    fn a_batch_holds_at_most_max_writes_and_the_rest_follow() {
        let mut g = Group::new(2);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            g.push(cmd(k), i);
        }
        let (command, tickets) = g.next_batch().expect("first");
        assert_eq!(command, Command::Batch(vec![cmd("a"), cmd("b")]));
        assert_eq!(tickets, vec![0, 1]);
        let (command, tickets) = g.next_batch().expect("rest");
        assert_eq!(command, cmd("c"));
        assert_eq!(tickets, vec![2]);
        assert!(g.next_batch().is_none());
    }
}
