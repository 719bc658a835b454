//! The local control socket: `DATA_DIR/run/control.sock` (Unix, in a 0700 directory), one
//! JSON request and one JSON answer per connection, a thin adapter over the [`EngineHandle`]:
//! each [`Request`] is one handle operation, each answer an [`Answer`] holding the handle's
//! typed [`Reply`] or [`HandleError`]. `svi agent|queue|calls --live|supervise|record|ha|flow`
//! use it through [`call`] and read the same types back; only the engine's own user can
//! open it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::acd::{AgentSnapshot, QueueSnapshot};
use crate::alarm::AlarmSnapshot;
use crate::call::live::CallCommand;
use crate::flows::{ActiveFlow, Installed};
use crate::handle::{
    AgentCommand, CallAnswer, CallInProgress, EngineHandle, FlowListing, HandleError,
    MAX_FLOW_SOURCE,
};
use crate::replication::HaStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The calls in progress (`svi calls --live`).
    Calls,
    Queues,
    Agents,
    HaStatus,
    HaPromote {
        force: bool,
    },
    /// The active alarms and counters (`svi alarms`).
    Alarms,
    Agent {
        agent: String,
        command: AgentCommand,
    },
    /// A command for a call in progress, given by its id or by the agent on it.
    Call {
        call: String,
        command: CallCommand,
    },
    /// The flows this node holds, their versions and the active ones (`svi flow list`).
    FlowList,
    /// Checks and installs a flow's source (`svi flow install FILE`); `file` names where it
    /// came from.
    FlowInstall {
        file: PathBuf,
        source: String,
        activate: bool,
    },
    FlowActivate {
        name: String,
        version: String,
    },
    FlowRollback {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Calls { calls: Vec<CallInProgress> },
    Queues { queues: Vec<QueueSnapshot> },
    Agents { agents: Vec<AgentSnapshot> },
    HaStatus { status: HaStatus },
    Alarms { alarms: AlarmSnapshot },
    Call { answer: CallAnswer },
    Flows { flows: Vec<FlowListing> },
    FlowInstalled { installed: Installed },
    FlowActive { active: ActiveFlow },
    Done,
}

/// What the socket writes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(Reply),
    Error(HandleError),
}

/// Runs one request against the handle.
pub async fn answer(handle: &EngineHandle, req: Request) -> Result<Reply, HandleError> {
    Ok(match req {
        Request::Calls => Reply::Calls {
            calls: handle.calls().await?,
        },
        Request::Queues => Reply::Queues {
            queues: handle.queues().await?,
        },
        Request::Agents => Reply::Agents {
            agents: handle.agents().await?,
        },
        Request::HaStatus => Reply::HaStatus {
            status: handle.ha_status().await?,
        },
        Request::HaPromote { force } => {
            handle.ha_promote(force).await?;
            Reply::Done
        }
        Request::Alarms => Reply::Alarms {
            alarms: handle.alarms()?.snapshot(),
        },
        Request::Agent { agent, command } => {
            handle.agent(&agent, command).await?;
            Reply::Done
        }
        Request::Call { call, command } => Reply::Call {
            answer: handle.call_command(&call, command).await?,
        },
        Request::FlowList => Reply::Flows {
            flows: handle.flow_list().await?,
        },
        Request::FlowInstall {
            file,
            source,
            activate,
        } => Reply::FlowInstalled {
            installed: handle.flow_install(&source, &file, activate).await?,
        },
        Request::FlowActivate { name, version } => Reply::FlowActive {
            active: handle.flow_activate(&name, &version).await?,
        },
        Request::FlowRollback { name } => Reply::FlowActive {
            active: handle.flow_rollback(&name).await?,
        },
    })
}

/// `DATA_DIR/run/control.sock`: the directory is the owner's only (0700) before the socket
/// is bound, so no other local user can reach the socket at any moment.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("control.sock")
}

/// Requests are one line, the longest a flow's source (JSON-escaped); a longer one is cut
/// and refused by the parser.
const MAX_REQUEST: u64 = 2 * MAX_FLOW_SOURCE as u64 + 64 * 1024;

/// Serves the socket until the task is aborted.
#[cfg(unix)]
pub async fn serve(data_dir: PathBuf, handle: EngineHandle) {
    let path = socket_path(&data_dir);
    let listener = match crate::files::bind_private_socket(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no control socket: svi agent/queue commands will not reach this engine");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(rd, MAX_REQUEST));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<Request>(&line) {
                Ok(req) => match answer(&handle, req).await {
                    Ok(reply) => Answer::Ok(reply),
                    Err(e) => Answer::Error(e),
                },
                Err(e) => Answer::Error(HandleError::BadRequest {
                    reason: e.to_string(),
                }),
            };
            let text = serde_json::to_string(&answer).unwrap_or_else(|e| {
                // Only a non-string map key could fail here; say so rather than hang up.
                format!(r#"{{"error":{{"error":"bad_request","reason":"answer not serialisable: {e}"}}}}"#)
            });
            let _ = wr.write_all(format!("{text}\n").as_bytes()).await;
        });
    }
}

