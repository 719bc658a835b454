//! `svi-load calls`: N concurrent two-way calls, or a ramp of steps, with measurements per step.
//!
//! Each step adds calls up to its target (paced at `--rate`), lets them settle, then opens a
//! measurement window of `--hold`: lanes and `/proc` are sampled at both ends, and the window
//! yields the step's figures (RTP sent/received/lost, the engine's inter-arrival deviation,
//! CPU per packet, memory per call, setup times). A ramp stops at the first step whose loss or
//! p99 deviation exceeds the limits, or when the next step would not fit in `--deadline`.
//!
//! With `--echo`, the same media is driven against `svi-load echo` (started here as a child
//! process, one UDP socket per call, no SIP): the cost floor the engine is compared with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::args::Args;
use crate::echo::EchoChild;
use crate::hist::{round3, sample_summary};
use crate::lanes::{ssrc_for, Lanes, MediaStart};
use crate::procstat::{self, clk_tck};
use crate::rtp::{dtmf_event, Codec, DtmfPlan, Outbound, TELEPHONE_EVENT_PT};
use crate::signalling::{self, SipCmd, SipCounters, SipHandle, SipOptions};
use crate::tx::FRAME;

pub const USAGE: &str = "svi-load calls (--target IP:PORT | --echo) [--pid PID] [--calls N | --steps 100,200,.. | --steps-from JSON]
    [--hold 30s] [--rate 200] [--settle 1s] [--dtmf-at 3s | --no-dtmf] [--digit 1] [--codec pcmu|pcma]
    [--service 100] [--lanes 2] [--threads 2] [--invite-timeout 8s] [--max-loss-pct 0.1] [--max-p99-ms 10]
    [--deadline 300s] [--record-percent 0] [--relay] [--exec-when-up CMD] [--label NAME]
    [--json FILE] [--per-call]";

const VALUED: &[&str] = &[
    "target",
    "pid",
    "calls",
    "steps",
    "steps-from",
    "hold",
    "rate",
    "settle",
    "dtmf-at",
    "digit",
    "codec",
    "service",
    "lanes",
    "threads",
    "invite-timeout",
    "max-loss-pct",
    "max-p99-ms",
    "deadline",
    "record-percent",
    "exec-when-up",
    "label",
    "json",
];
const FLAGS: &[&str] = &["echo", "no-dtmf", "relay", "per-call"];

struct Options {
    target: Option<SocketAddr>,
    echo: bool,
    pid: Option<u32>,
    steps: Vec<u32>,
    hold: Duration,
    rate: f64,
    settle: Duration,
    dtmf: Option<(Duration, u8)>,
    codec: Codec,
    service: String,
    lanes: usize,
    threads: usize,
    invite_timeout: Duration,
    max_loss_pct: f64,
    max_p99_ms: f64,
    deadline: Option<Duration>,
    record_percent: u32,
    relay: bool,
    exec_when_up: Option<String>,
    label: String,
    json: Option<String>,
    per_call: bool,
}

