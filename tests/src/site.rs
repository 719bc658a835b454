//! A site for the plug-in tests: `svi run` with the sample flows and the sample connectors
//! of `samples/svi.toml` pointed at the reference servers (the access-control API over
//! HTTPS, `acs`, and the helpdesk's SQLite fixture), secrets encrypted with
//! `svi secret encrypt` in the engine's own data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::acs::{self, AcsServer, Fault};
use crate::proc::{svi_bin, EngineOptions, EngineProc};

/// `svi secret encrypt --data-dir DATA` of `secret`.
pub fn encrypt(data: &Path, secret: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(svi_bin())
        .args(["secret", "encrypt", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("svi secret encrypt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{secret}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        text.starts_with("enc:v1:") && !text.contains(secret),
        "{text}"
    );
    text
}

/// The length of a French sample prompt.
pub fn fr_prompt(name: &str) -> Duration {
    let path = crate::repo_root().join(format!("samples/prompts/fr/{name}.wav"));
    let r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Duration::from_secs_f64(r.duration() as f64 / r.spec().sample_rate as f64)
}

pub struct Site {
    pub engine: EngineProc,
    pub acs: AcsServer,
    pub dir: tempfile::TempDir,
    /// The engine's data directory (kept across [`Site::restart`]).
    pub data: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl Site {
    /// The sample flows (service desk starting at `welcome`, whatever the time), the sample
    /// connectors pointed at the reference servers, routes 3100 (service desk), 3200
    /// (reception), 3400 (door), the alarm-callout flow, and `more` configuration.
    pub async fn start(acs_fault: Fault, more: &str) -> Site {
        Site::start_with(acs_fault, more, &[], &[]).await
    }

    /// [`Site::start`] with each `(from, to)` of `edits` replaced in the sample connectors
    /// (`("breaker_open_for = \"30s\"", "breaker_open_for = \"1s\"")`).
    pub async fn start_editing(acs_fault: Fault, more: &str, edits: &[(&str, &str)]) -> Site {
        Site::start_with(acs_fault, more, edits, &[]).await
    }

    /// [`Site::start`] with environment variables for the engine (`${VAR}` settings).
    pub async fn start_with_env(acs_fault: Fault, more: &str, env: &[(&str, &str)]) -> Site {
        Site::start_with(acs_fault, more, &[], env).await
    }

    async fn start_with(
        acs_fault: Fault,
        more: &str,
        edits: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Site {
        let acs = AcsServer::start(true, Duration::from_secs(300)).await;
        acs.set_fault(acs_fault);
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let config = write_config(dir.path(), &data, &acs, more, edits);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let engine = start_engine(&config, &data, &env);
        Site {
            engine,
            acs,
            dir,
            data,
            config,
            env,
        }
    }

    /// Stops the engine (SIGTERM) and starts it again on the same configuration and data.
    pub fn restart(self) -> Site {
        let Site {
            engine,
            acs,
            dir,
            data,
            config,
            env,
        } = self;
        let (status, log) = engine.terminate(Duration::from_secs(20));
        assert!(status.success(), "{status:?}\n{log}");
        let engine = start_engine(&config, &data, &env);
        Site {
            engine,
            acs,
            dir,
            data,
            config,
            env,
        }
    }
}

fn start_engine(config: &Path, data: &Path, env: &[(String, String)]) -> EngineProc {
    EngineProc::start(EngineOptions {
        config: Some(config.to_path_buf()),
        data_dir: Some(data.to_path_buf()),
        env: env.to_vec(),
        ..EngineOptions::default()
    })
}

fn write_config(
    dir: &Path,
    data: &Path,
    acs: &AcsServer,
    more: &str,
    edits: &[(&str, &str)],
) -> PathBuf {
    std::fs::create_dir_all(dir.join("db")).expect("db dir");
    std::fs::copy(
        crate::repo_root().join("samples/data/helpdesk.sql"),
        dir.join("db/helpdesk.sql"),
    )
    .expect("fixture");
    let sample =
        std::fs::read_to_string(crate::repo_root().join("samples/svi.toml")).expect("sample");
    let connectors = &sample[sample.find("[[connections]]").expect("connections")
        ..sample.find("# Agents.").expect("agents")];
    let mut connectors = connectors
        .replace("\"data/helpdesk.db\"", "\"db/helpdesk.db\"")
        .replace("\"data/helpdesk.sql\"", "\"db/helpdesk.sql\"")
        .replace(
            "url = \"http://127.0.0.1:8090/api/v1\"",
            &acs_settings(acs, data),
        );
    for (from, to) in edits {
        assert!(
            connectors.contains(from),
            "`{from}` is not in the sample connectors"
        );
        connectors = connectors.replace(from, to);
    }
    let service_desk = crate::config::sample_flow("service-desk")
        .replace("start: opening_hours", "start: welcome");
    let extra = format!(
        "[[queues]]\nid = \"vip\"\n[[queues]]\nid = \"hw\"\n[[queues]]\nid = \"sw\"\n[[queues]]\nid = \"apps\"\n\
         [[queues]]\nid = \"reception\"\n[[queues]]\nid = \"security\"\n\
         [[routes]]\nnumber = \"3100\"\nflow = \"service-desk\"\n[[routes]]\nnumber = \"3200\"\nflow = \"reception\"\n\
         [[routes]]\nnumber = \"3400\"\nflow = \"door\"\n{connectors}\n{more}"
    );
    crate::config::write(
        dir,
        &[
            ("service-desk", &service_desk),
            ("reception", &crate::config::sample_flow("reception")),
            ("door", &crate::config::sample_flow("door")),
            (
                "alarm-callout",
                &crate::config::sample_flow("alarm-callout"),
            ),
        ],
        &extra,
    )
}

/// The settings of the `acs` REST connection that reach `acs` (its CA, the API key and
/// password encrypted under `data`'s key).
pub fn acs_settings(acs: &AcsServer, data: &Path) -> String {
    format!(
        "url = \"{}\"\nca = \"{}\"\napi_key = \"{}\"\nlogin = \"/auth/token\"\nusername = \"{}\"\npassword = \"{}\"\nproxy = \"none\"",
        acs.base_url(),
        acs.ca_file.as_ref().expect("ca").display(),
        encrypt(data, acs::API_KEY),
        acs::USERNAME,
        encrypt(data, acs::PASSWORD),
    )
}

/// Only what the alarm call-out uses: the `acs` connection, `current_alarm` and
/// `ack_alarm` (as in `samples/svi.toml`).
pub fn alarm_connectors(acs: &AcsServer, data: &Path) -> String {
    format!(
        "[[connections]]\nname = \"acs\"\nkind = \"rest\"\n{}\n\
         [[data_sources]]\nname = \"current_alarm\"\nkind = \"access_control\"\nconnection = \"acs\"\noperation = \"recent_alarms\"\npath = \"/alarms?state=open\"\n\
         [[actions]]\nname = \"ack_alarm\"\nkind = \"access_control\"\nconnection = \"acs\"\noperation = \"ack_alarm\"\n",
        acs_settings(acs, data)
    )
}
