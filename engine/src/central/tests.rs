//! The export core in virtual time: the cursor, paging and backoff, step by step.

use std::time::{Duration, Instant};

use super::core::{Action, Exporter, ALARM_AFTER, FIRST_BACKOFF, MAX_BACKOFF};

const POLL: Duration = Duration::from_secs(1);

/// A feed of numbered rows and a central table, driven through the core like the driver.
struct Sim {
    now: Instant,
    core: Exporter,
    feed: Vec<u64>,
    /// The rows in the central table, with how many times each was sent.
    central: std::collections::BTreeMap<u64, u32>,
    saved: Option<u64>,
    central_up: bool,
    page: Vec<u64>,
}

impl Sim {
    fn new(batch: u32, feed: Vec<u64>) -> Sim {
        let now = Instant::now();
        Sim {
            now,
            core: Exporter::new(now, batch, POLL),
            feed,
            central: Default::default(),
            saved: None,
            central_up: true,
            page: Vec::new(),
        }
    }

    /// Runs every action due now; returns them.
    fn run_due(&mut self) -> Vec<Action> {
        let mut done = Vec::new();
        while let Some(a) = self.core.poll_action(self.now) {
            done.push(a);
            match a {
                Action::LoadCursor => self.core.handle_cursor(self.now, self.saved),
                Action::Read { after, limit } => self.read(after, limit),
                Action::Send if self.central_up => {
                    for s in self.page.drain(..) {
                        *self.central.entry(s).or_default() += 1;
                    }
                    self.core.handle_sent(self.now);
                }
                Action::Send => self
                    .core
                    .handle_failure(self.now, "connection refused".into()),
                Action::SaveCursor(seq) => {
                    self.saved = Some(seq);
                    self.core.handle_saved(self.now);
                }
            }
        }
        done
    }

    /// Reads the page of the feed after `after` and hands it to the core.
    fn read(&mut self, after: u64, limit: u32) {
        self.page = self
            .feed
            .iter()
            .copied()
            .filter(|s| *s > after)
            .take(limit as usize)
            .collect();
        let last = self.page.last().copied();
        self.core
            .handle_read(self.now, self.page.len() as u32, last);
    }

    /// Jumps to the core's next deadline and runs what is due.
    fn next(&mut self) -> Vec<Action> {
        let at = self.core.next_deadline().expect("a deadline");
        self.now = self.now.max(at);
        self.run_due()
    }
}

#[test]
fn pages_of_the_batch_size_then_a_poll_once_caught_up() {
    let mut sim = Sim::new(2, vec![1, 2, 3, 5, 8]);
    let first = sim.run_due();
    // Full pages are followed at once by the next read; the last, short page ends the run.
    assert_eq!(
        first,
        [
            Action::LoadCursor,
            Action::Read { after: 0, limit: 2 },
            Action::Send,
            Action::SaveCursor(2),
            Action::Read { after: 2, limit: 2 },
            Action::Send,
            Action::SaveCursor(5),
            Action::Read { after: 5, limit: 2 },
            Action::Send,
            Action::SaveCursor(8),
        ]
    );
    assert_eq!(sim.core.next_deadline(), Some(sim.now + POLL));
    // Nothing new: one read per poll interval, nothing sent.
    let t0 = sim.now;
    assert_eq!(sim.next(), [Action::Read { after: 8, limit: 2 }]);
    assert_eq!(sim.now, t0 + POLL);
    sim.feed.push(9);
    assert_eq!(
        sim.next()[..2],
        [Action::Read { after: 8, limit: 2 }, Action::Send]
    );
    assert!(sim.central.values().all(|n| *n == 1), "{:?}", sim.central);
    assert_eq!(sim.central.len(), 6);
}

