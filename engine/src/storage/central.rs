//! The shared PostgreSQL of central reporting: every pair upserts its call records, ACD
//! events and recording index there (`crate::central` drives it), and `svi stats --source
//! central` reads the ACD events of every pair back.
//!
//! Every row carries the pair's name and is keyed by it with the call id (calls,
//! recordings) or the event batch's key and the event's place in it (ACD events), so a row
//! sent twice (a failover between the upsert and the replicated cursor) is updated, never
//! duplicated; `sends` counts the deliveries, so a test can see a re-send.
//!
//! The schema is versioned like the SQLite files (`migrate`): forward-only steps, applied
//! in one transaction with the new version (PostgreSQL's DDL is transactional), under an
//! advisory lock so that pairs starting together do not race. A database at a version above
//! this build's is refused.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Executor, PgConnection, Row};

use super::export::{ExportItem, ExportRow};
use super::migrate::Step;
use super::{CallRecord, StorageError};

/// The collections of the feed that go to the central database.
pub const ACD_EVENTS: &str = "acd_events";
pub const RECORDINGS: &str = "recordings";

/// The central schema's steps (its version is the number applied).
pub static CENTRAL_STEPS: &[Step] = &[Step {
    name: "calls, ACD events and recording index of every pair",
    sql: "CREATE TABLE central_calls (
            pair TEXT NOT NULL,
            id TEXT NOT NULL,
            sip_call_id TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            answered_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ NOT NULL,
            caller TEXT NOT NULL,
            called TEXT NOT NULL,
            flow TEXT,
            flow_version TEXT,
            path JSONB NOT NULL,
            end_reason TEXT NOT NULL,
            codec TEXT,
            node TEXT NOT NULL,
            rtp_sent BIGINT NOT NULL,
            rtp_received BIGINT NOT NULL,
            queue TEXT,
            agent TEXT,
            queued_at TIMESTAMPTZ,
            agent_answered_at TIMESTAMPTZ,
            queue_outcome TEXT,
            recording TEXT,
            recording_sha256 TEXT,
            recording_ms BIGINT,
            dial_refused TEXT,
            sends INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (pair, id)
        );
        CREATE INDEX central_calls_started ON central_calls (started_at);
        CREATE TABLE central_acd_events (
            pair TEXT NOT NULL,
            batch TEXT NOT NULL,
            idx INTEGER NOT NULL,
            at_ms BIGINT NOT NULL,
            event JSONB NOT NULL,
            sends INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (pair, batch, idx)
        );
        CREATE INDEX central_acd_events_batch ON central_acd_events (batch);
        CREATE TABLE central_recordings (
            pair TEXT NOT NULL,
            call TEXT NOT NULL,
            file TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            sha256 TEXT,
            duration_ms BIGINT,
            recorded_at TIMESTAMPTZ,
            entry JSONB NOT NULL,
            sends INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (pair, call)
        );",
}];

/// Any fixed number: the advisory lock that serialises migrations across pairs.
const MIGRATION_LOCK: i64 = 0x7376_695f_6365_6e74;

/// How long a connection attempt may take before the export backs off.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection pool on the central database, for one pair.
#[derive(Debug, Clone)]
pub struct CentralDb {
    pool: PgPool,
}

/// What one upsert did: rows inserted, and rows that were there already (re-sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u64,
    pub updated: u64,
}

/// The fields of a recording index entry the central table has columns for.
#[derive(Deserialize)]
struct Entry {
    file: String,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    recorded_at: Option<DateTime<Utc>>,
}

