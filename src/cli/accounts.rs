//! `svi user ...` and `svi apikey ...`: accounts of the admin API. Each command goes to the
//! running engine through `DATA_DIR/run/admin.sock` (written through the raft log, so a pair's
//! standby gets it); with no engine running, to the data directory itself, on a single node
//! only (docs/admin.md, "Accounts").

use std::io::BufRead as _;
use std::process::ExitCode;
use std::sync::Arc;

use admin::local::{Reply, Request};
use admin::roles::Role;
use anyhow::{bail, Context as _};

use super::table::print_table;
use super::{data_dir_of, load_config, runtime, Where};

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add {
        name: String,
        /// admin, supervisor, agent or auditor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// For the agent role: the ACD agent id (default: the user name).
        #[arg(long)]
        agent: Option<String>,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        at: Where,
    },
    /// List users (never their password hashes).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Disable a user: their sessions end and they can no longer log in.
    Disable {
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// Set a user's password, read from standard input (one line).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create an API key; it is printed once and only its hash is kept.
    Create {
        /// admin, supervisor, agent, auditor or metrics.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// What the key is for (`wallboard`, `crm`, `prometheus`).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// List API keys (id, prefix, name, role, revoked).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Revoke an API key by its id.
    Revoke {
        id: String,
        #[command(flatten)]
        at: Where,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("`{s}` is not one of admin, supervisor, agent, auditor, metrics"))
}

fn read_password(flag: bool) -> anyhow::Result<String> {
    if !flag {
        bail!("give --password-stdin: the password is read from standard input, never taken from the command line");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    let (at, req, json) = match command {
        UserCommand::Add {
            name,
            role,
            agent,
            password_stdin,
            at,
        } => {
            let password = read_password(password_stdin)?;
            (
                at,
                Request::UserAdd {
                    name,
                    role,
                    agent,
                    password,
                },
                false,
            )
        }
        UserCommand::List { json, at } => (at, Request::UserList, json),
        UserCommand::Disable { name, at } => (at, Request::UserDisable { name }, false),
        UserCommand::Passwd {
            name,
            password_stdin,
            at,
        } => {
            let password = read_password(password_stdin)?;
            (at, Request::UserPasswd { name, password }, false)
        }
    };
    show(send(&at, req)?, json)
}

pub fn apikey(command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let (at, req, json) = match command {
        ApiKeyCommand::Create { role, name, at } => (at, Request::KeyCreate { name, role }, false),
        ApiKeyCommand::List { json, at } => (at, Request::KeyList, json),
        ApiKeyCommand::Revoke { id, at } => (at, Request::KeyRevoke { id }, false),
    };
    show(send(&at, req)?, json)
}

fn show(reply: Reply, json: bool) -> anyhow::Result<ExitCode> {
    match reply {
        Reply::Error(e) => bail!("{e}"),
        Reply::User(u) => println!(
            "user {} ({}){}",
            u.name,
            u.role,
            if u.disabled { ", disabled" } else { "" }
        ),
        Reply::Users(users) => {
            let rows = serde_json::to_value(&users)?;
            print_table(
                &rows,
                json,
                &[
                    "name",
                    "role",
                    "agent",
                    "disabled",
                    "created_at",
                    "created_by",
                ],
            );
        }
        Reply::Key { key, view } => {
            println!("{key}");
            eprintln!(
                "API key {} ({}, role {}): shown once; store it now (only its hash is kept).",
                view.id, view.name, view.role
            );
        }
        Reply::Keys(keys) => {
            let rows = serde_json::to_value(&keys)?;
            print_table(
                &rows,
                json,
                &["id", "prefix", "name", "role", "created_at", "revoked_at"],
            );
        }
        Reply::Revoked(k) => println!("API key {} ({}) revoked", k.id, k.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// To the running engine if one answers; else to the data directory (single node only).
fn send(at: &Where, req: Request) -> anyhow::Result<Reply> {
    let data_dir = data_dir_of(at)?;
    runtime()?.block_on(async move {
        #[cfg(unix)]
        match admin::local::call(&data_dir, &req).await {
            Ok(reply) => return Ok(reply),
            Err(admin::local::LocalError::NotRunning(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let config = load_config(at)?;
        let cluster = crate::ha::ha_config(&config)?;
        if cluster.members.len() > 1 {
            bail!(
                "no engine is running with {}: in an HA pair, accounts are written through the running active node (start it, then run this again)",
                config.data_dir.display()
            );
        }
        let storage = engine::storage::Storage::open(&config.data_dir).await?;
        let accounts = admin::accounts::Accounts::new(
            storage.clone(),
            admin::accounts::Writes::Local(storage.clone()),
        );
        let writer = Arc::new(engine::replication::LocalWriter(storage.clone()));
        let audit = engine::audit::AuditLog::new(writer, &config.node_name);
        let reply = admin::local::execute(&accounts, &audit, "local:offline", req).await;
        storage.close().await;
        Ok(reply)
    })
}
