//! Starting and stopping the engine, in order. Start: storage, prompts, flows (any invalid flow
//! refuses the start), media workers, SIP transport, dispatcher, trunk registrations, flow hot
//! reload. Stop (the reverse): refuse new calls and end those in progress (BYE), unregister trunks,
//! stop SIP, media, storage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip::endpoint::EndpointConfig;
use sip::transport::{self, DriverConfig, EdgeConfig, SipHandle};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::call::CallContext;
use crate::config::{EngineConfig, SipTransport};
use crate::dispatch::{Dispatcher, DispatcherInput};
use crate::flows::{self, FlowLoadError};
use crate::handle::{EngineHandle, Running};
use crate::media::{MediaError, MediaWorkers, PortAllocator, PromptError, PromptStore};
use crate::storage::{Storage, StorageError};
use crate::trunk;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("prompts in {dir}: {source}")]
    Prompts { dir: String, source: PromptError },
    #[error(transparent)]
    Flows(#[from] FlowLoadError),
    #[error("RTP ports: {0}")]
    Media(#[from] MediaError),
    #[error(transparent)]
    Sip(#[from] transport::DriverError),
    #[error("SIP over TLS: {0}")]
    Tls(#[from] transport::TlsError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{file}: queues and agents: {source}")]
    Acd {
        file: String,
        source: crate::acd::AcdError,
    },
    #[error("{file}: {source}")]
    Connectors {
        file: String,
        source: crate::connectors::ConnectorError,
    },
    #[error("{file}: {source}")]
    Alarms {
        file: String,
        source: crate::alarm::AlarmError,
    },
    #[error("{file}: alarm_callout.webhook_secret {source}")]
    AlarmWebhook {
        file: String,
        source: crate::secrets::SecretError,
    },
}

/// A running engine. Dropping it without `shutdown` leaves tasks to die with the runtime.
pub struct Engine {
    handle: EngineHandle,
    sip: SipHandle,
    dispatcher: mpsc::UnboundedSender<DispatcherInput>,
    trunks: Vec<trunk::TrunkHandle>,
    tasks: Vec<JoinHandle<()>>,
    /// The media workers (none when the media came from `EngineIo`).
    media: Option<Arc<MediaWorkers>>,
    storage: Storage,
}

/// What the engine talks to the world through. By default, the sockets of the
/// configuration: SIP on `sip.listen`, RTP port pairs from `rtp.ports` paced by the media
/// workers. A test harness gives an in-process SIP transport and a media stand-in instead,
/// and runs whole calls in virtual time.
#[derive(Default)]
pub struct EngineIo {
    pub sip: Option<SipIo>,
    pub media: Option<Arc<dyn crate::call::MediaPort>>,
    /// How often the flows directory is read for new versions (2 s by default).
    pub flow_scan: Option<Duration>,
    /// The prompts, loaded already (by default they are read from `prompts.dir`).
    pub prompts: Option<PromptStore>,
}

/// A started SIP transport: its handle, its events and its task.
pub struct SipIo {
    pub handle: SipHandle,
    pub events: mpsc::UnboundedReceiver<sip::transport::SipEvent>,
    pub task: JoinHandle<()>,
}

impl Engine {
    /// A node on its own: local database, always active.
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let storage = Storage::open(&config.data_dir).await?;
        let replication = crate::replication::Replication::local(storage.clone());
        Engine::start_with(config, storage, replication).await
    }

    /// Starts on a database the caller opened, writing and serving as `replication` says
    /// (the binary passes the HA pair's writer and role here).
    pub async fn start_with(
        config: EngineConfig,
        storage: Storage,
        replication: crate::replication::Replication,
    ) -> Result<Engine, EngineError> {
        let kinds = crate::connectors::Kinds::builtin();
        Engine::start_with_kinds(config, storage, replication, &kinds).await
    }

    /// [`Engine::start_with`] with connector kinds of the embedder's (plug-ins) besides
    /// the built-in ones.
    pub async fn start_with_kinds(
        config: EngineConfig,
        storage: Storage,
        replication: crate::replication::Replication,
        kinds: &crate::connectors::Kinds,
    ) -> Result<Engine, EngineError> {
        Engine::start_all(config, storage, replication, kinds, EngineIo::default()).await
    }

    /// As [`Engine::start_with`], talking through `io`.
    pub async fn start_with_io(
        config: EngineConfig,
        storage: Storage,
        replication: crate::replication::Replication,
        io: EngineIo,
    ) -> Result<Engine, EngineError> {
        let kinds = crate::connectors::Kinds::builtin();
        Engine::start_all(config, storage, replication, &kinds, io).await
    }

    async fn start_all(
        config: EngineConfig,
        storage: Storage,
        replication: crate::replication::Replication,
        kinds: &crate::connectors::Kinds,
        io: EngineIo,
    ) -> Result<Engine, EngineError> {
        config.check_serving()?;
        let config = Arc::new(config);
        let alarms = crate::alarm::start(&config.alarms, &config.node_name).map_err(|source| {
            EngineError::Alarms {
                file: config.file.display().to_string(),
                source,
            }
        })?;

        let prompts = match io.prompts {
            Some(prompts) => prompts,
            None => load_prompts(&config).await?,
        };
        let prompts = Arc::new(prompts.with_fallback_language(config.default_language.clone()));
        let check = flows::check_context(&flows::prompt_names(&prompts), &config);
        let flow_store = flows::FlowStore::new(
            storage.clone(),
            replication.writer.clone(),
            replication.serving(),
        );
        let (flow_sync, flow_task) = flows::start(
            config.flows_dir.clone(),
            check,
            &storage,
            flow_store,
            io.flow_scan.unwrap_or(Duration::from_secs(2)),
        )
        .await?;
        let flows_rx = flow_sync.set();
        for name in config
            .routes
            .iter()
            .map(|r| &r.flow)
            .chain(std::iter::once(&config.default_flow))
            .chain(config.alarm_callout.as_ref().map(|c| &c.flow))
        {
            if flows_rx.borrow().get(name).is_none() {
                return Err(FlowLoadError::Missing(name.clone()).into());
            }
        }
        recover_recordings(&config, &replication).await;
        if let Some(retention) = config.recording.retention {
            let dir = config.recording.settings(&config.data_dir).dir;
            tokio::spawn(sweep_recordings(dir, retention));
        }
        let audit = crate::audit::AuditLog::new(replication.writer.clone(), &config.node_name);
        let mut connectors = crate::connectors::Connectors::build_with(
            &config,
            crate::connectors::BuildOptions {
                kinds,
                env: &|name: &str| std::env::var(name).ok(),
                data_dir: None,
                audit: Some(audit.clone()),
            },
        )
        .await
        .map_err(|source| EngineError::Connectors {
            file: config.file.display().to_string(),
            source,
        })?;
        connectors.report_alarms_to(&alarms);

        // Pushed alarms wake the call-out task (`callout::webhook`); no secret, no webhook.
        let (alarm_webhook, alarm_pushes) =
            crate::callout::webhook::for_config(&config).map_err(|source| {
                EngineError::AlarmWebhook {
                    file: config.file.display().to_string(),
                    source,
                }
            })?;

        let acd = crate::acd::driver::start(
            config.acd.clone(),
            replication.writer.clone(),
            config.node_name.clone(),
        )
        .map_err(|source| EngineError::Acd {
            file: config.file.display().to_string(),
            source,
        })?;

        let (media_port, media) = match io.media {
            Some(port) => (port, None),
            None => {
                let ports = Arc::new(PortAllocator::new(
                    config.rtp.ip,
                    config.rtp.port_low,
                    config.rtp.port_high,
                )?);
                let workers = Arc::new(match config.rtp.workers {
                    0 => MediaWorkers::with_default_size(config.sip.allowed.clone()),
                    n => MediaWorkers::new(n, config.sip.allowed.clone()),
                });
                let port: Arc<dyn crate::call::MediaPort> = Arc::new(crate::call::WorkerMedia {
                    workers: workers.clone(),
                    ports,
                });
                (port, Some(workers))
            }
        };

        let (sip, events, sip_task) = match io.sip {
            Some(SipIo {
                handle,
                events,
                task,
            }) => (handle, events, task),
            None => transport::start(driver_config(&config)?).await?,
        };
        let local_sip = crate::call::LocalSip {
            addr: SocketAddr::new(config.sip.public_ip, sip.local_addr().port()),
            tls_port: sip.tls_addr().map(|a| a.port()),
        };

        let (mut agents, agent_contacts) = crate::agents::AgentPhones::new(
            &config.node_name,
            config.agent_passwords.clone(),
            config.sip.agent_auth.clone(),
            acd.clone(),
        );
        agents.replicate_to(
            crate::agent_bindings::BindingWriter::start(replication.writer.clone()),
            &config.node_name,
        );
        let (to_dispatcher, dispatcher_rx) = mpsc::unbounded_channel();
        let auth_stats = agents.auth_stats();
        // Each time this node becomes active, it takes over (`takeover`).
        crate::takeover::spawn(
            acd.clone(),
            storage.clone(),
            to_dispatcher.clone(),
            replication.active.clone(),
        );
        let live = crate::call::live::LiveCalls::default();
        let (routes, routes_rx) = crate::call::Routes::new();
        let survival = replication.call_survival.then(|| {
            crate::call::survival::Survival::start(
                replication.writer.clone(),
                storage.clone(),
                replication.serving(),
                live.clone(),
                config.node_name.clone(),
                crate::call::survival::DEFAULT_REFRESH,
            )
        });
        let ctx = CallContext {
            survival,
            acd: acd.clone(),
            agent_contacts,
            routes,
            config: config.clone(),
            sip: sip.clone(),
            media: media_port,
            prompts,
            flows: flows_rx.clone(),
            writer: replication.writer.clone(),
            connectors: connectors.clone(),
            local_sip,
            live: live.clone(),
        };
        let (active_tx, active_rx) = watch::channel(0usize);
        let admission = Arc::new(crate::admission::Admission::default());
        let dispatcher = Dispatcher::new(
            sip.clone(),
            ctx,
            active_tx,
            agents,
            replication.serving(),
            admission.clone(),
        );
        let mut tasks = vec![
            sip_task,
            tokio::spawn(dispatcher.run(events, dispatcher_rx, routes_rx)),
        ];
        let handle = EngineHandle::new(
            Running {
                config: config.clone(),
                sip: sip.clone(),
                auth: auth_stats,
                active_calls: active_rx,
                flows: flows_rx.clone(),
                acd: acd.clone(),
                live,
                storage: storage.clone(),
                flow_sync: flow_sync.clone(),
                alarms: alarms.clone(),
                admission,
                media: media.clone(),
                connectors: connectors.clone(),
                dispatcher: to_dispatcher.clone(),
                alarm_webhook,
            },
            replication.ha.clone(),
        );
        tasks.push(tokio::spawn(crate::control::serve(
            config.data_dir.clone(),
            handle.clone(),
        )));
        tasks.push(tokio::spawn(crate::alarm::sources::run(
            crate::alarm::sources::Watched::of(&config),
            alarms.clone(),
        )));
        tasks.push(flow_task);

        tasks.extend(crate::backup::schedule::spawn(
            &config,
            storage.clone(),
            replication.active.clone(),
            alarms.clone(),
        ));
        tasks.extend(crate::central::spawn(
            &config,
            storage.clone(),
            replication.active.clone(),
            replication.writer.clone(),
            alarms.clone(),
        ));

        let mut trunks = Vec::new();
        for t in config.trunks.iter().filter(|t| t.register) {
            trunks.push(trunk::start(
                t.clone(),
                sip.clone(),
                local_sip,
                to_dispatcher.clone(),
                replication.serving(),
                config.ha.is_some(),
                alarms.clone(),
            ));
        }
        tracing::info!(
            sip = %sip.local_addr(),
            rtp = %format!("{}:{}-{}", config.rtp.ip, config.rtp.port_low, config.rtp.port_high),
            flows = %flows_rx.borrow().names().collect::<Vec<_>>().join(","),
            data = %config.data_dir.display(),
            "svi ready"
        );
        if let Some(callout) = config.alarm_callout.clone() {
            tasks.push(tokio::spawn(crate::callout::run(
                crate::callout::CalloutContext {
                    config: callout,
                    connectors: connectors.clone(),
                    engine: handle.clone(),
                    audit,
                    serving: replication.serving(),
                    handled: crate::callout::store::HandledAlarms::new(
                        storage.clone(),
                        replication.writer.clone(),
                        &config.node_name,
                    ),
                },
                alarm_pushes,
            )));
        }
        Ok(Engine {
            handle,
            sip,
            dispatcher: to_dispatcher,
            trunks,
            tasks,
            media,
            storage,
        })
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Ordered shutdown; each step bounded so that a stuck peer cannot hold the process.
    pub async fn shutdown(self) {
        let (done_tx, done_rx) = oneshot::channel();
        let _ = self
            .dispatcher
            .send(DispatcherInput::Drain { done: done_tx });
        if tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .is_err()
        {
            tracing::warn!("calls still up after 5 s; stopping anyway");
        }
        for t in self.trunks {
            t.unregister(Duration::from_secs(4)).await;
        }
        self.sip.shutdown();
        for t in self.tasks {
            t.abort();
        }
        if let Some(media) = self.media {
            media.shutdown().await;
        }
        self.storage.close().await;
        tracing::info!("svi stopped");
    }
}

/// Calls that were being recorded when the engine died: each left a journal (its record as
/// it stood) beside a WAV whose header may be stale. The WAV is repaired and hashed, and the
/// call's record written with the end reason `engine_failure`, before any new call.
async fn recover_recordings(config: &EngineConfig, replication: &crate::replication::Replication) {
    let dir = config.recording.settings(&config.data_dir).dir;
    let scan_dir = dir.clone();
    let found = match tokio::task::spawn_blocking(move || crate::recording::recover(&scan_dir))
        .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::error!(dir = %dir.display(), error = %e, "recordings not checked for crash recovery");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "recording recovery stopped");
            return;
        }
    };
    for r in found {
        let mut record: crate::storage::CallRecord = match serde_json::from_value(r.journal.clone())
        {
            Ok(rec) => rec,
            Err(e) => {
                tracing::error!(call = %r.id, error = %e, "recording journal unreadable; WAV kept, no record written");
                continue;
            }
        };
        record.end_reason = crate::storage::EndReason::EngineFailure;
        record.ended_at = chrono::DateTime::<chrono::Utc>::from(r.modified).max(record.started_at);
        record.recording = Some(r.info.path.display().to_string());
        record.recording_sha256 = Some(r.info.sha256.clone());
        record.recording_ms = Some(r.info.duration.as_millis() as u64);
        if let Some(entry) = crate::recording::IndexEntry::for_record(&record) {
            let _ = replication
                .writer
                .put_doc(
                    crate::recording::index::COLLECTION.into(),
                    record.id.clone(),
                    entry.to_doc(),
                )
                .await;
        }
        match replication.writer.write_call(record).await {
            Ok(()) => {
                tracing::warn!(call = %r.id, file = %r.info.path.display(), duration = ?r.info.duration, "recording of a call cut by an engine failure repaired; call recorded as engine_failure");
                let id = r.id.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || r.done())
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|d| d.map_err(|e| e.to_string()))
                {
                    tracing::warn!(call = %id, error = %e, "recording journal not removed");
                }
            }
            Err(e) => {
                tracing::error!(call = %r.id, error = %e, "record of an interrupted call not written; kept for the next start")
            }
        }
    }
}