impl CentralDb {
    /// Connects to `url` (`postgres://user@host:port/db`); `password`, if given, replaces
    /// the URL's. Nothing is read or written yet.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<CentralDb, StorageError> {
        let open_err = |source| StorageError::Central(format!("{}: {source}", redact(url)));
        let mut options = PgConnectOptions::from_str(url).map_err(open_err)?;
        if let Some(p) = password {
            options = options.password(p);
        }
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(CentralDb { pool })
    }

    /// Brings the central schema up to this build's version; returns the version.
    pub fn migrate(&self) -> crate::replication::BoxFuture<'_, Result<u32, StorageError>> {
        Box::pin(self.migrate_inner())
    }

    async fn migrate_inner(&self) -> Result<u32, StorageError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        // A text without arguments goes by the simple query protocol: several statements.
        tx.execute("CREATE TABLE IF NOT EXISTS central_schema (version INTEGER NOT NULL)")
            .await?;
        let found: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM central_schema")
            .fetch_one(&mut *tx)
            .await?;
        let found = found.unwrap_or(0).max(0) as u32;
        let known = CENTRAL_STEPS.len() as u32;
        if found > known {
            return Err(StorageError::NewerSchema {
                file: "the central database".into(),
                found,
                known,
            });
        }
        for (i, step) in CENTRAL_STEPS.iter().enumerate().skip(found as usize) {
            tx.execute(step.sql)
                .await
                .map_err(|source| StorageError::Migration {
                    file: "the central database".into(),
                    version: i as u32 + 1,
                    name: step.name,
                    source,
                })?;
        }
        sqlx::query("DELETE FROM central_schema")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO central_schema (version) VALUES ($1)")
            .bind(known as i32)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(known)
    }

    /// Upserts the rows of one feed page for `pair`, in one transaction.
    pub fn upsert<'a>(
        &'a self,
        pair: &'a str,
        rows: &'a [ExportRow],
    ) -> crate::replication::BoxFuture<'a, Result<Upserted, StorageError>> {
        // Boxed as `Send` here: inline in a spawned task, the compiler cannot prove the
        // sqlx futures `Send` for every lifetime (rust-lang/rust#102211).
        Box::pin(self.upsert_inner(pair, rows))
    }

    async fn upsert_inner(&self, pair: &str, rows: &[ExportRow]) -> Result<Upserted, StorageError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Upserted::default();
        for row in rows {
            let fresh: Vec<bool> = match &row.item {
                ExportItem::Call(r) => vec![upsert_call(&mut tx, pair, r).await?],
                ExportItem::Doc {
                    collection,
                    key,
                    value,
                } => match collection.as_str() {
                    ACD_EVENTS => upsert_events(&mut tx, pair, key, value).await?,
                    RECORDINGS => upsert_recording(&mut tx, pair, key, value)
                        .await?
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                },
            };
            for inserted in fresh {
                if inserted {
                    out.inserted += 1;
                } else {
                    out.updated += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The ACD events of every pair whose batch keys are in `[from, to)`, in the order the
    /// local report reads them (batch key, then place in the batch), as JSON.
    pub async fn acd_events(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<serde_json::Value>, StorageError> {
        let rows = sqlx::query(
            "SELECT event FROM central_acd_events WHERE batch >= $1 AND batch < $2
             ORDER BY batch, pair, idx",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<Json<serde_json::Value>, _>(0)?.0))
            .collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL without its password, for errors and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        _ => url.to_string(),
    }
}

/// `true` when the row was inserted, `false` when it was there (updated).
async fn upsert_call(
    conn: &mut PgConnection,
    pair: &str,
    r: &CallRecord,
) -> Result<bool, StorageError> {
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO central_calls (pair, id, sip_call_id, started_at, answered_at, ended_at,
           caller, called, flow, flow_version, path, end_reason, codec, node, rtp_sent,
           rtp_received, queue, agent, queued_at, agent_answered_at, queue_outcome, recording,
           recording_sha256, recording_ms, dial_refused)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,
           $22,$23,$24,$25)
         ON CONFLICT (pair, id) DO UPDATE SET sip_call_id = EXCLUDED.sip_call_id,
           started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at,
           ended_at = EXCLUDED.ended_at, caller = EXCLUDED.caller, called = EXCLUDED.called,
           flow = EXCLUDED.flow, flow_version = EXCLUDED.flow_version, path = EXCLUDED.path,
           end_reason = EXCLUDED.end_reason, codec = EXCLUDED.codec, node = EXCLUDED.node,
           rtp_sent = EXCLUDED.rtp_sent, rtp_received = EXCLUDED.rtp_received,
           queue = EXCLUDED.queue, agent = EXCLUDED.agent, queued_at = EXCLUDED.queued_at,
           agent_answered_at = EXCLUDED.agent_answered_at,
           queue_outcome = EXCLUDED.queue_outcome, recording = EXCLUDED.recording,
           recording_sha256 = EXCLUDED.recording_sha256, recording_ms = EXCLUDED.recording_ms,
           dial_refused = EXCLUDED.dial_refused, sends = central_calls.sends + 1
         RETURNING (xmax = 0)",
    )
    .bind(pair)
    .bind(&r.id)
    .bind(&r.sip_call_id)
    .bind(r.started_at)
    .bind(r.answered_at)
    .bind(r.ended_at)
    .bind(&r.caller)
    .bind(&r.called)
    .bind(&r.flow)
    .bind(&r.flow_version)
    .bind(Json(&r.path))
    .bind(r.end_reason.as_str())
    .bind(&r.codec)
    .bind(&r.node)
    .bind(i64::try_from(r.rtp_sent).unwrap_or(i64::MAX))
    .bind(i64::try_from(r.rtp_received).unwrap_or(i64::MAX))
    .bind(&r.queue)
    .bind(&r.agent)
    .bind(r.queued_at)
    .bind(r.agent_answered_at)
    .bind(r.queue_outcome.map(|o| o.as_str()))
    .bind(&r.recording)
    .bind(&r.recording_sha256)
    .bind(
        r.recording_ms
            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
    )
    .bind(&r.dial_refused)
    .fetch_one(&mut *conn)
    .await?;
    Ok(inserted)
}

/// One ACD event batch document: one row per event.
async fn upsert_events(
    conn: &mut PgConnection,
    pair: &str,
    batch: &str,
    text: &str,
) -> Result<Vec<bool>, StorageError> {
    // A document that is not an array of events cannot be exported: skipped (and logged)
    // rather than stopping the export of everything after it.
    let events: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(batch, error = %e, "unreadable ACD events not exported");
            return Ok(Vec::new());
        }
    };
    let mut out = Vec::with_capacity(events.len());
    for (idx, event) in events.iter().enumerate() {
        let at_ms = event.get("at").and_then(|v| v.as_i64()).unwrap_or(0);
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO central_acd_events (pair, batch, idx, at_ms, event)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pair, batch, idx) DO UPDATE SET at_ms = EXCLUDED.at_ms,
               event = EXCLUDED.event, sends = central_acd_events.sends + 1
             RETURNING (xmax = 0)",
        )
        .bind(pair)
        .bind(batch)
        .bind(i32::try_from(idx).unwrap_or(i32::MAX))
        .bind(at_ms)
        .bind(Json(event))
        .fetch_one(&mut *conn)
        .await?;
        out.push(inserted);
    }
    Ok(out)
}

