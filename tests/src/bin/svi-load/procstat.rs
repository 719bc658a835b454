//! CPU time and resident memory of a process, and the machine's busy time, from `/proc`.
//!
//! CPU is `utime + stime` of `/proc/PID/stat` (all threads of the process, in clock ticks),
//! read at the start and end of a measurement window; memory is `VmRSS` of
//! `/proc/PID/status`. On loopback, the kernel work of delivering a datagram is done in the
//! sender's context, so a process is charged for the packets it sends (including their
//! delivery to the peer's socket) and for reading the packets it receives.

use std::time::Instant;

use serde_json::{json, Value};

use crate::hist::round3;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// stime alone: time in the kernel (here mostly socket system calls).
    pub system_ticks: u64,
    pub rss_kib: u64,
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// Reads `pid`'s CPU ticks and RSS; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: fields are
    // counted after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcSample {
        at,
        ticks: utime + stime,
        system_ticks: stime,
        rss_kib: rss_kib(pid).unwrap_or(0),
    })
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// CPU seconds used between two samples, and the share of one CPU over the interval.
pub fn cpu_between(a: &ProcSample, b: &ProcSample, tck: u64) -> (f64, f64) {
    let secs = b.ticks.saturating_sub(a.ticks) as f64 / tck as f64;
    let wall = b.at.saturating_duration_since(a.at).as_secs_f64();
    let share = if wall > 0.0 { secs / wall } else { 0.0 };
    (secs, share)
}

/// The machine's busy and total jiffies (first line of `/proc/stat`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineSample {
    busy: u64,
    /// Softirq time: on loopback, much of the packet delivery runs there, charged to no
    /// process.
    softirq: u64,
    total: u64,
}

pub fn machine() -> MachineSample {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return MachineSample::default();
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    MachineSample {
        busy: total.saturating_sub(idle),
        softirq: v.get(6).copied().unwrap_or(0),
        total,
    }
}

/// Busy share of the whole machine (all CPUs) between two samples, in percent.
pub fn machine_busy_pct(a: &MachineSample, b: &MachineSample) -> f64 {
    let total = b.total.saturating_sub(a.total);
    if total == 0 {
        return 0.0;
    }
    round3(100.0 * b.busy.saturating_sub(a.busy) as f64 / total as f64)
}

/// Softirq share of the whole machine between two samples, in percent.
pub fn machine_softirq_pct(a: &MachineSample, b: &MachineSample) -> f64 {
    let total = b.total.saturating_sub(a.total);
    if total == 0 {
        return 0.0;
    }
    round3(100.0 * b.softirq.saturating_sub(a.softirq) as f64 / total as f64)
}

/// A window's CPU figures for the measured process, the generator itself and the machine.
pub struct CpuWindow {
    pub target: Option<(ProcSample, ProcSample)>,
    pub me: (ProcSample, ProcSample),
    pub machine: (MachineSample, MachineSample),
}

impl CpuWindow {
    /// CPU seconds of the measured process in the window.
    pub fn target_secs(&self, tck: u64) -> Option<f64> {
        self.target.as_ref().map(|(a, b)| cpu_between(a, b, tck).0)
    }

    pub fn to_json(&self, tck: u64) -> Value {
        let target = self.target.as_ref().map(|(a, b)| {
            let (secs, share) = cpu_between(a, b, tck);
            let system = b.system_ticks.saturating_sub(a.system_ticks) as f64 / tck as f64;
            json!({
                "cpu_secs": round3(secs),
                "cpu_pct": round3(share * 100.0),
                "system_share_pct": if secs > 0.0 { round3(100.0 * system / secs) } else { 0.0 },
                "rss_kib": b.rss_kib,
            })
        });
        let (secs, share) = cpu_between(&self.me.0, &self.me.1, tck);
        json!({
            "target": target,
            "generator": {"cpu_secs": round3(secs), "cpu_pct": round3(share * 100.0)},
            "machine_busy_pct": machine_busy_pct(&self.machine.0, &self.machine.1),
            "machine_softirq_pct": machine_softirq_pct(&self.machine.0, &self.machine.1),
        })
    }
}

/// Starts a window: samples the target (if any), this process and the machine.
pub fn window_start(pid: Option<u32>) -> (Option<ProcSample>, ProcSample, MachineSample) {
    let me = sample(std::process::id()).unwrap_or(ProcSample {
        at: Instant::now(),
        ticks: 0,
        system_ticks: 0,
        rss_kib: 0,
    });
    (pid.and_then(sample), me, machine())
}

/// Ends a window started with [`window_start`].
pub fn window_end(
    pid: Option<u32>,
    start: (Option<ProcSample>, ProcSample, MachineSample),
) -> CpuWindow {
    let (target, me, m) = window_start(pid);
    CpuWindow {
        target: start.0.zip(target),
        me: (start.1, me),
        machine: (start.2, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(machine().total > 0);
        assert!(clk_tck() > 0);
    }
}
