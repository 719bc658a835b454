//! Rate-limited notifications (sans-IO): each channel (mail, webhook) sends at most one
//! message per `min_interval`. The first change after a quiet period goes out at once;
//! changes arriving during the interval wait and go out together in the next message, so
//! nothing is lost and a flapping link cannot flood a mailbox. At most `MAX_PENDING` changes
//! wait; beyond that the oldest are dropped and the next message says how many.
//!
//! Also here: the text of a mail and the JSON of a webhook post for a batch of changes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::model::{Alarm, Change, State};

/// Changes kept waiting at most, per channel.
pub const MAX_PENDING: usize = 500;

/// Changes to send in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub changes: Vec<Change>,
    /// Changes dropped since the last message (the queue was full).
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Notifier {
    min_interval: Duration,
    last_sent: Option<Instant>,
    pending: VecDeque<Change>,
    dropped: u64,
}

impl Notifier {
    pub fn new(min_interval: Duration) -> Notifier {
        Notifier {
            min_interval,
            last_sent: None,
            pending: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, change: Change) {
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(change);
    }

    /// When changes that wait may go (None: nothing waits, or nothing was ever sent, in
    /// which case `poll` sends at once: the driver polls after every push).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        self.last_sent.map(|t| t + self.min_interval)
    }

    /// The message due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        if self.last_sent.is_some_and(|t| now < t + self.min_interval) {
            return None;
        }
        self.last_sent = Some(now);
        Some(Batch {
            changes: self.pending.drain(..).collect(),
            dropped: std::mem::take(&mut self.dropped),
        })
    }
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Raised => "RAISED",
        State::Cleared => "CLEARED",
    }
}

/// `[svi node-a] RAISED major: peer down (node 2)`, or a count for several changes.
pub fn mail_subject(node: &str, batch: &Batch) -> String {
    match batch.changes.as_slice() {
        [c] => match c.state {
            State::Raised => format!(
                "[svi {node}] RAISED {}: {} ({})",
                c.alarm.severity.as_str(),
                c.alarm.kind.title(),
                c.alarm.subject
            ),
            State::Cleared => format!(
                "[svi {node}] CLEARED: {} ({})",
                c.alarm.kind.title(),
                c.alarm.subject
            ),
        },
        many => {
            let raised = many.iter().filter(|c| c.state == State::Raised).count();
            format!(
                "[svi {node}] {} alarm changes: {raised} raised, {} cleared",
                many.len(),
                many.len() - raised
            )
        }
    }
}

fn line(c: &Change) -> String {
    let a = &c.alarm;
    let when = match c.state {
        State::Raised => format!("at {}", c.at.to_rfc3339()),
        State::Cleared => format!(
            "raised {}, cleared {}",
            a.raised_at.to_rfc3339(),
            c.at.to_rfc3339()
        ),
    };
    format!(
        "{:<8} {:<9} {:<19} {}: {} ({when})",
        state_word(c.state),
        a.severity.as_str(),
        a.kind.as_str(),
        a.subject,
        a.message
    )
}

/// The mail's body: the changes, then every alarm active now.
pub fn mail_body(node: &str, batch: &Batch, active: &[Alarm]) -> String {
    let mut out = format!("svi node {node}\n\n");
    for c in &batch.changes {
        out.push_str(&line(c));
        out.push('\n');
    }
    if batch.dropped > 0 {
        out.push_str(&format!(
            "\n{} earlier changes were not mailed (more than {MAX_PENDING} waiting): see the node's log.\n",
            batch.dropped
        ));
    }
    if active.is_empty() {
        out.push_str("\nNo alarm is active on this node now.\n");
    } else {
        out.push_str(&format!(
            "\nActive alarms on this node now ({}):\n",
            active.len()
        ));
        for a in active {
            out.push_str(&format!(
                "  {:<9} {:<19} {}: {} (since {})\n",
                a.severity.as_str(),
                a.kind.as_str(),
                a.subject,
                a.message,
                a.raised_at.to_rfc3339()
            ));
        }
    }
    out
}