fn options(argv: &[String]) -> Result<Options> {
    let a = Args::parse(argv, VALUED, FLAGS)?;
    let echo = a.flag("echo");
    let target = match a.str("target") {
        Some(t) => Some(t.parse().map_err(|e| anyhow!("--target `{t}`: {e}"))?),
        None if echo => None,
        None => bail!("--target IP:PORT (the engine) or --echo is required\n{USAGE}"),
    };
    let steps = match (a.str("steps-from"), a.str("steps")) {
        (Some(file), _) => steps_of(file)?,
        (None, Some(s)) => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<u32>()
                    .map_err(|e| anyhow!("--steps `{x}`: {e}"))
            })
            .collect::<Result<Vec<_>>>()?,
        (None, None) => vec![a.get("calls", 20u32)?],
    };
    if steps.is_empty() || steps.contains(&0) || steps.windows(2).any(|w| w[1] < w[0]) {
        bail!("--steps must be positive and increasing");
    }
    let digit = a.str("digit").unwrap_or("1");
    let event = digit
        .chars()
        .next()
        .and_then(dtmf_event)
        .ok_or_else(|| anyhow!("--digit `{digit}` is not a DTMF key"))?;
    let dtmf = if a.flag("no-dtmf") {
        None
    } else {
        Some((a.duration("dtmf-at", Duration::from_secs(3))?, event))
    };
    let codec_name = a.str("codec").unwrap_or("pcmu");
    let codec = Codec::parse(codec_name).ok_or_else(|| anyhow!("--codec `{codec_name}`"))?;
    let rate: f64 = a.get("rate", 200.0)?;
    if !(rate > 0.0 && rate <= 10_000.0) {
        bail!("--rate must be in (0, 10000]");
    }
    let record_percent = a.get("record-percent", 0u32)?;
    if record_percent > 100 {
        bail!("--record-percent is a percentage");
    }
    Ok(Options {
        target,
        echo,
        pid: a.str("pid").map(str::parse).transpose()?,
        steps,
        hold: a.duration("hold", Duration::from_secs(30))?,
        rate,
        settle: a.duration("settle", Duration::from_secs(1))?,
        dtmf,
        codec,
        service: a.str("service").unwrap_or("100").to_string(),
        lanes: a.get("lanes", 2usize)?.clamp(1, 64),
        threads: a.get("threads", 2usize)?.clamp(1, 16),
        invite_timeout: a.duration("invite-timeout", Duration::from_secs(8))?,
        max_loss_pct: a.get("max-loss-pct", 0.1)?,
        max_p99_ms: a.get("max-p99-ms", 10.0)?,
        deadline: a
            .str("deadline")
            .map(crate::args::parse_duration)
            .transpose()?,
        record_percent,
        relay: a.flag("relay"),
        exec_when_up: a.str("exec-when-up").map(str::to_string),
        label: a
            .str("label")
            .unwrap_or(if echo { "echo" } else { "engine" })
            .to_string(),
        json: a.str("json").map(str::to_string),
        per_call: a.flag("per-call"),
    })
}

/// The step sizes another run measured (its JSON), so the baseline matches the engine's ramp.
fn steps_of(file: &str) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("parse {file}"))?;
    let steps: Vec<u32> = v["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["calls"].as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default();
    if steps.is_empty() {
        bail!("{file} has no measured steps");
    }
    Ok(steps)
}

pub fn main(argv: &[String]) -> Result<()> {
    let opts = options(argv)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&opts))?;
    let text = serde_json::to_string_pretty(&result)?;
    match &opts.json {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("write {path}"))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// What carries the calls: the engine over SIP, or the echo baseline.
enum Peer {
    Engine(SipHandle),
    Echo(Box<EchoChild>),
}

