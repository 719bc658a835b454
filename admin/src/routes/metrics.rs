//! `GET /metrics` (an API key with the `metrics` role, or an admin): the engine's figures
//! in Prometheus' text format, read at scrape time from the engine handle's counters and
//! snapshots (calls, refusals, RTP, queues, agents, connectors, alarms, raft, disk) and the API's own
//! authentication failures. The families and their labels: docs/admin.md, "Metrics".

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use engine::acd::{AcdSnapshot, AgentState};
use engine::alarm::AlarmSnapshot;
use engine::connectors::{CircuitState, ConnectorHealth};

use crate::metrics::{Exposition, Kind, Sample};
use crate::state::AdminState;

#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut e = Exposition::default();
    let engine = state.engine();
    e.single(
        "svi_calls_active",
        Kind::Gauge,
        "Calls in progress on this node.",
        engine.active_calls() as f64,
    );
    calls(&mut e, engine);
    if let Ok(Some(totals)) = engine.rtp_totals() {
        rtp(&mut e, &totals);
    }
    auth(&mut e, &state);
    sip(&mut e, engine).await;
    // Queues and agents, from the ACD's snapshot (absent on a witness).
    if let Ok(snapshot) = engine.acd().await {
        acd(&mut e, &snapshot);
    }
    connectors(&mut e, &engine.connector_health());
    if let Ok(board) = engine.alarms() {
        alarms(&mut e, &board.snapshot());
    }

    // Raft: term, how far the applied state trails the commit, the role.
    if let Ok(s) = state.node().status().await {
        e.single(
            "svi_raft_term",
            Kind::Gauge,
            "Current raft term.",
            s.term as f64,
        );
        if let (Some(c), Some(a)) = (s.commit_index, s.applied_index) {
            e.single(
                "svi_raft_commit_lag",
                Kind::Gauge,
                "Committed log entries not yet applied on this node.",
                c.saturating_sub(a) as f64,
            );
        }
        let roles = ["active", "standby", "fenced", "witness", "joining"];
        let now = s.role.to_string();
        let samples: Vec<_> = roles
            .iter()
            .map(|r| {
                (
                    vec![("role", r.to_string())],
                    f64::from(u8::from(*r == now)),
                )
            })
            .collect();
        e.family(
            "svi_ha_role",
            Kind::Gauge,
            "1 for this node's HA role.",
            &samples,
        );
    }

    // Free space where recordings are written (a witness has no recordings).
    if let Some(config) = engine.config() {
        let dir = config.recording.settings(&config.data_dir).dir;
        let data = config.data_dir.clone();
        // Before the first recording the directory may not exist: its file system is the
        // data directory's.
        let free = tokio::task::spawn_blocking(move || {
            engine::recording::free_bytes(&dir).or_else(|_| engine::recording::free_bytes(&data))
        })
        .await;
        if let Ok(Ok(bytes)) = free {
            e.single(
                "svi_recording_disk_free_bytes",
                Kind::Gauge,
                "Free bytes on the recording directory's file system.",
                bytes as f64,
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.finish(),
    )
}

/// New calls started and refused by reason (their rate: `rate(svi_calls_total[1m])`).
fn calls(e: &mut Exposition, engine: &engine::EngineHandle) {
    let Ok(counts) = engine.admission() else {
        return;
    };
    e.single(
        "svi_calls_total",
        Kind::Counter,
        "New calls started on this node.",
        counts.admitted as f64,
    );
    let refused: Vec<Sample<'_>> = counts
        .refused
        .iter()
        .map(|(r, n)| (vec![("reason", r.as_str().to_string())], *n as f64))
        .collect();
    e.family(
        "svi_calls_refused_total",
        Kind::Counter,
        "New calls refused before they started, by reason.",
        &refused,
    );
}

/// RTP over every stream since the start, from the streams' own stats snapshots.
fn rtp(e: &mut Exposition, t: &engine::media::tally::RtpTotals) {
    let n = |v: u64| v as f64;
    e.family(
        "svi_rtp_packets_total",
        Kind::Counter,
        "RTP packets sent and received (distinct, from the latched source).",
        &[
            (vec![("direction", "sent".to_string())], n(t.packets_sent)),
            (
                vec![("direction", "received".to_string())],
                n(t.packets_received),
            ),
        ],
    );
    for (name, help, v) in [
        (
            "svi_rtp_packets_lost_total",
            "RTP packets expected but never received (RFC 3550).",
            t.packets_lost,
        ),
        (
            "svi_rtp_packets_late_total",
            "RTP packets that came too late or out of sequence to be played.",
            t.packets_late,
        ),
        (
            "svi_rtp_packets_duplicate_total",
            "RTP packets received twice.",
            t.packets_duplicate,
        ),
    ] {
        e.single(name, Kind::Counter, help, n(v));
    }
    e.family(
        "svi_rtp_packets_refused_total",
        Kind::Counter,
        "RTP and RTCP datagrams refused, by reason.",
        &[
            (
                vec![("reason", "unexpected_source".to_string())],
                n(t.packets_unexpected_source),
            ),
            (
                vec![("reason", "srtp".to_string())],
                n(t.packets_srtp_refused),
            ),
        ],
    );
    e.single(
        "svi_rtp_streams",
        Kind::Gauge,
        "RTP streams open now.",
        n(t.streams),
    );
    e.single(
        "svi_rtp_jitter_max_seconds",
        Kind::Gauge,
        "The largest interarrival jitter among the streams open now (RFC 3550; includes up to 20 ms of polling).",
        t.jitter_max.as_secs_f64(),
    );
}

/// SIP: requests by method and responses by status code (both ways), datagrams and
/// connections the edge refused, and the agents' digest authentication (failures, bans).
async fn sip(e: &mut Exposition, engine: &engine::EngineHandle) {
    if let Ok(s) = engine.sip_stats().await {
        let ep = &s.endpoint;
        let requests: Vec<Sample<'_>> = ep
            .requests_received
            .iter()
            .map(|(m, n)| (vec![("method", m.to_string())], n as f64))
            .collect();
        e.family(
            "svi_sip_requests_total",
            Kind::Counter,
            "SIP requests received (retransmissions included), by method.",
            &requests,
        );
        let mut responses: Vec<Sample<'_>> = Vec::new();
        for (direction, counts) in [
            ("sent", &ep.responses_sent),
            ("received", &ep.responses_received),
        ] {
            for (code, n) in counts.iter() {
                responses.push((
                    vec![
                        ("direction", direction.to_string()),
                        ("code", code.to_string()),
                    ],
                    n as f64,
                ));
            }
        }
        e.family(
            "svi_sip_responses_total",
            Kind::Counter,
            "SIP responses sent and received, by status code.",
            &responses,
        );
        e.single(
            "svi_sip_edge_refused_total",
            Kind::Counter,
            "SIP datagrams and connections refused by sip.allowed_networks.",
            s.edge_refused as f64,
        );
    }
    if let Ok(g) = engine.auth_stats() {
        e.single(
            "svi_sip_auth_failures_total",
            Kind::Counter,
            "Failed SIP digest authentications of agents' phones.",
            g.failures as f64,
        );
        e.family(
            "svi_sip_auth_bans_total",
            Kind::Counter,
            "Bans started after repeated SIP digest failures, by what was banned.",
            &[
                (vec![("kind", "source".to_string())], g.source_bans as f64),
                (vec![("kind", "user".to_string())], g.user_bans as f64),
            ],
        );
        e.single(
            "svi_sip_refused_while_banned_total",
            Kind::Counter,
            "SIP requests refused because their source or user was banned.",
            g.refused_while_banned as f64,
        );
        e.family(
            "svi_sip_banned",
            Kind::Gauge,
            "Sources and users banned now.",
            &[
                (
                    vec![("kind", "source".to_string())],
                    g.banned_sources_now as f64,
                ),
                (
                    vec![("kind", "user".to_string())],
                    g.banned_users_now as f64,
                ),
            ],
        );
    }
}

/// Failed authentications: the API's logins and keys, the cluster link's connections.
fn auth(e: &mut Exposition, state: &AdminState) {
    let f = state.auth_failures();
    let read =
        |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
    e.family(
        "svi_api_auth_failures_total",
        Kind::Counter,
        "Admin API requests refused for their credentials: wrong user or password at login, unknown or revoked API keys.",
        &[
            (vec![("kind", "login".to_string())], read(&f.login)),
            (vec![("kind", "api_key".to_string())], read(&f.key)),
        ],
    );
    e.single(
        "svi_cluster_auth_failures_total",
        Kind::Counter,
        "Cluster connections refused for a bad secret.",
        *state.node().auth_failures().borrow() as f64,
    );
}

/// Queue sizes and longest waits per queue; agents per state.
fn acd(e: &mut Exposition, snapshot: &AcdSnapshot) {
    let per_queue = |f: &dyn Fn(&engine::acd::QueueSnapshot) -> f64| -> Vec<Sample<'static>> {
        snapshot
            .queues
            .iter()
            .map(|q| (vec![("queue", q.id.as_str().to_string())], f(q)))
            .collect()
    };
    e.family(
        "svi_queue_calls_waiting",
        Kind::Gauge,
        "Calls waiting in the queue (callbacks included).",
        &per_queue(&|q| f64::from(q.waiting)),
    );
    e.family(
        "svi_queue_longest_wait_seconds",
        Kind::Gauge,
        "The longest current wait in the queue (0 when none waits).",
        &per_queue(&|q| q.longest_wait.map_or(0.0, |d| d.as_secs_f64())),
    );
    let states = [
        "logged_out",
        "ready",
        "not_ready",
        "reserved",
        "ringing",
        "talking",
        "wrap_up",
    ];
    let mut counts = [0u32; 7];
    for a in &snapshot.agents {
        let i = match a.state {
            AgentState::LoggedOut => 0,
            AgentState::Ready => 1,
            AgentState::NotReady { .. } => 2,
            AgentState::Reserved { .. } => 3,
            AgentState::Ringing { .. } => 4,
            AgentState::Talking { .. } => 5,
            AgentState::WrapUp { .. } => 6,
        };
        counts[i] += 1;
    }
    let samples: Vec<Sample<'_>> = states
        .iter()
        .zip(counts)
        .map(|(s, n)| (vec![("state", s.to_string())], f64::from(n)))
        .collect();
    e.family("svi_agents", Kind::Gauge, "Agents per state.", &samples);
}

