//! ACD routing throughput in virtual time: `cargo bench -p svi-engine --bench acd`.
//!
//! A floor of 20 skill queues and 500 agents. First 5,000 calls arrive while every agent is
//! logged out; then the agents log in and the floor runs: each offer is answered (or, one in
//! twenty, missed, pausing the agent for a while), each call talks for 1-5 minutes, wrap-up
//! lasts 5 s, and every call that ends is replaced by a new arrival, so about 5,000 calls
//! wait throughout while announcements run every 30 s in every queue. The clock jumps from
//! deadline to deadline; what is timed is the whole loop (core plus this tiny driver), so
//! the figures are a lower bound of the core's own speed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use engine::acd::{
    Acd, AcdConfig, Action, AgentConfig, AgentId, AnnounceConfig, CallId, Input, Priority,
    QueueConfig, QueueId, RingFailure, Strategy,
};

const QUEUES: usize = 20;
const AGENTS: usize = 500;
const WAITING: usize = 5_000;
const DECISIONS: u64 = 200_000;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// What the simulated SIP side will report, and when.
enum Later {
    End(CallId),
    Ready(AgentId),
}

fn config(rng: &mut Rng, announce: bool) -> AcdConfig {
    let strategies = [
        Strategy::BestSkill,
        Strategy::LongestIdle,
        Strategy::RoundRobin,
    ];
    let queues = (0..QUEUES)
        .map(|i| {
            let mut q = QueueConfig::new(&format!("q{i}"), "queue")
                .require(&format!("s{i}"), 1 + rng.below(3) as u8)
                .strategy(strategies[i % strategies.len()]);
            q.wrap_up = Duration::from_secs(5);
            q.announce = announce.then_some(AnnounceConfig {
                every: Duration::from_secs(30),
                on_arrival: true,
            });
            q
        })
        .collect();
    let agents = (0..AGENTS)
        .map(|i| {
            let mut a = AgentConfig::new(&format!("a{i}"), "agent", "sip:agent@pbx");
            for _ in 0..4 {
                let skill = format!("s{}", rng.below(QUEUES as u64));
                a = a.skill(&skill, 3 + rng.below(8) as u8);
            }
            a
        })
        .collect();
    AcdConfig { queues, agents }
}

fn arrival(rng: &mut Rng, n: &mut u64) -> Input {
    *n += 1;
    let priority = match rng.below(10) {
        0 => Priority::High,
        1 => Priority::Low,
        _ => Priority::Normal,
    };
    Input::CallArrived {
        call: CallId::new(format!("c{n}")),
        queue: QueueId::new(format!("q{}", rng.below(QUEUES as u64))),
        priority,
        max_wait: None,
    }
}

/// `cargo bench -p svi-engine --bench acd [-- routing|announce]`: each scenario runs three
/// times and the fastest run is reported (the build machine is shared).
fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    println!("acd bench: {QUEUES} queues, {AGENTS} agents, {WAITING} calls queued first");
    for (name, announce, title) in [
        ("routing", false, "routing only (no announcements)"),
        (
            "announce",
            true,
            "with position announcements every 30 s in every queue",
        ),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        println!("{title}:");
        let best = (0..3).map(|_| run(announce)).min_by_key(|r| r.running);
        if let Some(r) = best {
            r.print();
        }
    }
}

struct Report {
    arrivals: Duration,
    running: Duration,
    decisions: u64,
    inputs: u64,
    actions: u64,
    announcements: u64,
    virtual_time: Duration,
    waiting: u32,
    refused: u64,
}

