//! `GET /metrics` (an API key with the `metrics` role, or an admin): the engine's figures
//! in Prometheus' text format, read at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::metrics::{Exposition, Kind};
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
            engine::recording::free_bytes(&dir)
                .or_else(|_| engine::recording::free_bytes(&data))
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