/// Deletes recordings older than the retention, hourly.
async fn sweep_recordings(dir: std::path::PathBuf, retention: std::time::Duration) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let d = dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            crate::recording::sweep_retention(&d, retention, std::time::SystemTime::now())
        })
        .await
        .unwrap_or_default();
        if !removed.is_empty() {
            tracing::info!(files = removed.len(), dir = %dir.display(), "old recordings deleted (retention)");
        }
    }
}

/// Reads and encodes every prompt of `prompts.dir` (off the runtime: it takes a while).
async fn load_prompts(config: &EngineConfig) -> Result<PromptStore, EngineError> {
    let dir = config.prompts_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || PromptStore::load_dir(&dir))
        .await
        .map_err(|e| EngineError::Prompts {
            dir: config.prompts_dir.display().to_string(),
            source: PromptError::Unreadable {
                path: config.prompts_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        })?;
    let (prompts, bad) = loaded.map_err(|source| EngineError::Prompts {
        dir: config.prompts_dir.display().to_string(),
        source,
    })?;
    for e in &bad {
        tracing::warn!("prompt skipped: {e}");
    }
    Ok(prompts)
}

/// The TLS identity: the configured certificate and key, else a self-signed pair made at
/// first start in `DATA_DIR/tls/` (valid for the public address, the listen address and
/// `localhost`).
fn tls_identity(
    settings: &crate::config::TlsSettings,
    data_dir: &std::path::Path,
    public_ip: std::net::IpAddr,
) -> Result<transport::TlsConfig, transport::TlsError> {
    let (cert, key) = match (&settings.certificate, &settings.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = data_dir.join("tls");
            crate::files::create_private_dir(&dir).map_err(|source| {
                transport::TlsError::Write {
                    path: dir.clone(),
                    source,
                }
            })?;
            let mut names = vec![public_ip.to_string(), settings.listen.ip().to_string()];
            names.push("localhost".to_string());
            names.dedup();
            transport::tls::self_signed(&dir, &names)?
        }
    };
    transport::TlsConfig::from_pem_files(
        &cert,
        &key,
        settings.client_ca.as_deref(),
        settings.server_ca.as_deref(),
    )
}

/// The SIP transport of the configuration: its listening sockets, TLS identity and edge.
fn driver_config(config: &EngineConfig) -> Result<DriverConfig, EngineError> {
    Ok(DriverConfig {
        listen: config.sip.listen,
        udp: config.sip.transports.contains(&SipTransport::Udp),
        tcp: config.sip.transports.contains(&SipTransport::Tcp),
        tls: match &config.sip.tls {
            Some(t) => Some((
                t.listen,
                tls_identity(t, &config.data_dir, config.sip.public_ip)?,
            )),
            None => None,
        },
        edge: EdgeConfig {
            allowed: config.sip.allowed.clone(),
            refusal: config.sip.refusal,
        },
        stream_limits: config.sip.stream_limits,
        endpoint: EndpointConfig {
            t1: config.sip.t1,
            user_agent: config.sip.user_agent.clone(),
            force_rport: config.sip.force_rport,
            ..EndpointConfig::default()
        },
    })
}