async fn run(opts: &Options) -> Result<Value> {
    if !opts.echo && (opts.record_percent > 0 || opts.relay) {
        return Ok(unavailable(opts));
    }
    let started = Instant::now();
    let tck = clk_tck();
    let ip = opts
        .target
        .map(|t| t.ip())
        .unwrap_or_else(|| "127.0.0.1".parse().expect("literal IP"));
    let lanes = Arc::new(Lanes::start(opts.lanes, ip, opts.codec)?);
    let max_calls = *opts.steps.last().expect("steps is not empty");
    let peer = match opts.target {
        Some(target) if !opts.echo => Peer::Engine(
            signalling::start(
                SipOptions {
                    target,
                    service: opts.service.clone(),
                    codec: opts.codec,
                    invite_timeout: opts.invite_timeout,
                    dtmf: opts.dtmf,
                },
                Arc::clone(&lanes),
            )
            .await?,
        ),
        _ => Peer::Echo(Box::new(EchoChild::spawn(max_calls, ip).await?)),
    };
    let pid = match &peer {
        Peer::Echo(child) => Some(child.pid()),
        Peer::Engine(_) => opts.pid,
    };
    let idle_rss = pid.and_then(procstat::rss_kib);
    let mut steps = Vec::new();
    let mut active: u32 = 0;
    let mut stop_reason = Value::Null;
    let mut max_passing: u32 = 0;
    let mut exec_report = Value::Null;
    let mut peak_rss = idle_rss.unwrap_or(0);
    for (index, &target_calls) in opts.steps.iter().enumerate() {
        let to_add = target_calls.saturating_sub(active);
        let needed = Duration::from_secs_f64(f64::from(to_add) / opts.rate)
            + opts.settle
            + opts.hold
            + Duration::from_secs(2);
        if let Some(deadline) = opts.deadline {
            if index > 0 && started.elapsed() + needed > deadline {
                stop_reason = json!(format!(
                    "time budget: step {target_calls} would end after the {}s deadline",
                    deadline.as_secs()
                ));
                break;
            }
        }
        // Set up the new calls.
        let setup_started = Instant::now();
        let (setup, failed_setup) = match &peer {
            Peer::Engine(sip) => {
                let before = sip.counters.borrow().clone();
                let _ = sip.commands.send(SipCmd::Place {
                    first: active_first(&before),
                    count: to_add,
                    rate: opts.rate,
                });
                let placed_total = before.placed + u64::from(to_add);
                let limit = Duration::from_secs_f64(f64::from(to_add) / opts.rate)
                    + opts.invite_timeout
                    + Duration::from_secs(2);
                let after =
                    wait_counters(sip, limit, |c| c.answered + c.failed >= placed_total).await;
                let (reply, take) = oneshot::channel();
                let _ = sip.commands.send(SipCmd::TakeSetup(reply));
                let mut times = take.await.unwrap_or_default();
                let failed = after.failed - before.failed;
                let unanswered = placed_total.saturating_sub(after.answered + after.failed);
                active = after.active as u32;
                let mut s = sample_summary(&mut times);
                s["attempted"] = json!(to_add);
                s["ok"] = json!(after.answered - before.answered);
                s["failed"] = json!(failed + unanswered);
                s["failures"] = json!(after.failures);
                (s, failed + unanswered)
            }
            Peer::Echo(child) => {
                for call in active..target_calls {
                    let remote = child.port(call).ok_or_else(|| anyhow!("no echo port"))?;
                    lanes.start_media(MediaStart {
                        call,
                        remote,
                        outbound: Outbound::new(
                            opts.codec.pt(),
                            TELEPHONE_EVENT_PT,
                            ssrc_for(call),
                            opts.dtmf.map(|(after, event)| DtmfPlan {
                                at_frame: (after.as_millis() / FRAME.as_millis()) as u64,
                                event,
                            }),
                        ),
                    });
                }
                active = target_calls;
                (json!({"attempted": to_add, "ok": to_add, "failed": 0}), 0)
            }
        };
        let setup_secs = setup_started.elapsed().as_secs_f64();
        tokio::time::sleep(opts.settle).await;

        // The measurement window.
        let _ = lanes.cut().await;
        let sip_before = counters_of(&peer);
        let window_start = procstat::window_start(pid);
        let window_opened = Instant::now();
        let is_last = index + 1 == opts.steps.len();
        let exec = match (&opts.exec_when_up, is_last) {
            (Some(cmd), true) => Some(start_exec(cmd, pid, active)?),
            _ => None,
        };
        tokio::time::sleep(opts.hold).await;
        if let Some(child) = exec {
            exec_report = finish_exec(child, opts.hold + Duration::from_secs(120)).await;
        }
        let (rx, tx) = lanes.cut().await;
        let cpu = procstat::window_end(pid, window_start);
        let window_secs = window_opened.elapsed().as_secs_f64();
        let sip_after = counters_of(&peer);
        let dropped = sip_after.ended_by_engine - sip_before.ended_by_engine;

        let loss_pct = if rx.expected > 0 {
            100.0 * rx.lost() as f64 / rx.expected as f64
        } else {
            0.0
        };
        let p99_ms = rx.deviation.percentile_us(99.0) as f64 / 1000.0;
        // Packets through the measured process: what we sent it and what it sent us.
        let packets = tx.sent + rx.expected;
        let target_cpu = cpu.target_secs(tck);
        let cpu_per_packet_us = target_cpu
            .filter(|_| packets > 0)
            .map(|s| round3(s * 1e6 / packets as f64));
        let rss = cpu.target.as_ref().map(|(_, b)| b.rss_kib);
        peak_rss = peak_rss.max(rss.unwrap_or(0));
        let rss_per_call = match (rss, idle_rss) {
            (Some(r), Some(i)) if active > 0 => {
                Some(round3(r.saturating_sub(i) as f64 / f64::from(active)))
            }
            _ => None,
        };
        let mut reasons = Vec::new();
        if failed_setup > 0 {
            reasons.push(format!("{failed_setup} calls failed to set up"));
        }
        if dropped > 0 {
            reasons.push(format!(
                "{dropped} calls ended by the engine during the window"
            ));
        }
        if loss_pct > opts.max_loss_pct {
            reasons.push(format!("loss {:.3} % > {} %", loss_pct, opts.max_loss_pct));
        }
        if p99_ms > opts.max_p99_ms {
            reasons.push(format!(
                "p99 inter-arrival deviation {p99_ms:.3} ms > {} ms",
                opts.max_p99_ms
            ));
        }
        if rx.calls_heard < u64::from(active) {
            reasons.push(format!(
                "{} of {active} calls received no RTP in the window",
                u64::from(active) - rx.calls_heard
            ));
        }
        let pass = reasons.is_empty();
        if pass {
            max_passing = active;
        }
        steps.push(json!({
            "calls": target_calls,
            "active": active,
            "setup": setup,
            "setup_secs": round3(setup_secs),
            "window_secs": round3(window_secs),
            "rtp": {
                "sent": tx.sent,
                "send_errors": tx.send_errors,
                "received": rx.received,
                "expected": rx.expected,
                "lost": rx.lost(),
                "loss_pct": (loss_pct * 1e6).round() / 1e6,
                "late": rx.late,
                "stray": rx.stray,
                "rtcp": rx.rtcp,
                "calls_heard": rx.calls_heard,
                "deviation": rx.deviation.summary(),
            },
            "generator_tick_lateness": tx.tick_lateness.summary(),
            "dtmf_sent": tx.digits,
            "dropped": dropped,
            "packets_through_target": packets,
            "cpu": cpu.to_json(tck),
            "cpu_per_packet_us": cpu_per_packet_us,
            "rss_kib": rss,
            "rss_per_call_kib": rss_per_call,
            "pass": pass,
            "reasons": reasons,
        }));
        eprintln!(
            "svi-load [{}] step {target_calls}: loss {loss_pct:.3} %, p99 {p99_ms:.2} ms, cpu {} , {}",
            opts.label,
            target_cpu
                .map(|s| format!("{:.1} %", 100.0 * s / window_secs))
                .unwrap_or_else(|| "-".into()),
            if pass { "pass" } else { "FAIL" }
        );
        if !pass {
            stop_reason = json!(format!("step {target_calls}: {}", reasons.join("; ")));
            break;
        }
    }

    // Tear down, then see whether memory returns to its idle level.
    let teardown_started = Instant::now();
    match &peer {
        Peer::Engine(sip) => {
            let _ = sip.commands.send(SipCmd::HangupAll { rate: opts.rate });
            let limit =
                Duration::from_secs_f64(f64::from(active) / opts.rate) + Duration::from_secs(10);
            wait_counters(sip, limit, |c| {
                c.active == 0 && c.ended_by_us + c.ended_by_engine + c.bye_failed >= c.answered
            })
            .await;
        }
        Peer::Echo(_) => {
            for call in 0..active {
                lanes.stop_media(call);
            }
        }
    }
    let teardown_secs = teardown_started.elapsed().as_secs_f64();
    let after_rss = match pid {
        Some(p) => settle_rss(p).await,
        None => None,
    };
    let (rx_totals, tx_totals) = lanes.totals().await;
    let sip_calls = match &peer {
        Peer::Engine(sip) => {
            let (reply, take) = oneshot::channel();
            let _ = sip.commands.send(SipCmd::Calls(reply));
            take.await.unwrap_or_default()
        }
        Peer::Echo(_) => Vec::new(),
    };
    let counters = counters_of(&peer);
    let totals = json!({
        "sent": tx_totals.iter().map(|t| t.sent).sum::<u64>(),
        "received": rx_totals.iter().map(|t| t.received).sum::<u64>(),
        "expected": rx_totals.iter().map(|t| t.expected).sum::<u64>(),
        "digits": tx_totals.iter().map(|t| t.digits).sum::<u64>(),
        "calls_with_rtp": rx_totals.iter().filter(|t| t.received > 0).count(),
    });
    let per_call: Vec<Value> = if opts.per_call {
        let calls = tx_totals.len().max(sip_calls.len()).max(rx_totals.len());
        (0..calls as u32)
            .map(|call| {
                let s = sip_calls.iter().find(|c| c.call == call);
                let t = tx_totals.iter().find(|c| c.call == call);
                let r = rx_totals.iter().find(|c| c.call == call);
                json!({
                    "call": call,
                    "call_id": s.map(|s| s.call_id.clone()),
                    "outcome": s.map(|s| s.outcome),
                    "setup_ms": s.and_then(|s| s.setup_ms).map(round3),
                    "sent": t.map(|t| t.sent),
                    "digits": t.map(|t| t.digits),
                    "received": r.map(|r| r.received),
                    "expected": r.map(|r| r.expected),
                    "first_packet_ms": r.and_then(|r| r.first_packet_ms).map(round3),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    if let Peer::Echo(child) = peer {
        child.stop().await;
    }
    lanes.stop();
    Ok(json!({
        "kind": "calls",
        "label": opts.label,
        "mode": if opts.echo { "echo" } else { "engine" },
        "target": opts.target.map(|t| t.to_string()),
        "pid": pid,
        "codec": opts.codec.name(),
        "lanes": opts.lanes,
        "hold_secs": opts.hold.as_secs_f64(),
        "rate": opts.rate,
        "dtmf_at_secs": opts.dtmf.map(|(d, _)| d.as_secs_f64()),
        "limits": {"max_loss_pct": opts.max_loss_pct, "max_p99_ms": opts.max_p99_ms},
        "variant": {
            "record_percent": opts.record_percent,
            "relay": opts.relay,
            // The engine has neither recording nor bridging yet: the parameters are carried
            // so the report can say so, and will be sent to the engine once it honours them.
            "available": opts.record_percent == 0 && !opts.relay,
        },
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": pid.map(|_| peak_rss),
        "after_rss_kib": after_rss,
        "steps": steps,
        "max_passing_calls": max_passing,
        "stop_reason": stop_reason,
        "teardown_secs": round3(teardown_secs),
        "sip": (!opts.echo).then(|| sip_json(&counters)),
        "exec": exec_report,
        "totals": totals,
        "per_call": per_call,
        "elapsed_secs": round3(started.elapsed().as_secs_f64()),
    }))
}

/// A variant the engine cannot run yet: nothing is placed, the report says why.
fn unavailable(opts: &Options) -> Value {
    let missing = if opts.relay {
        "calls bridged to agents need the ACD (queues with agents), which the engine does not have yet"
    } else {
        "the engine does not record calls yet"
    };
    json!({
        "kind": "calls",
        "label": opts.label,
        "mode": "engine",
        "target": opts.target.map(|t| t.to_string()),
        "variant": {"record_percent": opts.record_percent, "relay": opts.relay, "available": false},
        "steps": [],
        "max_passing_calls": Value::Null,
        "stop_reason": missing,
    })
}

/// The next call number: calls are numbered from 0 in the order placed.
fn active_first(c: &SipCounters) -> u32 {
    c.placed as u32
}

fn counters_of(peer: &Peer) -> SipCounters {
    match peer {
        Peer::Engine(sip) => sip.counters.borrow().clone(),
        Peer::Echo(_) => SipCounters::default(),
    }
}

fn sip_json(c: &SipCounters) -> Value {
    json!({
        "placed": c.placed,
        "answered": c.answered,
        "failed": c.failed,
        "failures": c.failures,
        "ended_by_us": c.ended_by_us,
        "ended_by_engine": c.ended_by_engine,
        "bye_failed": c.bye_failed,
        "invite_retransmits": c.invite_retransmits,
        "bye_retransmits": c.bye_retransmits,
        "unparsable": c.unparsable,
    })
}

/// Waits until the counters satisfy `done`, or `limit` passes; returns the last counters.
async fn wait_counters(
    sip: &SipHandle,
    limit: Duration,
    done: impl Fn(&SipCounters) -> bool,
) -> SipCounters {
    let mut rx = sip.counters.clone();
    let _ = tokio::time::timeout(limit, rx.wait_for(|c| done(c))).await;
    let c = rx.borrow().clone();
    c
}

/// RSS after the calls ended: sampled every 250 ms until it stops falling (at most 5 s).
async fn settle_rss(pid: u32) -> Option<u64> {
    let mut last = procstat::rss_kib(pid)?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = procstat::rss_kib(pid)?;
        if now >= last {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

fn start_exec(cmd: &str, pid: Option<u32>, calls: u32) -> Result<tokio::process::Child> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c").arg(cmd);
    if let Some(p) = pid {
        c.env("SVI_LOAD_PID", p.to_string());
    }
    c.env("SVI_LOAD_CALLS", calls.to_string());
    c.kill_on_drop(true);
    c.spawn().with_context(|| format!("run `{cmd}`"))
}

async fn finish_exec(mut child: tokio::process::Child, limit: Duration) -> Value {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => json!({"exit": status.code()}),
        Ok(Err(e)) => json!({"error": e.to_string()}),
        Err(_) => {
            let _ = child.kill().await;
            json!({"error": "timed out; killed"})
        }
    }
}
