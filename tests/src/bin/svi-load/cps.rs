//! `svi-load cps`: the highest rate of short calls (INVITE, 200, ACK, BYE, 200) sustained with
//! zero failed calls, after RFC 7501's "session establishment rate", with sipp as the caller.
//!
//! The search is bounded in time: short probes (`--probe`, default 5 s) double the rate from
//! `--start` until one fails or `--max-rate` passes, bisect between the last pass and the
//! first failure, then a confirmation run of `--confirm` (60 s) at the best rate; if that one
//! fails the rate is lowered by a fifth and confirmed again while the budget allows. A trial
//! passes when sipp exits 0, every call succeeded, and the calls took no more than 10 % (+1 s)
//! longer than the nominal duration (otherwise the rate was not actually sustained).
//!
//! `--baseline` runs against a sipp UAS (`sipp -sn uas`) started here: the cost of the same
//! signalling between two copies of the load tool. With `--at RATE` (the engine's confirmed
//! rate) it first runs the confirmation at that rate, so the CPU per call of engine and
//! baseline compare at the same rate, then probes upwards with the budget left, which shows
//! the load tool's own ceiling on this machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::args::Args;
use crate::hist::round3;
use crate::procstat::{self, clk_tck};

pub const USAGE: &str = "svi-load cps (--target IP:PORT [--pid PID] | --baseline) [--at RATE] [--start 250] [--max-rate 4000]
    [--probe 5s] [--confirm 60s] [--budget 180s] [--gap 2s] [--rss-settle 0s] [--dir DIR] [--label NAME] [--json FILE]";

struct Options {
    target: Option<SocketAddr>,
    /// Confirm at this rate first, then only probe upwards (see `run`).
    at: Option<u32>,
    pid: Option<u32>,
    baseline: bool,
    start: u32,
    max_rate: u32,
    probe: Duration,
    confirm: Duration,
    budget: Duration,
    gap: Duration,
    /// After the last trial, wait this long and read the engine's RSS again: the
    /// transactions of the last calls live for Timer L and Timer J (64 x T1), and the
    /// allocator gives pages back after a delay.
    rss_settle: Duration,
    dir: PathBuf,
    label: String,
    json: Option<String>,
}

