//! Central reporting for tests of several pairs: a private PostgreSQL (`postgres::PgServer`)
//! with the `central` database, each pair's `[central]` section, counts read with psql, and
//! `svi stats` of a node or of the central database.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres::{PgServer, PASSWORD};
use crate::proc::svi_bin;

/// The environment variable the `[central]` sections name for the password.
pub const PW_VAR: &str = "SVI_CENTRAL_PASSWORD";

/// Rows per upsert transaction in the sections written here: at most one such page can be
/// sent again after a failover.
pub const BATCH: i64 = 4;

pub struct Central {
    pub pg: PgServer,
}

impl Central {
    /// A private PostgreSQL with an empty `central` database; `Err` says why there is none
    /// (PostgreSQL's server programs missing).
    pub fn start() -> Result<Central, String> {
        let pg = PgServer::start()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let script = dir.path().join("empty.sql");
        std::fs::write(&script, "SELECT 1;").map_err(|e| e.to_string())?;
        pg.create_db("central", &script)?;
        Ok(Central { pg })
    }

    /// The `[central]` section of pair `pair` (its password from `PW_VAR`).
    pub fn section(&self, pair: &str) -> String {
        format!(
            "[central]\nurl = \"{}\"\npassword = \"${{{PW_VAR}}}\"\npair = \"{pair}\"\nbatch = {BATCH}\npoll_ms = 100\n",
            self.pg.url("central")
        )
    }

    /// The environment an engine with such a section needs.
    pub fn env() -> Vec<(String, String)> {
        vec![(PW_VAR.into(), PASSWORD.into())]
    }

    /// A number from psql (`SELECT count(*) ...`); None while the table is not there.
    pub fn number(&self, sql: &str) -> Option<i64> {
        self.pg.psql("central", sql).ok()?.parse().ok()
    }

    /// Waits until `sql` gives `want` (the export runs in the background); returns the
    /// last value read.
    pub fn wait_number(&self, sql: &str, want: i64, timeout: Duration) -> Option<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.number(sql);
            if got == Some(want) || Instant::now() > deadline {
                return got;
            }
            // psql itself takes milliseconds: the loop is bounded by it.
            std::thread::yield_now();
        }
    }

    /// The call ids exported by `pair`, sorted.
    pub fn call_ids(&self, pair: &str) -> Vec<String> {
        let sql = format!("SELECT id FROM central_calls WHERE pair = '{pair}' ORDER BY id");
        self.pg
            .psql("central", &sql)
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// `svi stats --since 1h --json --config CONFIG` of a node's data directory, or of the
/// central database (`data_dir` None: `--source central`).
pub fn stats(config: &Path, data_dir: Option<&Path>) -> Value {
    let mut cmd = Command::new(svi_bin());
    cmd.args(["stats", "--since", "1h", "--json", "--config"])
        .arg(config)
        .env(PW_VAR, PASSWORD);
    match data_dir {
        Some(d) => cmd.arg("--data-dir").arg(d),
        None => cmd.args(["--source", "central"]),
    };
    let out = cmd.output().expect("svi stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "svi stats: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Per queue: offered, answered, abandoned, overflowed (the figures that add up across
/// pairs).
pub type QueueCounts = Vec<(String, u64, u64, u64, u64)>;

/// The counts of `svi stats --json` rows.
pub fn counts(rows: &Value) -> QueueCounts {
    rows.as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
            (
                r["queue"].as_str().unwrap_or_default().to_string(),
                n("offered"),
                n("answered"),
                n("abandoned"),
                n("overflowed"),
            )
        })
        .collect()
}
