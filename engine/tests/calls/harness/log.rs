//! The engine's log lines during a scenario, kept for the test: each event's message and
//! fields as one line (`message key=value ...`). The scenario runs on one thread (tokio's
//! current-thread runtime), so a thread-local default subscriber sees every task's events
//! and nothing of the other tests running at the same time.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::Field;

#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Captures this thread's events until the guard is dropped.
    pub fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let guard = tracing::subscriber::set_default(log.clone());
        (log, guard)
    }

    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first line holding every one of `parts`.
    pub fn find(&self, parts: &[&str]) -> Option<String> {
        self.lines()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
    }

    pub fn contains(&self, part: &str) -> bool {
        self.find(&[part]).is_some()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
}

impl tracing::Subscriber for Log {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        let mut fields = String::new();
        event.record(&mut |f: &Field, v: &dyn fmt::Debug| {
            if f.name() == "message" {
                message = format!("{v:?}");
            } else {
                fields.push_str(&format!(" {}={v:?}", f.name()));
            }
        });
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{message}{fields}"));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
