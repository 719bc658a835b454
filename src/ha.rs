//! Wiring of the HA pair (the `ha` crate) into the engine: the `[ha]` section of the
//! configuration, the replicated record writer, the active/standby role as the engine sees
//! it, the recording copier, and the control-socket commands `svi ha status|promote`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use engine::alarm::Webhook;
use engine::config::EngineConfig;
use engine::replication::{
    BoxFuture, HaCommandError, HaControl, HaStatus, RecordWriter, Replication, ServingLease,
};
use engine::storage::CallRecord;
use ha::{
    Command, HaConfig, HaNode, Lease, MemberKind, NodeInfo, RecordingStore, Role, Secret, Timings,
};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHa {
    node_id: u64,
    listen: Option<SocketAddr>,
    secret: Option<String>,
    /// Name of an environment variable holding the secret (keeps it out of the file).
    secret_env: Option<String>,
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    lease_ms: Option<u64>,
    /// URL to POST a JSON event to on every role change (alarms).
    alarm_webhook: Option<String>,
    #[serde(default)]
    members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: u64,
    cluster: String,
    sip: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

fn raw_ha(config: &EngineConfig, table: &toml::Table) -> anyhow::Result<RawHa> {
    let file = config.file.display();
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{file}: ha: {}", e.message()))
}

/// `ha.alarm_webhook`, checked: an http(s) URL (an error names the key).
pub fn alarm_webhook(config: &EngineConfig) -> anyhow::Result<Option<Webhook>> {
    let Some(table) = &config.ha else {
        return Ok(None);
    };
    let Some(url) = raw_ha(config, table)?.alarm_webhook else {
        return Ok(None);
    };
    Webhook::new(&url)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: ha.alarm_webhook: {e}", config.file.display()))
}

/// Raises every role change of `node` as an alarm: the `ha` crate already logs it at warn;
/// this posts it to the webhook, if any. The webhook sends from its own task, so a slow
/// receiver never holds a role change (the role watch is updated before the event is sent).
fn forward_alarms(node: &HaNode, webhook: Option<Webhook>) {
    let Some(webhook) = webhook else { return };
    let mut events = node.events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => webhook.send(serde_json::json!({
                    "node": ev.node,
                    "from": ev.from,
                    "to": ev.to,
                    "term": ev.term,
                    "leader": ev.leader,
                    "at": ev.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alarm webhook: role events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// The lease as the engine's decision-time check sees it.
struct LeaseCheck(Arc<Lease>);

impl ServingLease for LeaseCheck {
    fn valid_now(&self) -> bool {
        self.0.valid_now()
    }
}

/// The cluster configuration: `[ha]` when present, else a one-voter cluster (same path).
pub fn ha_config(config: &EngineConfig) -> anyhow::Result<HaConfig> {
    let file = config.file.display().to_string();
    let Some(table) = &config.ha else {
        return Ok(HaConfig::single(1, config.data_dir.clone()));
    };
    let raw = raw_ha(config, table)?;
    let secret = match (&raw.secret, &raw.secret_env) {
        (Some(s), None) => s.clone(),
        (None, Some(var)) => std::env::var(var).with_context(|| {
            format!("{file}: ha.secret_env: environment variable `{var}` is not set")
        })?,
        _ => bail!("{file}: ha: give exactly one of `secret` and `secret_env`"),
    };
    if secret.len() < 16 {
        bail!("{file}: ha.secret: use at least 16 characters (it authenticates the cluster)");
    }
    let mut members = BTreeMap::new();
    for (i, m) in raw.members.iter().enumerate() {
        let kind = match m.kind.as_deref().unwrap_or("full") {
            "full" => MemberKind::Full,
            "witness" => MemberKind::Witness,
            other => bail!("{file}: ha.members[{i}].kind: `{other}` is not `full` or `witness`"),
        };
        members.insert(
            m.id,
            NodeInfo {
                cluster_addr: m.cluster.clone(),
                sip_addr: m.sip.clone(),
                kind,
            },
        );
    }
    let d = Timings::default();
    let ms = |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
    let timings = Timings {
        heartbeat: ms(raw.heartbeat_ms, d.heartbeat),
        election_timeout_min: ms(raw.election_timeout_min_ms, d.election_timeout_min),
        election_timeout_max: ms(raw.election_timeout_max_ms, d.election_timeout_max),
        lease: ms(raw.lease_ms, d.lease),
    };
    let mut cfg = HaConfig {
        node_id: raw.node_id,
        data_dir: config.data_dir.clone(),
        listen: raw.listen,
        members,
        secret: Secret::new(secret),
        timings,
        retention: Default::default(),
        recordings: None,
    };
    // A full node serves its recordings to the other one and copies theirs; the index
    // names nodes by `[node] name`.
    if !cfg.is_witness() {
        cfg.recordings = Some(RecordingStore {
            dir: config.recording.settings(&config.data_dir).dir,
            node_name: config.node_name.clone(),
        });
    }
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("{file}: ha: {e}"))?;
    Ok(cfg)
}

/// Call records and documents (ACD events...) go through the replicated log. A write made
/// while this node was not active (or during a leader change) is kept and retried, so it
/// is not lost.
struct HaWriter {
    queue: mpsc::UnboundedSender<Command>,
}

impl HaWriter {
    fn send(&self, command: Command) -> BoxFuture<'_, Result<(), String>> {
        let r = self
            .queue
            .send(command)
            .map_err(|_| "the replicated writer stopped".to_string());
        Box::pin(async move { r })
    }
}

impl RecordWriter for HaWriter {
    fn write_call(&self, record: CallRecord) -> BoxFuture<'_, Result<(), String>> {
        self.send(Command::InsertCall(Box::new(record)))
    }

    fn put_doc(
        &self,
        collection: String,
        key: String,
        value: serde_json::Value,
    ) -> BoxFuture<'_, Result<(), String>> {
        self.send(Command::Put {
            collection,
            key,
            value,
        })
    }
}

/// Commands proposed at once: the raft core batches concurrent proposals into one log
/// append (one fsync), which a sequential writer would pay per record (~400/s measured).
const IN_FLIGHT: usize = 64;

/// Proposes commands, up to `IN_FLIGHT` at a time; retries each for up to ten minutes (a
/// failover takes seconds).
async fn write_records(node: Arc<HaNode>, mut queue: mpsc::UnboundedReceiver<Command>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(command) = queue.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // The Debug form names the kind and key only (records hold personal data).
            let what = format!("{command:?}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            let mut delay = Duration::from_millis(100);
            loop {
                match node.propose(command.clone()).await {
                    Ok(_) => break,
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(%what, error = %e, "write not replicated yet; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => {
                        tracing::error!(%what, error = %e, "write could not be replicated; dropped");
                        break;
                    }
                }
            }
        });
    }
}

