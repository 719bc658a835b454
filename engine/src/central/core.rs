//! The export's decisions, sans-IO: when to load the cursor, read a page of the feed, send
//! it, save the cursor, wait or back off. The driver (`super::run`) does the I/O and tells
//! the core how it went; time is an input (`now`), so the tests run in virtual time.
//!
//! The cursor only moves after the central database committed a page, and the saved cursor
//! is only a shortcut: a page sent but whose cursor was not saved (a failover in between)
//! is sent again by the next active node and upserted, never lost.

use std::time::{Duration, Instant};

/// The first pause after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failures in a row before the alarm is raised (a blip raises nothing).
pub const ALARM_AFTER: u32 = 3;

/// What the driver must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the replicated cursor (the feed number exported up to).
    LoadCursor,
    /// Read up to `limit` feed rows numbered above `after`.
    Read { after: u64, limit: u32 },
    /// Upsert the page just read into the central database.
    Send,
    /// Replicate the cursor `seq` (the page up to it is in the central database).
    SaveCursor(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting until the instant (to poll again, or after a failure).
    Wait(Instant),
    /// An action was handed out; its result is awaited.
    Busy,
    /// A page up to `last` (with `rows` rows) was read and is to be sent.
    Read { last: u64, rows: u32 },
    /// The page up to `last` is committed centrally; the cursor is to be saved.
    Sent { last: u64, full: bool },
}

#[derive(Debug)]
pub struct Exporter {
    batch: u32,
    poll: Duration,
    /// `None` until loaded (at each activation).
    cursor: Option<u64>,
    phase: Phase,
    /// The page handed out for sending, kept to move the cursor when it is sent.
    sending: Option<(u64, u32)>,
    /// Whether the page whose cursor is being saved was full.
    saving_full: bool,
    failures: u32,
    last_error: Option<String>,
}

impl Exporter {
    pub fn new(now: Instant, batch: u32, poll: Duration) -> Exporter {
        Exporter {
            batch: batch.max(1),
            poll,
            cursor: None,
            phase: Phase::Wait(now),
            sending: None,
            saving_full: false,
            failures: 0,
            last_error: None,
        }
    }

    /// The feed number exported up to, once loaded.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// The next action due at `now`, if any (else wait until `next_deadline`).
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        let action = match self.phase {
            Phase::Busy => return None,
            Phase::Wait(at) if now < at => return None,
            Phase::Wait(_) => match self.cursor {
                None => Action::LoadCursor,
                Some(after) => Action::Read {
                    after,
                    limit: self.batch,
                },
            },
            Phase::Read { last, rows } => {
                self.sending = Some((last, rows));
                Action::Send
            }
            Phase::Sent { last, full } => {
                self.saving_full = full;
                Action::SaveCursor(last)
            }
        };
        self.phase = Phase::Busy;
        Some(action)
    }

    /// When to call `poll_action` again, if not before an event.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Wait(at) => Some(at),
            _ => None,
        }
    }

    /// The replicated cursor was read (`None`: nothing exported yet by this pair).
    pub fn handle_cursor(&mut self, now: Instant, saved: Option<u64>) {
        self.cursor = Some(saved.unwrap_or(0));
        self.phase = Phase::Wait(now);
    }

    /// A page was read: its row count and its last row's feed number.
    pub fn handle_read(&mut self, now: Instant, rows: u32, last: Option<u64>) {
        self.phase = match last {
            Some(last) if rows > 0 => Phase::Read { last, rows },
            // Caught up: look again after the poll interval.
            _ => Phase::Wait(now + self.poll),
        };
    }

    /// The page handed out by `Action::Send` is committed centrally.
    pub fn handle_sent(&mut self, now: Instant) {
        let Some((last, rows)) = self.sending.take() else {
            self.phase = Phase::Wait(now);
            return;
        };
        self.cursor = Some(last);
        self.failures = 0;
        self.last_error = None;
        self.phase = Phase::Sent {
            last,
            full: rows >= self.batch,
        };
    }

    /// The cursor was saved (or could not be: the next active node then re-sends the page,
    /// which is harmless). A full page means more may be waiting: read at once.
    pub fn handle_saved(&mut self, now: Instant) {
        self.phase = if self.saving_full {
            Phase::Wait(now)
        } else {
            Phase::Wait(now + self.poll)
        };
    }

    /// The action handed out failed (cursor, feed, central database): back off, doubling.
    pub fn handle_failure(&mut self, now: Instant, error: String) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(error);
        self.sending = None;
        let pause = FIRST_BACKOFF
            .saturating_mul(1u32 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.phase = Phase::Wait(now + pause);
    }

    /// The alarm to show now: the last error, once `ALARM_AFTER` failures came in a row.
    pub fn alarm(&self) -> Option<&str> {
        (self.failures >= ALARM_AFTER)
            .then_some(self.last_error.as_deref())
            .flatten()
    }
}