#[test]
fn a_central_outage_backs_off_doubling_raises_the_alarm_and_catches_up() {
    let mut sim = Sim::new(10, vec![1, 2, 3]);
    sim.central_up = false;
    let start = sim.now;
    sim.run_due();
    assert_eq!(sim.core.alarm(), None, "one failure is a blip");
    let mut pauses = Vec::new();
    let mut at = sim.now;
    for _ in 0..8 {
        sim.next();
        pauses.push(sim.now - at);
        at = sim.now;
    }
    assert_eq!(pauses[0], FIRST_BACKOFF);
    assert_eq!(pauses[1], FIRST_BACKOFF * 2);
    assert_eq!(pauses[2], FIRST_BACKOFF * 4);
    assert_eq!(*pauses.last().expect("last"), MAX_BACKOFF);
    assert!(sim.core.alarm().is_some_and(|a| a.contains("refused")));
    assert!(sim.central.is_empty());
    assert_eq!(sim.saved, None, "no cursor moves while nothing is sent");
    // Back: the next retry sends everything once and clears the alarm.
    sim.central_up = true;
    sim.feed.push(4);
    sim.next();
    assert_eq!(sim.core.alarm(), None);
    assert_eq!(sim.saved, Some(4));
    assert_eq!(sim.central.len(), 4);
    assert!(sim.central.values().all(|n| *n == 1));
    assert!(sim.now - start > MAX_BACKOFF);
}

#[test]
fn the_alarm_comes_after_failures_in_a_row_only() {
    let mut sim = Sim::new(10, vec![1]);
    sim.central_up = false;
    sim.run_due();
    for _ in 1..ALARM_AFTER - 1 {
        sim.next();
    }
    assert_eq!(sim.core.alarm(), None);
    sim.next();
    assert!(sim.core.alarm().is_some());
}

#[test]
fn a_new_active_node_continues_from_the_replicated_cursor() {
    // The old active node sent a page and saved its cursor, then sent the next page but
    // died before the cursor was saved.
    let mut old = Sim::new(2, vec![1, 2, 3, 4, 5]);
    assert_eq!(old.core.poll_action(old.now), Some(Action::LoadCursor));
    old.core.handle_cursor(old.now, None);
    for _ in 0..3 {
        let a = old.core.poll_action(old.now).expect("action");
        match a {
            Action::Read { after, limit } => old.read(after, limit),
            Action::Send => {
                for s in old.page.drain(..) {
                    *old.central.entry(s).or_default() += 1;
                }
                old.core.handle_sent(old.now);
            }
            Action::SaveCursor(seq) => {
                old.saved = Some(seq);
                old.core.handle_saved(old.now);
            }
            Action::LoadCursor => unreachable!("loaded"),
        }
    }
    assert_eq!(old.saved, Some(2));
    // Page 3..4 is sent; the node dies before saving cursor 4.
    assert_eq!(
        old.core.poll_action(old.now),
        Some(Action::Read { after: 2, limit: 2 })
    );
    old.page = vec![3, 4];
    old.core.handle_read(old.now, 2, Some(4));
    assert_eq!(old.core.poll_action(old.now), Some(Action::Send));
    for s in old.page.drain(..) {
        *old.central.entry(s).or_default() += 1;
    }
    // The new active node: same feed (the replicated state), same central table.
    let mut new = Sim::new(2, old.feed.clone());
    new.saved = old.saved;
    new.central = old.central.clone();
    new.run_due();
    assert_eq!(new.saved, Some(5));
    // Every row is there; only the page whose cursor was lost went twice (an upsert).
    assert_eq!(
        new.central.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(new.central[&1], 1);
    assert_eq!(new.central[&3], 2);
    assert_eq!(new.central[&5], 1);
}

#[test]
fn a_failed_read_is_retried_from_the_same_cursor() {
    let mut sim = Sim::new(10, vec![1, 2]);
    assert_eq!(sim.core.poll_action(sim.now), Some(Action::LoadCursor));
    sim.core.handle_cursor(sim.now, Some(1));
    assert_eq!(
        sim.core.poll_action(sim.now),
        Some(Action::Read {
            after: 1,
            limit: 10
        })
    );
    sim.core
        .handle_failure(sim.now, "database is locked".into());
    assert_eq!(sim.core.poll_action(sim.now), None, "backing off");
    sim.next();
    assert_eq!(sim.saved, Some(2));
    assert_eq!(sim.central.keys().copied().collect::<Vec<_>>(), [2]);
}
