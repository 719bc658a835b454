//! The one control surface of a running engine (ARCHITECTURE.md, "One control surface"):
//! everything an operator or an integrator does goes through an [`EngineHandle`], and
//! nothing else reaches into the engine's tasks. The control socket (`crate::control`,
//! behind `svi agent|queue|calls --live|supervise|record|ha|flow`) and the admin API are thin
//! adapters over it; every type it takes or returns is documented serde data, and every
//! failure is a [`HandleError`].
//!
//! | what | operations |
//! |---|---|
//! | agents | [`EngineHandle::agent`]: login, ready, pause with a reason, logout |
//! | calls | [`EngineHandle::call_command`]: supervise (listen, whisper, barge, stop), recording pause/resume, hang up |
//! | snapshots | [`calls`](EngineHandle::calls) in progress, [`queues`](EngineHandle::queues), [`agents`](EngineHandle::agents), [`recordings`](EngineHandle::recordings), [`statistics`](EngineHandle::statistics) |
//! | streams | [`events`](EngineHandle::events) (call and ACD events), [`watch_acd`](EngineHandle::watch_acd) (queues and agents) |
//! | health | [`alive`](EngineHandle::alive) (the service watchdog), [`alarms`](EngineHandle::alarms) active and counted |
//! | HA | [`ha_status`](EngineHandle::ha_status), [`ha_promote`](EngineHandle::ha_promote), through the `ha` crate's `HaControl` |
//! | placed calls | [`originate`](EngineHandle::originate): the engine calls a number and runs a flow when it answers; [`alarm_pushed`](EngineHandle::alarm_pushed): the access-control system's webhook |
//! | flows | [`flow_names`](EngineHandle::flow_names), [`flow_list`](EngineHandle::flow_list) (versions, the active one), [`flow_install`](EngineHandle::flow_install), [`flow_activate`](EngineHandle::flow_activate), [`flow_rollback`](EngineHandle::flow_rollback) ([`flows`] module) |
//!
//! A witness has no telephony: its handle ([`EngineHandle::witness`]) answers the HA
//! operations and refuses the others with [`Part::Telephony`].

mod error;
mod events;
pub mod flows;
mod origin;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::acd::report::{queue_report, running_since, ReportQuery};
use crate::acd::{
    AcdEvent, AcdHandle, AcdSnapshot, AgentId, AgentSnapshot, Input, QueueSnapshot, QueueStats,
    RunningStats,
};
use crate::alarm::AlarmHandle;
use crate::call::live::{CallCommand, CommandOutcome, LiveCalls};
use crate::config::EngineConfig;
use crate::flows::FlowSet;
use crate::recording::index::{IndexEntry, COLLECTION as RECORDINGS};
use crate::replication::{HaControl, HaStatus};
use crate::storage::Storage;

pub use error::{HandleError, Missing, Part};
pub use events::{EngineEvent, EngineEvents};
pub use flows::{FlowListing, FlowSimulation, FlowVersionInfo, Simulated, MAX_FLOW_SOURCE};
pub use views::CallInProgress;

/// A change of an agent's state asked by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AgentCommand {
    Login,
    Ready,
    /// Not ready, with a reason code (`lunch`, `training`...).
    Pause {
        reason: String,
    },
    Logout,
}

/// A call command's answer: which call it reached (given by id or by its agent) and what
/// the call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAnswer {
    pub call: String,
    pub outcome: CommandOutcome,
}

/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

struct Inner {
    ha: Option<Arc<dyn HaControl>>,
    /// `None` on a witness.
    engine: Option<Running>,
}