impl Report {
    fn print(&self) {
        let per_sec = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "  arrivals into growing queues: {WAITING} in {:?} ({:.0}/s)",
            self.arrivals,
            per_sec(WAITING as u64, self.arrivals)
        );
        println!(
            "  steady floor: {} decisions in {:?} = {:.0} decisions/s",
            self.decisions,
            self.running,
            per_sec(self.decisions, self.running)
        );
        println!(
            "  {} inputs ({:.0}/s), {} actions of which {} announcements",
            self.inputs,
            per_sec(self.inputs, self.running),
            self.actions,
            self.announcements
        );
        println!(
            "  {:.1} h of virtual time, {} calls still waiting, {} inputs refused",
            self.virtual_time.as_secs_f64() / 3600.0,
            self.waiting,
            self.refused
        );
    }
}

fn run(announce: bool) -> Report {
    let mut rng = Rng(0xACD0_2024);
    let t0 = Instant::now();
    let config = config(&mut rng, announce);
    let mut acd = Acd::new(t0, SystemTime::now(), config).expect("valid config");
    let mut now = t0;
    let mut later: BTreeMap<(Instant, u64), Later> = BTreeMap::new();
    let (mut calls, mut order, mut inputs) = (0u64, 0u64, 0u64);
    let (mut actions, mut announcements) = (0u64, 0u64);

    let start = Instant::now();
    for _ in 0..WAITING {
        let input = arrival(&mut rng, &mut calls);
        let _ = acd.handle_input(now, input);
        inputs += 1;
    }
    while acd.poll_action().is_some() {
        actions += 1;
    }
    let arrivals = start.elapsed();

    let start = Instant::now();
    for i in 0..AGENTS {
        let agent = AgentId::new(format!("a{i}"));
        let _ = acd.handle_input(now, Input::AgentLogin { agent });
        inputs += 1;
    }
    while acd.decisions() < DECISIONS {
        // Perform what the core asked: answer (or miss) offers.
        while let Some(action) = acd.poll_action() {
            actions += 1;
            let (call, agent) = match action {
                Action::RingAgent { call, agent, .. } => (call, agent),
                Action::Announce { .. } => {
                    announcements += 1;
                    continue;
                }
                _ => continue,
            };
            let input = if rng.below(20) == 0 {
                order += 1;
                later.insert(
                    (now + Duration::from_secs(30), order),
                    Later::Ready(agent.clone()),
                );
                Input::RingFailed {
                    call,
                    agent,
                    failure: RingFailure::NoAnswer,
                }
            } else {
                order += 1;
                let talk = Duration::from_secs(60 + rng.below(240));
                later.insert((now + talk, order), Later::End(call.clone()));
                Input::AgentAnswered { call, agent }
            };
            let _ = acd.handle_input(now, input);
            inputs += 1;
        }
        while acd.poll_event().is_some() {}
        // Jump to the next thing that happens: the core's deadline or a driver report.
        let core_next = acd.poll_timeout();
        let driver_next = later.first_key_value().map(|((t, _), _)| *t);
        let Some(next) = [core_next, driver_next].into_iter().flatten().min() else {
            break;
        };
        now = now.max(next);
        acd.handle_timeout(now);
        while let Some(((t, _), _)) = later.first_key_value() {
            if *t > now {
                break;
            }
            let Some((_, what)) = later.pop_first() else {
                break;
            };
            match what {
                Later::End(call) => {
                    let _ = acd.handle_input(now, Input::CallEnded { call });
                    let input = arrival(&mut rng, &mut calls);
                    let _ = acd.handle_input(now, input);
                    inputs += 2;
                }
                Later::Ready(agent) => {
                    let _ = acd.handle_input(now, Input::AgentReady { agent });
                    inputs += 1;
                }
            }
        }
    }
    let running = start.elapsed();

    Report {
        arrivals,
        running,
        decisions: acd.decisions(),
        inputs,
        actions,
        announcements,
        virtual_time: now - t0,
        waiting: acd.queues(now).iter().map(|q| q.waiting).sum(),
        refused: acd.counters().refused,
    }
}

trait Decisions {
    fn decisions(&self) -> u64;
}

impl Decisions for Acd {
    fn decisions(&self) -> u64 {
        self.counters().decisions
    }
}
