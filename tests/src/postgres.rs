//! A private PostgreSQL server for a test: `initdb` in a temporary directory, a free port on
//! 127.0.0.1, password authentication (SCRAM) for the user `svi`, stopped when dropped.
//!
//! PostgreSQL refuses to run as root, and tests here often run as root: then the server's
//! commands run as the `postgres` system user (Debian's package creates it) through
//! `runuser`, and the directory is handed to that user. [`PgServer::start`] returns why it
//! cannot start (not installed...) so that a test can skip the PostgreSQL variant with a
//! visible notice instead of failing the whole suite on a machine without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const USER: &str = "svi";
pub const PASSWORD: &str = "pg-test-password-3e8b";

pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<&'static str>,
    /// `pg_ctl -o` options and log file of the running server (for `restart`).
    options: String,
    log: String,
    _dir: tempfile::TempDir,
}

/// The directory of PostgreSQL's server programs, newest version first.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    /// Starts a server, or says why it cannot.
    pub fn start() -> Result<PgServer, String> {
        let bin = bindir().ok_or("PostgreSQL's server programs (initdb) are not installed")?;
        let run_as = if is_root() { Some("postgres") } else { None };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        if let Some(user) = run_as {
            let ok = Command::new("chown")
                .args(["-R", &format!("{user}:")])
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                return Err(format!(
                    "cannot hand {} to the `{user}` user",
                    dir.path().display()
                ));
            }
        }
        let port = crate::ports::free_sip_port();
        let mut server = PgServer {
            port,
            bin,
            data,
            run_as,
            options: String::new(),
            log: String::new(),
            _dir: dir,
        };
        let data = server.data.to_string_lossy().into_owned();
        let pw = pwfile.to_string_lossy().into_owned();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "-A",
                "scram-sha-256",
                "--pwfile",
                &pw,
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let socket_dir = server._dir.path().to_string_lossy().into_owned();
        let options =
            format!("-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = server
            ._dir
            .path()
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        server.options = options;
        server.log = log;
        server.start_again()?;
        server.port = port;
        Ok(server)
    }

    /// Starts the server again on the same data and port (after `stop`).
    pub fn start_again(&self) -> Result<(), String> {
        let data = self.data.to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &self.options,
                "-l",
                &self.log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map(drop)
        .map_err(|e| {
            format!(
                "{e}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    /// Stops the server at once (clients see their connections cut), keeping its data.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data.to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .map(drop)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let out = self
            .command(program)
            .args(args)
            .env("PGPASSWORD", PASSWORD)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out)
    }

    /// Creates database `name` and runs `script` (a file) in it.
    pub fn create_db(&self, name: &str, script: &Path) -> Result<(), String> {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", USER, name],
        )?;
        // psql reads the file itself: it may be unreadable to the `postgres` user.
        let sql = std::fs::read_to_string(script).map_err(|e| e.to_string())?;
        self.psql(name, &sql).map(drop)
    }

    /// Runs SQL text in database `db`; returns what psql printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A `postgres://` URL for database `db` (the password is given separately).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}
