//! `svi-load report`: joins the JSON written by the other subcommands into one report,
//! `<stamp>.json` and `<stamp>.md` under `--out-dir`, plus `latest.md` and `latest.json`.
//!
//! The Markdown opens with the targets of the capacity issue and whether each was met, then
//! the ramp (engine and baseline side by side, with the CPU-per-packet ratio), calls per
//! second, the variants (calls bridged to a second party, without and with 20 % recorded,
//! compared with the echo at the same packet rate and with the ramp at the same number of
//! calls) and the profile summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::args::Args;

pub const USAGE: &str =
    "svi-load report --out-dir DIR --stamp STAMP [--meta FILE] [--ramp FILE] [--baseline FILE]
    [--cps FILE] [--cps-baseline FILE] [--variant FILE]... (comma-separated) [--profile FILE]";

/// The targets of the capacity issue.
const TARGET_CALLS: u64 = 500;
const TARGET_RECORDED_CALLS: u64 = 400;
const TARGET_LOSS_PCT: f64 = 0.1;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_CPU_RATIO: f64 = 1.5;
const TARGET_CPS: u64 = 1000;
const TARGET_KIB_PER_CALL: f64 = 100.0;

pub fn main(argv: &[String]) -> Result<()> {
    let a = Args::parse(
        argv,
        &[
            "out-dir",
            "stamp",
            "meta",
            "ramp",
            "baseline",
            "cps",
            "cps-baseline",
            "variant",
            "profile",
        ],
        &[],
    )?;
    let out_dir = PathBuf::from(a.str("out-dir").ok_or_else(|| anyhow!("--out-dir"))?);
    let stamp = a.str("stamp").ok_or_else(|| anyhow!("--stamp"))?;
    let load = |name: &str| -> Result<Value> {
        match a.str(name) {
            Some(p) => read_json(Path::new(p)),
            None => Ok(Value::Null),
        }
    };
    let variants: Vec<Value> = match a.str("variant") {
        Some(list) => list
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| read_json(Path::new(p)))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let profile = match a.str("profile") {
        Some(p) => std::fs::read_to_string(p).unwrap_or_else(|e| format!("(no profile: {e})")),
        None => String::new(),
    };
    let report = json!({
        "stamp": stamp,
        "meta": load("meta")?,
        "ramp": load("ramp")?,
        "baseline": load("baseline")?,
        "cps": load("cps")?,
        "cps_baseline": load("cps-baseline")?,
        "variants": variants,
        "profile": profile,
    });
    let mut report = report;
    report["summary"] = summary(&report);
    let md = markdown(&report);
    std::fs::create_dir_all(&out_dir)?;
    let text = serde_json::to_string_pretty(&report)? + "\n";
    for (name, body) in [
        (format!("{stamp}.json"), &text),
        (format!("{stamp}.md"), &md),
        ("latest.json".to_string(), &text),
        ("latest.md".to_string(), &md),
    ] {
        let path = out_dir.join(&name);
        std::fs::write(&path, body).with_context(|| format!("write {}", path.display()))?;
    }
    println!("{}", out_dir.join(format!("{stamp}.md")).display());
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
        }
        // A phase that did not run (time budget, failure) leaves no file: reported as missing.
        Err(_) => Ok(Value::Null),
    }
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn steps(run: &Value) -> &[Value] {
    run["steps"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The baseline step with the same number of calls.
fn baseline_step<'a>(baseline: &'a Value, calls: &Value) -> Option<&'a Value> {
    steps(baseline).iter().find(|s| s["calls"] == *calls)
}

fn ratio(engine: &Value, baseline: Option<&Value>) -> Option<f64> {
    let e = f(&engine["cpu_per_packet_us"])?;
    let b = f(&baseline?["cpu_per_packet_us"])?;
    (b > 0.0).then(|| (e / b * 100.0).round() / 100.0)
}

fn meets_call_target(step: &Value) -> bool {
    step["pass"] == true
        && f(&step["rtp"]["loss_pct"]).is_some_and(|l| l < TARGET_LOSS_PCT)
        && f(&step["rtp"]["deviation"]["p99_ms"]).is_some_and(|p| p <= TARGET_P99_MS)
}

