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
//!
//! With `--answer-on IP:PORT`, the generator is also the second party of bridged calls: the
//! engine's flow transfers each call to that address (`bench/flows/relay.yaml`) and the
//! target role (`answer`) answers, so a step waits until every call is bridged and its
//! window counts the four streams of each call. `--recordings-dir` adds the engine's WAV
//! files (count, size, bytes written in the window) to each step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::answer::{self, AnswerCmd, AnswerCounters, AnswerHandle, LEG_BASE};
use crate::args::Args;
use crate::echo::EchoChild;
use crate::hist::{round3, sample_summary};
use crate::lanes::{ssrc_for, Lanes, MediaStart};
use crate::procstat::{self, clk_tck};
use crate::rtp::{dtmf_event, Codec, DtmfPlan, Outbound, TELEPHONE_EVENT_PT};
use crate::rx::RxTotals;
use crate::signalling::{self, CallReport, SipCmd, SipCounters, SipHandle, SipOptions};
use crate::tx::{TxTotals, FRAME};

pub const USAGE: &str = "svi-load calls (--target IP:PORT | --echo) [--pid PID] [--calls N | --steps 100,200,.. and/or --steps-from JSON]
    [--hold 30s] [--rate 200] [--settle 1s] [--dtmf-at 3s | --no-dtmf] [--digit 1] [--codec pcmu|pcma]
    [--service 100] [--lanes 2] [--threads 2] [--invite-timeout 8s] [--max-loss-pct 0.1] [--max-p99-ms 10]
    [--deadline 300s] [--answer-on IP:PORT] [--record-percent 0] [--recordings-dir DIR]
    [--exec-when-up CMD] [--label NAME] [--json FILE] [--per-call]";

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
    "answer-on",
    "record-percent",
    "recordings-dir",
    "exec-when-up",
    "label",
    "json",
];
const FLAGS: &[&str] = &["echo", "no-dtmf", "per-call"];

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
    /// The target role's SIP address: calls are bridged to it.
    answer_on: Option<SocketAddr>,
    /// The share of bridged calls the engine is configured to record (its `[recording]`
    /// decides; carried into the report).
    record_percent: u32,
    recordings_dir: Option<PathBuf>,
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
    // Both lists given: their union (the echo baseline covers the ramp's steps and the
    // relay variants' packet rates).
    let mut steps = match a.str("steps-from") {
        Some(file) => steps_of(file)?,
        None => Vec::new(),
    };
    match a.str("steps") {
        Some(s) => {
            for x in s.split(',') {
                steps.push(
                    x.trim()
                        .parse::<u32>()
                        .map_err(|e| anyhow!("--steps `{x}`: {e}"))?,
                );
            }
            steps.sort_unstable();
            steps.dedup();
        }
        None if steps.is_empty() => steps.push(a.get("calls", 20u32)?),
        None => {}
    }
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
    let answer_on = match a.str("answer-on") {
        Some(t) if echo => bail!("--answer-on `{t}`: the echo baseline bridges nothing"),
        Some(t) => Some(t.parse().map_err(|e| anyhow!("--answer-on `{t}`: {e}"))?),
        None => None,
    };
    let record_percent = a.get("record-percent", 0u32)?;
    if record_percent > 100 {
        bail!("--record-percent is a percentage");
    }
    if record_percent > 0 && answer_on.is_none() {
        bail!("--record-percent: the engine records bridged calls only (use --answer-on)");
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
        answer_on,
        record_percent,
        recordings_dir: a.str("recordings-dir").map(PathBuf::from),
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
    let target_role = match opts.answer_on {
        Some(addr) => Some(
            answer::start(addr, opts.codec, Arc::clone(&lanes))
                .await
                .with_context(|| format!("--answer-on {addr}"))?,
        ),
        None => None,
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
                let after = wait_watch(&sip.counters, limit, |c| {
                    c.answered + c.failed >= placed_total
                })
                .await;
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
                // Bridged calls: every answered call's flow calls the target role.
                let unbridged = match &target_role {
                    Some(t) => {
                        let legs = wait_watch(&t.counters, opts.invite_timeout, |c| {
                            c.answered + c.refused >= after.answered
                        })
                        .await;
                        s["bridged"] = json!(legs.answered);
                        after.answered.saturating_sub(legs.answered)
                    }
                    None => 0,
                };
                s["not_bridged"] = json!(unbridged);
                (s, failed + unanswered + unbridged)
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
        let legs_before = legs_of(&target_role);
        let recordings_before = opts.recordings_dir.as_deref().map(recordings);
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
        let legs_after = legs_of(&target_role);
        let legs_dropped = (legs_after.ended_by_engine + legs_after.no_ack)
            - (legs_before.ended_by_engine + legs_before.no_ack);
        let dropped = sip_after.ended_by_engine - sip_before.ended_by_engine + legs_dropped;
        // Streams the engine sends on: one per call, plus one per bridged leg.
        let streams = u64::from(active) + legs_after.active;
        let recordings_json = recordings_before
            .zip(opts.recordings_dir.as_deref().map(recordings))
            .map(|((_, bytes_before), (files, bytes))| {
                json!({
                    "files": files,
                    "bytes": bytes,
                    "written_in_window": bytes.saturating_sub(bytes_before),
                })
            });

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
                "{dropped} calls or legs ended by the engine during the window"
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
        if rx.calls_heard < streams {
            reasons.push(format!(
                "{} of {streams} calls or legs received no RTP in the window",
                streams - rx.calls_heard
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
            "legs_active": target_role.as_ref().map(|_| legs_after.active),
            "recordings": recordings_json,
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
            wait_watch(&sip.counters, limit, |c| {
                c.active == 0 && c.ended_by_us + c.ended_by_engine + c.bye_failed >= c.answered
            })
            .await;
            // The engine hangs up the second legs after the callers.
            if let Some(t) = &target_role {
                wait_watch(&t.counters, Duration::from_secs(10), |c| c.active == 0).await;
            }
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
    let legs = match &target_role {
        Some(t) => {
            let (reply, take) = oneshot::channel();
            let _ = t.commands.send(AnswerCmd::Legs(reply));
            take.await.unwrap_or_default()
        }
        None => Vec::new(),
    };
    let counters = counters_of(&peer);
    let is_leg = |call: u32| call >= LEG_BASE;
    // Every stream's packets; calls and legs with RTP counted apart.
    let totals = json!({
        "sent": tx_totals.iter().map(|t| t.sent).sum::<u64>(),
        "received": rx_totals.iter().map(|t| t.received).sum::<u64>(),
        "expected": rx_totals.iter().map(|t| t.expected).sum::<u64>(),
        "digits": tx_totals.iter().map(|t| t.digits).sum::<u64>(),
        "calls_with_rtp": rx_totals.iter().filter(|t| t.received > 0 && !is_leg(t.call)).count(),
        "legs_with_rtp": rx_totals.iter().filter(|t| t.received > 0 && is_leg(t.call)).count(),
    });
    let per_call = if opts.per_call {
        per_call_lines(&sip_calls, &legs, &tx_totals, &rx_totals)
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
            "relay": opts.answer_on.is_some(),
        },
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": pid.map(|_| peak_rss),
        "after_rss_kib": after_rss,
        "steps": steps,
        "max_passing_calls": max_passing,
        "stop_reason": stop_reason,
        "teardown_secs": round3(teardown_secs),
        "sip": (!opts.echo).then(|| sip_json(&counters)),
        "legs": target_role.as_ref().map(|_| legs_json(&legs_of(&target_role))),
        "exec": exec_report,
        "totals": totals,
        "per_call": per_call,
        "elapsed_secs": round3(started.elapsed().as_secs_f64()),
    }))
}

/// One line per call and per bridged leg (`role`), whatever saw it: signalling or lanes.
fn per_call_lines(
    sip_calls: &[CallReport],
    legs: &[CallReport],
    tx_totals: &[TxTotals],
    rx_totals: &[RxTotals],
) -> Vec<Value> {
    let mut numbers: Vec<u32> = sip_calls
        .iter()
        .chain(legs)
        .map(|c| c.call)
        .chain(tx_totals.iter().map(|t| t.call))
        .chain(rx_totals.iter().map(|r| r.call))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
        .into_iter()
        .map(|call| {
            let s = sip_calls.iter().chain(legs).find(|c| c.call == call);
            let t = tx_totals.iter().find(|c| c.call == call);
            let r = rx_totals.iter().find(|c| c.call == call);
            json!({
                "call": call,
                "role": if call >= LEG_BASE { "target" } else { "caller" },
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
}

/// The engine's recordings: how many WAV files `dir` holds, and their total size.
fn recordings(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
}

fn legs_of(target_role: &Option<AnswerHandle>) -> AnswerCounters {
    target_role
        .as_ref()
        .map(|t| t.counters.borrow().clone())
        .unwrap_or_default()
}

fn legs_json(c: &AnswerCounters) -> Value {
    json!({
        "invited": c.invited,
        "answered": c.answered,
        "acked": c.acked,
        "ended_by_engine": c.ended_by_engine,
        "no_ack": c.no_ack,
        "refused": c.refused,
        "ok_retransmits": c.ok_retransmits,
        "unparsable": c.unparsable,
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

/// Waits until the watched counters satisfy `done`, or `limit` passes; returns the last ones.
async fn wait_watch<T: Clone>(
    counters: &watch::Receiver<T>,
    limit: Duration,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut rx = counters.clone();
    let _ = tokio::time::timeout(limit, rx.wait_for(|c| done(c))).await;
    let c = rx.borrow().clone();
    c
}

/// RSS after the calls ended: sampled every 250 ms until it stops falling (at most 5 s).
/// RSS once it has stopped falling for 2 s (the allocator gives freed pages back about a
/// second after they fall idle), at most 10 s after the calls ended.
async fn settle_rss(pid: u32) -> Option<u64> {
    let mut low = procstat::rss_kib(pid)?;
    let mut steady = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = procstat::rss_kib(pid)?;
        if now < low {
            low = now;
            steady = 0;
        } else {
            steady += 1;
            if steady == 8 {
                break;
            }
        }
    }
    Some(low)
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
