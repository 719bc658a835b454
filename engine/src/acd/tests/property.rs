//! A randomised floor with a fixed seed: thousands of arrivals, abandons, agent moves, ring
//! outcomes, hang-ups, callbacks, garbage inputs and time jumps, checking after every step
//! that the state is consistent (`Acd::audit`: no agent in two calls, reserved and ringing
//! agents always hold a live offer, indexes equal a rebuild, no waiting call beside a ready
//! agent) and at the end that no call was lost: each one ended exactly once, answered,
//! abandoned, overflowed or with a failed callback. The same run interrupted by serialise ->
//! restore cycles must produce the very same event log.

use std::collections::BTreeMap;

use super::*;

/// xorshift64*: tiny, deterministic, good enough to shuffle a schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        let i = usize::try_from(self.below(items.len() as u64)).ok()?;
        items.get(i).cloned()
    }
}

const SKILLS: [&str; 3] = ["billing", "network", "french"];
const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];

fn floor(rng: &mut Rng) -> Sim {
    let strategies = [
        Strategy::BestSkill,
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::RingAll,
    ];
    let mut queues = Vec::new();
    for (i, strategy) in strategies.into_iter().enumerate() {
        let mut qc = QueueConfig::new(&format!("q{i}"), "Q").strategy(strategy);
        if i < SKILLS.len() {
            qc = qc.require(SKILLS[i], 1 + rng.below(4) as u8);
        }
        qc.ring_timeout = secs(8 + rng.below(10));
        qc.wrap_up = secs(rng.below(20));
        qc.max_wait = Some(secs(60 + rng.below(120)));
        qc.on_max_wait = OverflowTarget::Queue(q(&format!("q{}", (i + 1) % 4)));
        qc.max_length = Some(5 + rng.below(10) as u32);
        qc.on_full = OverflowTarget::Message {
            prompt: "busy".into(),
        };
        qc.announce = Some(AnnounceConfig {
            every: secs(15),
            on_arrival: i % 2 == 0,
        });
        qc.callback = Some(CallbackConfig {
            max_attempts: 2,
            retry_after: secs(20),
        });
        queues.push(qc);
    }
    let agents = (0..12)
        .map(|i| {
            let mut ac = AgentConfig::new(&format!("a{i:02}"), "A", "pbx");
            for skill in SKILLS {
                if rng.below(2) == 0 {
                    ac = ac.skill(skill, 1 + rng.below(10) as u8);
                }
            }
            if i % 5 == 0 {
                ac.wrap_up = Some(secs(3));
            }
            ac
        })
        .collect();
    Sim::new(queues, agents)
}

fn calls_where(s: &Sim, f: impl Fn(&CallState) -> bool) -> Vec<CallId> {
    let st = &s.acd.st;
    st.calls
        .iter()
        .filter(|(_, c)| f(&c.state))
        .map(|(id, _)| id.clone())
        .collect()
}

fn step(s: &mut Sim, rng: &mut Rng, next_call: &mut u32) {
    let agents: Vec<AgentId> = s.acd.st.agents.keys().cloned().collect();
    let agent = rng.pick(&agents).unwrap_or_else(|| a("none"));
    let roll = rng.below(100);
    // Refusals are expected (races, wrong states); only the invariants matter.
    let _ = match roll {
        0..=24 => {
            *next_call += 1;
            let queue = if rng.below(50) == 0 {
                q("nowhere")
            } else {
                q(&format!("q{}", rng.below(4)))
            };
            let max_wait = (rng.below(5) == 0).then(|| secs(5 + rng.below(60)));
            s.input(Input::CallArrived {
                call: c(&format!("c{next_call}")),
                queue,
                priority: rng.pick(&PRIORITIES).unwrap_or_default(),
                max_wait,
            })
        }
        25..=31 => match rng.pick(&calls_where(s, |_| true)) {
            Some(call) => s.input(Input::CallAbandoned { call }),
            None => Ok(()),
        },
        32..=37 => s.input(Input::AgentLogin { agent }),
        38..=42 => s.input(Input::AgentReady { agent }),
        43..=46 => s.input(Input::AgentPause {
            agent,
            reason: "break".into(),
        }),
        47..=48 => s.input(Input::AgentLogout { agent }),
        49..=63 => {
            let offered = calls_where(s, |st| matches!(st, CallState::Offered { .. }));
            let Some(call) = rng.pick(&offered) else {
                return;
            };
            let Some(CallState::Offered { agents }) =
                s.acd.st.calls.get(&call).map(|c| c.state.clone())
            else {
                return;
            };
            let agent = rng.pick(&agents).unwrap_or(agent);
            match rng.below(20) {
                0..=11 => s.input(Input::AgentAnswered { call, agent }),
                12..=14 => s.input(Input::AgentRinging { call, agent }),
                15..=16 => s.input(Input::RingFailed {
                    call,
                    agent,
                    failure: RingFailure::Rejected,
                }),
                _ => s.input(Input::RingFailed {
                    call,
                    agent,
                    failure: RingFailure::Failed("gone".into()),
                }),
            }
        }
        64..=73 => match rng.pick(&calls_where(s, |st| {
            matches!(st, CallState::Talking { .. })
        })) {
            Some(call) => s.input(Input::CallEnded { call }),
            None => Ok(()),
        },
        74..=77 => match rng.pick(&calls_where(s, |st| *st == CallState::Waiting)) {
            Some(call) => s.input(Input::CallbackRequested { call }),
            None => Ok(()),
        },
        78..=81 => match rng.pick(&calls_where(s, |st| {
            matches!(st, CallState::Dialing { .. })
        })) {
            Some(call) => {
                let result = match rng.below(3) {
                    0 => CallbackResult::NoAnswer,
                    _ => CallbackResult::Connected,
                };
                s.input(Input::CallbackResult { call, result })
            }
            None => Ok(()),
        },
        82..=97 => {
            let to = s.now - s.t0 + Duration::from_millis(rng.below(15_000));
            s.at(to);
            Ok(())
        }
        _ => {
            let call = c(&format!("c{}", rng.below(u64::from(*next_call) + 2)));
            s.input(Input::AgentAnswered { call, agent })
        }
    };
}