/// Each target of the issue: what was measured and whether it is met.
fn summary(r: &Value) -> Value {
    let ramp = &r["ramp"];
    let base = &r["baseline"];
    let best = steps(ramp)
        .iter()
        .filter(|s| meets_call_target(s))
        .filter_map(|s| s["calls"].as_u64())
        .max();
    // CPU ratio at the highest step both runs measured.
    let ratio_step = steps(ramp)
        .iter()
        .rev()
        .find(|s| baseline_step(base, &s["calls"]).is_some());
    let cpu_ratio = ratio_step.and_then(|s| ratio(s, baseline_step(base, &s["calls"])));
    let per_call = steps(ramp)
        .iter()
        .filter_map(|s| f(&s["rss_per_call_kib"]))
        .fold(None::<f64>, |m, x| Some(m.map_or(x, |m| m.max(x))));
    let idle = ramp["idle_rss_kib"].as_u64();
    let after = ramp["after_rss_kib"].as_u64();
    // "Back to idle": within 15 % of the idle RSS once the calls have ended.
    let returns = idle.zip(after).map(|(i, a)| a as f64 <= i as f64 * 1.15);
    let cps = r["cps"]["confirmed_rate"].as_u64();
    // RSS after the calls-per-second trials (tens of thousands more calls): whether memory
    // kept after the ramp is reused or grows.
    let after_cps = r["cps"]["trials"]
        .as_array()
        .and_then(|t| t.last())
        .and_then(|t| t["rss_kib"].as_u64());
    // The same once the last calls' transactions have ended (Timer L/J) and the allocator
    // has given freed pages back: what the engine keeps for good.
    let settled = r["cps"]["rss_settled_kib"].as_u64();
    let recorded = variant(r, true);
    let recorded_best = recorded.and_then(|v| {
        steps(v)
            .iter()
            .filter(|s| meets_call_target(s))
            .filter_map(|s| s["calls"].as_u64())
            .max()
    });
    json!({
        "concurrent_calls": {
            "target": format!("≥ {TARGET_CALLS} calls, loss < {TARGET_LOSS_PCT} %, p99 ≤ {TARGET_P99_MS} ms"),
            "measured": best,
            "met": best.is_some_and(|b| b >= TARGET_CALLS),
            "limited_by_budget": ramp["stop_reason"].as_str().is_some_and(|s| s.starts_with("time budget"))
                || ramp["stop_reason"].is_null(),
        },
        "recorded_calls": {
            "target": format!("≥ {TARGET_RECORDED_CALLS} calls with 20 % recorded"),
            "measured": recorded_best,
            "met": recorded.map(|_| recorded_best.is_some_and(|b| b >= TARGET_RECORDED_CALLS)),
            "limited_by_budget": recorded.is_some_and(|v| v["stop_reason"].as_str()
                .is_some_and(|s| s.starts_with("time budget")) || v["stop_reason"].is_null()),
        },
        "cpu_ratio": {
            "target": format!("engine CPU per packet ≤ {TARGET_CPU_RATIO} x the UDP echo baseline"),
            "measured": cpu_ratio,
            "at_calls": ratio_step.map(|s| s["calls"].clone()),
            "met": cpu_ratio.map(|x| x <= TARGET_CPU_RATIO),
        },
        "calls_per_second": {
            "target": format!("≥ {TARGET_CPS} calls/s for 60 s, zero failures"),
            "measured": cps,
            "baseline": r["cps_baseline"]["confirmed_rate"].clone(),
            "baseline_probe": r["cps_baseline"]["best_probe_rate"].clone(),
            "met": cps.map(|c| c >= TARGET_CPS),
        },
        "memory": {
            "target": format!("< {TARGET_KIB_PER_CALL} KiB per call, back to idle after"),
            "max_kib_per_call": per_call,
            "idle_rss_kib": idle,
            "after_rss_kib": after,
            "peak_rss_kib": ramp["peak_rss_kib"].clone(),
            "after_cps_rss_kib": after_cps,
            "after_cps_settled_rss_kib": settled,
            "settle_secs": r["cps"]["rss_settle_secs"].clone(),
            "returns_to_idle": returns,
            "met": per_call.map(|p| p < TARGET_KIB_PER_CALL && returns == Some(true)),
        },
    })
}