/// The webhook's JSON for a batch.
pub fn webhook_body(node: &str, batch: &Batch, active: &[Alarm]) -> serde_json::Value {
    serde_json::json!({
        "node": node,
        "alarms": batch.changes,
        "dropped": batch.dropped,
        "active": active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::model::{AlarmKind, Severity};

    fn change(state: State, n: u32) -> Change {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        Change {
            state,
            at: t,
            alarm: Alarm {
                kind: AlarmKind::PeerDown,
                subject: format!("node {n}"),
                severity: Severity::Major,
                message: format!("member {n} has not answered for 5 s"),
                raised_at: t,
                source: "ha".into(),
            },
        }
    }

    #[test]
    fn the_first_change_goes_at_once_then_one_message_per_interval() {
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        let mut n = Notifier::new(every);
        assert_eq!(n.poll(t0), None);
        n.push(change(State::Raised, 2));
        let b = n.poll(t0).expect("first at once");
        assert_eq!(b.changes.len(), 1);
        // Three changes within the interval wait for its end, then go together.
        for i in 3..6 {
            n.push(change(State::Raised, i));
        }
        assert_eq!(n.poll(t0 + Duration::from_secs(59)), None);
        assert_eq!(n.next_deadline(), Some(t0 + every));
        let b = n.poll(t0 + every).expect("batch");
        assert_eq!(b.changes.len(), 3);
        assert_eq!(n.next_deadline(), None);
        // After a quiet period, at once again.
        n.push(change(State::Cleared, 2));
        assert!(n.poll(t0 + every * 3).is_some());
    }

    #[test]
    fn a_flood_is_bounded_and_counted() {
        let t0 = Instant::now();
        let mut n = Notifier::new(Duration::from_secs(60));
        n.push(change(State::Raised, 0));
        n.poll(t0);
        for i in 0..(MAX_PENDING as u32 + 7) {
            n.push(change(State::Raised, i));
        }
        let b = n.poll(t0 + Duration::from_secs(60)).expect("batch");
        assert_eq!((b.changes.len(), b.dropped), (MAX_PENDING, 7));
        assert_eq!(
            b.changes[0].alarm.subject, "node 7",
            "the oldest were dropped"
        );
        let body = mail_body("a", &b, &[]);
        assert!(body.contains("7 earlier changes were not mailed"), "{body}");
    }

    #[test]
    fn subjects_and_bodies_say_what_and_where() {
        let batch = |changes| Batch {
            changes,
            dropped: 0,
        };
        let one = batch(vec![change(State::Raised, 2)]);
        assert_eq!(
            mail_subject("node-a", &one),
            "[svi node-a] RAISED major: peer down (node 2)"
        );
        let cleared = batch(vec![change(State::Cleared, 2)]);
        assert_eq!(
            mail_subject("node-a", &cleared),
            "[svi node-a] CLEARED: peer down (node 2)"
        );
        let two = batch(vec![change(State::Raised, 2), change(State::Cleared, 3)]);
        assert_eq!(
            mail_subject("node-a", &two),
            "[svi node-a] 2 alarm changes: 1 raised, 1 cleared"
        );
        let body = mail_body("node-a", &one, &[one.changes[0].alarm.clone()]);
        assert!(
            body.contains(
                "RAISED   major     peer_down           node 2: member 2 has not answered for 5 s"
            ),
            "{body}"
        );
        assert!(
            body.contains("Active alarms on this node now (1)"),
            "{body}"
        );
        let json = webhook_body("node-a", &two, &[]);
        assert_eq!(json["alarms"][1]["state"], "cleared");
        assert_eq!(json["alarms"][0]["kind"], "peer_down");
        assert_eq!(json["alarms"][0]["subject"], "node 2");
    }
}
