//! `GET /metrics` (an API key with the `metrics` role, or an admin): the engine's figures
//! in Prometheus' text format, read at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use engine::acd::{AcdSnapshot, AgentState};

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
    // Queues and agents, from the ACD's snapshot (absent on a witness).
    if let Ok(snapshot) = engine.acd().await {
        acd(&mut e, &snapshot);
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
    e.single(
        "svi_cluster_auth_failures_total",
        Kind::Counter,
        "Cluster connections refused for a bad secret.",
        *state.node().auth_failures().borrow() as f64,
    );

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