/// The plug-ins' connectors (data sources and actions): circuit breaker, calls, failures
/// and the backend's latency, labelled by connector name and kind.
fn connectors(e: &mut Exposition, health: &[ConnectorHealth]) {
    let labels =
        |h: &ConnectorHealth| vec![("connector", h.name.clone()), ("kind", h.kind.to_string())];
    let per = |f: &dyn Fn(&ConnectorHealth) -> f64| -> Vec<Sample<'static>> {
        health.iter().map(|h| (labels(h), f(h))).collect()
    };
    e.family(
        "svi_connector_circuit_open",
        Kind::Gauge,
        "1 while the connector's circuit breaker is open (calls refused without reaching the backend).",
        &per(&|h| f64::from(u8::from(h.circuit == CircuitState::Open))),
    );
    for (name, help, value) in [
        (
            "svi_connector_calls_total",
            "Calls made by flows to the connector (cache hits and refusals included).",
            (|h: &ConnectorHealth| h.calls) as fn(&ConnectorHealth) -> u64,
        ),
        (
            "svi_connector_errors_total",
            "Calls that ended in an error (timeouts and refusals by the open circuit included).",
            |h| h.errors,
        ),
        (
            "svi_connector_timeouts_total",
            "Errors that were timeouts (the step's or the connector's deadline).",
            |h| h.timeouts,
        ),
        (
            "svi_connector_refused_open_total",
            "Calls refused at once because the circuit was open.",
            |h| h.refused_open,
        ),
        (
            "svi_connector_circuit_opened_total",
            "Times the connector's circuit opened.",
            |h| h.circuit_opened,
        ),
    ] {
        e.family(name, Kind::Counter, help, &per(&|h| value(h) as f64));
    }
    let latency: Vec<_> = health
        .iter()
        .map(|h| (labels(h), h.latency_seconds_sum, h.latency_count))
        .collect();
    e.summary(
        "svi_connector_latency_seconds",
        "Durations of the calls that reached the backend.",
        &latency,
    );
}

