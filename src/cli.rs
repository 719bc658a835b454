//! Command-line interface: one subcommand per operator task.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use engine::config::{parse_port_range, EngineConfig};
use engine::storage::Storage;

#[derive(Parser, Debug)]
#[command(name = "svi", version, about = "SIP/RTP IVR and contact-center engine")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Where {
    /// Configuration file (default: the embedded sample configuration).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default: the configured one; ./svi-data for the embedded default).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the engine.
    Run {
        #[command(flatten)]
        at: Where,
        /// SIP listen address for UDP and TCP, overriding the configuration.
        #[arg(long, value_name = "ADDR:PORT")]
        sip_listen: Option<SocketAddr>,
        /// RTP port range, overriding the configuration.
        #[arg(long, value_name = "LOW-HIGH")]
        rtp_ports: Option<String>,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
        /// Log filter (tracing EnvFilter syntax), default `info` or $RUST_LOG.
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
    /// Run the HA witness: a tie-breaking voter without telephony.
    Witness {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        log_json: bool,
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
    /// The HA pair: status, or make this node the active one.
    Ha {
        #[command(subcommand)]
        command: HaCommand,
    },
    /// Print the latest call records.
    Calls {
        #[command(flatten)]
        at: Where,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print the recording index: the latest recordings and the nodes holding each file.
    Recordings {
        #[command(flatten)]
        at: Where,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Check call flows against the configuration (prompts, queues, connectors).
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Exit 0 even when there are warnings (unreachable steps...).
        #[arg(long)]
        allow_warnings: bool,
    },
    /// Run a flow without telephony, in virtual time, printing each effect.
    Simulate {
        file: PathBuf,
        /// Digits keyed at each menu or collect: "1 2 #"; `-` or nothing means no input.
        #[arg(long, default_value = "")]
        input: String,
        /// Virtual start time (RFC 3339), default now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[arg(long, default_value = "+33100000000")]
        caller: String,
        #[arg(long, default_value = "100")]
        called: String,
        #[arg(long)]
        language: Option<String>,
        /// YAML/JSON file of canned lookup, action, queue and transfer outcomes.
        #[arg(long, value_name = "FILE")]
        stubs: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run the test cases of flow test files (`*.test.yaml`).
    TestFlow {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Queues of the running engine.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Agents of the running engine: list, or change an agent's state.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Supervise a bridged call: the engine calls EXT (an extension, an agent id or a SIP
    /// URI) and mixes it in: `listen` (hears both), `whisper` (the agent hears the
    /// supervisor), `barge` (everyone hears everyone); run again to change the mode; `stop`.
    Supervise {
        #[arg(value_enum)]
        mode: SuperviseArg,
        /// The call id, or the id of the agent on the call.
        call: String,
        /// The supervisor's phone (needed to start).
        ext: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Pause or resume the recording of a call in progress (by call id or agent id), e.g.
    /// while the caller gives a card number; paused time is silence in the file.
    Record {
        #[arg(value_enum)]
        action: RecordArg,
        /// The call id, or the id of the agent on the call.
        call: String,
        #[command(flatten)]
        at: Where,
    },
    /// Queue statistics per interval (offered, answered, abandoned, service level, ASA,
    /// AHT, longest wait), computed from the persisted ACD events.
    Stats {
        #[command(flatten)]
        at: Where,
        /// One queue (default: every queue with calls in the period).
        #[arg(long)]
        queue: Option<String>,
        /// Start: RFC 3339, or a span back from now (15m, 24h, 7d).
        #[arg(long, default_value = "24h")]
        since: String,
        /// End (default: now), same forms as --since.
        #[arg(long)]
        until: Option<String>,
        /// Cut the period in intervals of this length (15m, 1h, 1d; default: one interval).
        #[arg(long)]
        interval: Option<String>,
        /// Service-level threshold (default: each queue's `service_level`, else 20s).
        #[arg(long)]
        threshold: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check the engine for a monitoring system (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    Health {
        /// Configuration whose SIP address is probed (default: the embedded default's).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to probe instead of the configured one.
        #[arg(long, value_name = "ADDR:PORT")]
        sip: Option<SocketAddr>,
        /// Answer time above which the check warns, in milliseconds.
        #[arg(long, default_value_t = 500)]
        warn_ms: u64,
        /// Answer time after which the check is critical, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Draw a flow as Graphviz DOT or Mermaid.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
}

#[derive(Subcommand, Debug)]
enum HaCommand {
    /// Role, leader, term, indexes and members, as seen by this node.
    Status {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Make this node the active one (manual fail-back). With --force, in a pair without a
    /// witness whose other node is gone: continue alone (the operator's decision).
    Promote {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RecordArg {
    Pause,
    Resume,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SuperviseArg {
    Listen,
    Whisper,
    Barge,
    Stop,
}

#[derive(Subcommand, Debug)]
enum QueueCommand {
    /// Waiting calls, longest wait and agents per queue.
    List {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AgentCommand {
    /// Every agent with its state.
    List {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    Login {
        agent: String,
        #[command(flatten)]
        at: Where,
    },
    Ready {
        agent: String,
        #[command(flatten)]
        at: Where,
    },
    /// Not ready, with a reason code.
    Pause {
        agent: String,
        #[arg(long, default_value = "pause")]
        reason: String,
        #[command(flatten)]
        at: Where,
    },
    Logout {
        agent: String,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum GraphFormatArg {
    Dot,
    Mermaid,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            at,
            sip_listen,
            rtp_ports,
            log_json,
            log,
        } => {
            init_logging(log_json, log.as_deref());
            let mut config = load_config(&at)?;
            if let Some(addr) = sip_listen {
                config.sip.listen = addr;
                config.sip.public_ip = addr.ip();
                config.rtp.ip = addr.ip();
            }
            if let Some(r) = rtp_ports {
                let (low, high) = parse_port_range(&r).with_context(|| {
                    format!("--rtp-ports: `{r}` is not LOW-HIGH with 1024 <= LOW < HIGH <= 65535")
                })?;
                config.rtp.port_low = low;
                config.rtp.port_high = high;
            }
            runtime()?.block_on(run_engine(config))
        }
        Command::Calls { at, limit, json } => {
            let data_dir = data_dir_of(&at)?;
            runtime()?.block_on(print_calls(&data_dir, limit, json))
        }
        Command::Recordings { at, limit, json } => {
            let data_dir = data_dir_of(&at)?;
            runtime()?.block_on(print_recordings(&data_dir, limit, json))
        }
        Command::Check {
            files,
            config,
            json,
            allow_warnings,
        } => {
            let ctx = check_context(config.as_deref())?;
            Ok(exit(ivr_scripts::cli::check_with(
                &files,
                &ctx,
                json,
                allow_warnings,
                &mut std::io::stdout(),
            )))
        }
        Command::Simulate {
            file,
            input,
            at,
            caller,
            called,
            language,
            stubs,
            config,
            json,
        } => {
            let at = at
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t).with_context(|| {
                        format!(
                            "--at: `{t}` is not an RFC 3339 time (e.g. 2026-12-25T10:00:00+01:00)"
                        )
                    })
                })
                .transpose()?;
            let ctx = check_context(config.as_deref())?;
            let opts = ivr_scripts::cli::SimulateOptions {
                file,
                inputs: input,
                at,
                caller,
                called,
                language,
                stubs,
                json,
            };
            Ok(exit(ivr_scripts::cli::simulate(
                &opts,
                &ctx,
                &mut std::io::stdout(),
            )))
        }
        Command::TestFlow { files, config } => {
            let ctx = check_context(config.as_deref())?;
            let mut worst = 0;
            for f in &files {
                worst = worst.max(ivr_scripts::cli::test_flow(f, &ctx, &mut std::io::stdout()));
            }
            Ok(exit(worst))
        }
        Command::Witness { at, log_json, log } => {
            init_logging(log_json, log.as_deref());
            let config = load_config(&at)?;
            runtime()?.block_on(run_witness(config))
        }
        Command::Ha { command } => {
            let (at, req, json) = match command {
                HaCommand::Status { at, json } => (at, engine::control::Request::HaStatus, json),
                HaCommand::Promote { at, force } => {
                    (at, engine::control::Request::HaPromote { force }, false)
                }
            };
            let data_dir = data_dir_of(&at)?;
            let status = matches!(req, engine::control::Request::HaStatus);
            let v = runtime()?.block_on(control_call(&data_dir, &req))?;
            if json || !status {
                println!(
                    "{}",
                    if status {
                        serde_json::to_string_pretty(&v)?
                    } else {
                        "ok".into()
                    }
                );
            } else {
                println!(
                    "node {}  role {}  leader {}  term {}  commit {}  applied {}",
                    v["node"],
                    v["role"].as_str().unwrap_or("?"),
                    v["leader"],
                    v["term"],
                    v["commit_index"],
                    v["applied_index"]
                );
                println!(
                    "role since {}  role changes {}",
                    v["role_since"].as_str().unwrap_or("?"),
                    v["role_changes"]
                );
                print_table(
                    &v["members"],
                    false,
                    &[
                        "id",
                        "kind",
                        "voter",
                        "cluster_addr",
                        "sip_addr",
                        "matched_index",
                    ],
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            at,
            queue,
            since,
            until,
            interval,
            threshold,
            json,
        } => {
            let now = chrono::Utc::now();
            let span = |flag: &str,
                        v: Option<String>|
             -> anyhow::Result<Option<std::time::Duration>> {
                v.map(|s| {
                    crate::stats::parse_span(&s)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            anyhow::anyhow!("{flag}: `{s}` is not a duration (90s, 15m, 1h, 1d)")
                        })
                })
                .transpose()
            };
            let query = crate::stats::StatsQuery {
                queue,
                since: crate::stats::parse_time(&since, now).context("--since")?,
                until: match until {
                    Some(u) => crate::stats::parse_time(&u, now).context("--until")?,
                    None => now,
                },
                interval: span("--interval", interval)?,
                threshold: span("--threshold", threshold)?,
                thresholds: stats_thresholds(&at),
                json,
            };
            let data_dir = data_dir_of(&at)?;
            runtime()?.block_on(crate::stats::print_stats(&data_dir, query))
        }
        Command::Queue {
            command: QueueCommand::List { at, json },
        } => {
            let data_dir = data_dir_of(&at)?;
            let v =
                runtime()?.block_on(control_call(&data_dir, &engine::control::Request::Queues))?;
            print_table(
                &v["queues"],
                json,
                &[
                    "id",
                    "waiting",
                    "offered",
                    "talking",
                    "longest_wait",
                    "agents_logged_in",
                    "agents_available",
                    "agents_busy",
                ],
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Record { action, call, at } => {
            let req = engine::control::Request::Recording {
                call,
                pause: matches!(action, RecordArg::Pause),
            };
            let data_dir = data_dir_of(&at)?;
            let v = runtime()?.block_on(control_call(&data_dir, &req))?;
            println!(
                "call {}: {}",
                v["call"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("ok")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Supervise {
            mode,
            call,
            ext,
            at,
        } => {
            use engine::call::SuperviseMode;
            let mode = match mode {
                SuperviseArg::Listen => Some(SuperviseMode::Listen),
                SuperviseArg::Whisper => Some(SuperviseMode::Whisper),
                SuperviseArg::Barge => Some(SuperviseMode::Barge),
                SuperviseArg::Stop => None,
            };
            let req = engine::control::Request::Supervise {
                call,
                mode,
                target: ext,
            };
            let data_dir = data_dir_of(&at)?;
            let v = runtime()?.block_on(control_call(&data_dir, &req))?;
            println!(
                "call {}: {}",
                v["call"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("ok")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { command } => {
            use engine::control::{AgentAction, Request};
            let (at, req, json) = match command {
                AgentCommand::List { at, json } => (at, Request::Agents, json),
                AgentCommand::Login { agent, at } => (
                    at,
                    Request::Agent {
                        agent,
                        action: AgentAction::Login,
                        reason: None,
                    },
                    false,
                ),
                AgentCommand::Ready { agent, at } => (
                    at,
                    Request::Agent {
                        agent,
                        action: AgentAction::Ready,
                        reason: None,
                    },
                    false,
                ),
                AgentCommand::Pause { agent, reason, at } => (
                    at,
                    Request::Agent {
                        agent,
                        action: AgentAction::Pause,
                        reason: Some(reason),
                    },
                    false,
                ),
                AgentCommand::Logout { agent, at } => (
                    at,
                    Request::Agent {
                        agent,
                        action: AgentAction::Logout,
                        reason: None,
                    },
                    false,
                ),
            };
            let data_dir = data_dir_of(&at)?;
            let listing = matches!(req, Request::Agents);
            let v = runtime()?.block_on(control_call(&data_dir, &req))?;
            if listing {
                print_table(
                    &v["agents"],
                    json,
                    &["id", "name", "state", "since", "call", "queues"],
                );
            } else {
                println!("ok");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Health {
            config,
            sip,
            warn_ms,
            timeout_ms,
        } => {
            let target = match (sip, config) {
                (Some(a), _) => a,
                (None, Some(file)) => match EngineConfig::load(&file) {
                    Ok(c) => c.sip.listen,
                    Err(e) => {
                        println!("SVI UNKNOWN - {e}");
                        return Ok(ExitCode::from(crate::health::UNKNOWN));
                    }
                },
                (None, None) => "127.0.0.1:5060".parse().expect("literal address"),
            };
            let (code, line) = runtime()?.block_on(crate::health::check(
                target,
                std::time::Duration::from_millis(warn_ms),
                std::time::Duration::from_millis(timeout_ms),
            ));
            println!("{line}");
            Ok(ExitCode::from(code))
        }
        Command::Graph { file, format } => {
            let format = match format {
                GraphFormatArg::Dot => ivr_scripts::cli::GraphFormat::Dot,
                GraphFormatArg::Mermaid => ivr_scripts::cli::GraphFormat::Mermaid,
            };
            Ok(exit(ivr_scripts::cli::graph(
                &file,
                format,
                &mut std::io::stdout(),
            )))
        }
    }
}

#[cfg(unix)]
async fn control_call(
    data_dir: &Path,
    req: &engine::control::Request,
) -> anyhow::Result<serde_json::Value> {
    engine::control::call(data_dir, req)
        .await
        .map_err(anyhow::Error::msg)
}

#[cfg(not(unix))]
async fn control_call(_: &Path, _: &engine::control::Request) -> anyhow::Result<serde_json::Value> {
    anyhow::bail!("the control socket needs a Unix system")
}

/// Prints an array of objects as JSON or as a table of the given columns. Write errors
/// (a closed pipe, as with `| head`) end the output quietly.
fn print_table(rows: &serde_json::Value, json: bool, columns: &[&str]) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(rows).unwrap_or_default()
        );
        return;
    }
    let cell = |column: &str, v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        // Agent states are tagged objects: `not_ready (lunch)`.
        serde_json::Value::Object(o) if o.contains_key("state") => {
            match o.get("reason").and_then(|r| r.as_str()) {
                Some(r) => format!("{} ({r})", o["state"].as_str().unwrap_or("?")),
                None => o["state"].as_str().unwrap_or("?").to_string(),
            }
        }
        serde_json::Value::Number(n) if column == "since" => n
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| n.to_string()),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{}",
        columns
            .iter()
            .map(|c| format!("{c:<20}"))
            .collect::<String>()
            .trim_end()
    );
    for r in rows.as_array().into_iter().flatten() {
        let line: String = columns
            .iter()
            .map(|c| format!("{:<20}", cell(c, &r[*c])))
            .collect();
        if writeln!(out, "{}", line.trim_end()).is_err() {
            return;
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// What flows are checked against: the prompts, queues and connectors of `--config`, or of
/// the embedded default (written to a temporary directory, which is removed after).
fn check_context(config: Option<&Path>) -> anyhow::Result<ivr_scripts::CheckContext> {
    let (config, _tmp) = match config {
        Some(file) => (EngineConfig::load(file)?, None),
        None => {
            let tmp = std::env::temp_dir().join(format!("svi-check-{}", std::process::id()));
            let file = crate::embedded::materialise(&tmp)?;
            let config = EngineConfig::load(&file);
            (config?, Some(TempDir(tmp)))
        }
    };
    let names = ivr_scripts::cli::scan_prompts(&config.prompts_dir)
        .with_context(|| format!("reading prompts in {}", config.prompts_dir.display()))?;
    Ok(engine::flows::check_context(&names, &config))
}

/// Removes a directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging(json: bool, filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The configuration named by `--config`, or the embedded default written under the data
/// directory; `--data-dir` overrides the configured directory either way.
fn load_config(at: &Where) -> anyhow::Result<EngineConfig> {
    let mut config = match &at.config {
        Some(file) => EngineConfig::load(file)?,
        None => {
            let data_dir = at
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("svi-data"));
            let file = crate::embedded::materialise(&data_dir)?;
            let mut c = EngineConfig::load(&file)?;
            c.data_dir = data_dir;
            c
        }
    };
    if let Some(d) = &at.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

/// Each configured queue's service-level threshold: from `--config`, else from the
/// embedded default written in the data directory, else none.
fn stats_thresholds(at: &Where) -> std::collections::HashMap<String, std::time::Duration> {
    let file = match (&at.config, &at.data_dir) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(d)) => Some(d.join("default/svi.toml")).filter(|f| f.exists()),
        (None, None) => None,
    };
    file.and_then(|f| EngineConfig::load(&f).ok())
        .map(|c| {
            c.acd
                .queues
                .iter()
                .map(|q| (q.id.as_str().to_string(), q.service_level))
                .collect()
        })
        .unwrap_or_default()
}

/// The data directory alone, without writing the embedded samples out.
fn data_dir_of(at: &Where) -> anyhow::Result<PathBuf> {
    if let Some(d) = &at.data_dir {
        return Ok(d.clone());
    }
    match &at.config {
        Some(file) => Ok(EngineConfig::load(file)?.data_dir),
        None => Ok(PathBuf::from("svi-data")),
    }
}

async fn run_engine(config: EngineConfig) -> anyhow::Result<ExitCode> {
    let cluster = crate::ha::ha_config(&config)?;
    let alarms = crate::ha::alarm_webhook(&config)?;
    if cluster.is_witness() {
        anyhow::bail!(
            "{}: this node is the witness: run it with `svi witness`",
            config.file.display()
        );
    }
    let storage = Storage::open(&config.data_dir).await?;
    let (node, replication) = crate::ha::start(cluster, storage.clone(), alarms).await?;
    let engine = engine::Engine::start_with(config, storage, replication).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    engine.shutdown().await;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn run_witness(config: EngineConfig) -> anyhow::Result<ExitCode> {
    let cluster = crate::ha::ha_config(&config)?;
    let node = crate::ha::witness(cluster, crate::ha::alarm_webhook(&config)?).await?;
    tracing::info!("witness ready");
    wait_for_signal().await;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn print_calls(data_dir: &Path, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    if !data_dir.join("svi.db").exists() {
        anyhow::bail!(
            "no call records in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let calls = storage.latest_calls(limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
    } else {
        println!(
            "{:<25} {:<16} {:<16} {:<10} {:>6} {:<15} PATH",
            "ENDED", "FROM", "TO", "FLOW", "SECS", "END"
        );
        for c in &calls {
            let secs = (c.ended_at - c.started_at).num_milliseconds() as f64 / 1000.0;
            println!(
                "{:<25} {:<16} {:<16} {:<10} {:>6.1} {:<15} {}",
                c.ended_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                c.caller,
                c.called,
                c.flow.as_deref().unwrap_or("-"),
                secs,
                c.end_reason.as_str(),
                c.path.join(" > ")
            );
        }
    }
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `svi recordings`: the replicated recording index of this node's database, newest first.
async fn print_recordings(data_dir: &Path, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    if !data_dir.join("svi.db").exists() {
        anyhow::bail!(
            "no recording index in {} (no svi.db there yet)",
            data_dir.display()
        );
    }
    let storage = Storage::open_read_only(data_dir).await?;
    let docs = storage
        .latest_docs(engine::call::RECORDINGS_COLLECTION, "$.recorded_at", limit)
        .await;
    storage.close().await;
    let entries = docs?
        .into_iter()
        .map(|(key, text)| {
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("recording index entry {key} is not JSON"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<25} {:<20} {:>10} {:>7} {:<12} PRESENT ON",
        "RECORDED", "CALL", "BYTES", "SECS", "SHA256"
    );
    for e in &entries {
        let text = |k: &str| e[k].as_str().unwrap_or("-").to_string();
        let recorded = chrono::DateTime::parse_from_rfc3339(&text("recorded_at"))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_else(|_| text("recorded_at"));
        let secs = e["duration_ms"]
            .as_u64()
            .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let sha: String = text("sha256").chars().take(12).collect();
        let present: Vec<&str> = e["present_on"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        println!(
            "{:<25} {:<20} {:>10} {:>7} {:<12} {}",
            recorded,
            text("call"),
            e["bytes"].as_u64().unwrap_or(0),
            secs,
            sha,
            present.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
