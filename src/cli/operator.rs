//! `svi queue`, `svi agent`, `svi supervise` and `svi record`: an operator acting on the
//! running engine through its control socket.

use std::process::ExitCode;

use engine::control::{AgentAction, Request};

use super::table::print_table;
use super::{control, Where};

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
    let v = control(&at, &Request::Queues)?;
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

pub fn agent(command: AgentCommand) -> anyhow::Result<ExitCode> {
    let change = |agent, action, reason| Request::Agent {
        agent,
        action,
        reason,
    };
    let (at, req, json) = match command {
        AgentCommand::List { at, json } => (at, Request::Agents, json),
        AgentCommand::Login { agent, at } => (at, change(agent, AgentAction::Login, None), false),
        AgentCommand::Ready { agent, at } => (at, change(agent, AgentAction::Ready, None), false),
        AgentCommand::Pause { agent, reason, at } => {
            (at, change(agent, AgentAction::Pause, Some(reason)), false)
        }
        AgentCommand::Logout { agent, at } => (at, change(agent, AgentAction::Logout, None), false),
    };
    let listing = matches!(req, Request::Agents);
    let v = control(&at, &req)?;
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

pub fn supervise(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    use engine::call::SuperviseMode;
    let mode = match args.mode {
        SuperviseArg::Listen => Some(SuperviseMode::Listen),
        SuperviseArg::Whisper => Some(SuperviseMode::Whisper),
        SuperviseArg::Barge => Some(SuperviseMode::Barge),
        SuperviseArg::Stop => None,
    };
    let req = Request::Supervise {
        call: args.call,
        mode,
        target: args.ext,
    };
    print_call_answer(&control(&args.at, &req)?);
    Ok(ExitCode::SUCCESS)
}

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let req = Request::Recording {
        call: args.call,
        pause: matches!(args.action, RecordArg::Pause),
    };
    print_call_answer(&control(&args.at, &req)?);
    Ok(ExitCode::SUCCESS)
}

/// `call ID: what was done`.
fn print_call_answer(v: &serde_json::Value) {
    println!(
        "call {}: {}",
        v["call"].as_str().unwrap_or("?"),
        v["message"].as_str().unwrap_or("ok")
    );
}
