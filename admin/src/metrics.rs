//! Prometheus text exposition (format 0.0.4), written by hand: a few dozen lines cover the
//! gauges and counters the engine exposes, with no registry to keep in step (the values are
//! read at scrape time from the engine's own snapshots, so nothing on the call or media
//! path is touched). Why not a crate: docs/adr/0008-admin-api.md.
//!
//! Families (issue 14's list): each is written only when its source exists on this node
//! (a family with no source is absent, never faked).

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    /// Written by [`Exposition::summary`]: `_sum` and `_count`, no quantiles.
    Summary,
}

/// One scrape's text.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A sample: its labels (name, value) and its value.
pub type Sample<'a> = (Vec<(&'a str, String)>, f64);

/// A summary's series: its labels, the sum of the observations and their count.
pub type SummarySeries<'a> = (Vec<(&'a str, String)>, f64, u64);

impl Exposition {
    pub fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[Sample<'_>]) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self.samples(name, samples);
    }

    /// A summary without quantiles: per label set, the sum of the observations and their
    /// count (`NAME_sum`, `NAME_count`; a mean is `rate(NAME_sum) / rate(NAME_count)`).
    pub fn summary(&mut self, name: &str, help: &str, series: &[SummarySeries<'_>]) {
        self.family(name, Kind::Summary, help, &[]);
        for (labels, sum, count) in series {
            self.samples(&format!("{name}_sum"), &[(labels.clone(), *sum)]);
            self.samples(&format!("{name}_count"), &[(labels.clone(), *count as f64)]);
        }
    }

    fn samples(&mut self, name: &str, samples: &[Sample<'_>]) {
        for (labels, value) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {}", number(*value));
        }
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help, &[(Vec::new(), value)]);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_in_the_text_format() {
        let mut e = Exposition::default();
        e.single("svi_calls_active", Kind::Gauge, "Calls in progress.", 3.0);
        e.family(
            "svi_queue_calls_waiting",
            Kind::Gauge,
            "Calls waiting.\nper queue",
            &[(vec![("queue", "sup\"port\\x".to_string())], 2.0)],
        );
        e.single("svi_x_seconds", Kind::Gauge, "h", 0.25);
        e.summary(
            "svi_y_seconds",
            "l",
            &[(vec![("connector", "acs".to_string())], 1.5, 3)],
        );
        assert_eq!(
            e.finish(),
            "# HELP svi_calls_active Calls in progress.\n# TYPE svi_calls_active gauge\nsvi_calls_active 3\n\
             # HELP svi_queue_calls_waiting Calls waiting.\\nper queue\n# TYPE svi_queue_calls_waiting gauge\n\
             svi_queue_calls_waiting{queue=\"sup\\\"port\\\\x\"} 2\n\
             # HELP svi_x_seconds h\n# TYPE svi_x_seconds gauge\nsvi_x_seconds 0.25\n\
             # HELP svi_y_seconds l\n# TYPE svi_y_seconds summary\n\
             svi_y_seconds_sum{connector=\"acs\"} 1.5\nsvi_y_seconds_count{connector=\"acs\"} 3\n"
        );
    }
}
