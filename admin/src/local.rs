//! Account commands from the engine's own host: `svi user ...` and `svi apikey ...` send one
//! JSON request over `DATA_DIR/run/admin.sock` (Unix, bound inside the 0700 `run/`
//! directory like the control socket: only the engine's own OS user can reach it, at any
//! moment) to the running engine, which writes through the
//! raft log like the REST API. With no engine running, the CLI runs the same [`execute`]
//! against the data directory itself (a single node only: a pair's accounts must go
//! through the active node, or the standby would never see them).

use std::path::{Path, PathBuf};

use engine::audit::{AuditEntry, AuditLog, Outcome};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::accounts::{AccountError, Accounts, ApiKeyView, UserView};
use crate::roles::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    UserAdd {
        name: String,
        role: Role,
        agent: Option<String>,
        password: String,
    },
    UserList,
    UserDisable {
        name: String,
    },
    UserPasswd {
        name: String,
        password: String,
    },
    KeyCreate {
        name: String,
        role: Role,
    },
    KeyList,
    KeyRevoke {
        id: String,
    },
}

impl Request {
    /// The audit log's "what" and "on what".
    fn action(&self) -> (&'static str, String) {
        match self {
            Request::UserAdd { name, .. } => ("user.add", format!("user:{name}")),
            Request::UserList => ("user.list", "users".into()),
            Request::UserDisable { name } => ("user.disable", format!("user:{name}")),
            Request::UserPasswd { name, .. } => ("user.passwd", format!("user:{name}")),
            Request::KeyCreate { name, .. } => ("apikey.create", format!("apikey:{name}")),
            Request::KeyList => ("apikey.list", "apikeys".into()),
            Request::KeyRevoke { id } => ("apikey.revoke", format!("key:{id}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    User(UserView),
    Users(Vec<UserView>),
    /// A new key: `key` is shown this once.
    Key {
        key: String,
        view: ApiKeyView,
    },
    Keys(Vec<ApiKeyView>),
    Revoked(ApiKeyView),
    Error(String),
}

/// `DATA_DIR/run/admin.sock`: its directory is the owner's only (0700) before the socket is
/// bound, so there is no moment when another local user could connect (a chmod after
/// `bind` would leave one).
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("admin.sock")
}

/// Runs one request against `accounts`, audited as `actor` (the CLI's OS user).
pub async fn execute(accounts: &Accounts, audit: &AuditLog, actor: &str, req: Request) -> Reply {
    let (action, target) = req.action();
    let result: Result<Reply, AccountError> = match req {
        Request::UserAdd {
            name,
            role,
            agent,
            password,
        } => accounts
            .add_user(&name, role, agent, &password, actor)
            .await
            .map(Reply::User),
        Request::UserList => accounts
            .users()
            .await
            .map(|u| Reply::Users(u.iter().map(UserView::from).collect())),
        Request::UserDisable { name } => accounts.set_disabled(&name, true).await.map(Reply::User),
        Request::UserPasswd { name, password } => accounts
            .set_password(&name, &password)
            .await
            .map(Reply::User),
        Request::KeyCreate { name, role } => accounts
            .create_key(&name, role, actor)
            .await
            .map(|(view, key)| Reply::Key { key, view }),
        Request::KeyList => accounts
            .keys()
            .await
            .map(|k| Reply::Keys(k.iter().map(ApiKeyView::from).collect())),
        Request::KeyRevoke { id } => accounts.revoke_key(&id).await.map(Reply::Revoked),
    };
    let (outcome, detail) = match &result {
        Ok(_) => (Outcome::Done, None),
        Err(AccountError::Store(e)) => (Outcome::Failed, Some(e.clone())),
        Err(e) => (Outcome::Denied, Some(e.to_string())),
    };
    let entry = AuditEntry::now(actor, action, target, "local", outcome, detail);
    audit.record(entry).await;
    result.unwrap_or_else(|e| Reply::Error(e.to_string()))
}

/// Serves the socket until the task is aborted.
#[cfg(unix)]
pub async fn serve(data_dir: PathBuf, accounts: Accounts, audit: AuditLog) {
    let path = socket_path(&data_dir);
    let listener = match engine::files::bind_private_socket(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no admin socket: svi user/apikey will not reach this engine");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (accounts, audit) = (accounts.clone(), audit.clone());
        tokio::spawn(async move {
            let actor = match stream.peer_cred() {
                Ok(c) => format!("local:uid{}", c.uid()),
                Err(_) => "local".to_string(),
            };
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            // One short line; a longer one is cut and refused by the parser.
            if BufReader::new(rd.take(64 * 1024))
                .read_line(&mut line)
                .await
                .is_err()
            {
                return;
            }
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(req) => execute(&accounts, &audit, &actor, req).await,
                Err(e) => Reply::Error(format!("bad request: {e}")),
            };
            let text = serde_json::to_string(&reply)
                .unwrap_or_else(|_| "{\"error\":\"unencodable reply\"}".into());
            let _ = wr.write_all(format!("{text}\n").as_bytes()).await;
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No engine answers on the socket (not running, or another data directory).
    #[error("no engine at {0}")]
    NotRunning(PathBuf),
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket: bad answer: {0}")]
    BadAnswer(String),
}

/// Sends one request to the running engine of `data_dir`.
#[cfg(unix)]
pub async fn call(data_dir: &Path, req: &Request) -> Result<Reply, LocalError> {
    let path = socket_path(data_dir);
    let io = |source| LocalError::Io {
        path: path.clone(),
        source,
    };
    let stream = match tokio::net::UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(LocalError::NotRunning(path));
        }
        Err(e) => return Err(io(e)),
    };
    let (rd, mut wr) = stream.into_split();
    let text = serde_json::to_string(req).map_err(|e| LocalError::BadAnswer(e.to_string()))?;
    wr.write_all(format!("{text}\n").as_bytes())
        .await
        .map_err(io)?;
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await.map_err(io)?;
    serde_json::from_str(&line).map_err(|e| LocalError::BadAnswer(e.to_string()))
}
