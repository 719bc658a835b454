//! `svi queue`, `svi agent`, `svi supervise` and `svi record`: an operator acting on the
//! running engine through its control socket.

use std::process::ExitCode;

use engine::call::live::{CallCommand, CommandOutcome, SuperviseMode};
use engine::control::{Reply, Request};
use engine::handle::{AgentCommand as Change, CallAnswer};

use super::table::print_table;
use super::{control, unexpected, Where};

#[derive(clap::Subcommand, Debug)]
pub enum QueueCommand {
    /// Waiting calls, longest wait and agents per queue.
    List {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
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

#[derive(clap::Args, Debug)]
pub struct SuperviseArgs {
    #[arg(value_enum)]
    mode: SuperviseArg,
    /// The call id, or the id of the agent on the call.
    call: String,
    /// The supervisor's phone (needed to start).
    ext: Option<String>,
    #[command(flatten)]
    at: Where,
}

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[arg(value_enum)]
    action: RecordArg,
    /// The call id, or the id of the agent on the call.
    call: String,
    #[command(flatten)]
    at: Where,
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

pub fn queue(command: QueueCommand) -> anyhow::Result<ExitCode> {
    let QueueCommand::List { at, json } = command;
    let Reply::Queues { queues } = control(&at, &Request::Queues)? else {
        anyhow::bail!("the engine did not list its queues");
    };
    print_table(
        &serde_json::to_value(&queues)?,
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

pub fn agent(command: AgentCommand) -> anyhow::Result<ExitCode> {
    let (at, agent, change) = match command {
        AgentCommand::List { at, json } => {
            let agents = match control(&at, &Request::Agents)? {
                Reply::Agents { agents } => agents,
                other => return Err(unexpected(other)),
            };
            print_table(
                &serde_json::to_value(&agents)?,
                json,
                &["id", "name", "state", "since", "call", "queues"],
            );
            return Ok(ExitCode::SUCCESS);
        }
        AgentCommand::Login { agent, at } => (at, agent, Change::Login),
        AgentCommand::Ready { agent, at } => (at, agent, Change::Ready),
        AgentCommand::Pause { agent, reason, at } => (at, agent, Change::Pause { reason }),
        AgentCommand::Logout { agent, at } => (at, agent, Change::Logout),
    };
    match control(
        &at,
        &Request::Agent {
            agent,
            command: change,
        },
    )? {
        Reply::Done => println!("ok"),
        other => return Err(unexpected(other)),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn supervise(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let mode = match args.mode {
        SuperviseArg::Listen => Some(SuperviseMode::Listen),
        SuperviseArg::Whisper => Some(SuperviseMode::Whisper),
        SuperviseArg::Barge => Some(SuperviseMode::Barge),
        SuperviseArg::Stop => None,
    };
    let command = CallCommand::Supervise {
        mode,
        target: args.ext,
    };
    call_command(&args.at, args.call, command)
}

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let pause = matches!(args.action, RecordArg::Pause);
    call_command(&args.at, args.call, CallCommand::Recording { pause })
}

/// Sends a command to a call (by call id or agent id) and prints `call ID: what was done`.
fn call_command(at: &Where, call: String, command: CallCommand) -> anyhow::Result<ExitCode> {
    let CallAnswer { call, outcome } = match control(at, &Request::Call { call, command })? {
        Reply::Call { answer } => answer,
        other => return Err(unexpected(other)),
    };
    let done = match outcome {
        CommandOutcome::SupervisorCalled { target, mode } => {
            format!("calling {target} to {}", mode_name(mode))
        }
        CommandOutcome::SupervisionChanged { mode } => {
            format!("supervision is now {}", mode_name(mode))
        }
        CommandOutcome::SupervisionStopped => "supervision stopped".into(),
        CommandOutcome::RecordingPaused => "recording paused".into(),
        CommandOutcome::RecordingResumed => "recording resumed".into(),
        CommandOutcome::HangingUp => "hanging up".into(),
    };
    println!("call {call}: {done}");
    Ok(ExitCode::SUCCESS)
}

fn mode_name(mode: SuperviseMode) -> &'static str {
    match mode {
        SuperviseMode::Listen => "listen",
        SuperviseMode::Whisper => "whisper",
        SuperviseMode::Barge => "barge",
    }
}