/// The active alarms: one sample per alarm raised now (absent once it clears).
fn alarms(e: &mut Exposition, snapshot: &AlarmSnapshot) {
    let active: Vec<Sample<'_>> = snapshot
        .active
        .iter()
        .map(|a| {
            (
                vec![
                    ("kind", a.kind.as_str().to_string()),
                    ("subject", a.subject.clone()),
                    ("severity", a.severity.as_str().to_string()),
                ],
                1.0,
            )
        })
        .collect();
    e.family(
        "svi_alarm_active",
        Kind::Gauge,
        "1 per alarm raised now; subject is what the alarm is about (a node, a trunk, a connector, a file).",
        &active,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::alarm::{Alarm, AlarmKind, Severity};
    use engine::connectors::Role;

    #[test]
    fn connectors_and_active_alarms_are_labelled_families() {
        let mut e = Exposition::default();
        let health = ConnectorHealth {
            name: "visitor_appointment".into(),
            kind: "access_control",
            role: Role::DataSource,
            circuit: CircuitState::Open,
            failures_in_a_row: 3,
            calls: 4,
            found: 0,
            not_found: 0,
            errors: 4,
            timeouts: 3,
            refused_open: 1,
            circuit_opened: 1,
            retries: 0,
            cache_hits: 0,
            latency_seconds_sum: 6.0,
            latency_count: 3,
            last_latency_ms: 2000,
        };
        connectors(&mut e, &[health]);
        let alarm = Alarm {
            kind: AlarmKind::CircuitOpen,
            subject: "visitor_appointment".into(),
            severity: Severity::Major,
            message: "m".into(),
            raised_at: chrono::Utc::now(),
            source: "connectors".into(),
        };
        alarms(
            &mut e,
            &AlarmSnapshot {
                active: vec![alarm],
                ..AlarmSnapshot::default()
            },
        );
        let text = e.finish();
        let l = "{connector=\"visitor_appointment\",kind=\"access_control\"}";
        for line in [
            format!("svi_connector_circuit_open{l} 1"),
            format!("svi_connector_calls_total{l} 4"),
            format!("svi_connector_errors_total{l} 4"),
            format!("svi_connector_timeouts_total{l} 3"),
            format!("svi_connector_refused_open_total{l} 1"),
            format!("svi_connector_circuit_opened_total{l} 1"),
            "# TYPE svi_connector_latency_seconds summary".into(),
            format!("svi_connector_latency_seconds_sum{l} 6"),
            format!("svi_connector_latency_seconds_count{l} 3"),
            "svi_alarm_active{kind=\"circuit_open\",subject=\"visitor_appointment\",severity=\"major\"} 1".into(),
        ] {
            assert!(text.lines().any(|t| t == line), "{line}:\n{text}");
        }
    }
}
