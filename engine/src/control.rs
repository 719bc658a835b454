//! The local control socket: `DATA_DIR/control.sock` (Unix, mode 0600), one JSON request
//! and one JSON answer per connection. It lets `svi queue list`, `svi agent list` and
//! `svi agent login|ready|pause|logout` act on the running engine without the admin web;
//! only the engine's own user can open it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::acd::AcdHandle;
use crate::acd::{AgentId, Input};
use crate::call::{CallCommand, CallInput, LiveCalls, SuperviseMode};
use crate::replication::HaControl;
use std::sync::Arc;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Queues,
    Agents,
    HaStatus,
    HaPromote {
        force: bool,
    },
    Agent {
        agent: String,
        action: AgentAction,
        reason: Option<String>,
    },
    /// Supervise a bridged call, given by its id or by the agent on it; `mode` None stops.
    Supervise {
        call: String,
        mode: Option<SuperviseMode>,
        target: Option<String>,
    },
    /// Pause or resume the recording of a call (by id or by the agent on it).
    Recording {
        call: String,
        pause: bool,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentAction {
    Login,
    Ready,
    Pause,
    Logout,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Serves the socket until the task is aborted.
#[cfg(unix)]
pub async fn serve(
    data_dir: PathBuf,
    acd: Option<AcdHandle>,
    calls: Option<LiveCalls>,
    ha: Option<Arc<dyn HaControl>>,
) {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(&data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no control socket: svi agent/queue commands will not reach this engine");
            return;
        }
    };
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acd = acd.clone();
        let ha = ha.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            // Requests are one short line; a longer one is cut and refused by the parser.
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(rd, 64 * 1024));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<Request>(&line) {
                Ok(Request::Supervise { call, mode, target }) => {
                    let command = CallCommand::Supervise { mode, target };
                    to_call(&call, acd.as_ref(), calls.as_ref(), command).await
                }
                Ok(Request::Recording { call, pause }) => {
                    let command = CallCommand::Recording { pause };
                    to_call(&call, acd.as_ref(), calls.as_ref(), command).await
                }
                Ok(req) => handle(req, acd.as_ref(), ha.as_deref()).await,
                Err(e) => serde_json::json!({ "error": format!("bad request: {e}") }),
            };
            let _ = wr.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
}

#[cfg(not(unix))]
pub async fn serve(
    _data_dir: PathBuf,
    _acd: Option<AcdHandle>,
    _calls: Option<LiveCalls>,
    _ha: Option<Arc<dyn HaControl>>,
) {
}

async fn handle(
    req: Request,
    acd: Option<&AcdHandle>,
    ha: Option<&dyn HaControl>,
) -> serde_json::Value {
    let no_acd = || serde_json::json!({ "error": "this node has no ACD (a witness)" });
    let no_ha = || serde_json::json!({ "error": "this node is not part of an HA cluster" });
    match req {
        Request::HaStatus => match ha {
            Some(h) => h
                .status()
                .await
                .unwrap_or_else(|e| serde_json::json!({ "error": e })),
            None => no_ha(),
        },
        Request::HaPromote { force } => match ha {
            Some(h) => match h.promote(force).await {
                Ok(()) => serde_json::json!({ "ok": true }),
                Err(e) => serde_json::json!({ "error": e }),
            },
            None => no_ha(),
        },
        req => match acd {
            Some(acd) => handle_acd(req, acd).await,
            None => no_acd(),
        },
    }
}

/// A command for one call in progress (`svi supervise`, `svi record`): finds the call (by
/// id, or as the call the agent is on) and hands the command to its actor.
async fn to_call(
    call: &str,
    acd: Option<&AcdHandle>,
    calls: Option<&LiveCalls>,
    command: CallCommand,
) -> serde_json::Value {
    let error = |e: String| serde_json::json!({ "error": e });
    let Some(calls) = calls else {
        return error("this node takes no calls".into());
    };
    let mut id = call.to_string();
    let known = |id: &str| calls.lock().map(|c| c.contains_key(id)).unwrap_or(false);
    if !known(&id) {
        let on_call = match acd {
            Some(acd) => acd.snapshot().await.and_then(|(_, agents)| {
                agents
                    .into_iter()
                    .find(|a| a.id.as_str() == call)
                    .and_then(|a| a.call)
            }),
            None => None,
        };
        match on_call {
            Some(c) => id = c.as_str().to_string(),
            None => {
                return error(format!(
                    "`{call}` is neither a call in progress nor an agent on a call"
                ))
            }
        }
    }
    let actor = calls.lock().ok().and_then(|c| c.get(&id).cloned());
    let Some(actor) = actor else {
        return error(format!("call {id} has ended"));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if actor.send(CallInput::Command { command, reply }).is_err() {
        return error(format!("call {id} has ended"));
    }
    match answer.await {
        Ok(Ok(message)) => serde_json::json!({ "ok": true, "call": id, "message": message }),
        Ok(Err(e)) => error(e.to_string()),
        Err(_) => error(format!("call {id} has ended")),
    }
}

async fn handle_acd(req: Request, acd: &AcdHandle) -> serde_json::Value {
    match req {
        Request::Supervise { .. } | Request::Recording { .. } => {
            serde_json::json!({ "error": "not an ACD request" })
        }
        Request::HaStatus | Request::HaPromote { .. } => {
            serde_json::json!({ "error": "not an ACD request" })
        }
        Request::Queues | Request::Agents => match acd.snapshot().await {
            Some((queues, agents)) => match req {
                Request::Queues => serde_json::json!({ "queues": queues }),
                _ => serde_json::json!({ "agents": agents }),
            },
            None => serde_json::json!({ "error": "the ACD is not running" }),
        },
        Request::Agent {
            agent,
            action,
            reason,
        } => {
            let id = AgentId::from(agent.as_str());
            let input = match action {
                AgentAction::Login => Input::AgentLogin { agent: id },
                AgentAction::Ready => Input::AgentReady { agent: id },
                AgentAction::Pause => Input::AgentPause {
                    agent: id,
                    reason: reason.unwrap_or_else(|| "pause".into()),
                },
                AgentAction::Logout => Input::AgentLogout { agent: id },
            };
            match acd.input_checked(input).await {
                Ok(()) => serde_json::json!({ "ok": true }),
                Err(e) => serde_json::json!({ "error": e }),
            }
        }
    }
}

/// Sends one request to a running engine's socket and returns its JSON answer.
#[cfg(unix)]
pub async fn call(data_dir: &Path, req: &Request) -> Result<serde_json::Value, String> {
    let path = socket_path(data_dir);
    let stream = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
        format!(
            "cannot reach the engine at {}: {e} (is `svi run` running with this data directory?)",
            path.display()
        )
    })?;
    let (rd, mut wr) = stream.into_split();
    let text = serde_json::to_string(req).map_err(|e| e.to_string())?;
    wr.write_all(format!("{text}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(rd)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("bad answer: {e}"))?;
    match v.get("error").and_then(|e| e.as_str()) {
        Some(e) => Err(e.to_string()),
        None => Ok(v),
    }
}