struct Control(Arc<HaNode>);

fn command_error(e: ha::HaError) -> HaCommandError {
    match e {
        ha::HaError::NotActive { role, leader } => HaCommandError::NotActive { role, leader },
        ha::HaError::NotAllowed(reason) | ha::HaError::Promote(reason) => {
            HaCommandError::Refused(reason)
        }
        other => HaCommandError::Unavailable(other.to_string()),
    }
}

impl HaControl for Control {
    fn status(&self) -> BoxFuture<'_, Result<HaStatus, HaCommandError>> {
        Box::pin(async move { self.0.status().await.map_err(command_error) })
    }

    fn promote(&self, force: bool) -> BoxFuture<'_, Result<(), HaCommandError>> {
        Box::pin(async move { self.0.promote(force).await.map_err(command_error) })
    }
}

/// The engine's view of the node's role: `true` only while Active. Role changes are the
/// HA alarms: logged at warn (by the `ha` crate) with old and new role.
fn serving(node: &HaNode) -> watch::Receiver<bool> {
    let mut roles = node.role();
    let (tx, rx) = watch::channel(*roles.borrow() == Role::Active);
    tokio::spawn(async move {
        while roles.changed().await.is_ok() {
            let active = *roles.borrow_and_update() == Role::Active;
            tx.send_replace(active);
        }
    });
    rx
}

/// Starts the node's raft member on the engine database and returns what the engine needs.
pub async fn start(
    cfg: HaConfig,
    storage: engine::storage::Storage,
    alarms: Option<Webhook>,
) -> anyhow::Result<(Arc<HaNode>, Replication)> {
    let node = Arc::new(
        HaNode::start_with_storage(cfg, storage)
            .await
            .context("starting the replicated state")?,
    );
    forward_alarms(&node, alarms);
    // Recordings are copied between the full nodes in the background (see docs/ha.md).
    node.copy_recordings();
    let (queue, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_records(node.clone(), rx));
    let replication = Replication {
        writer: Arc::new(HaWriter { queue }),
        active: serving(&node),
        lease: Some(Arc::new(LeaseCheck(node.lease()))),
        ha: Some(Arc::new(Control(node.clone()))),
    };
    Ok((node, replication))
}

/// The witness: a voter with no telephony, only the control socket for `svi ha status`.
pub async fn witness(cfg: HaConfig, alarms: Option<Webhook>) -> anyhow::Result<Arc<HaNode>> {
    if !cfg.is_witness() {
        bail!(
            "ha.node_id {} is not a `witness` member in ha.members",
            cfg.node_id
        );
    }
    let data_dir = cfg.data_dir.clone();
    let node = Arc::new(HaNode::start(cfg).await.context("starting the witness")?);
    forward_alarms(&node, alarms);
    let handle = engine::EngineHandle::witness(Arc::new(Control(node.clone())));
    tokio::spawn(engine::control::serve(data_dir, handle));
    Ok(node)
}