fn restore(s: &mut Sim) {
    let json = serde_json::to_string(s.acd.state()).expect("serialise");
    let state: AcdState = serde_json::from_str(&json).expect("deserialise");
    let elapsed = s.now - s.t0;
    s.acd = Acd::restore(s.now, wall() + elapsed, state).expect("restore");
}

/// Runs the schedule; returns the event log and the number of calls that arrived.
fn run(seed: u64, steps: usize, restore_every: Option<usize>) -> (Vec<AcdEvent>, u32) {
    let mut rng = Rng(seed);
    let mut s = floor(&mut rng);
    let mut next_call = 0;
    for i in 0..steps {
        step(&mut s, &mut rng, &mut next_call);
        if let Err(e) = s.acd.audit() {
            panic!("step {i}: {e}");
        }
        if restore_every.is_some_and(|n| i % n == n - 1) {
            restore(&mut s);
        }
    }
    // Close the floor: hang up everything, let wrap-ups and retries run out.
    for call in calls_where(&s, |_| true) {
        let _ = s.input(Input::CallEnded { call });
    }
    let end = s.now - s.t0 + secs(3600);
    s.at(end);
    s.acd.audit().expect("consistent at the end");
    assert!(
        s.acd.st.calls.is_empty(),
        "calls left: {:?}",
        s.acd.st.calls.keys()
    );
    for agent in s.acd.agents(s.now) {
        assert!(
            agent.call.is_none(),
            "{} still busy: {:?}",
            agent.id,
            agent.state
        );
    }
    (std::mem::take(&mut s.events), next_call)
}

#[test]
fn random_floor_keeps_every_invariant_and_loses_no_call() {
    let (events, _) = run(0x5EED_0ACD, 6000, None);
    let mut ends: BTreeMap<&CallId, u32> = BTreeMap::new();
    let mut queued = 0;
    let mut answered = 0;
    let mut hung_up = 0;
    for e in &events {
        match &e.kind {
            EventKind::CallQueued { .. } => queued += 1,
            EventKind::CallAnswered { .. } => answered += 1,
            EventKind::CallEnded { .. } => hung_up += 1,
            _ => {}
        }
        if let Some(call) = e.kind.terminal_call() {
            *ends.entry(call).or_default() += 1;
        }
    }
    assert!(queued > 1000, "a busy floor: {queued} calls");
    assert!(answered > 100, "{answered} answered");
    assert_eq!(ends.len(), queued, "every queued call ended");
    assert!(ends.values().all(|n| *n == 1), "each call ended once");
    assert_eq!(answered, hung_up, "every answered call was hung up once");
}

#[test]
fn serialise_restore_cycles_do_not_change_any_decision() {
    let straight = run(42, 3000, None);
    let interrupted = run(42, 3000, Some(97));
    assert_eq!(straight.1, interrupted.1);
    assert!(straight.0 == interrupted.0, "event logs differ");
}
