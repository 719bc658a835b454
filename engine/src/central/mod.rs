//! Central reporting: the active node of a pair exports what the pair committed (call
//! records, ACD events, recording index) to a shared PostgreSQL (`[central]`).
//!
//! The export reads, it does not decide: it follows the state machine's numbered feed
//! (`storage::export`) after a cursor, upserts each page in one central transaction
//! (`storage::central`, keyed by pair and call id / event), then replicates the cursor as a
//! document (`central_export` / the pair's name) through the same writer as every durable
//! write. A node becoming active reads the cursor from its own copy of the state, so it
//! continues where the old active node stopped; a page whose cursor was not saved is sent
//! again and upserted. With the central database down the export backs off (`core`),
//! raises `central_export` on the alarm board, and catches up when it is back; calls never
//! wait for it.
//!
//! - `core`: the sans-IO decisions (cursor, paging, backoff, alarm), tested in virtual time;
//! - this file: the driver task and the password of `[central]`.

pub mod core;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use self::core::{Action, Exporter};
use crate::alarm::{AlarmHandle, AlarmKind, Condition, Severity};
use crate::config::CentralConfig;
use crate::replication::RecordWriter;
use crate::storage::central::{CentralDb, ACD_EVENTS, RECORDINGS};
use crate::storage::{ExportRow, Storage, StorageError};

/// The replicated collection of export cursors, keyed by pair name.
pub const CURSOR_COLLECTION: &str = "central_export";

/// The feed's collections that go to the central database (with every call record).
pub const EXPORTED: &[&str] = &[ACD_EVENTS, RECORDINGS];

#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("central.password: {0}")]
    Password(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The password of `[central]`: decrypted with the data directory's key, or read from the
/// environment variable it names.
pub fn password(config: &CentralConfig, data_dir: &Path) -> Result<Option<String>, CentralError> {
    let Some(text) = &config.password else {
        return Ok(None);
    };
    if crate::secrets::is_encrypted(text) {
        let key = crate::secrets::SecretKey::load(data_dir)
            .map_err(|e| CentralError::Password(e.to_string()))?;
        let secret = key
            .decrypt(text)
            .map_err(|e| CentralError::Password(e.to_string()))?;
        return Ok(Some(secret.expose().to_string()));
    }
    let name = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| CentralError::Password("neither enc:v1:... nor ${VAR}".into()))?;
    std::env::var(name)
        .map(Some)
        .map_err(|_| CentralError::Password(format!("the environment variable {name} is not set")))
}

/// Connects to the central database of `config` and brings its schema up to date.
pub async fn connect(config: &CentralConfig, data_dir: &Path) -> Result<CentralDb, CentralError> {
    let db = reader(config, data_dir).await?;
    db.migrate().await?;
    Ok(db)
}

/// Connects to the central database of `config` to read it (no schema change).
pub async fn reader(config: &CentralConfig, data_dir: &Path) -> Result<CentralDb, CentralError> {
    let password = password(config, data_dir)?;
    Ok(CentralDb::connect(&config.url, password.as_deref()).await?)
}

/// Starts the export of `[central]`, if configured. It runs only while `active` is true.
pub fn spawn(
    config: &crate::config::EngineConfig,
    storage: Storage,
    active: watch::Receiver<bool>,
    writer: Arc<dyn RecordWriter>,
    alarms: AlarmHandle,
) -> Option<tokio::task::JoinHandle<()>> {
    let central = config.central.clone()?;
    tracing::info!(
        url = %crate::storage::central::redact(&central.url),
        pair = %central.pair,
        "central reporting export (runs on the active node)"
    );
    let ctx = Driver {
        config: central,
        data_dir: config.data_dir.clone(),
        storage,
        writer,
        alarms,
    };
    Some(tokio::spawn(ctx.run(active)))
}

struct Driver {
    config: CentralConfig,
    data_dir: std::path::PathBuf,
    storage: Storage,
    writer: Arc<dyn RecordWriter>,
    alarms: AlarmHandle,
}

