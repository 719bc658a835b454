//! Call detail records as stored and as printed by `svi calls --json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::StorageError;

/// Why a call ended. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The caller sent BYE.
    CallerHangup,
    /// The flow ended the call and the engine sent BYE.
    EngineHangup,
    /// The caller cancelled before the answer.
    Cancelled,
    /// The offer could not be served (488) or the call was refused before the answer.
    Rejected,
    /// No RTP arrived for the configured time.
    RtpTimeout,
    /// Our 2xx was never acknowledged.
    AckTimeout,
    /// The engine was shut down while the call was up.
    Shutdown,
    /// The engine process died while the call was up (found at the next start).
    EngineFailure,
    /// The agent hung up a bridged call.
    AgentHangup,
    /// The target of a bridged transfer hung up.
    TargetHangup,
    /// An operator hung the call up (`EngineHandle::call_command`).
    OperatorHangup,
    /// The call failed inside the engine (the record's path says where).
    Error,
    /// A call the engine placed was not answered (no answer in time, busy, declined).
    NoAnswer,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::EngineHangup => "engine_hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected => "rejected",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::EngineFailure => "engine_failure",
            EndReason::AgentHangup => "agent_hangup",
            EndReason::TargetHangup => "target_hangup",
            EndReason::OperatorHangup => "operator_hangup",
            EndReason::Error => "error",
            EndReason::NoAnswer => "no_answer",
        }
    }

    pub fn parse(s: &str) -> Option<EndReason> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: String,
    pub sip_call_id: String,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    /// Caller and called numbers: personal data, printed by `svi calls` for the operator but
    /// never written to logs (see `Pii`).
    pub caller: String,
    pub called: String,
    pub flow: Option<String>,
    pub flow_version: Option<String>,
    /// Flow steps taken, in order.
    pub path: Vec<String>,
    pub end_reason: EndReason,
    pub codec: Option<String>,
    pub node: String,
    /// RTP packets the engine sent and received on this call.
    pub rtp_sent: u64,
    pub rtp_received: u64,
    /// The queue the call waited in, the agent who answered, and when (wait time =
    /// agent_answered_at - queued_at, talk time = ended_at - agent_answered_at).
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub queued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agent_answered_at: Option<DateTime<Utc>>,
    /// How the queue wait ended (None when the call never queued).
    #[serde(default)]
    pub queue_outcome: Option<QueueOutcome>,
    /// The call's recording (a stereo WAV: caller left, agent right), its SHA-256 (hex) and
    /// length.
    #[serde(default)]
    pub recording: Option<String>,
    #[serde(default)]
    pub recording_sha256: Option<String>,
    #[serde(default)]
    pub recording_ms: Option<u64>,
    /// A number the toll-fraud policy refused to dial for this call (a callback or a
    /// transfer), and why (`crate::dialplan`; the number masked).
    #[serde(default)]
    pub dial_refused: Option<String>,
    /// The call outlived the node that answered it: adopted by another node
    /// (`[ha] call_survival`).
    #[serde(default)]
    pub failover: Option<Failover>,
}

/// A call's move from the node that served it to the one that adopted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    /// Node names (`[node] name`): before and after.
    pub from: String,
    pub to: String,
    /// When the new node adopted the call.
    pub at: DateTime<Utc>,
    /// How long the caller had no media: from the last replica of the old node to the
    /// media re-anchored on the new one (unknown until it is).
    #[serde(default)]
    pub media_gap_ms: Option<u64>,
}

/// A search of call records (the admin API's `/api/v1/records`). Times are compared as the
/// RFC 3339 text they are stored as, which sorts in time order: `chrono` writes UTC as
/// `+00:00` with 0, 3, 6 or 9 fraction digits, and `+` sorts before `.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallQuery {
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// The caller's or the called number, exactly.
    pub number: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub queue_outcome: Option<QueueOutcome>,
    pub end_reason: Option<EndReason>,
    /// Only the calls that were recorded (their record holds the recording's length).
    pub recorded: bool,
    pub limit: u32,
    pub offset: u32,
}

/// How a call's wait in a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOutcome {
    /// An agent answered.
    Answered,
    /// The caller hung up while waiting (or while an agent's phone rang).
    Abandoned,
    /// Max wait, max length or no agents: the call went to its overflow target.
    Overflow,
    /// The call left the queue for another reason (a failure, the engine stopping).
    Failed,
    /// The caller asked to be called back and was: answered by an agent on the callback.
    Callback,
    /// The caller asked to be called back but could not be reached.
    CallbackFailed,
}

impl QueueOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueOutcome::Answered => "answered",
            QueueOutcome::Abandoned => "abandoned",
            QueueOutcome::Overflow => "overflow",
            QueueOutcome::Failed => "failed",
            QueueOutcome::Callback => "callback",
            QueueOutcome::CallbackFailed => "callback_failed",
        }
    }

    pub fn parse(s: &str) -> Option<QueueOutcome> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

fn time(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
    let v: Option<String> = row.try_get(col)?;
    v.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StorageError::Corrupt(format!("{col} `{s}`: {e}")))
    })
    .transpose()
}

