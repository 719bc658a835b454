//! The replicated state: serialise mid-scenario, restore (on "another node" with its own
//! monotonic clock), and the restored core decides exactly as the original would have.

use super::*;

fn floor() -> Sim {
    let mut support = QueueConfig::new("support", "Support")
        .require("support", 1)
        .strategy(Strategy::BestSkill);
    support.wrap_up = secs(15);
    support.max_wait = Some(secs(90));
    support.on_max_wait = OverflowTarget::Queue(q("backup"));
    support.announce = Some(AnnounceConfig {
        every: secs(20),
        on_arrival: true,
    });
    support.callback = Some(CallbackConfig {
        max_attempts: 2,
        retry_after: secs(30),
    });
    let backup = QueueConfig::new("backup", "Backup").strategy(Strategy::RoundRobin);
    let agents = (1..=4)
        .map(|i| {
            let id = format!("100{i}");
            let cfg = AgentConfig::new(&id, &id, &id);
            if i <= 2 {
                cfg.skill("support", 2 + i as u8 * 3)
            } else {
                cfg
            }
        })
        .collect();
    Sim::new(vec![support, backup], agents)
}

fn first_half(s: &mut Sim) {
    s.login("1001");
    s.login("1003");
    for i in 0..6 {
        let prio = if i == 4 {
            Priority::Urgent
        } else {
            Priority::Normal
        };
        s.arrive(&format!("c{i}"), "support", prio);
        s.at(secs(2 * i + 1));
    }
    s.answer("c0", "1001");
    s.ok(Input::CallbackRequested { call: c("c2") });
    s.at(secs(30));
}

fn offers_since(s: &Sim, mark: usize) -> Vec<(CallId, AgentId)> {
    s.actions[mark..]
        .iter()
        .filter_map(|x| match x {
            Action::RingAgent { call, agent, .. } | Action::CallbackCall { call, agent, .. } => {
                Some((call.clone(), agent.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Inputs at fixed times after the snapshot; returns everything the core produced.
fn second_half(s: &mut Sim) -> (Vec<Action>, Vec<AcdEvent>) {
    s.actions.clear();
    s.events.clear();
    s.login("1002");
    s.at(secs(35));
    s.end("c0");
    s.at(secs(50));
    s.login("1004");
    // Offers may have timed out meanwhile: refusals are part of the script too.
    for (call, agent) in offers_since(s, 0) {
        let _ = s.input(Input::AgentAnswered { call, agent });
    }
    s.at(secs(80));
    let mark = s.actions.len();
    s.arrive("c9", "support", Priority::High);
    s.at(secs(200));
    for (call, agent) in offers_since(s, mark) {
        let _ = s.input(Input::AgentAnswered {
            call: call.clone(),
            agent,
        });
        let _ = s.input(Input::CallEnded { call });
    }
    s.at(secs(400));
    (s.take(), std::mem::take(&mut s.events))
}

#[test]
fn restored_state_makes_the_same_decisions() {
    let mut original = floor();
    first_half(&mut original);
    let json = serde_json::to_string_pretty(original.acd.state()).expect("serialise");
    let state: AcdState = serde_json::from_str(&json).expect("deserialise");

    // The standby's monotonic clock has another origin; its wall clock agrees.
    let elapsed = original.now - original.t0;
    let t0 = original.t0 + secs(86_400);
    let acd = Acd::restore(t0 + elapsed, wall() + elapsed, state).expect("restore");
    acd.audit().expect("consistent after restore");
    let mut standby = Sim {
        acd,
        t0,
        now: t0 + elapsed,
        actions: Vec::new(),
        events: Vec::new(),
    };
    assert_eq!(
        standby.acd.poll_timeout().map(|t| t - t0),
        original.acd.poll_timeout().map(|t| t - original.t0)
    );
    assert_eq!(
        standby.acd.queues(standby.now),
        original.acd.queues(original.now)
    );

    let a = second_half(&mut original);
    let b = second_half(&mut standby);
    assert!(!a.0.is_empty() && !a.1.is_empty());
    assert_eq!(a, b);
    assert_eq!(original.acd.state(), standby.acd.state());
}

#[test]
fn restore_refuses_an_inconsistent_state() {
    let mut s = floor();
    first_half(&mut s);
    let mut value = serde_json::to_value(s.acd.state()).expect("serialise");
    value["agents"]["1003"]["state"] = serde_json::json!({"state": "reserved", "call": "ghost"});
    let state: AcdState = serde_json::from_value(value).expect("still well-formed");
    let elapsed = s.now - s.t0;
    assert!(matches!(
        Acd::restore(s.now, wall() + elapsed, state),
        Err(AcdError::Inconsistent(_))
    ));
    // Two calls at one place would overwrite each other in the waiting order.
    let mut value = serde_json::to_value(s.acd.state()).expect("serialise");
    value["calls"]["c3"]["seq"] = value["calls"]["c5"]["seq"].clone();
    let state: AcdState = serde_json::from_value(value).expect("still well-formed");
    assert!(matches!(
        Acd::restore(s.now, wall() + elapsed, state),
        Err(AcdError::Inconsistent(_))
    ));
}
