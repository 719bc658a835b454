//! Alarms: one model (raised, cleared, severity) for everything an operator must hear
//! about, delivered to the log, the metrics snapshot, the webhook and by mail.
//!
//! - `model`: the kinds, severities, and the board that turns conditions into changes;
//! - `notify`: the rate limit (one message per channel per interval, changes batched) and
//!   the text of mails and webhook posts;
//! - `mail`: SMTP (STARTTLS or TLS, authentication); `webhook`: HTTP POST with retries;
//! - `sources`: the engine's checks (recording disk, recordings refused, certificates);
//!   `cert`: a certificate's expiry date.
//!
//! Sources hold an `AlarmHandle` and report their current conditions; one task owns the
//! board and the channels, so a slow mail server never delays what raised the alarm.
//! Every change is logged at once (`alarm raised` at error for critical, warn otherwise;
//! `alarm cleared` at info); the snapshot (`AlarmHandle::snapshot`) is what `svi alarms`
//! prints and the Prometheus exporter reads.

pub mod cert;
pub mod mail;
pub mod model;
pub mod notify;
pub mod sources;
mod webhook;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use mail::{MailConfig, MailTls, Mailer};
pub use model::{Alarm, AlarmKind, AlarmSnapshot, Change, Condition, Severity, State};
pub use webhook::{Webhook, WebhookError};

use model::Board;
use notify::Notifier;

/// `[alarms]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmsConfig {
    /// POST each batch of changes here (JSON).
    pub webhook: Option<String>,
    pub mail: Option<MailConfig>,
    /// At most one notification per channel per interval.
    pub min_interval: Duration,
    /// A member this far behind the active node's log raises `replication_lag`.
    pub replication_lag: u64,
    /// A member unanswered this long raises `peer_down`.
    pub peer_down_after: Duration,
    /// Certificate files (PEM) whose expiry is watched.
    pub certificates: Vec<std::path::PathBuf>,
    pub certificate_warning_days: u32,
}

impl Default for AlarmsConfig {
    fn default() -> AlarmsConfig {
        AlarmsConfig {
            webhook: None,
            mail: None,
            min_interval: Duration::from_secs(60),
            replication_lag: 1000,
            peer_down_after: Duration::from_secs(5),
            certificates: Vec::new(),
            certificate_warning_days: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("alarms.webhook: {0}")]
    Webhook(#[from] WebhookError),
    #[error("alarms.mail: {0}")]
    Mail(#[from] mail::MailError),
}

enum Msg {
    Report {
        source: String,
        conditions: Vec<Condition>,
    },
    Delivered {
        ok: bool,
    },
}

/// Where sources report (cheap to clone). Reports never block.
#[derive(Clone, Debug)]
pub struct AlarmHandle {
    tx: mpsc::UnboundedSender<Msg>,
    snapshot: watch::Receiver<AlarmSnapshot>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Report { source, .. } => write!(f, "Report({source})"),
            Msg::Delivered { ok } => write!(f, "Delivered({ok})"),
        }
    }
}

impl AlarmHandle {
    /// Replaces the conditions `source` sees (an empty list clears what it raised).
    pub fn report(&self, source: impl Into<String>, conditions: Vec<Condition>) {
        let _ = self.tx.send(Msg::Report {
            source: source.into(),
            conditions,
        });
    }

    /// The active alarms and counters now.
    pub fn snapshot(&self) -> AlarmSnapshot {
        self.snapshot.borrow().clone()
    }

