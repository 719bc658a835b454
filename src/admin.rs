//! Wiring of the admin API (the `admin` crate) into `svi run`: the account socket for
//! `svi user|apikey`, the HTTPS listener with its certificate, and SIGHUP reloading it.

use std::sync::Arc;

use anyhow::Context as _;
use engine::audit::AuditLog;
use engine::config::EngineConfig;
use engine::replication::RecordWriter;

/// What `svi run` keeps of the admin API until shutdown.
pub struct Admin {
    server: Option<Arc<admin::serve::Server>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Admin {
    pub fn shutdown(self) {
        for t in self.tasks {
            t.abort();
        }
        if let Some(server) = self.server {
            server.shutdown();
        }
    }
}

pub async fn start(
    config: &EngineConfig,
    engine: engine::EngineHandle,
    node: Arc<ha::HaNode>,
    writer: Arc<dyn RecordWriter>,
) -> anyhow::Result<Admin> {
    let audit = AuditLog::new(writer, &config.node_name);
    let accounts = admin::accounts::Accounts::new(
        node.storage(),
        admin::accounts::Writes::Replicated(node.clone()),
    );
    let mut tasks = Vec::new();
    #[cfg(unix)]
    tasks.push(tokio::spawn(admin::local::serve(
        config.data_dir.clone(),
        accounts,
        audit.clone(),
    )));
    let cfg = &config.admin;
    if !cfg.enabled {
        tracing::info!("admin API disabled ([admin] enabled = false)");
        return Ok(Admin {
            server: None,
            tasks,
        });
    }
    let files = match &cfg.tls_files {
        Some((cert, key)) => admin::tls::CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        },
        None => {
            let mut names = vec!["localhost".to_string(), config.node_name.clone()];
            if !cfg.listen.ip().is_unspecified() {
                names.push(cfg.listen.ip().to_string());
            }
            admin::tls::CertFiles::self_signed(&config.data_dir, &names)?
        }
    };
    let identity = admin::tls::Identity::load(files).context("admin certificate")?;
    let state = admin::AdminState::new(
        engine,
        node,
        audit,
        admin::session::Timeouts {
            idle: cfg.session_idle,
            absolute: cfg.session_max,
        },
        admin::throttle::Limits::default(),
        cfg.timezone,
    );
    let server = Arc::new(
        admin::serve::Server::start(
            admin::router(state),
            cfg.listen,
            cfg.http_redirect,
            identity,
        )
        .await?,
    );
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match server.reload_certificate() {
                    Ok(()) => tracing::info!("admin: certificate reloaded (SIGHUP)"),
                    Err(e) => tracing::error!(error = %e, "admin: certificate not reloaded; the previous one stays"),
                }
            }
        }));
    }
    Ok(Admin {
        server: Some(server),
        tasks,
    })
}