/// The parts of a running engine the handle reaches.
pub(crate) struct Running {
    pub config: Arc<EngineConfig>,
    pub sip: sip::transport::SipHandle,
    /// Agents' authentication counters, published by the registrar.
    pub auth: watch::Receiver<sip::auth::GuardStats>,
    pub active_calls: watch::Receiver<usize>,
    pub flows: watch::Receiver<Arc<FlowSet>>,
    pub acd: AcdHandle,
    pub live: LiveCalls,
    pub storage: Storage,
    pub flow_sync: crate::flows::FlowSync,
    pub alarms: AlarmHandle,
    /// New calls admitted and refused (the dispatcher counts them).
    pub admission: Arc<crate::admission::Admission>,
    /// The media workers (none when a test harness supplies the media).
    pub media: Option<Arc<crate::media::MediaWorkers>>,
    pub connectors: crate::connectors::Connectors,
    /// Calls the engine places start at the dispatcher (counted, refused on a standby).
    pub dispatcher: tokio::sync::mpsc::UnboundedSender<crate::dispatch::DispatcherInput>,
    /// Alarms pushed by the access-control system (None: no webhook configured).
    pub alarm_webhook: Option<crate::callout::webhook::AlarmWebhook>,
}

impl EngineHandle {
    pub(crate) fn new(engine: Running, ha: Option<Arc<dyn HaControl>>) -> Self {
        EngineHandle {
            inner: Arc::new(Inner {
                ha,
                engine: Some(engine),
            }),
        }
    }

    /// The handle of a witness: HA operations only.
    pub fn witness(ha: Arc<dyn HaControl>) -> Self {
        EngineHandle {
            inner: Arc::new(Inner {
                ha: Some(ha),
                engine: None,
            }),
        }
    }

    fn engine(&self) -> Result<&Running, HandleError> {
        self.inner
            .engine
            .as_ref()
            .ok_or_else(|| HandleError::unavailable(Part::Telephony, "this node is a witness"))
    }

    /// The configuration the engine runs with; `None` on a witness.
    pub fn config(&self) -> Option<&EngineConfig> {
        self.inner.engine.as_ref().map(|e| &*e.config)
    }