pub fn main(argv: &[String]) -> Result<()> {
    let a = Args::parse(
        argv,
        &[
            "target",
            "pid",
            "at",
            "start",
            "max-rate",
            "probe",
            "confirm",
            "budget",
            "gap",
            "dir",
            "label",
            "json",
            "rss-settle",
        ],
        &["baseline"],
    )?;
    let baseline = a.flag("baseline");
    let target = a
        .str("target")
        .map(|t| t.parse().map_err(|e| anyhow!("--target `{t}`: {e}")))
        .transpose()?;
    if target.is_none() && !baseline {
        bail!("--target or --baseline is required\n{USAGE}");
    }
    let dir = match a.str("dir") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("svi-load-cps-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let opts = Options {
        target,
        at: a.str("at").map(str::parse).transpose()?,
        pid: a.str("pid").map(str::parse).transpose()?,
        baseline,
        start: a.get("start", 250u32)?.max(1),
        max_rate: a.get("max-rate", 4000u32)?.max(1),
        probe: a.duration("probe", Duration::from_secs(5))?,
        confirm: a.duration("confirm", Duration::from_secs(60))?,
        budget: a.duration("budget", Duration::from_secs(180))?,
        gap: a.duration("gap", Duration::from_secs(2))?,
        rss_settle: a.duration("rss-settle", Duration::ZERO)?,
        dir,
        label: a
            .str("label")
            .unwrap_or(if baseline { "sipp-uas" } else { "engine" })
            .to_string(),
        json: a.str("json").map(str::to_string),
    };
    let result = run(&opts)?;
    let text = serde_json::to_string_pretty(&result)?;
    match &opts.json {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("write {path}"))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// A sipp UAS for the baseline, killed when dropped.
struct Uas {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the sipp UAS, with a global timeout so that it ends by itself even if this process
/// is killed before it can stop it.
fn start_uas(dir: &Path, lifetime: Duration) -> Result<Uas> {
    // A free port: bind, note it, release it for sipp.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new("sipp")
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-nostdin",
        ])
        .arg("-timeout")
        .arg(format!("{}s", lifetime.as_secs()))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start sipp -sn uas (is sip-tester installed?)")?;
    let mut uas = Uas { child, addr };
    // Ready once sipp holds the port (it answers no OPTIONS): probe by binding it ourselves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(addr).is_ok() {
        if let Ok(Some(status)) = uas.child.try_wait() {
            bail!("sipp -sn uas exited at once: {status}");
        }
        if Instant::now() > deadline {
            bail!("sipp -sn uas did not bind {addr} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(uas)
}

struct Trial {
    rate: u32,
    secs: f64,
    pass: bool,
    json: Value,
}

fn run(opts: &Options) -> Result<Value> {
    let started = Instant::now();
    let tck = clk_tck();
    let uas = if opts.baseline {
        Some(start_uas(
            &opts.dir,
            opts.budget + Duration::from_secs(120),
        )?)
    } else {
        None
    };
    let (target, pid) = match &uas {
        Some(u) => (u.addr, Some(u.child.id())),
        None => (opts.target.expect("checked in main"), opts.pid),
    };
    let left = |reserve: Duration| -> bool { started.elapsed() + reserve <= opts.budget };
    // The worst case of a probe: sipp's own timeout (duration + 10 s) plus the gap.
    let probe_cost = opts.probe + Duration::from_secs(10) + opts.gap;
    let confirm_cost = opts.confirm + Duration::from_secs(5) + opts.gap;
    let mut trials: Vec<Trial> = Vec::new();
    let mut lo: Option<u32> = None;
    let mut hi: Option<u32> = None;
    let mut confirmed: Option<u32> = None;
    settle(pid, opts.gap, tck);

    if let Some(at) = opts.at {
        let t = trial(target, pid, at, opts.confirm, &opts.dir, tck, "confirm")?;
        if t.pass {
            confirmed = Some(at);
            lo = Some(at);
        } else {
            hi = Some(at);
        }
        trials.push(t);
        settle(pid, opts.gap, tck);
        let mut rate = at.saturating_mul(2).min(opts.max_rate);
        while confirmed.is_some() && rate > at && left(probe_cost) {
            let t = trial(target, pid, rate, opts.probe, &opts.dir, tck, "probe")?;
            let pass = t.pass;
            trials.push(t);
            settle(pid, opts.gap, tck);
            if !pass {
                hi = Some(rate);
                break;
            }
            lo = Some(rate);
            if rate >= opts.max_rate {
                break;
            }
            rate = rate.saturating_mul(2).min(opts.max_rate);
        }
        return Ok(report(opts, target, started, &trials, lo, hi, confirmed));
    }

    // Probe upwards (or downwards from a failing start).
    let mut rate = opts.start.min(opts.max_rate);
    while left(probe_cost + confirm_cost) {
        let t = trial(target, pid, rate, opts.probe, &opts.dir, tck, "probe")?;
        let pass = t.pass;
        trials.push(t);
        settle(pid, opts.gap, tck);
        if pass {
            lo = Some(rate);
            if rate >= opts.max_rate || hi.is_some() {
                break;
            }
            rate = (rate * 2).min(opts.max_rate);
        } else {
            hi = Some(rate);
            if lo.is_some() || rate <= 10 {
                break;
            }
            rate /= 2;
        }
    }
    // Bisect between the last pass and the first failure, to within 10 %.
    while let (Some(l), Some(h)) = (lo, hi) {
        if h <= l || f64::from(h) / f64::from(l) <= 1.1 || !left(probe_cost + confirm_cost) {
            break;
        }
        let mid = ((l + h) / 2 / 10 * 10).max(l + 1);
        let t = trial(target, pid, mid, opts.probe, &opts.dir, tck, "probe")?;
        if t.pass {
            lo = Some(mid);
        } else {
            hi = Some(mid);
        }
        trials.push(t);
        settle(pid, opts.gap, tck);
    }
    // Confirm for the full duration; step down while it fails.
    let mut candidate = lo;
    while let Some(r) = candidate {
        if !left(confirm_cost) {
            break;
        }
        let t = trial(target, pid, r, opts.confirm, &opts.dir, tck, "confirm")?;
        let pass = t.pass;
        trials.push(t);
        if pass {
            confirmed = Some(r);
            break;
        }
        settle(pid, opts.gap, tck);
        candidate = Some(r * 4 / 5).filter(|&x| x >= 10);
    }
    drop(uas);
    let mut out = report(opts, target, started, &trials, lo, hi, confirmed);
    if let (Some(pid), false) = (pid, opts.rss_settle.is_zero()) {
        let before = procstat::rss_kib(pid);
        std::thread::sleep(opts.rss_settle);
        out["rss_before_settle_kib"] = json!(before);
        out["rss_settled_kib"] = json!(procstat::rss_kib(pid));
        out["rss_settle_secs"] = json!(opts.rss_settle.as_secs_f64());
    }
    Ok(out)
}

fn report(
    opts: &Options,
    target: SocketAddr,
    started: Instant,
    trials: &[Trial],
    lo: Option<u32>,
    hi: Option<u32>,
    confirmed: Option<u32>,
) -> Value {
    let best = confirmed.and_then(|r| {
        trials
            .iter()
            .rev()
            .find(|t| t.rate == r && t.pass && t.secs >= opts.confirm.as_secs_f64())
            .map(|t| t.json.clone())
    });
    json!({
        "kind": "cps",
        "label": opts.label,
        "mode": if opts.baseline { "sipp-uas" } else { "engine" },
        "target": target.to_string(),
        "at_rate": opts.at,
        "probe_secs": opts.probe.as_secs_f64(),
        "confirm_secs": opts.confirm.as_secs_f64(),
        "max_rate": opts.max_rate,
        "best_probe_rate": lo,
        "first_failed_rate": hi,
        "confirmed_rate": confirmed,
        "confirmed": best,
        "capped": lo == Some(opts.max_rate),
        "trials": trials.iter().map(|t| t.json.clone()).collect::<Vec<_>>(),
        "elapsed_secs": round3(started.elapsed().as_secs_f64()),
    })
}

/// One sipp run at `rate` calls per second for `duration`.
fn trial(
    target: SocketAddr,
    pid: Option<u32>,
    rate: u32,
    duration: Duration,
    dir: &Path,
    tck: u64,
    kind: &str,
) -> Result<Trial> {
    let secs = duration.as_secs_f64();
    let calls = (f64::from(rate) * secs).round().max(1.0) as u64;
    let stat = dir.join(format!("stat-{kind}-{rate}-{}.csv", calls));
    let _ = std::fs::remove_file(&stat);
    let timeout = duration + Duration::from_secs(10);
    let before = pid.and_then(procstat::sample);
    let t0 = Instant::now();
    let mut child = Command::new("sipp")
        .arg(target.to_string())
        .args([
            "-sn",
            "uac",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout_error",
            "-trace_err",
        ])
        .args(["-r", &rate.to_string(), "-rp", "1000"])
        .args(["-m", &calls.to_string(), "-d", "0"])
        // At most one second of calls in progress: a stalled engine shows up as failures
        // rather than as thousands of half-open calls.
        .args(["-l", &rate.max(10).to_string()])
        .arg("-timeout")
        .arg(format!("{}s", timeout.as_secs()))
        .args(["-trace_stat", "-fd", "1", "-stf"])
        .arg(&stat)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start sipp -sn uac (is sip-tester installed?)")?;
    let sipp_pid = child.id();
    let status = wait_bounded(&mut child, timeout + Duration::from_secs(10));
    let (error_count, errors) = sipp_errors(&dir.join(format!("uac_{sipp_pid}_errors.log")));
    let elapsed = t0.elapsed().as_secs_f64();
    let after = pid.and_then(procstat::sample);
    let stats = read_stat(&stat);
    let get = |name: &str| stats.as_ref().and_then(|s| s.get(name)).cloned();
    let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    let successful = num("SuccessfulCall(C)").unwrap_or(0);
    let failed = num("FailedCall(C)").unwrap_or(0);
    let created = num("TotalCallCreated").unwrap_or(0);
    let exit = status.and_then(|s| s.code());
    let sustained = elapsed <= secs * 1.1 + 1.0;
    let pass = exit == Some(0) && successful == calls && failed == 0 && sustained;
    let cpu_secs = match (before, after) {
        (Some(a), Some(b)) => Some(procstat::cpu_between(&a, &b, tck).0),
        _ => None,
    };
    let cpu_per_call_us = cpu_secs
        .filter(|_| successful > 0)
        .map(|s| round3(s * 1e6 / successful as f64));
    let mut reasons = Vec::new();
    if exit != Some(0) {
        reasons.push(format!("sipp exit {exit:?}"));
    }
    if failed > 0 || successful != calls {
        reasons.push(format!(
            "{successful} of {calls} calls succeeded, {failed} failed"
        ));
    }
    if !sustained {
        reasons.push(format!("took {elapsed:.1} s for a nominal {secs:.0} s"));
    }
    eprintln!(
        "svi-load cps {kind} {rate}/s x {secs:.0} s: {} ({successful}/{calls} ok, {elapsed:.1} s)",
        if pass { "pass" } else { "FAIL" }
    );
    Ok(Trial {
        rate,
        secs,
        pass,
        json: json!({
            "kind": kind,
            "rate": rate,
            "secs": secs,
            "calls": calls,
            "created": created,
            "successful": successful,
            "failed": failed,
            "retransmissions": num("Retransmissions(C)"),
            "response_time_ms": get("ResponseTime1(C)").and_then(|v| sipp_time_ms(&v)),
            "call_length_ms": get("CallLength(C)").and_then(|v| sipp_time_ms(&v)),
            "elapsed_secs": round3(elapsed),
            "achieved_rate": round3(successful as f64 / elapsed.max(0.001)),
            "cpu_secs": cpu_secs.map(round3),
            "cpu_per_call_us": cpu_per_call_us,
            "rss_kib": after.map(|a| a.rss_kib),
            "exit": exit,
            "pass": pass,
            "reasons": reasons,
            "sipp_events": error_count,
            "sipp_first_events": errors,
        }),
    })
}

/// Waits at least `gap`, then until the measured process is quiet (under 10 % of a CPU over
/// half a second), at most 20 s: an overloaded engine keeps working through its backlog
/// (retransmitted INVITEs, transactions) after sipp stops, and the next trial must not
/// inherit it.
fn settle(pid: Option<u32>, gap: Duration, tck: u64) {
    std::thread::sleep(gap);
    let Some(pid) = pid else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = procstat::sample(pid);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = procstat::sample(pid);
        match (last, now) {
            (Some(a), Some(b)) if procstat::cpu_between(&a, &b, tck).1 < 0.10 => return,
            (_, None) => return,
            _ => last = now,
        }
    }
}

/// The events of sipp's `-trace_err` log: how many, and the first few (one line each).
fn sipp_errors(path: &Path) -> (usize, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0, Vec::new());
    };
    // Each event starts with "<date>\t<time>\t<epoch>: "; messages quoted in it span lines.
    // A quoted message ends with `'`, and the next event follows on the same line.
    let events: Vec<String> = text
        .lines()
        .map(|l| l.trim_start_matches('\''))
        .filter(|l| l.len() > 11 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'\t')
        .map(|l| {
            let message = l.split_once(": ").map_or(l, |x| x.1);
            message.chars().take(160).collect()
        })
        .collect();
    let first = events.iter().take(5).cloned().collect();
    (events.len(), first)
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

