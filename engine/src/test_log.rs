//! A tracing subscriber that keeps the events it sees as text lines (`LEVEL field=value ...`),
//! for tests that check what the engine logs (one clear line per failure, no personal data,
//! no secret): the connectors' unit tests and the plug-in tests (`test-servers` feature).

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::Field;

/// Events whose target starts with `prefix` ("" for every event), as text lines. Cloned
/// handles share the lines; a mutex because the runtime's worker threads log too.
#[derive(Clone, Default)]
pub struct LogCapture {
    prefix: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LogCapture {
    pub fn of(prefix: &'static str) -> LogCapture {
        LogCapture {
            prefix,
            lines: Arc::default(),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if !event.metadata().target().starts_with(self.prefix) {
            return;
        }
        let mut line = format!("{} ", event.metadata().level());
        event.record(&mut |f: &Field, v: &dyn fmt::Debug| {
            line.push_str(&format!("{}={v:?} ", f.name()))
        });
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
