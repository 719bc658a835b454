//! Strategies, priorities and queues competing for one agent.

use super::*;

#[test]
fn best_skill_rings_the_best_level_first() {
    let mut s = support(Strategy::BestSkill, &[("1001", 5), ("1002", 3)]);
    // 1002 has been idle longer: best_skill still prefers the higher level.
    s.login("1002");
    s.at(secs(5));
    s.login("1001");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1001"]);
    assert_eq!(s.state("1001"), AgentState::Reserved { call: c("c1") });
    // With 1001 busy, the next call goes to 1002.
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(s.rung("c2"), ["1002"]);
}

#[test]
fn best_skill_breaks_level_ties_by_longest_idle() {
    let mut s = support(
        Strategy::BestSkill,
        &[("1001", 5), ("1002", 5), ("1003", 2)],
    );
    s.login("1002");
    s.at(secs(1));
    s.login("1001");
    s.login("1003");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1002"]);
}

#[test]
fn longest_idle_rotates_through_agents() {
    let mut s = support(
        Strategy::LongestIdle,
        &[("1001", 1), ("1002", 9), ("1003", 5)],
    );
    s.login("1003");
    s.at(secs(1));
    s.login("1001");
    s.at(secs(2));
    s.login("1002");
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1003"]);
    s.answer("c1", "1003");
    s.at(secs(10));
    s.end("c1");
    // 1003 is ready again, but idle since just now: the others come first.
    s.arrive("c2", "support", Priority::Normal);
    s.arrive("c3", "support", Priority::Normal);
    s.arrive("c4", "support", Priority::Normal);
    assert_eq!(
        s.offers(),
        [("c2", "1001"), ("c3", "1002"), ("c4", "1003")].map(|(c, a)| (c.into(), a.into()))
    );
}

#[test]
fn round_robin_takes_turns_in_id_order() {
    let mut s = support(
        Strategy::RoundRobin,
        &[("1001", 1), ("1002", 1), ("1003", 1)],
    );
    for ag in ["1003", "1002", "1001"] {
        s.login(ag);
    }
    let mut order = Vec::new();
    for i in 0..5 {
        let call = format!("c{i}");
        s.arrive(&call, "support", Priority::Normal);
        let rung = s.rung(&call);
        assert_eq!(rung.len(), 1);
        // Answer and hang up at once (no wrap-up): everybody is ready for the next call.
        s.answer(&call, &rung[0]);
        s.end(&call);
        order.push(rung[0].clone());
    }
    assert_eq!(order, ["1001", "1002", "1003", "1001", "1002"]);
}

#[test]
fn ring_all_rings_everybody_and_the_first_answer_wins() {
    let mut s = support(Strategy::RingAll, &[("1001", 1), ("1002", 1), ("1003", 1)]);
    for ag in ["1001", "1002", "1003"] {
        s.login(ag);
    }
    s.arrive("c1", "support", Priority::Normal);
    assert_eq!(s.rung("c1"), ["1001", "1002", "1003"]);
    s.answer("c1", "1002");
    let actions = s.take();
    assert!(actions.contains(&Action::Bridge {
        call: c("c1"),
        agent: a("1002"),
    }));
    for other in ["1001", "1003"] {
        assert!(actions.contains(&Action::CancelRing {
            call: c("c1"),
            agent: a(other),
        }));
        assert_eq!(s.state(other), AgentState::Ready);
    }
    // The others were not at fault: they take the next call without delay.
    s.arrive("c2", "support", Priority::Normal);
    assert_eq!(s.rung("c2"), ["1001", "1003"]);
    assert_eq!(
        s.input(Input::AgentAnswered {
            call: c("c1"),
            agent: a("1001"),
        }),
        Err(AcdError::NotOffered {
            call: c("c1"),
            agent: a("1001"),
        })
    );
}

#[test]
fn vip_first_then_fifo_within_a_priority() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1)]);
    s.arrive("n1", "support", Priority::Normal);
    s.at(secs(1));
    s.arrive("n2", "support", Priority::Normal);
    s.arrive("low", "support", Priority::Low);
    s.arrive("vip", "support", Priority::Urgent);
    s.arrive("n3", "support", Priority::Normal);
    s.arrive("high", "support", Priority::High);
    assert_eq!(s.acd.position(&c("vip")), Some(1));
    assert_eq!(s.acd.position(&c("n1")), Some(3));
    assert_eq!(s.acd.position(&c("low")), Some(6));
    s.login("1001");
    let mut served = Vec::new();
    for _ in 0..6 {
        let (call, agent) = s.offers().pop().expect("an offer");
        s.answer(&call, &agent);
        s.end(&call);
        served.push(call);
    }
    assert_eq!(served, ["vip", "high", "n1", "n2", "n3", "low"]);
}

/// Agent 1001 serves both `sales` and `support`; the rule: highest priority, then the call
/// that entered the ACD first, whatever its queue.
#[test]
fn two_queues_competing_for_one_agent_is_deterministic() {
    let run = || {
        let queues = vec![
            QueueConfig::new("sales", "Sales").require("sales", 1),
            QueueConfig::new("support", "Support").require("support", 1),
        ];
        let agents = vec![AgentConfig::new("1001", "Ann", "1001")
            .skill("sales", 3)
            .skill("support", 3)];
        let mut s = Sim::new(queues, agents);
        s.arrive("sup-old", "support", Priority::Normal);
        s.at(secs(1));
        s.arrive("sales-new", "sales", Priority::Normal);
        s.arrive("sales-vip", "sales", Priority::High);
        s.arrive("sup-new", "support", Priority::Normal);
        s.login("1001");
        let mut served = Vec::new();
        for _ in 0..4 {
            let (call, agent) = s.offers().pop().expect("an offer");
            s.answer(&call, &agent);
            s.end(&call);
            served.push(call);
        }
        served
    };
    let first = run();
    assert_eq!(first, ["sales-vip", "sup-old", "sales-new", "sup-new"]);
    assert_eq!(run(), first);
}

#[test]
fn agents_without_the_skill_level_are_never_offered() {
    let queue = QueueConfig::new("expert", "Expert").require("printers", 7);
    let agents = vec![
        AgentConfig::new("1001", "Ann", "1001").skill("printers", 6),
        AgentConfig::new("1002", "Bob", "1002").skill("printers", 8),
    ];
    let mut s = Sim::new(vec![queue], agents);
    s.login("1001");
    s.arrive("c1", "expert", Priority::Normal);
    assert!(s.rung("c1").is_empty());
    s.login("1002");
    assert_eq!(s.rung("c1"), ["1002"]);
    s.acd.audit().expect("consistent");
}

#[test]
fn skill_change_reroutes_waiting_calls() {
    let mut s = support(Strategy::LongestIdle, &[("1001", 1)]);
    s.ok(Input::UpsertAgent(AgentConfig::new("1002", "Bob", "1002")));
    s.login("1002");
    s.arrive("c1", "support", Priority::Normal);
    assert!(s.rung("c1").is_empty());
    s.ok(Input::UpsertAgent(
        AgentConfig::new("1002", "Bob", "1002").skill("support", 4),
    ));
    assert_eq!(s.rung("c1"), ["1002"]);
    assert_eq!(
        s.input(Input::RemoveAgent { agent: a("1002") }),
        Err(AcdError::AgentState {
            agent: a("1002"),
            state: "reserved",
            action: "be removed",
        })
    );
    s.acd.audit().expect("consistent");
}