    /// The bound SIP address (UDP and TCP); `None` on a witness.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.inner.engine.as_ref().map(|e| e.sip.local_addr())
    }

    /// The bound SIP over TLS address; `None` without TLS or on a witness.
    pub fn sip_tls_addr(&self) -> Option<SocketAddr> {
        self.inner.engine.as_ref().and_then(|e| e.sip.tls_addr())
    }

    /// Agents' authentication: failures, bans, requests refused while banned (for metrics).
    pub fn auth_stats(&self) -> Result<sip::auth::GuardStats, HandleError> {
        Ok(*self.engine()?.auth.borrow())
    }

    /// The SIP transport's counters: refusals by the allow-list, TCP and TLS connections.
    pub async fn sip_stats(&self) -> Result<sip::transport::DriverStats, HandleError> {
        self.engine()?
            .sip
            .stats()
            .await
            .map_err(|e| HandleError::unavailable(Part::Telephony, e.to_string()))
    }

    /// Calls in progress as the dispatcher counts them (0 on a witness).
    pub fn active_calls(&self) -> usize {
        self.inner
            .engine
            .as_ref()
            .map_or(0, |e| *e.active_calls.borrow())
    }

    /// New calls admitted and refused by reason since the start (for metrics).
    pub fn admission(&self) -> Result<crate::admission::AdmissionCounts, HandleError> {
        Ok(self.engine()?.admission.counts())
    }

    /// RTP totals over every stream since the start; `None` when the media workers are
    /// not the engine's own (a test harness's media).
    pub fn rtp_totals(&self) -> Result<Option<crate::media::tally::RtpTotals>, HandleError> {
        Ok(self.engine()?.media.as_ref().map(|m| m.rtp_totals()))
    }

    pub fn watch_active_calls(&self) -> Result<watch::Receiver<usize>, HandleError> {
        Ok(self.engine()?.active_calls.clone())
    }

    /// Health and latency of each connector (circuit state, calls, errors, timeouts): what
    /// the metrics exporter reads. Empty on a witness.
    pub fn connector_health(&self) -> Vec<crate::connectors::ConnectorHealth> {
        self.inner
            .engine
            .as_ref()
            .map_or_else(Vec::new, |e| e.connectors.health())
    }

    // --- agents -------------------------------------------------------------------------

    /// Changes an agent's state; the ACD's refusal (already ready, unknown agent...) comes
    /// back as `Refused` or `NotFound`.
    pub async fn agent(&self, agent: &str, command: AgentCommand) -> Result<(), HandleError> {
        let id = AgentId::from(agent);
        let input = match command {
            AgentCommand::Login => Input::AgentLogin { agent: id },
            AgentCommand::Ready => Input::AgentReady { agent: id },
            AgentCommand::Pause { reason } => Input::AgentPause { agent: id, reason },
            AgentCommand::Logout => Input::AgentLogout { agent: id },
        };
        self.engine()?
            .acd
            .input_checked(input)
            .await
            .map_err(|e| match e {
                crate::acd::driver::AcdCommandError::Refused(e) => HandleError::from(e),
                stopped => HandleError::unavailable(Part::Acd, stopped),
            })
    }

    // --- calls --------------------------------------------------------------------------

    /// Sends a command to a call in progress, given by its id or by the agent on it.
    pub async fn call_command(
        &self,
        call_or_agent: &str,
        command: CallCommand,
    ) -> Result<CallAnswer, HandleError> {
        let engine = self.engine()?;
        let call = if engine.live.contains(call_or_agent) {
            call_or_agent.to_string()
        } else {
            self.acd()
                .await?
                .agents
                .into_iter()
                .find(|a| a.id.as_str() == call_or_agent)
                .and_then(|a| a.call)
                .map(|c| c.as_str().to_string())
                .ok_or_else(|| HandleError::NotFound {
                    what: Missing::AgentCall,
                    id: call_or_agent.to_string(),
                })?
        };
        let outcome = engine
            .live
            .command(&call, command)
            .await
            .map_err(|e| HandleError::from_command(&call, e))?;
        Ok(CallAnswer { call, outcome })
    }

    /// The calls in progress, oldest first: flow and step, queue, position and agent (from
    /// the ACD's own snapshot), times and duration.
    pub async fn calls(&self) -> Result<Vec<CallInProgress>, HandleError> {
        let engine = self.engine()?;
        let acd = self.acd().await?;
        Ok(views::merge(engine.live.views(), &acd, chrono::Utc::now()))
    }

    /// One call in progress.
    pub async fn call(&self, id: &str) -> Result<CallInProgress, HandleError> {
        self.calls()
            .await?
            .into_iter()
            .find(|c| c.call.id == id)
            .ok_or_else(|| HandleError::NotFound {
                what: Missing::Call,
                id: id.to_string(),
            })
    }

    // --- ACD snapshots ------------------------------------------------------------------

    /// Queues, agents and the calls the ACD holds, at one instant.
    pub async fn acd(&self) -> Result<AcdSnapshot, HandleError> {
        self.engine()?
            .acd
            .snapshot()
            .await
            .ok_or_else(|| HandleError::unavailable(Part::Acd, "the ACD is not running"))
    }

    /// Per queue: waiting calls, longest wait, expected wait, agents per state.
    pub async fn queues(&self) -> Result<Vec<QueueSnapshot>, HandleError> {
        Ok(self.acd().await?.queues)
    }

    /// Per agent: state, time in state, pause reason, call, queues served.
    pub async fn agents(&self) -> Result<Vec<AgentSnapshot>, HandleError> {
        Ok(self.acd().await?.agents)
    }

    // --- records ------------------------------------------------------------------------

    /// The latest recordings of the replicated index, newest first.
    pub async fn recordings(&self, limit: u32) -> Result<Vec<IndexEntry>, HandleError> {
        let docs = self
            .engine()?
            .storage
            .latest_docs(RECORDINGS, "$.recorded_at", limit)
            .await
            .map_err(|e| HandleError::unavailable(Part::Storage, e))?;
        docs.into_iter()
            .map(|(key, text)| {
                serde_json::from_str(&text).map_err(|e| {
                    HandleError::unavailable(
                        Part::Storage,
                        format!("recording index entry {key}: {e}"),
                    )
                })
            })
            .collect()
    }

    /// The figures of `[since, until)` (e.g. today) from the stored ACD events, to keep up
    /// to date with `acd_events`, and the events read (see `acd::report::running_since`).
    pub async fn running_statistics(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(RunningStats, Vec<AcdEvent>), HandleError> {
        let engine = self.engine()?;
        let thresholds = thresholds(&engine.config);
        running_since(&engine.storage, since, until, thresholds)
            .await
            .map_err(|e| HandleError::unavailable(Part::Storage, e))
    }

    /// Queue statistics per interval (`svi stats`, the admin reports); each queue's own
    /// service-level threshold unless the query gives one.
    pub async fn statistics(&self, query: &ReportQuery) -> Result<Vec<QueueStats>, HandleError> {
        let engine = self.engine()?;
        let thresholds = thresholds(&engine.config);
        queue_report(&engine.storage, query, &thresholds)
            .await
            .map_err(report_error)
    }

    /// The same statistics across every pair, from the central reporting database
    /// (`[central]`; refused when it is not configured).
    pub async fn central_statistics(
        &self,
        query: &ReportQuery,
    ) -> Result<Vec<QueueStats>, HandleError> {
        let engine = self.engine()?;
        let Some(central) = &engine.config.central else {
            return Err(HandleError::BadRequest {
                reason: "central reporting is not configured ([central])".into(),
            });
        };
        let thresholds = thresholds(&engine.config);
        let db = crate::central::reader(central, &engine.config.data_dir)
            .await
            .map_err(|e| HandleError::unavailable(Part::Storage, e))?;
        let rows = crate::acd::report::central_queue_report(&db, query, &thresholds).await;
        db.close().await;
        rows.map_err(report_error)
    }

    // --- streams ------------------------------------------------------------------------

    /// Every call and ACD event from now on.
    pub fn events(&self) -> Result<EngineEvents, HandleError> {
        let engine = self.engine()?;
        Ok(EngineEvents::new(
            engine.live.subscribe(),
            engine.acd.events(),
        ))
    }

    /// The ACD's events alone, as they come (what today's running figures follow).
    pub fn acd_events(&self) -> Result<broadcast::Receiver<AcdEvent>, HandleError> {
        Ok(self.engine()?.acd.events())
    }

    /// Queues, agents and queued calls, republished after each change.
    pub fn watch_acd(&self) -> Result<watch::Receiver<Arc<AcdSnapshot>>, HandleError> {
        Ok(self.engine()?.acd.watch())
    }

    // --- health -------------------------------------------------------------------------

    /// Whether the engine's central task (the ACD, which every call goes through) answers:
    /// the service watchdog is fed only while it does.
    pub async fn alive(&self) -> bool {
        self.acd().await.is_ok()
    }

    /// Where alarm sources report, and the alarms' snapshot (metrics, `svi alarms`); a
    /// witness raises none.
    pub fn alarms(&self) -> Result<&AlarmHandle, HandleError> {
        Ok(&self.engine()?.alarms)
    }

    // --- HA -----------------------------------------------------------------------------

    fn ha(&self) -> Result<&dyn HaControl, HandleError> {
        self.inner.ha.as_deref().ok_or_else(|| {
            HandleError::unavailable(Part::Ha, "this node is not part of an HA pair")
        })
    }

    pub async fn ha_status(&self) -> Result<HaStatus, HandleError> {
        Ok(self.ha()?.status().await?)
    }

    /// Makes this node the active one (manual fail-back); `force`: continue alone in a pair
    /// without a witness whose other node is gone.
    pub async fn ha_promote(&self, force: bool) -> Result<(), HandleError> {
        Ok(self.ha()?.promote(force).await?)
    }
}

fn report_error(e: crate::acd::report::ReportError) -> HandleError {
    match e {
        crate::acd::report::ReportError::EmptyPeriod { .. } => HandleError::BadRequest {
            reason: e.to_string(),
        },
        other => HandleError::unavailable(Part::Storage, other),
    }
}

/// Each configured queue's service-level threshold.
fn thresholds(config: &crate::config::EngineConfig) -> HashMap<String, Duration> {
    config
        .acd
        .queues
        .iter()
        .map(|q| (q.id.as_str().to_string(), q.service_level))
        .collect()
}
