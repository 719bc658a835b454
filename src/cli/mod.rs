//! Command-line interface: one subcommand per operator task, one file per command family.
//!
//! - `run`: `svi run` and `svi witness` (the long-running processes), logging, signals;
//! - `records`: `svi calls` and `svi recordings` (read from the data directory);
//! - `flows`: `svi check`, `simulate`, `test-flow`, `graph` (no engine needed);
//! - `flow_store`: `svi flow install|list|activate|rollback` (through the control socket);
//! - `operator`: `svi queue`, `agent`, `supervise`, `record` (through the control socket);
//! - `pair`: `svi ha status|promote`;
//! - `stats`: `svi stats`; `health`: `svi health`;
//! - `migrate`: `svi migrate [--check]` (schema versions and steps);
//! - `backup`: `svi backup` and `svi restore`; `alarms`: `svi alarms`;
//! - `accounts`: `svi user` and `svi apikey` (the admin API's accounts);
//! - `table`: printing rows as a table or JSON.
//!
//! This file holds what they share: where the configuration and data are (`Where`), the
//! runtime, and the control socket call.

mod accounts;
mod alarms;
mod backup;
mod flow_store;
mod flows;
mod health;
mod migrate;
mod operator;
mod pair;
mod records;
mod run;
mod secret;
mod stats;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use engine::config::EngineConfig;
use engine::control::{Reply, Request};

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
    Run(run::RunArgs),
    /// Run the HA witness: a tie-breaking voter without telephony.
    Witness(run::WitnessArgs),
    /// The HA pair: status, or make this node the active one.
    Ha {
        #[command(subcommand)]
        command: pair::HaCommand,
    },
    /// Print the latest call records.
    Calls(records::CallsArgs),
    /// Print the recording index: the latest recordings and the nodes holding each file.
    Recordings(records::RecordingsArgs),
    /// Check call flows against the configuration (prompts, queues, connectors).
    Check(flows::CheckArgs),
    /// Run a flow without telephony, in virtual time, printing each effect.
    Simulate(flows::SimulateArgs),
    /// Flow versions of the running engine: install a file, list, activate, roll back.
    Flow {
        #[command(subcommand)]
        command: flow_store::FlowCommand,
    },
    /// Run the test cases of flow test files (`*.test.yaml`).
    TestFlow(flows::TestFlowArgs),
    /// Queues of the running engine.
    Queue {
        #[command(subcommand)]
        command: operator::QueueCommand,
    },
    /// Agents of the running engine: list, or change an agent's state.
    Agent {
        #[command(subcommand)]
        command: operator::AgentCommand,
    },
    /// Supervise a bridged call: the engine calls EXT (an extension, an agent id or a SIP
    /// URI) and mixes it in: `listen` (hears both), `whisper` (the agent hears the
    /// supervisor), `barge` (everyone hears everyone); run again to change the mode; `stop`.
    Supervise(operator::SuperviseArgs),
    /// Pause or resume the recording of a call in progress (by call id or agent id), e.g.
    /// while the caller gives a card number; paused time is silence in the file.
    Record(operator::RecordArgs),
    /// Queue statistics per interval (offered, answered, abandoned, service level, ASA,
    /// AHT, longest wait), computed from the persisted ACD events.
    Stats(stats::StatsArgs),
    /// Check the engine for a monitoring system (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    Health(health::HealthArgs),
    /// Draw a flow as Graphviz DOT or Mermaid.
    Graph(flows::GraphArgs),
    /// Schema versions of the data directory's databases and the steps this build runs on
    /// them; `--check` runs them on a copy and changes nothing.
    Migrate(migrate::MigrateArgs),
    /// Take a hot, consistent backup of this node's data (database, optionally the
    /// recordings) to a tar file or a directory, with a checksum manifest.
    Backup(backup::BackupArgs),
    /// Restore a backup onto this stopped node: it then rejoins its pair as standby, or
    /// starts as a new single node (`--new-cluster`, or a configuration without a pair).
    Restore(backup::RestoreArgs),
    /// The alarms active on the running node and the counts since it started.
    Alarms(alarms::AlarmsArgs),
    /// Users of the admin API: add, list, disable, set a password.
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// API keys of the admin API: create (shown once), list, revoke.
    Apikey {
        #[command(subcommand)]
        command: accounts::ApiKeyCommand,
    },
    /// Secrets of the configuration: encrypt a password or API key for a setting.
    Secret {
        #[command(subcommand)]
        command: secret::SecretCommand,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Witness(args) => run::witness(args),
        Command::Ha { command } => pair::run(command),
        Command::Calls(args) => records::calls(args),
        Command::Recordings(args) => records::recordings(args),
        Command::Check(args) => flows::check(args),
        Command::Simulate(args) => flows::simulate(args),
        Command::TestFlow(args) => flows::test_flow(args),
        Command::Flow { command } => flow_store::run(command),
        Command::Graph(args) => flows::graph(args),
        Command::Queue { command } => operator::queue(command),
        Command::Agent { command } => operator::agent(command),
        Command::Supervise(args) => operator::supervise(args),
        Command::Record(args) => operator::record(args),
        Command::Stats(args) => stats::run(args),
        Command::Health(args) => health::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Alarms(args) => alarms::run(args),
        Command::User { command } => accounts::user(command),
        Command::Apikey { command } => accounts::apikey(command),
        Command::Secret { command } => secret::run(command),
    }
}

/// Sends one request to the running engine of `at` and returns its typed reply.
#[cfg(unix)]
fn control(at: &Where, req: &Request) -> anyhow::Result<Reply> {
    let data_dir = data_dir_of(at)?;
    Ok(runtime()?.block_on(engine::control::call(&data_dir, req))?)
}

#[cfg(not(unix))]
fn control(_: &Where, _: &Request) -> anyhow::Result<Reply> {
    anyhow::bail!("the control socket needs a Unix system")
}

/// The reply a request was answered with, or an error naming what came instead.
fn unexpected(reply: Reply) -> anyhow::Error {
    anyhow::anyhow!("the engine answered with an unexpected reply: {reply:?}")
}

/// Refuses to go on while an engine or witness runs on `data_dir` (its control socket
/// answers): `what` changes files that process holds open.
fn ensure_stopped(data_dir: &Path, what: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    if std::os::unix::net::UnixStream::connect(engine::control::socket_path(data_dir)).is_ok() {
        anyhow::bail!(
            "an svi process is running on {} (its control socket answers): stop it before `svi {what}`",
            data_dir.display()
        );
    }
    Ok(())
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
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