fn yes_no(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "n/a",
    }
}

fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".into(),
    }
}

fn opt(v: &Value) -> String {
    if v.is_null() {
        "none".into()
    } else {
        v.to_string()
    }
}

fn mib(v: &Value) -> String {
    match v.as_u64() {
        Some(k) => format!("{:.1}", k as f64 / 1024.0),
        None => "-".into(),
    }
}

fn markdown(r: &Value) -> String {
    let mut md = String::new();
    let meta = &r["meta"];
    let s = &r["summary"];
    let _ = writeln!(
        md,
        "# svi capacity benchmark, {}\n",
        r["stamp"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        md,
        "Machine: {} CPU(s), {}, {} MiB RAM; commit `{}`; engine `{}`; load generator and \
         engine on the same machine, loopback only. Bench duration: {} s.\n",
        meta["nproc"],
        meta["cpu_model"].as_str().unwrap_or("?"),
        meta["mem_mib"],
        meta["commit"].as_str().unwrap_or("?"),
        meta["engine"].as_str().unwrap_or("svi run (release)"),
        meta["bench_secs"],
    );

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | result |\n|---|---|---|");
    let c = &s["concurrent_calls"];
    let _ = writeln!(
        md,
        "| {} | {} | {}{} |",
        c["target"].as_str().unwrap_or(""),
        c["measured"]
            .as_u64()
            .map(|n| format!("{n} calls"))
            .unwrap_or_else(|| "no step met it".into()),
        yes_no(&c["met"]),
        if c["limited_by_budget"] == true {
            " (ramp ended by its time budget or step list, not by a limit)"
        } else {
            ""
        }
    );
    let rc = &s["recorded_calls"];
    let _ = writeln!(
        md,
        "| {} (bridged calls: only they are recorded) | {} | {}{} |",
        rc["target"].as_str().unwrap_or(""),
        match (rc["measured"].as_u64(), rc["met"].is_null()) {
            (_, true) => "the variant did not run".to_string(),
            (Some(n), false) => format!("{n} calls"),
            (None, false) => "no step met it".to_string(),
        },
        yes_no(&rc["met"]),
        if rc["limited_by_budget"] == true {
            " (ended by its time budget or step list, not by a limit)"
        } else {
            ""
        }
    );
    let cr = &s["cpu_ratio"];
    let _ = writeln!(
        md,
        "| {} | {} | {} |",
        cr["target"].as_str().unwrap_or(""),
        match cr["measured"].as_f64() {
            Some(x) => format!("{x:.2} x at {} calls", cr["at_calls"]),
            None => "-".into(),
        },
        yes_no(&cr["met"])
    );
    let cp = &s["calls_per_second"];
    let _ = writeln!(
        md,
        "| {} | {} (sipp to a sipp UAS: {}) | {} |",
        cp["target"].as_str().unwrap_or(""),
        cp["measured"]
            .as_u64()
            .map(|n| format!("{n} calls/s"))
            .unwrap_or_else(|| "none confirmed".into()),
        match (cp["baseline"].as_u64(), cp["baseline_probe"].as_u64()) {
            (Some(c), Some(p)) if p > c => format!("{c} calls/s confirmed, {p} in a short probe"),
            (Some(c), _) => format!("{c} calls/s confirmed"),
            (None, Some(p)) => format!("{p} calls/s in a short probe, none confirmed"),
            (None, None) => "-".into(),
        },
        yes_no(&cp["met"])
    );
    let m = &s["memory"];
    let _ = writeln!(
        md,
        "| {} | {} KiB per call at most; RSS idle {} MiB, peak {} MiB, after the ramp {} MiB, \
         after the calls-per-second trials {} MiB ({} MiB {} s later) | {} |",
        m["target"].as_str().unwrap_or(""),
        num(&m["max_kib_per_call"], 1),
        mib(&m["idle_rss_kib"]),
        mib(&m["peak_rss_kib"]),
        mib(&m["after_rss_kib"]),
        mib(&m["after_cps_rss_kib"]),
        mib(&m["after_cps_settled_rss_kib"]),
        num(&m["settle_secs"], 0),
        yes_no(&m["met"])
    );

    ramp_section(&mut md, r);
    cps_section(&mut md, r);
    variants_section(&mut md, r);
    let profile = r["profile"].as_str().unwrap_or("");
    let _ = writeln!(md, "\n## Profile\n");
    if profile.trim().is_empty() {
        let _ = writeln!(md, "No profile was taken in this run.");
    } else {
        let _ = writeln!(md, "```\n{}\n```", profile.trim_end());
    }
    md
}

fn ramp_section(md: &mut String, r: &Value) {
    let ramp = &r["ramp"];
    let base = &r["baseline"];
    let _ = writeln!(md, "\n## Concurrent calls\n");
    if ramp.is_null() {
        let _ = writeln!(md, "The ramp did not run.");
        return;
    }
    let _ = writeln!(
        md,
        "Each step adds calls at {} calls/s, then holds all of them for {} s while measuring. \
         Every call receives the engine's prompts and sends a 425 Hz tone, 50 packets/s each \
         way ({}), and one RFC 4733 digit {} s after its answer. Deviation is |inter-arrival − \
         20 ms| of the engine's packets per call. The baseline is `svi-load echo` (one UDP \
         socket per call, echoing) driven by the same generator, each step held {} s.\n",
        ramp["rate"],
        ramp["hold_secs"],
        ramp["codec"].as_str().unwrap_or("?"),
        ramp["dtmf_at_secs"],
        base["hold_secs"],
    );
    let _ = writeln!(
        md,
        "| calls | setup ok / failed | setup p50 / p99 ms | loss % | deviation p50 / p99 / max ms | engine CPU % (kernel share) | engine µs/packet | echo µs/packet | ratio | echo deviation p99 ms | RSS MiB | KiB/call | machine busy % (softirq) | generator CPU % | result |"
    );
    let _ = writeln!(md, "|{}", "---|".repeat(15));
    for st in steps(ramp) {
        let b = baseline_step(base, &st["calls"]);
        let dash = || "-".to_string();
        let result = step_result(st);
        let cells = [
            st["calls"].to_string(),
            format!("{} / {}", st["setup"]["ok"], st["setup"]["failed"]),
            format!(
                "{} / {}",
                num(&st["setup"]["p50_ms"], 1),
                num(&st["setup"]["p99_ms"], 1)
            ),
            num(&st["rtp"]["loss_pct"], 4),
            format!(
                "{} / {} / {}",
                num(&st["rtp"]["deviation"]["p50_ms"], 2),
                num(&st["rtp"]["deviation"]["p99_ms"], 2),
                num(&st["rtp"]["deviation"]["max_ms"], 1)
            ),
            format!(
                "{} ({} %)",
                num(&st["cpu"]["target"]["cpu_pct"], 1),
                num(&st["cpu"]["target"]["system_share_pct"], 0)
            ),
            num(&st["cpu_per_packet_us"], 2),
            b.map(|b| num(&b["cpu_per_packet_us"], 2))
                .unwrap_or_else(dash),
            ratio(st, b).map(|x| format!("{x:.2}")).unwrap_or_else(dash),
            b.map(|b| num(&b["rtp"]["deviation"]["p99_ms"], 2))
                .unwrap_or_else(dash),
            mib(&st["rss_kib"]),
            num(&st["rss_per_call_kib"], 1),
            format!(
                "{} ({})",
                num(&st["cpu"]["machine_busy_pct"], 0),
                num(&st["cpu"]["machine_softirq_pct"], 0)
            ),
            num(&st["cpu"]["generator"]["cpu_pct"], 1),
            result,
        ];
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nRamp end: {}. Highest step passing the ramp's limits (loss ≤ {} %, p99 ≤ {} ms): {} calls. \
         Teardown of all calls: {} s. SIP: {}.",
        ramp["stop_reason"]
            .as_str()
            .unwrap_or("every step of the list passed"),
        ramp["limits"]["max_loss_pct"],
        ramp["limits"]["max_p99_ms"],
        ramp["max_passing_calls"],
        ramp["teardown_secs"],
        ramp["sip"],
    );
}

fn cps_section(md: &mut String, r: &Value) {
    let _ = writeln!(md, "\n## Calls per second\n");
    for (name, run) in [
        ("engine", &r["cps"]),
        ("sipp UAS (baseline)", &r["cps_baseline"]),
    ] {
        if run.is_null() {
            let _ = writeln!(md, "- {name}: did not run.");
            continue;
        }
        let confirmed = &run["confirmed"];
        let headline = match run["confirmed_rate"].as_u64() {
            Some(rate) => format!(
                "**{rate}** calls/s confirmed for {} s; CPU {} µs per call; mean call length \
                 (INVITE to BYE answered) {} ms",
                run["confirm_secs"],
                num(&confirmed["cpu_per_call_us"], 1),
                num(&confirmed["call_length_ms"], 1),
            ),
            None => format!("no rate confirmed for {} s", run["confirm_secs"]),
        };
        let _ = writeln!(
            md,
            "- {name}: {headline}{} (best probe {} calls/s, first failed probe {}).",
            if run["capped"] == true {
                format!(" (the search stops at --max-rate {})", run["max_rate"])
            } else {
                String::new()
            },
            opt(&run["best_probe_rate"]),
            opt(&run["first_failed_rate"]),
        );
    }
    let e = f(&r["cps"]["confirmed"]["cpu_per_call_us"]);
    let b = f(&r["cps_baseline"]["confirmed"]["cpu_per_call_us"]);
    let same_rate = r["cps"]["confirmed_rate"] == r["cps_baseline"]["confirmed_rate"];
    if let (Some(e), Some(b), true) = (e, b, same_rate) {
        if b > 0.0 {
            let _ = writeln!(
                md,
                "- CPU per call, engine / sipp UAS at the same rate: **{:.2} x** (the UAS only \
                 answers; the engine also allocates ports, starts media and a flow, and writes a \
                 call record).",
                e / b
            );
        }
    }
    let _ = writeln!(
        md,
        "\n| run | kind | rate/s | calls | ok | failed | elapsed s | retransmissions | CPU µs/call | result | first sipp events |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (name, run) in [("engine", &r["cps"]), ("sipp-uas", &r["cps_baseline"])] {
        for t in run["trials"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t["kind"].as_str().unwrap_or(""),
                t["rate"],
                t["calls"],
                t["successful"],
                t["failed"],
                num(&t["elapsed_secs"], 1),
                t["retransmissions"],
                num(&t["cpu_per_call_us"], 1),
                if t["pass"] == true { "pass" } else { "fail" },
                t["sipp_first_events"]
                    .as_array()
                    .and_then(|e| e.first())
                    .and_then(Value::as_str)
                    .map(|e| format!(
                        "{} event(s): {}",
                        t["sipp_events"],
                        e.replace('|', "/").chars().take(90).collect::<String>()
                    ))
                    .unwrap_or_default(),
            );
        }
    }
}