/// The last line of a sipp `-trace_stat` CSV, by column name.
fn read_stat(path: &Path) -> Option<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    Some(
        header
            .iter()
            .zip(last)
            .map(|(h, v)| (h.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// sipp's `HH:MM:SS:uuuuuu` durations, in ms.
fn sipp_time_ms(v: &str) -> Option<f64> {
    let parts: Vec<u64> = v
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s, us] = parts[..] else {
        return None;
    };
    Some(round3(
        ((h * 3600 + m * 60 + s) * 1_000_000 + us) as f64 / 1000.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_error_events() {
        let dir = std::env::temp_dir().join(format!("svi-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("uac_1_errors.log");
        std::fs::write(
            &log,
            "The following events occurred:\n2026-11-21\t14:56:41.3\t1795273001.3: Dead call 1 (successful), received 'SIP/2.0 200 OK\nVia: x\n\n'2026-11-21\t14:56:42.3\t1795273002.3: Aborting call 2\n",
        )
        .expect("write");
        let (n, first) = sipp_errors(&log);
        assert_eq!(n, 2);
        assert!(first[0].starts_with("Dead call 1"));
        assert_eq!(first[1], "Aborting call 2");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sipp_durations() {
        assert_eq!(sipp_time_ms("00:00:00:004000"), Some(4.0));
        assert_eq!(sipp_time_ms("00:00:01:000500"), Some(1000.5));
        assert_eq!(sipp_time_ms("x"), None);
    }
}
