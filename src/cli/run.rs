//! `svi run` and `svi witness`: the long-running processes, their logging and their stop on
//! SIGTERM or Ctrl-C (ordered: calls, trunks, SIP, media, storage, then the HA member).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::config::{parse_port_range, EngineConfig};
use engine::storage::Storage;

use super::{load_config, runtime, Where};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    at: Where,
    /// SIP listen address for UDP and TCP, overriding the configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    sip_listen: Option<SocketAddr>,
    /// RTP port range, overriding the configuration.
    #[arg(long, value_name = "LOW-HIGH")]
    rtp_ports: Option<String>,
    /// Admin API (HTTPS) listen address, overriding `[admin] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    http_listen: Option<SocketAddr>,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(clap::Args, Debug)]
pub struct WitnessArgs {
    #[command(flatten)]
    at: Where,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(clap::Args, Debug)]
struct LogArgs {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
    /// Log filter (tracing EnvFilter syntax), default `info` or $RUST_LOG.
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log);
    let mut config = load_config(&args.at)?;
    if let Some(addr) = args.sip_listen {
        config.sip.listen = addr;
        config.sip.public_ip = addr.ip();
        config.rtp.ip = addr.ip();
    }
    if let Some(r) = args.rtp_ports {
        let (low, high) = parse_port_range(&r).with_context(|| {
            format!("--rtp-ports: `{r}` is not LOW-HIGH with 1024 <= LOW < HIGH <= 65535")
        })?;
        config.rtp.port_low = low;
        config.rtp.port_high = high;
    }
    if let Some(addr) = args.http_listen {
        config.admin.listen = addr;
    }
    config.check_serving()?;
    engine::files::restrict_umask();
    let files = engine::files::ensure_open_files(&config)?;
    tracing::debug!(open_files = files, "open-file limit");
    runtime()?.block_on(run_engine(config))
}

pub fn witness(args: WitnessArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log);
    let config = load_config(&args.at)?;
    engine::files::restrict_umask();
    runtime()?.block_on(run_witness(config))
}

fn init_logging(args: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = match &args.log {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run_engine(config: EngineConfig) -> anyhow::Result<ExitCode> {
    let stop = StopSignal::install();
    let cluster = crate::ha::ha_config(&config)?;
    let alarms = crate::ha::alarm_webhook(&config)?;
    let call_survival = crate::ha::call_survival(&config)?;
    if cluster.is_witness() {
        anyhow::bail!(
            "{}: this node is the witness: run it with `svi witness`",
            config.file.display()
        );
    }
    // One process per data directory, before anything in it is opened.
    let _lock = engine::storage::DataDirLock::acquire(&config.data_dir)?;
    crate::systemd::check_open_files(config.sip.max_calls as u64);
    let pair = cluster.members.len() > 1;
    let health = ha::health::Settings {
        peer_down_after: config.alarms.peer_down_after,
        lag_entries: config.alarms.replication_lag,
    };
    let storage = Storage::open(&config.data_dir).await?;
    let (node, mut replication) = crate::ha::start(cluster, storage.clone(), alarms).await?;
    replication.call_survival = call_survival;
    let writer = replication.writer.clone();
    let admin_config = config.clone();
    let engine = engine::Engine::start_with(config, storage, replication).await?;
    let handle = engine.handle();
    // The pair's alarms (peer down, no quorum, lag) go to the engine's alarm board.
    let alarms = handle.alarms()?.clone();
    let health = pair.then(|| ha::health::spawn(node.clone(), alarms, health));
    let admin = crate::admin::start(&admin_config, handle.clone(), node.clone(), writer).await?;
    let notify = crate::systemd::Notify::from_env().map(std::sync::Arc::new);
    let watchdog = notify.as_ref().and_then(|n| {
        n.send("READY=1");
        let period = crate::systemd::watchdog_period()?;
        let (n, handle) = (n.clone(), handle.clone());
        Some(tokio::spawn(async move {
            crate::systemd::watchdog(n, period, || handle.alive()).await
        }))
    });
    stop.wait().await;
    tracing::info!("shutting down");
    admin.shutdown();
    if let Some(n) = &notify {
        n.send("STOPPING=1");
    }
    for task in health.into_iter().chain(watchdog) {
        task.abort();
    }
    engine.shutdown().await;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn run_witness(config: EngineConfig) -> anyhow::Result<ExitCode> {
    let stop = StopSignal::install();
    let cluster = crate::ha::ha_config(&config)?;
    let _lock = engine::storage::DataDirLock::acquire(&config.data_dir)?;
    let node = crate::ha::witness(cluster, crate::ha::alarm_webhook(&config)?).await?;
    tracing::info!("witness ready");
    // The witness's watchdog proves its runtime runs (it has no engine to ask).
    let notify = crate::systemd::Notify::from_env().map(std::sync::Arc::new);
    let watchdog = notify.as_ref().and_then(|n| {
        n.send("READY=1");
        let period = crate::systemd::watchdog_period()?;
        Some(tokio::spawn(crate::systemd::watchdog(
            n.clone(),
            period,
            || async { true },
        )))
    });
    stop.wait().await;
    if let Some(n) = &notify {
        n.send("STOPPING=1");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT, caught from the moment this is made: a stop asked while the engine
/// is still starting (systemd, an operator, a test) is a clean stop, not the signal's
/// default action.
struct StopSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignal {
    fn install() -> StopSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignal {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignal {}
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.term.is_none() && self.int.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = recv(&mut self.term) => {}
                _ = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