/// The relay variant run (`recorded`: the one with a share of calls recorded).
fn variant(r: &Value, recorded: bool) -> Option<&Value> {
    r["variants"].as_array()?.iter().find(|v| {
        v["variant"]["relay"] == true
            && (v["variant"]["record_percent"].as_u64().unwrap_or(0) > 0) == recorded
    })
}

/// The echo step with the packet rate of `calls` bridged calls: four streams each, so twice
/// as many echo calls (two streams each); the nearest step if that one was not measured.
fn echo_at_packet_rate(baseline: &Value, calls: u64) -> Option<&Value> {
    steps(baseline)
        .iter()
        .filter(|s| s["cpu_per_packet_us"].is_number())
        .min_by_key(|s| s["calls"].as_u64().unwrap_or(0).abs_diff(2 * calls))
}

/// Engine CPU per call in the step, in % of one CPU.
fn cpu_per_call_pct(step: &Value) -> Option<f64> {
    let calls = step["active"].as_u64().filter(|&n| n > 0)? as f64;
    Some(f(&step["cpu"]["target"]["cpu_pct"])? / calls)
}

fn div(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

fn variants_section(md: &mut String, r: &Value) {
    let _ = writeln!(
        md,
        "\n## Variants: calls bridged to a second party (relay)\n"
    );
    let runs = [
        ("0 % recorded", variant(r, false)),
        ("20 % recorded", variant(r, true)),
    ];
    if runs.iter().all(|(_, v)| v.is_none()) {
        let _ = writeln!(md, "The variants did not run.");
        return;
    }
    let _ = writeln!(
        md,
        "Each call is answered by the engine, whose flow (`relay`) transfers it at once in \
         bridged mode to the load generator's target role; once the target answers, the \
         engine relays the audio both ways: four streams per call (caller and target, each \
         way), no prompt. The recorded variant is the same with `[recording] default = 20` \
         (the engine records bridged calls only, so recording is measured on relayed calls; \
         the share is drawn per call). Each variant runs on a fresh engine. CPU per call is in \
         % of one CPU; it is compared with the prompt ramp's at the same number of calls \
         (two streams per call there), and the CPU per packet with the echo at the same \
         packet rate (twice as many echo calls).\n"
    );
    let _ = writeln!(
        md,
        "| variant | calls | setup ok / failed (not bridged) | loss % | deviation p50 / p99 / max ms | engine CPU % (kernel share) | CPU % per call | ramp CPU % per call | ratio to ramp | engine µs/packet | echo calls, µs/packet | ratio to echo | RSS MiB | KiB/call | recordings: files, MiB, KiB/s written (per file) | machine busy % (softirq) | generator CPU % | result |"
    );
    let _ = writeln!(md, "|{}", "---|".repeat(18));
    let mut ends = Vec::new();
    for (name, run) in runs {
        let Some(run) = run else {
            ends.push(format!("- {name}: did not run."));
            continue;
        };
        let legs = &run["legs"];
        ends.push(format!(
            "- {name}: {}; highest step within the limits (loss ≤ {} %, p99 ≤ {} ms): {} calls. \
             RSS idle {} MiB, after the calls {} MiB. Target role: {} INVITEs, {} answered, {} \
             ACKed, {} ended by the engine, {} never ACKed, {} 200s retransmitted.",
            run["stop_reason"]
                .as_str()
                .unwrap_or("every step of the list passed"),
            run["limits"]["max_loss_pct"],
            run["limits"]["max_p99_ms"],
            run["max_passing_calls"],
            mib(&run["idle_rss_kib"]),
            mib(&run["after_rss_kib"]),
            legs["invited"],
            legs["answered"],
            legs["acked"],
            legs["ended_by_engine"],
            legs["no_ack"],
            legs["ok_retransmits"],
        ));
        for st in steps(run) {
            let calls = st["calls"].as_u64().unwrap_or(0);
            let ramp = baseline_step(&r["ramp"], &st["calls"]);
            let echo = echo_at_packet_rate(&r["baseline"], calls);
            let per_call = cpu_per_call_pct(st);
            let ramp_per_call = ramp.and_then(cpu_per_call_pct);
            let cells = [
                name.to_string(),
                calls.to_string(),
                format!(
                    "{} / {} ({})",
                    st["setup"]["ok"], st["setup"]["failed"], st["setup"]["not_bridged"]
                ),
                num(&st["rtp"]["loss_pct"], 4),
                format!(
                    "{} / {} / {}",
                    num(&st["rtp"]["deviation"]["p50_ms"], 2),
                    num(&st["rtp"]["deviation"]["p99_ms"], 2),
                    num(&st["rtp"]["deviation"]["max_ms"], 1)
                ),
                format!(
                    "{} ({} %)",
                    num(&st["cpu"]["target"]["cpu_pct"], 1),
                    num(&st["cpu"]["target"]["system_share_pct"], 0)
                ),
                per_call.map_or("-".into(), |x| format!("{x:.3}")),
                ramp_per_call.map_or("-".into(), |x| format!("{x:.3}")),
                div(per_call, ramp_per_call),
                num(&st["cpu_per_packet_us"], 2),
                echo.map_or("-".into(), |e| {
                    format!("{}, {}", e["calls"], num(&e["cpu_per_packet_us"], 2))
                }),
                div(
                    f(&st["cpu_per_packet_us"]),
                    echo.and_then(|e| f(&e["cpu_per_packet_us"])),
                ),
                mib(&st["rss_kib"]),
                num(&st["rss_per_call_kib"], 1),
                recordings_cell(st),
                format!(
                    "{} ({})",
                    num(&st["cpu"]["machine_busy_pct"], 0),
                    num(&st["cpu"]["machine_softirq_pct"], 0)
                ),
                num(&st["cpu"]["generator"]["cpu_pct"], 1),
                step_result(st),
            ];
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
    }
    let _ = writeln!(md, "\n{}", ends.join("\n"));
    let rec = &r["meta"]["recordings"];
    if rec["files"].is_u64() {
        let _ = writeln!(
            md,
            "\nAfter the recorded variant's engine stopped: {} WAV files, {} MiB in all, for {} \
             calls placed ({:.1} % recorded).",
            rec["files"],
            mib(&json!(rec["bytes"].as_u64().map(|b| b / 1024))),
            rec["calls"],
            100.0 * rec["files"].as_f64().unwrap_or(0.0)
                / rec["calls"].as_f64().unwrap_or(0.0).max(1.0)
        );
    }
    recorded_memory(md, r);
}

/// The recordings after a step: files, total MiB, and the write rate in the window (all
/// files, then per file: a stereo 8 kHz 16-bit recording is 31.25 KiB/s).
fn recordings_cell(st: &Value) -> String {
    let rec = &st["recordings"];
    let Some(files) = rec["files"].as_u64() else {
        return "-".into();
    };
    let rate = rec["written_in_window"].as_f64().unwrap_or(0.0)
        / 1024.0
        / f(&st["window_secs"]).unwrap_or(1.0);
    format!(
        "{files}, {}, {rate:.0} ({})",
        mib(&json!(rec["bytes"].as_u64().map(|b| b / 1024))),
        if files > 0 {
            format!("{:.1}", rate / files as f64)
        } else {
            "-".into()
        }
    )
}

/// Why a step stopped its run, or "pass".
fn step_result(st: &Value) -> String {
    if st["pass"] == true {
        return "pass".into();
    }
    let reasons = st["reasons"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    format!("stop: {reasons}")
}

/// What a recorded call costs in memory: the RSS difference between the two variants at the
/// same number of calls, divided by the recordings running.
fn recorded_memory(md: &mut String, r: &Value) {
    let (Some(plain), Some(recorded)) = (variant(r, false), variant(r, true)) else {
        return;
    };
    let mut lines = Vec::new();
    for st in steps(recorded) {
        let Some(p) = steps(plain).iter().find(|p| p["calls"] == st["calls"]) else {
            continue;
        };
        let files = st["recordings"]["files"].as_u64().unwrap_or(0);
        let (Some(a), Some(b)) = (st["rss_kib"].as_u64(), p["rss_kib"].as_u64()) else {
            continue;
        };
        if files == 0 {
            continue;
        }
        lines.push(format!(
            "{} calls: {files} recordings, RSS {} vs {} MiB, {:.0} KiB per recording",
            st["calls"],
            mib(&json!(a)),
            mib(&json!(b)),
            (a as f64 - b as f64) / files as f64
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "\nMemory per recorded call (RSS of the recorded variant minus the 0 % variant at the \
             same step, over the recordings running; both engines started fresh): {}.",
            lines.join("; ")
        );
    }
}