impl Driver {
    async fn run(self, mut active: watch::Receiver<bool>) {
        let mut db: Option<CentralDb> = None;
        loop {
            while !*active.borrow_and_update() {
                if active.changed().await.is_err() {
                    return;
                }
            }
            // A new term of service: the cursor is read again from the replicated state.
            let now = Instant::now().into_std();
            let mut core = Exporter::new(now, self.config.batch, self.config.poll);
            let mut page: Vec<ExportRow> = Vec::new();
            let mut alarm: Option<String> = None;
            while *active.borrow() {
                let now = Instant::now().into_std();
                let Some(action) = core.poll_action(now) else {
                    let deadline = core.next_deadline().unwrap_or(now);
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline.into()) => {}
                        changed = active.changed() => if changed.is_err() { return },
                    }
                    continue;
                };
                match self.step(action, &mut db, &mut page).await {
                    Ok(Done::Cursor(c)) => core.handle_cursor(Instant::now().into_std(), c),
                    Ok(Done::Read) => core.handle_read(
                        Instant::now().into_std(),
                        page.len() as u32,
                        page.last().map(|r| r.seq),
                    ),
                    Ok(Done::Sent) => core.handle_sent(Instant::now().into_std()),
                    Ok(Done::Saved) => core.handle_saved(Instant::now().into_std()),
                    Err(e) => {
                        tracing::warn!(error = %e, "central export failed; backing off");
                        if matches!(action, Action::Send) {
                            // Reconnect next time: the server may have restarted.
                            if let Some(old) = db.take() {
                                old.close().await;
                            }
                        }
                        core.handle_failure(Instant::now().into_std(), e.to_string());
                    }
                }
                let now_alarm = core.alarm().map(str::to_string);
                if now_alarm != alarm {
                    self.report(now_alarm.as_deref());
                    alarm = now_alarm;
                }
            }
            self.report(None);
        }
    }

    async fn step(
        &self,
        action: Action,
        db: &mut Option<CentralDb>,
        page: &mut Vec<ExportRow>,
    ) -> Result<Done, CentralError> {
        let pair = &self.config.pair;
        Ok(match action {
            Action::LoadCursor => {
                let doc = self.storage.get_doc(CURSOR_COLLECTION, pair).await?;
                let seq = doc
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                    .and_then(|v| v.get("seq").and_then(|s| s.as_u64()));
                Done::Cursor(seq)
            }
            Action::Read { after, limit } => {
                *page = self.storage.export_after(after, EXPORTED, limit).await?;
                Done::Read
            }
            Action::Send => {
                let central = match db {
                    Some(c) => c,
                    None => db.insert(connect(&self.config, &self.data_dir).await?),
                };
                let done = central.upsert(pair, page).await?;
                tracing::debug!(
                    inserted = done.inserted,
                    updated = done.updated,
                    "central export page sent"
                );
                page.clear();
                Done::Sent
            }
            Action::SaveCursor(seq) => {
                let value = serde_json::json!({ "seq": seq });
                if let Err(e) = self
                    .writer
                    .put_doc(CURSOR_COLLECTION.into(), pair.clone(), value)
                    .await
                {
                    // The page is in the central database: the next active node re-sends
                    // it at worst, and the upsert makes that harmless.
                    tracing::warn!(error = %e, seq, "central export cursor not saved");
                }
                Done::Saved
            }
        })
    }

    fn report(&self, error: Option<&str>) {
        let conditions = error
            .map(|e| Condition {
                kind: AlarmKind::CentralExport,
                subject: format!("pair {}", self.config.pair),
                severity: Severity::Minor,
                message: format!("the export to the central database is failing (retrying): {e}"),
            })
            .into_iter()
            .collect();
        self.alarms.report("central", conditions);
    }
}

enum Done {
    Cursor(Option<u64>),
    Read,
    Sent,
    Saved,
}
