//! The alarm call-out's decisions as a sans-IO state machine (STYLE rule 1): the driver
//! feeds it what the poll of the access-control system found and how each call ended, with
//! the current time, and performs what [`Callout::poll_action`] asks (poll, call a number,
//! write an audit entry) and sleeps until [`Callout::poll_timeout`].
//!
//! ```text
//! Idle ──(poll: an open alarm not handled yet)──> Calling(number 1)
//!   ^                                               │ (the call ended)
//!   │                                               v
//!   ├──(the alarm is no longer open: acknowledged)── Checking ──(still open)──> Calling(next)
//!   │                                               │ (last number of the round)
//!   │                                               v
//!   └──(last round: given up)─────────────────── Pausing ──(retry_after)──> Calling(number 1)
//! ```
//!
//! An alarm is acknowledged when the poll no longer returns it as the oldest open alarm:
//! the flow of the call sends the acknowledgement to the access-control system itself.
//! A poll that fails while an alarm is being handled counts as "still open" (calling one
//! person too many is better than none). Each alarm is handled once; one that nobody
//! acknowledged after every round is given up, and later alarms wait until it is closed on
//! the access-control system (the poll returns the oldest open alarm).
//!
//! Handled alarms are remembered durably: the machine asks for [`Action::Remember`], and
//! the driver tells it with [`Callout::handle_known`] of an alarm the store knows (handled
//! before a restart, or by the other node of the pair), so it is not called out again.
//! A push from the access-control system ([`Callout::handle_push`]) makes the next poll
//! come at once instead of after `poll_every`; what is called out is still what the poll
//! finds (the push only wakes the machine).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::audit::Outcome;

/// Pushes bring a poll no closer than this after the previous one: a flood of pushes
/// costs the access-control system one request a second.
pub const PUSH_GAP: Duration = Duration::from_secs(1);

/// What the machine needs of `[alarm_callout]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How many on-duty numbers there are (called by index, in order).
    pub numbers: usize,
    pub rounds: u32,
    pub retry_after: Duration,
    pub poll_every: Duration,
}

/// An alarm as the poll found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub id: String,
    /// Where (for the audit log): the door.
    pub door: Option<String>,
}

/// How a call the machine asked for went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered (the flow ran; whether it acknowledged, the next poll tells).
    Answered,
    /// Not answered in time, busy, declined.
    NotAnswered(String),
    /// Not placed at all (no trunk, standby node...) or failed.
    Failed(String),
}

/// What the driver does for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Look up the oldest open alarm; answer with [`Callout::handle_poll`].
    Poll,
    /// Call on-duty number `number` (an index) for `alarm`; answer with
    /// [`Callout::handle_call`] once the call is over.
    Call { alarm: String, number: usize },
    /// Append to the audit log.
    Audit(Audit),
    /// Store durably that `alarm` is handled (never called out again, even after a restart
    /// or by the other node).
    Remember { alarm: String, how: Handled },
}

/// Why an alarm is never called out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Acknowledged,
    /// Nobody acknowledged it after every round.
    GivenUp,
}

/// An audit entry to write: `alarm.<what>` on `alarm:<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// `callout`, `call`, `acknowledged`, `unacknowledged`.
    pub what: &'static str,
    pub alarm: String,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle { next_poll: Instant },
    Polling,
    Calling(Campaign),
    Checking(Campaign),
    Pausing { campaign: Campaign, until: Instant },
}

/// An alarm being called out, and where in the list the calls are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Campaign {
    alarm: Alarm,
    round: u32,
    number: usize,
}

#[derive(Debug)]
pub struct Callout {
    plan: Plan,
    state: State,
    /// Alarms acknowledged or given up: never called out again.
    handled: BTreeSet<String>,
    /// A push came while busy: poll as soon as the machine is idle again.
    pushed: bool,
    /// When the last poll was asked for (pushes bring the next one no closer than
    /// [`PUSH_GAP`] after it).
    last_poll: Option<Instant>,
    out: VecDeque<Action>,
}

