//! Replicated write throughput and commit latency on loopback: two full nodes and a witness
//! in this process, call-record-sized commands. Prints numbers, asserts nothing.
//!
//! `cargo run -p svi-ha --release --example ha_bench [-- SEQUENTIAL CONCURRENT WRITERS]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use engine::storage::CallRecord;
use ha::{Command, HaConfig, HaNode, LogRetention, MemberKind, NodeInfo, Role, Secret, Timings};

fn call(i: usize) -> CallRecord {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
        .single()
        .expect("time");
    serde_json::from_value(serde_json::json!({
        "id": format!("bench-{i:08}"),
        "sip_call_id": format!("{i:016x}@pbx.example.com"),
        "started_at": t,
        "answered_at": t,
        "ended_at": t + chrono::Duration::seconds(95),
        "caller": "+33123456789",
        "called": "3900",
        "flow": "service-desk",
        "flow_version": "2026-11-20T09:12:00Z",
        "path": ["welcome", "hours", "main_menu", "identify", "queue_support", "agent"],
        "end_reason": "caller_hangup",
        "codec": "PCMA",
        "node": "svi-a",
        "rtp_sent": 4750,
        "rtp_received": 4749,
        "queue": "support",
        "agent": "agent-042",
        "queued_at": t,
        "agent_answered_at": t,
    }))
    .expect("call record")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sequential = args.first().copied().unwrap_or(1000);
    let concurrent = args.get(1).copied().unwrap_or(5000);
    let writers = args.get(2).copied().unwrap_or(32);

    let dir = tempfile::tempdir().expect("tempdir");
    // Hold the listeners until all ports are chosen so that they are distinct.
    let held: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let mut members = BTreeMap::new();
    let kinds = [
        (1, MemberKind::Full),
        (2, MemberKind::Full),
        (3, MemberKind::Witness),
    ];
    for ((id, kind), l) in kinds.into_iter().zip(&held) {
        let cluster_addr = l.local_addr().expect("addr").to_string();
        members.insert(
            id,
            NodeInfo {
                cluster_addr,
                sip_addr: None,
                kind,
            },
        );
    }
    drop(held);
    let mut nodes = Vec::new();
    for id in [1u64, 2, 3] {
        let cfg = HaConfig {
            node_id: id,
            data_dir: dir.path().join(format!("node{id}")),
            listen: Some(members[&id].cluster_addr.parse().expect("addr")),
            members: members.clone(),
            secret: Secret::new("bench-secret-0123456789"),
            pins: BTreeMap::new(),
            timings: Timings::default(),
            retention: LogRetention::default(),
            recordings: None,
        };
        nodes.push(Arc::new(HaNode::start(cfg).await.expect("start")));
    }
    let active = nodes[0].clone();
    let mut role = active.role();
    tokio::time::timeout(
        Duration::from_secs(20),
        role.wait_for(|r| *r == Role::Active),
    )
    .await
    .expect("active in time")
    .expect("role");
    let size = serde_json::to_vec(&Command::InsertCall(Box::new(call(0))))
        .expect("json")
        .len();
    println!("3 nodes on loopback (2 full + witness), command size {size} bytes as JSON");

    let mut lat = Vec::with_capacity(sequential);
    let t = Instant::now();
    for i in 0..sequential {
        let s = Instant::now();
        active
            .propose(Command::InsertCall(Box::new(call(i))))
            .await
            .expect("propose");
        lat.push(s.elapsed());
    }
    let total = t.elapsed();
    lat.sort();
    println!(
        "sequential: {sequential} writes in {total:.2?} = {:.0}/s; commit latency p50 {:.2?} p99 {:.2?} max {:.2?}",
        sequential as f64 / total.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let node = active.clone();
        let n = concurrent / writers;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let s = Instant::now();
                node.propose(Command::InsertCall(Box::new(call(1_000_000 + w * n + i))))
                    .await
                    .expect("propose");
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.expect("writer"));
    }
    let total = t.elapsed();
    lat.sort();
    println!(
        "{writers} concurrent writers: {} writes in {total:.2?} = {:.0}/s; commit latency p50 {:.2?} p99 {:.2?}",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
    for n in &nodes {
        n.shutdown().await;
    }
}