pub(super) fn from_row(row: &SqliteRow) -> Result<CallRecord, StorageError> {
    let path: String = row.try_get("path")?;
    let reason: String = row.try_get("end_reason")?;
    Ok(CallRecord {
        id: row.try_get("id")?,
        sip_call_id: row.try_get("sip_call_id")?,
        started_at: time(row, "started_at")?
            .ok_or_else(|| StorageError::Corrupt("started_at".into()))?,
        answered_at: time(row, "answered_at")?,
        ended_at: time(row, "ended_at")?.ok_or_else(|| StorageError::Corrupt("ended_at".into()))?,
        caller: row.try_get("caller")?,
        called: row.try_get("called")?,
        flow: row.try_get("flow")?,
        flow_version: row.try_get("flow_version")?,
        path: serde_json::from_str(&path)
            .map_err(|e| StorageError::Corrupt(format!("path: {e}")))?,
        end_reason: EndReason::parse(&reason)
            .ok_or_else(|| StorageError::Corrupt(format!("end_reason `{reason}`")))?,
        codec: row.try_get("codec")?,
        node: row.try_get("node")?,
        rtp_sent: row.try_get::<i64, _>("rtp_sent")? as u64,
        rtp_received: row.try_get::<i64, _>("rtp_received")? as u64,
        queue: row.try_get("queue")?,
        agent: row.try_get("agent")?,
        queued_at: time(row, "queued_at")?,
        agent_answered_at: time(row, "agent_answered_at")?,
        queue_outcome: row
            .try_get::<Option<String>, _>("queue_outcome")?
            .and_then(|s| QueueOutcome::parse(&s)),
        recording: row.try_get("recording")?,
        recording_sha256: row.try_get("recording_sha256")?,
        recording_ms: row
            .try_get::<Option<i64>, _>("recording_ms")?
            .map(|ms| ms.max(0) as u64),
        // A file not migrated yet (`svi calls` reads it read-only beside a stopped or
        // older engine) has no such column: nothing was refused there.
        dial_refused: match row.try_get("dial_refused") {
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            other => other?,
        },
        failover: match row.try_get::<Option<String>, _>("failover") {
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            other => other?
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| StorageError::Corrupt(format!("failover: {e}")))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    }

    fn record(i: i64, started_at: DateTime<Utc>) -> CallRecord {
        CallRecord {
            id: format!("c{i}"),
            sip_call_id: format!("sip{i}"),
            started_at,
            answered_at: Some(started_at),
            ended_at: started_at + chrono::Duration::seconds(i),
            caller: "1000".into(),
            called: "2000".into(),
            flow: Some("demo".into()),
            flow_version: None,
            path: vec!["welcome".into(), "main_menu".into()],
            end_reason: EndReason::EngineHangup,
            codec: Some("PCMA".into()),
            node: "a".into(),
            rtp_sent: 10,
            rtp_received: 9,
            queue: Some("support".into()),
            agent: None,
            queued_at: Some(started_at),
            agent_answered_at: None,
            queue_outcome: Some(QueueOutcome::Abandoned),
            recording: None,
            recording_sha256: None,
            recording_ms: None,
            dial_refused: None,
            failover: None,
        }
    }

    #[tokio::test]
    async fn insert_and_read_back_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path()).await.expect("open");
        let t0 = t("2026-11-21T10:00:00Z");
        for i in 0..3 {
            storage.insert_call(&record(i, t0)).await.expect("insert");
        }
        let reader = Storage::open_read_only(dir.path()).await.expect("ro");
        let got = reader.latest_calls(2).await.expect("latest");
        assert_eq!(
            got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec!["c2", "c1"]
        );
        assert_eq!(got[0].path, vec!["welcome", "main_menu"]);
        // Reopening keeps the data and does not re-run migrations.
        drop(storage);
        let again = Storage::open(dir.path()).await.expect("reopen");
        assert_eq!(again.latest_calls(10).await.expect("all").len(), 3);
    }

    #[tokio::test]
    async fn search_by_time_number_queue_agent_outcome_paged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(dir.path()).await.expect("open");
        // Fractions of 0, 3 and 9 digits within one second sort in time order.
        let starts = [
            "2026-11-21T10:00:00Z",
            "2026-11-21T10:00:00.5Z",
            "2026-11-21T10:00:00.123456789Z",
            "2026-11-21T11:00:00Z",
        ];
        for (i, s) in starts.iter().enumerate() {
            let mut r = record(i as i64, t(s));
            if i == 3 {
                r.caller = "+33100000001".into();
                r.agent = Some("1001".into());
                r.queue_outcome = Some(QueueOutcome::Answered);
            }
            if i == 1 || i == 3 {
                r.recording_ms = Some(4_000);
            }
            storage.insert_call(&r).await.expect("insert");
        }
        let ids = |v: Vec<CallRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = CallQuery {
            limit: 10,
            ..CallQuery::default()
        };
        let got = storage.search_calls(&all).await.expect("search");
        assert_eq!(ids(got), ["c3", "c1", "c2", "c0"]);
        let q = CallQuery {
            from: Some(t("2026-11-21T10:00:00.2Z")),
            to: Some(t("2026-11-21T11:00:00Z")),
            ..all.clone()
        };
        assert_eq!(ids(storage.search_calls(&q).await.expect("range")), ["c1"]);
        let q = CallQuery {
            number: Some("+33100000001".into()),
            agent: Some("1001".into()),
            queue: Some("support".into()),
            queue_outcome: Some(QueueOutcome::Answered),
            ..all.clone()
        };
        assert_eq!(
            ids(storage.search_calls(&q).await.expect("filters")),
            ["c3"]
        );
        let q = CallQuery {
            recorded: true,
            ..all.clone()
        };
        assert_eq!(
            ids(storage.search_calls(&q).await.expect("recorded")),
            ["c3", "c1"]
        );
        let page = CallQuery {
            limit: 2,
            offset: 2,
            ..all
        };
        assert_eq!(
            ids(storage.search_calls(&page).await.expect("page")),
            ["c2", "c0"]
        );
    }
}