impl Callout {
    /// The first poll is due at `now`.
    pub fn new(now: Instant, plan: Plan) -> Callout {
        Callout {
            plan,
            state: State::Idle { next_poll: now },
            handled: BTreeSet::new(),
            pushed: false,
            last_poll: None,
            out: VecDeque::new(),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Callout::handle_timeout`] is due (None: waiting for a poll or a call).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Idle { next_poll } => Some(*next_poll),
            State::Pausing { until, .. } => Some(*until),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Polling) {
            State::Idle { next_poll } if next_poll <= now => {
                self.last_poll = Some(now);
                self.out.push_back(Action::Poll)
            }
            State::Pausing { campaign, until } if until <= now => self.call(campaign),
            other => self.state = other,
        }
    }

    /// What the poll found: the oldest open alarm, none, or why the poll failed.
    pub fn handle_poll(&mut self, now: Instant, found: Result<Option<Alarm>, String>) {
        match std::mem::replace(&mut self.state, State::Polling) {
            State::Polling => self.polled(now, found),
            State::Checking(campaign) => self.checked(now, campaign, found),
            other => self.state = other,
        }
    }

    /// The poll was not made: this node is not the active one. A standby leaves alarms to
    /// the active node; an alarm being handled is not taken as acknowledged.
    pub fn handle_standby(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Polling) {
            State::Polling => self.idle(now),
            State::Checking(campaign) => {
                self.checked(now, campaign, Err("this node is not active".into()))
            }
            other => self.state = other,
        }
    }

    /// The store says `alarm` was handled already (before a restart, or by the other node).
    pub fn handle_known(&mut self, alarm: &str) {
        self.handled.insert(alarm.to_string());
    }

    /// Whether `alarm` is known handled (the driver asks the store only about the others).
    pub fn knows(&self, alarm: &str) -> bool {
        self.handled.contains(alarm)
    }

    /// The access-control system pushed an alarm: poll now (at most one poll per
    /// [`PUSH_GAP`] however many pushes come), or as soon as the alarm being called out is
    /// done with.
    pub fn handle_push(&mut self, now: Instant) {
        let soonest = self.last_poll.map_or(now, |t| now.max(t + PUSH_GAP));
        match &mut self.state {
            State::Idle { next_poll } => *next_poll = soonest.min(*next_poll),
            _ => self.pushed = true,
        }
    }

    /// The call asked for is over.
    pub fn handle_call(&mut self, _now: Instant, outcome: CallOutcome) {
        let campaign = match std::mem::replace(&mut self.state, State::Polling) {
            State::Calling(campaign) => campaign,
            other => return self.state = other,
        };
        let (outcome, detail) = match outcome {
            CallOutcome::Answered => (Outcome::Done, None),
            CallOutcome::NotAnswered(why) | CallOutcome::Failed(why) => {
                (Outcome::Failed, Some(why))
            }
        };
        let detail = Some(match detail {
            Some(why) => format!("{}: {why}", campaign.position(&self.plan)),
            None => format!("{}: answered", campaign.position(&self.plan)),
        });
        self.audit("call", &campaign.alarm.id, outcome, detail);
        // Whether someone acknowledged: the next poll says.
        self.state = State::Checking(campaign);
        self.out.push_back(Action::Poll);
    }

    fn polled(&mut self, now: Instant, found: Result<Option<Alarm>, String>) {
        match found {
            Ok(Some(alarm)) if !self.handled.contains(&alarm.id) => {
                let detail = alarm.door.as_ref().map(|d| format!("door {d}"));
                self.audit("callout", &alarm.id, Outcome::Requested, detail);
                self.call(Campaign {
                    alarm,
                    round: 1,
                    number: 0,
                });
            }
            Ok(_) => self.idle(now),
            Err(why) => {
                tracing::warn!(error = %why, "alarm call-out: the access-control poll failed");
                self.idle(now);
            }
        }
    }

    fn checked(&mut self, now: Instant, campaign: Campaign, found: Result<Option<Alarm>, String>) {
        let id = campaign.alarm.id.clone();
        match found {
            Ok(Some(open)) if open.id == id => {}
            Ok(_) => {
                // Stored first: the audit entry (and its log line) says it is done.
                self.remember(id.clone(), Handled::Acknowledged);
                self.audit("acknowledged", &id, Outcome::Done, None);
                // Another alarm may be open already: poll at once.
                self.pushed = false;
                return self.state = State::Idle { next_poll: now };
            }
            Err(why) => {
                tracing::warn!(error = %why, "alarm call-out: cannot tell whether the alarm was acknowledged; calling on");
            }
        }
        let mut next = campaign;
        next.number += 1;
        if next.number < self.plan.numbers {
            return self.call(next);
        }
        if next.round >= self.plan.rounds {
            let detail = Some(format!("nobody acknowledged after {} round(s)", next.round));
            self.remember(id.clone(), Handled::GivenUp);
            self.audit("unacknowledged", &id, Outcome::Failed, detail);
            return self.idle(now);
        }
        next.round += 1;
        next.number = 0;
        self.state = State::Pausing {
            campaign: next,
            until: now + self.plan.retry_after,
        };
    }

    fn call(&mut self, campaign: Campaign) {
        self.out.push_back(Action::Call {
            alarm: campaign.alarm.id.clone(),
            number: campaign.number,
        });
        self.state = State::Calling(campaign);
    }

    fn idle(&mut self, now: Instant) {
        let next_poll = if std::mem::take(&mut self.pushed) {
            now
        } else {
            now + self.plan.poll_every
        };
        self.state = State::Idle { next_poll };
    }

    fn remember(&mut self, alarm: String, how: Handled) {
        self.handled.insert(alarm.clone());
        self.out.push_back(Action::Remember { alarm, how });
    }

    fn audit(&mut self, what: &'static str, alarm: &str, outcome: Outcome, detail: Option<String>) {
        self.out.push_back(Action::Audit(Audit {
            what,
            alarm: alarm.to_string(),
            outcome,
            detail,
        }));
    }
}

impl Campaign {
    fn position(&self, plan: &Plan) -> String {
        format!(
            "number {} of {}, round {}",
            self.number + 1,
            plan.numbers,
            self.round
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(10);
    const RETRY: Duration = Duration::from_secs(60);

    fn machine(numbers: usize, rounds: u32) -> (Callout, Instant) {
        let t0 = Instant::now();
        let plan = Plan {
            numbers,
            rounds,
            retry_after: RETRY,
            poll_every: POLL,
        };
        (Callout::new(t0, plan), t0)
    }

    fn alarm(id: &str) -> Option<Alarm> {
        Some(Alarm {
            id: id.into(),
            door: Some("12".into()),
        })
    }

    fn actions(m: &mut Callout) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    /// The poll falls due at `t` and answers `found`; what the poll itself asked is dropped.
    fn poll_at(m: &mut Callout, t: Instant, found: Result<Option<Alarm>, String>) {
        m.handle_timeout(t);
        actions(m);
        m.handle_poll(t, found);
    }

    fn call(number: usize) -> Action {
        Action::Call {
            alarm: "a-7".into(),
            number,
        }
    }

    fn audits(a: &[Action]) -> Vec<(&'static str, Outcome)> {
        a.iter()
            .filter_map(|a| match a {
                Action::Audit(a) => Some((a.what, a.outcome)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_alarm_calls_the_first_number_and_an_acknowledgement_ends_the_callout() {
        let (mut m, t0) = machine(2, 1);
        assert_eq!(m.poll_timeout(), Some(t0));
        m.handle_timeout(t0);
        assert_eq!(actions(&mut m), vec![Action::Poll]);
        m.handle_poll(t0, Ok(alarm("a-7")));
        let a = actions(&mut m);
        assert_eq!(audits(&a), vec![("callout", Outcome::Requested)]);
        assert_eq!(a.last(), Some(&call(0)));
        assert_eq!(m.poll_timeout(), None, "waits for the call");
        m.handle_call(t0, CallOutcome::Answered);
        let a = actions(&mut m);
        assert_eq!(audits(&a), vec![("call", Outcome::Done)]);
        assert_eq!(a.last(), Some(&Action::Poll), "was it acknowledged?");
        m.handle_poll(t0, Ok(None));
        assert_eq!(
            audits(&actions(&mut m)),
            vec![("acknowledged", Outcome::Done)]
        );
        // The same alarm is never called out again; the next poll comes at once.
        assert_eq!(m.poll_timeout(), Some(t0));
        m.handle_timeout(t0);
        assert_eq!(actions(&mut m), vec![Action::Poll]);
        m.handle_poll(t0, Ok(alarm("a-7")));
        assert!(actions(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), Some(t0 + POLL));
    }

    #[test]
    fn no_answer_calls_the_next_number_then_the_next_round_after_the_pause() {
        let (mut m, t0) = machine(2, 2);
        poll_at(&mut m, t0, Ok(alarm("a-7")));
        assert_eq!(actions(&mut m).last(), Some(&call(0)));
        m.handle_call(t0, CallOutcome::NotAnswered("not answered".into()));
        let a = actions(&mut m);
        assert_eq!(audits(&a), vec![("call", Outcome::Failed)]);
        m.handle_poll(t0, Ok(alarm("a-7")));
        assert_eq!(actions(&mut m), vec![call(1)], "the second number");
        // Answered but not acknowledged (the alarm is still open): the round is over.
        m.handle_call(t0, CallOutcome::Answered);
        actions(&mut m);
        m.handle_poll(t0, Ok(alarm("a-7")));
        assert!(actions(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), Some(t0 + RETRY));
        m.handle_timeout(t0 + RETRY - Duration::from_millis(1));
        assert!(actions(&mut m).is_empty());
        m.handle_timeout(t0 + RETRY);
        assert_eq!(actions(&mut m), vec![call(0)], "round 2");
        let t1 = t0 + RETRY;
        for n in 0..2 {
            m.handle_call(t1, CallOutcome::Failed("busy".into()));
            actions(&mut m);
            m.handle_poll(t1, Ok(alarm("a-7")));
            let a = actions(&mut m);
            if n == 0 {
                assert_eq!(a, vec![call(1)]);
            } else {
                assert_eq!(audits(&a), vec![("unacknowledged", Outcome::Failed)]);
            }
        }
        assert_eq!(m.poll_timeout(), Some(t1 + POLL));
    }

    #[test]
    fn a_failed_poll_while_calling_calls_on_and_a_standby_places_nothing() {
        let (mut m, t0) = machine(2, 1);
        poll_at(&mut m, t0, Ok(alarm("a-7")));
        actions(&mut m);
        m.handle_call(t0, CallOutcome::Answered);
        actions(&mut m);
        m.handle_poll(t0, Err("connection refused".into()));
        assert_eq!(actions(&mut m), vec![call(1)], "not taken as acknowledged");

        let (mut standby, t0) = machine(2, 1);
        standby.handle_timeout(t0);
        actions(&mut standby);
        standby.handle_standby(t0);
        assert!(actions(&mut standby).is_empty());
        assert_eq!(standby.poll_timeout(), Some(t0 + POLL));
        // A failed first poll is retried later, nothing else.
        standby.handle_timeout(t0 + POLL);
        actions(&mut standby);
        standby.handle_poll(t0 + POLL, Err("timeout".into()));
        assert!(actions(&mut standby).is_empty());
        assert_eq!(standby.poll_timeout(), Some(t0 + POLL + POLL));
    }

    fn remembered(a: &[Action]) -> Vec<Handled> {
        a.iter()
            .filter_map(|a| match a {
                Action::Remember { alarm, how } if alarm == "a-7" => Some(*how),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn handled_alarms_are_remembered_and_one_the_store_knows_is_not_called() {
        let (mut m, t0) = machine(1, 1);
        poll_at(&mut m, t0, Ok(alarm("a-7")));
        actions(&mut m);
        m.handle_call(t0, CallOutcome::Answered);
        actions(&mut m);
        m.handle_poll(t0, Ok(None));
        assert_eq!(remembered(&actions(&mut m)), vec![Handled::Acknowledged]);

        let (mut m, t0) = machine(1, 1);
        poll_at(&mut m, t0, Ok(alarm("a-7")));
        actions(&mut m);
        m.handle_call(t0, CallOutcome::NotAnswered("not answered".into()));
        actions(&mut m);
        m.handle_poll(t0, Ok(alarm("a-7")));
        assert_eq!(remembered(&actions(&mut m)), vec![Handled::GivenUp]);

        // After a restart (or on the other node) the store tells the machine.
        let (mut m, t0) = machine(2, 1);
        assert!(!m.knows("a-7"));
        m.handle_known("a-7");
        assert!(m.knows("a-7"));
        poll_at(&mut m, t0, Ok(alarm("a-7")));
        assert!(actions(&mut m).is_empty(), "not called out again");
        assert_eq!(m.poll_timeout(), Some(t0 + POLL));
    }

    #[test]
    fn a_push_brings_the_next_poll_forward_now_or_after_the_alarm_in_hand() {
        let (mut m, t0) = machine(1, 1);
        poll_at(&mut m, t0, Ok(None));
        assert_eq!(m.poll_timeout(), Some(t0 + POLL));
        let t1 = t0 + Duration::from_secs(2);
        m.handle_push(t1);
        assert_eq!(m.poll_timeout(), Some(t1), "polled at once");
        m.handle_timeout(t1);
        assert_eq!(actions(&mut m), vec![Action::Poll]);
        m.handle_poll(t1, Ok(None));
        // A flood of pushes: one poll a second.
        let flood = t1 + Duration::from_millis(100);
        m.handle_push(flood);
        m.handle_push(flood);
        assert_eq!(m.poll_timeout(), Some(t1 + PUSH_GAP));
        let t1 = t1 + PUSH_GAP;
        m.handle_timeout(t1);
        assert_eq!(actions(&mut m), vec![Action::Poll]);
        m.handle_poll(t1, Ok(alarm("a-7")));
        actions(&mut m);
        // A push while calling: the machine polls as soon as the alarm is given up.
        m.handle_push(t1);
        assert_eq!(m.poll_timeout(), None, "still calling");
        m.handle_call(t1, CallOutcome::NotAnswered("not answered".into()));
        actions(&mut m);
        m.handle_poll(t1, Ok(alarm("a-7")));
        actions(&mut m);
        assert_eq!(m.poll_timeout(), Some(t1));
        m.handle_timeout(t1);
        actions(&mut m);
        m.handle_poll(t1, Ok(None));
        assert_eq!(
            m.poll_timeout(),
            Some(t1 + POLL),
            "one push, one early poll"
        );
    }

    #[test]
    fn inputs_out_of_turn_change_nothing() {
        let (mut m, t0) = machine(1, 1);
        m.handle_call(t0, CallOutcome::Answered);
        m.handle_poll(t0, Ok(alarm("a-7")));
        assert!(actions(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), Some(t0));
    }
}
