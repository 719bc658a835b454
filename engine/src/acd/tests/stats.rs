//! Statistics from a scripted event list, from JSON-persisted events, and from a live run.

use super::*;

const T0: u64 = 1_700_000_000_000;

fn at(s: u64) -> Timestamp {
    Timestamp::from_unix_ms(T0 + s * 1000)
}

fn ev(s: u64, kind: EventKind) -> AcdEvent {
    AcdEvent { at: at(s), kind }
}

fn queued(s: u64, call: &str, queue: &str) -> AcdEvent {
    ev(
        s,
        EventKind::CallQueued {
            call: c(call),
            queue: q(queue),
            priority: Priority::Normal,
        },
    )
}

fn answered(s: u64, call: &str, wait: u64) -> AcdEvent {
    ev(
        s,
        EventKind::CallAnswered {
            call: c(call),
            queue: q("support"),
            agent: a("1001"),
            wait: secs(wait),
            callback: false,
        },
    )
}

fn handled(s: u64, call: &str, talk: u64, wrap: u64) -> [AcdEvent; 2] {
    [
        ev(
            s,
            EventKind::CallEnded {
                call: c(call),
                queue: q("support"),
                agent: a("1001"),
                talk: secs(talk),
            },
        ),
        ev(
            s + wrap,
            EventKind::WrapUpEnded {
                call: c(call),
                queue: q("support"),
                agent: a("1001"),
                wrap: secs(wrap),
            },
        ),
    ]
}

fn script() -> Vec<AcdEvent> {
    let mut e = vec![
        queued(0, "c1", "support"),
        queued(0, "c2", "support"),
        queued(1, "c3", "support"),
        queued(2, "c4", "support"),
        queued(3, "c5", "support"),
        queued(4, "c6", "sales"),
        answered(10, "c1", 10),
        answered(30, "c2", 30),
        ev(
            6,
            EventKind::CallAbandoned {
                call: c("c3"),
                queue: q("support"),
                wait: secs(5),
            },
        ),
        ev(
            47,
            EventKind::CallAbandoned {
                call: c("c4"),
                queue: q("support"),
                wait: secs(45),
            },
        ),
        ev(
            63,
            EventKind::CallOverflowed {
                call: c("c5"),
                queue: q("support"),
                reason: OverflowReason::MaxWait,
                target: ExitTarget::Flow { step: None },
                wait: secs(60),
            },
        ),
        ev(
            24,
            EventKind::CallMoved {
                call: c("c6"),
                from: q("sales"),
                to: q("support"),
                reason: OverflowReason::MaxWait,
                wait: secs(20),
            },
        ),
        answered(39, "c6", 15),
    ];
    e.extend(handled(110, "c1", 100, 10));
    e.extend(handled(230, "c2", 200, 20));
    e.extend(handled(89, "c6", 50, 0));
    e.sort_by_key(|e| e.at);
    e
}

#[test]
fn service_level_asa_aht_and_abandons_follow_the_definitions() {
    let st = queue_stats(&script(), &q("support"), at(0), at(3600), secs(20));
    assert_eq!(st.offered, 6, "five queued + one moved in");
    assert_eq!(st.answered, 3);
    assert_eq!(st.answered_within_sl, 2);
    assert_eq!((st.abandoned, st.short_abandoned), (2, 1));
    assert_eq!(st.overflowed, 1);
    // 2 / (3 answered + 1 long abandon + 1 overflow)
    assert_eq!(st.service_level, Some(0.4));
    assert_eq!(
        st.average_speed_of_answer,
        Some(Duration::from_millis(18_333))
    );
    // (110 + 220 + 50) / 3
    assert_eq!(st.average_handle_time, Some(Duration::from_millis(126_666)));
    assert_eq!(st.longest_wait, Some(secs(60)));

    let sales = queue_stats(&script(), &q("sales"), at(0), at(3600), secs(20));
    assert_eq!((sales.offered, sales.overflowed, sales.answered), (1, 1, 0));
    assert_eq!(sales.service_level, Some(0.0));
}

#[test]
fn intervals_split_the_counts_and_empty_ones_have_no_ratios() {
    let parts =
        queue_stats_by_interval(&script(), &q("support"), at(0), at(90), secs(30), secs(20));
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].from, at(0));
    assert_eq!(parts[2].to, at(90));
    assert_eq!(
        parts.iter().map(|p| p.answered).collect::<Vec<_>>(),
        [1, 2, 0]
    );
    assert_eq!(parts.iter().map(|p| p.offered).sum::<u32>(), 6);
    assert_eq!(parts[2].average_speed_of_answer, None);
    // A step too fine for the span is widened rather than allocating without bound.
    let year = Duration::from_secs(365 * 86_400);
    let fine = queue_stats_by_interval(&[], &q("x"), at(0), at(0) + year, Duration::ZERO, secs(20));
    assert!(fine.len() as u64 <= MAX_INTERVALS);
}

#[test]
fn stats_read_back_from_persisted_json_events() {
    let lines: Vec<String> = script()
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialise"))
        .collect();
    assert!(
        lines[0].contains(r#""event":"call_queued""#),
        "{}",
        lines[0]
    );
    let back: Vec<AcdEvent> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("deserialise"))
        .collect();
    assert_eq!(back, script());
}

#[test]
fn a_live_run_produces_consistent_statistics() {
    let mut queue = QueueConfig::new("support", "Support");
    queue.wrap_up = secs(10);
    let mut s = Sim::new(vec![queue], vec![AgentConfig::new("1001", "Ann", "1001")]);
    s.login("1001");
    s.arrive("c1", "support", Priority::Normal);
    s.arrive("c2", "support", Priority::Normal);
    s.at(secs(5));
    s.answer("c1", "1001");
    s.at(secs(65));
    s.end("c1");
    s.at(secs(70));
    s.ok(Input::CallAbandoned { call: c("c2") });
    s.at(secs(100));
    let from = Timestamp::from_unix_ms(1_700_000_000_000);
    let st = queue_stats(&s.events, &q("support"), from, from + secs(3600), secs(20));
    assert_eq!((st.offered, st.answered, st.abandoned), (2, 1, 1));
    assert_eq!(st.average_speed_of_answer, Some(secs(5)));
    assert_eq!(st.average_handle_time, Some(secs(70)));
    assert_eq!(st.service_level, Some(0.5));
    assert_eq!(st.longest_wait, Some(secs(70)));
}
