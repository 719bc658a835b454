//! What goes in and out of the interpreter: [`Input`]s from the engine, [`Effect`]s to it.
//!
//! The engine's call actor owns the telephony; the interpreter only decides. Each `resume`
//! returns exactly one effect, and each effect says which input the engine must answer with:
//!
//! | effect            | the engine resumes with                                   |
//! |-------------------|-----------------------------------------------------------|
//! | `Answer`          | `Answered` (or `CallerHangup`)                            |
//! | `Play`            | `PlaybackDone`, or `Digits` if barge-in cut it short      |
//! | `PlayAndCollect`  | `Digits` (what was keyed, terminator included or not) or `Timeout` |
//! | `Lookup`/`Action` | `LookupResult`/`ActionResult` (a timeout is an `Err`)     |
//! | `Queue`           | `QueueResult`                                             |
//! | `Transfer`        | `TransferResult`                                          |
//! | `Record`          | `RecordDone`                                              |
//! | `Hangup`/`Finished` | nothing: the call is over                               |
//!
//! Every effect names the flow and the step that produced it, so the engine can record the
//! path of a live call exactly as `svi simulate` shows it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pii::Pii;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::flow::{Priority, TransferMode};

/// A recorded prompt in one language: `<prompts-root>/<language>/<name>.wav`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PromptRef {
    pub language: String,
    pub name: String,
}

impl PromptRef {
    pub fn new(language: &str, name: &str) -> Self {
        Self {
            language: language.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The audio file of this prompt under the engine's prompt directory. Prompt names are
    /// checked at load to be relative paths without `..`, so this stays inside `root`.
    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(&self.language).join(format!("{}.wav", self.name))
    }
}

impl fmt::Display for PromptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.language, self.name)
    }
}

/// One value of the call the flow lets the agent see on the desk (the queue step's `desk`
/// field): its name there and its value when the call was queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskField {
    pub name: String,
    pub value: Value,
}

fn no_desk(desk: &Pii<Vec<DeskField>>) -> bool {
    desk.reveal().is_empty()
}

/// What happened to a queued call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOutcome {
    /// An agent took the call; the flow is done with it.
    Answered,
    /// The call waited too long, the queue was full or had no agents: take `overflow`.
    Overflow,
    /// The queue could not take the call at all: take `error` (or `overflow`).
    Failed(String),
}

/// What happened to a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferOutcome {
    /// The target took the call (REFER accepted, or bridged call answered and ended).
    Completed,
    /// Busy, no answer, refused...: take `failed`.
    Failed(String),
}

/// Result of a connector call: a record, nothing found, or an error (timeouts included).
pub type ConnectorResult = Result<Option<Map<String, Value>>, String>;

/// Something the engine tells the interpreter.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// A new call arrived; the first resume of every call.
    Start,
    /// The call is answered (after an `Answer` effect).
    Answered,
    /// Digits the caller keyed during a prompt (barge-in) or a collect.
    Digits {
        digits: Pii<String>,
    },
    /// No digit (or too few) before the collect's timeouts.
    Timeout,
    PlaybackDone,
    LookupResult(ConnectorResult),
    ActionResult(ConnectorResult),
    RecordDone {
        path: String,
        #[serde(with = "millis")]
        duration: Duration,
    },
    QueueResult(QueueOutcome),
    TransferResult(TransferOutcome),
    CallerHangup,
}

// Caller data stays out of logs: digits may be a PIN or a card number (STYLE rule 12), and
// connector results hold the caller's records.
impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Start => f.write_str("Start"),
            Input::Answered => f.write_str("Answered"),
            Input::Digits { digits } => write!(f, "Digits({digits})"),
            Input::Timeout => f.write_str("Timeout"),
            Input::PlaybackDone => f.write_str("PlaybackDone"),
            Input::LookupResult(r) => write!(f, "LookupResult({})", result_shape(r)),
            Input::ActionResult(r) => write!(f, "ActionResult({})", result_shape(r)),
            Input::RecordDone { duration, .. } => write!(f, "RecordDone({duration:?})"),
            Input::QueueResult(o) => write!(f, "QueueResult({o:?})"),
            Input::TransferResult(o) => write!(f, "TransferResult({o:?})"),
            Input::CallerHangup => f.write_str("CallerHangup"),
        }
    }
}

fn result_shape(r: &ConnectorResult) -> String {
    match r {
        Ok(Some(map)) => format!("found {} fields", map.len()),
        Ok(None) => "not found".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// Why the flow hangs up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// A `hangup` step.
    Normal,
    /// The flow failed and had no error branch left; the failure is in `take_errors`.
    Error,
}

/// Why the call is over from the flow's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The flow hung up.
    Hangup,
    /// The flow hung up after an unrecoverable error.
    Error,
    CallerHangup,
    /// An agent answered the queued call.
    Queued,
    /// The transfer completed.
    Transferred,
}

/// What the engine must do next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EffectKind {
    Answer,
    Play {
        prompts: Vec<PromptRef>,
        barge_in: bool,
    },
    PlayAndCollect {
        prompts: Vec<PromptRef>,
        min_digits: u32,
        max_digits: u32,
        terminator: Option<char>,
        #[serde(with = "millis")]
        first_digit_timeout: Duration,
        #[serde(with = "millis")]
        inter_digit_timeout: Duration,
        barge_in: bool,
    },
    Lookup {
        source: String,
        /// Computed from the call's variables: personal data.
        params: Pii<Map<String, Value>>,
        #[serde(with = "millis")]
        timeout: Duration,
    },
    Action {
        action: String,
        params: Pii<Map<String, Value>>,
        #[serde(with = "millis")]
        timeout: Duration,
    },
    Queue {
        queue: String,
        priority: Priority,
        #[serde(with = "opt_millis")]
        max_wait: Option<Duration>,
        /// The values named by the step's `desk` field, for the agent who takes the call:
        /// personal data. Left out of the JSON when empty, as in flows without `desk`.
        #[serde(default, skip_serializing_if = "no_desk")]
        desk: Pii<Vec<DeskField>>,
    },
    Transfer {
        target: String,
        mode: TransferMode,
        #[serde(with = "millis")]
        timeout: Duration,
    },
    Record {
        prompts: Vec<PromptRef>,
        beep: bool,
        #[serde(with = "millis")]
        max_length: Duration,
        terminator: Option<char>,
    },
    Hangup {
        reason: HangupReason,
    },
    /// Nothing more to do: the call ended (caller hangup, answered in queue, transferred).
    Finished {
        reason: EndReason,
    },
}

impl EffectKind {
    /// Whether the flow is over after this effect.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            EffectKind::Hangup { .. } | EffectKind::Finished { .. }
        )
    }
}

/// One effect, with the flow and step that produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub flow: String,
    /// Qualified step id: `step`, or `subflow/step` inside a subflow.
    pub step: String,
    #[serde(rename = "effect")]
    pub kind: EffectKind,
}

/// Durations as whole milliseconds in JSON (`"timeout": 5000`), readable in logs and goldens.
pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

pub(crate) mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}