    /// The snapshot as it changes.
    pub fn watch(&self) -> watch::Receiver<AlarmSnapshot> {
        self.snapshot.clone()
    }
}

/// Starts the alarm task of node `node`: log, snapshot, and the configured channels.
pub fn start(config: &AlarmsConfig, node: &str) -> Result<AlarmHandle, AlarmError> {
    let webhook = config.webhook.as_deref().map(Webhook::new).transpose()?;
    let mailer = config
        .mail
        .as_ref()
        .map(|m| Mailer::new(m, node))
        .transpose()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (snap_tx, snapshot) = watch::channel(AlarmSnapshot::default());
    let task = Task {
        node: node.to_string(),
        board: Board::default(),
        mail: mailer.map(|m| (m, Notifier::new(config.min_interval))),
        webhook: webhook.map(|w| (w, Notifier::new(config.min_interval))),
        snapshot: snap_tx,
        sent: 0,
        failed: 0,
        tx: tx.clone(),
    };
    tokio::spawn(task.run(rx));
    Ok(AlarmHandle { tx, snapshot })
}

struct Task {
    node: String,
    board: Board,
    mail: Option<(Mailer, Notifier)>,
    webhook: Option<(Webhook, Notifier)>,
    snapshot: watch::Sender<AlarmSnapshot>,
    sent: u64,
    failed: u64,
    /// To report deliveries back from their own tasks.
    tx: mpsc::UnboundedSender<Msg>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            let next = [
                self.mail.as_ref().and_then(|(_, n)| n.next_deadline()),
                self.webhook.as_ref().and_then(|(_, n)| n.next_deadline()),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = async {
                match next {
                    Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Report { source, conditions }) => self.apply(&source, conditions),
                    Some(Msg::Delivered { ok }) => {
                        if ok { self.sent += 1 } else { self.failed += 1 }
                        self.publish();
                    }
                    None => return,
                },
                _ = wake => {}
            }
            self.send_due();
        }
    }

    fn apply(&mut self, source: &str, conditions: Vec<Condition>) {
        let before = self.board.revision();
        let changes = self.board.report(chrono::Utc::now(), source, conditions);
        if self.board.revision() == before {
            return;
        }
        for c in &changes {
            log(c);
            if let Some((_, n)) = &mut self.mail {
                n.push(c.clone());
            }
            if let Some((_, n)) = &mut self.webhook {
                n.push(c.clone());
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let mut s = self.board.snapshot();
        s.notifications_sent = self.sent;
        s.notifications_failed = self.failed;
        self.snapshot.send_replace(s);
    }

    fn send_due(&mut self) {
        let now = std::time::Instant::now();
        let active = self.board.snapshot().active;
        if let Some((mailer, n)) = &mut self.mail {
            if let Some(batch) = n.poll(now) {
                let (mailer, tx, node) = (mailer.clone(), self.tx.clone(), self.node.clone());
                let (subject, body) = (
                    notify::mail_subject(&node, &batch),
                    notify::mail_body(&node, &batch, &active),
                );
                tokio::spawn(async move {
                    let ok = match mailer.send(&subject, &body).await {
                        Ok(()) => {
                            tracing::info!(server = mailer.server(), %subject, "alarm mail sent");
                            true
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, %subject, "alarm mail not sent");
                            false
                        }
                    };
                    let _ = tx.send(Msg::Delivered { ok });
                });
            }
        }
        if let Some((hook, n)) = &mut self.webhook {
            if let Some(batch) = n.poll(now) {
                let body = notify::webhook_body(&self.node, &batch, &active);
                let (hook, tx) = (hook.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let ok = hook.deliver(&body).await;
                    let _ = tx.send(Msg::Delivered { ok });
                });
            }
        }
    }
}

fn log(c: &Change) {
    let a = &c.alarm;
    let (kind, severity) = (a.kind.as_str(), a.severity.as_str());
    match (c.state, a.severity) {
        (State::Raised, Severity::Critical) => {
            tracing::error!(kind, severity, subject = %a.subject, message = %a.message, "alarm raised")
        }
        (State::Raised, _) => {
            tracing::warn!(kind, severity, subject = %a.subject, message = %a.message, "alarm raised")
        }
        (State::Cleared, _) => {
            tracing::info!(kind, severity, subject = %a.subject, since = %a.raised_at.to_rfc3339(), "alarm cleared")
        }
    }
}