#[cfg(not(unix))]
pub async fn serve(_data_dir: PathBuf, _handle: EngineHandle) {}

/// Why a request to a running engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the engine at {path}: {source} (is `svi run` running with this data directory?)")]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the engine's answer is not readable: {0}")]
    BadAnswer(#[from] serde_json::Error),
    #[error(transparent)]
    Engine(#[from] HandleError),
}

/// Sends one request to a running engine's socket and returns its typed reply.
#[cfg(unix)]
pub async fn call(data_dir: &Path, req: &Request) -> Result<Reply, ControlError> {
    let path = socket_path(data_dir);
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|source| ControlError::Unreachable {
            path: path.clone(),
            source,
        })?;
    let (rd, mut wr) = stream.into_split();
    let text = serde_json::to_string(req)?;
    wr.write_all(format!("{text}\n").as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await?;
    match serde_json::from_str::<Answer>(&line)? {
        Answer::Ok(reply) => Ok(reply),
        Answer::Error(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::live::SuperviseMode;

    #[test]
    fn requests_and_answers_keep_their_shape_on_the_wire() {
        let req = Request::Call {
            call: "1001".into(),
            command: CallCommand::Supervise {
                mode: Some(SuperviseMode::Whisper),
                target: Some("2001".into()),
            },
        };
        let text = serde_json::to_string(&req).expect("json");
        assert_eq!(
            text,
            r#"{"op":"call","call":"1001","command":{"command":"supervise","mode":"whisper","target":"2001"}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).expect("back"), req);
        let pause = Request::Agent {
            agent: "1001".into(),
            command: AgentCommand::Pause {
                reason: "lunch".into(),
            },
        };
        let text = serde_json::to_string(&pause).expect("json");
        assert_eq!(
            text,
            r#"{"op":"agent","agent":"1001","command":{"action":"pause","reason":"lunch"}}"#
        );
        let answer = Answer::Error(HandleError::CallEnded { call: "c1".into() });
        let text = serde_json::to_string(&answer).expect("json");
        assert_eq!(text, r#"{"error":{"error":"call_ended","call":"c1"}}"#);
        assert_eq!(serde_json::from_str::<Answer>(&text).expect("back"), answer);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_witness_answers_ha_requests_and_refuses_the_others_over_the_socket() {
        use crate::replication::{BoxFuture, HaCommandError, HaControl, Role};
        struct Witness;
        impl HaControl for Witness {
            fn status(&self) -> BoxFuture<'_, Result<HaStatus, HaCommandError>> {
                Box::pin(async {
                    Ok(HaStatus {
                        node: 3,
                        role: Role::Witness,
                        leader: Some(1),
                        term: 4,
                        commit_index: Some(10),
                        applied_index: Some(10),
                        role_changes: 0,
                        role_since: chrono::DateTime::from_timestamp(1_700_000_000, 0)
                            .expect("time"),
                        members: Vec::new(),
                    })
                })
            }
            fn promote(&self, _force: bool) -> BoxFuture<'_, Result<(), HaCommandError>> {
                Box::pin(async {
                    Err(HaCommandError::NotActive {
                        role: Role::Witness,
                        leader: Some(1),
                    })
                })
            }
        }
        let dir = tempfile::tempdir().expect("tmp");
        let handle = EngineHandle::witness(std::sync::Arc::new(Witness));
        let server = tokio::spawn(serve(dir.path().to_path_buf(), handle));
        // The socket exists once bound: retry the connection until then (bounded).
        let mut status = None;
        for _ in 0..200 {
            match call(dir.path(), &Request::HaStatus).await {
                Err(ControlError::Unreachable { .. }) => tokio::task::yield_now().await,
                other => {
                    status = Some(other);
                    break;
                }
            }
        }
        match status.expect("the socket answered") {
            Ok(Reply::HaStatus { status }) => assert_eq!(status.role, Role::Witness),
            other => panic!("{other:?}"),
        }
        match call(dir.path(), &Request::HaPromote { force: false }).await {
            Err(ControlError::Engine(HandleError::NotActive { role, .. })) => {
                assert_eq!(role, Role::Witness)
            }
            other => panic!("{other:?}"),
        }
        for refused in [Request::Calls, Request::Alarms] {
            match call(dir.path(), &refused).await {
                Err(ControlError::Engine(HandleError::Unavailable { part, .. })) => {
                    assert_eq!(part, crate::handle::Part::Telephony)
                }
                other => panic!("{refused:?}: {other:?}"),
            }
        }
        server.abort();
    }
}