async fn upsert_recording(
    conn: &mut PgConnection,
    pair: &str,
    call: &str,
    text: &str,
) -> Result<Option<bool>, StorageError> {
    let parsed = serde_json::from_str::<serde_json::Value>(text)
        .and_then(|doc| Ok((serde_json::from_value::<Entry>(doc.clone())?, doc)));
    let (e, doc) = match parsed {
        Ok(both) => both,
        Err(err) => {
            tracing::warn!(call, error = %err, "unreadable recording index entry not exported");
            return Ok(None);
        }
    };
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO central_recordings (pair, call, file, bytes, sha256, duration_ms,
           recorded_at, entry)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (pair, call) DO UPDATE SET file = EXCLUDED.file, bytes = EXCLUDED.bytes,
           sha256 = EXCLUDED.sha256, duration_ms = EXCLUDED.duration_ms,
           recorded_at = EXCLUDED.recorded_at, entry = EXCLUDED.entry,
           sends = central_recordings.sends + 1
         RETURNING (xmax = 0)",
    )
    .bind(pair)
    .bind(call)
    .bind(&e.file)
    .bind(i64::try_from(e.bytes).unwrap_or(i64::MAX))
    .bind(&e.sha256)
    .bind(
        e.duration_ms
            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
    )
    .bind(e.recorded_at)
    .bind(Json(&doc))
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(inserted))
}
