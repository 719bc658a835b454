//! Tests of the connectors against real backends: SQLite files made by `init_sql`, and a
//! real HTTP server on 127.0.0.1 (`server`) standing for the external systems. Deadlines
//! are short real timeouts on calls that cannot succeed; no test sleeps.

mod http;
mod plugins;
mod resilience;
mod server;
mod sql;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::instrument::WithSubscriber;

use super::error::human;
use super::{BuildOptions, CallFuture, Connector, ConnectorError, Connectors, Kinds, Role};
use crate::config::EngineConfig;

/// Connectors from configuration text, paths relative to `dir`, `${VAR}` read from `env`.
async fn build(toml: &str, dir: &Path, env: &[(&str, &str)]) -> Result<Connectors, ConnectorError> {
    let toml = crate::config::with_loopback_allowed(toml);
    let config =
        EngineConfig::parse(&toml, Path::new("t.toml"), dir).expect("configuration parses");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |var: &str| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
    Connectors::build_with(
        &config,
        BuildOptions {
            kinds: &Kinds::builtin(),
            env: &lookup,
            data_dir: Some(dir.to_path_buf()),
            audit: None,
        },
    )
    .await
}

/// The error text of a build expected to fail.
async fn build_error(toml: &str, dir: &Path) -> String {
    build(toml, dir, &[])
        .await
        .expect_err("build must fail")
        .to_string()
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

const LONG: Duration = Duration::from_secs(10);

/// A plug-in standing for a backend: answers `found: {"n": 1}`, or never.
struct Fake {
    name: &'static str,
    answers: bool,
}

impl Connector for Fake {
    fn name(&self) -> &str {
        self.name
    }

    fn kind(&self) -> &'static str {
        "fake"
    }

    fn call<'a>(&'a self, _params: &'a Map<String, Value>) -> CallFuture<'a> {
        Box::pin(async move {
            if !self.answers {
                std::future::pending::<()>().await;
            }
            Ok(Some(params(json!({ "n": 1 }))))
        })
    }
}

#[tokio::test]
async fn registry_finds_by_role_and_name() {
    let mut c = Connectors::default();
    c.add_data_source(Arc::new(Fake {
        name: "crm",
        answers: true,
    }))
    .expect("first");
    c.add_action(Arc::new(Fake {
        name: "crm",
        answers: true,
    }))
    .expect("an action may share a data source's name");
    let dup = c
        .add_data_source(Arc::new(Fake {
            name: "crm",
            answers: true,
        }))
        .expect_err("duplicate");
    assert!(
        matches!(
            dup,
            ConnectorError::Duplicate {
                role: Role::DataSource,
                ..
            }
        ),
        "{dup}"
    );
    assert_eq!(
        c.lookup("crm", &Map::new(), LONG).await,
        Ok(Some(params(json!({ "n": 1 }))))
    );
    assert_eq!(
        c.lookup("nope", &Map::new(), LONG).await,
        Err("no data source `nope` is configured".into())
    );
    assert_eq!(
        c.action("nope", &Map::new(), LONG).await,
        Err("no action `nope` is configured".into())
    );
    assert_eq!(c.data_source_names().collect::<Vec<_>>(), ["crm"]);
}

#[tokio::test]
async fn registry_bounds_every_call_by_the_step_timeout() {
    let mut c = Connectors::default();
    c.add_data_source(Arc::new(Fake {
        name: "stuck",
        answers: false,
    }))
    .expect("add");
    c.add_action(Arc::new(Fake {
        name: "stuck",
        answers: false,
    }))
    .expect("add");
    let started = std::time::Instant::now();
    assert_eq!(
        c.lookup("stuck", &Map::new(), Duration::from_millis(50))
            .await,
        Err("timed out after 50ms".into())
    );
    assert_eq!(
        c.action("stuck", &Map::new(), Duration::from_millis(50))
            .await,
        Err("timed out after 50ms".into())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn timeouts_read_as_flows_write_them() {
    assert_eq!(human(Duration::from_secs(2)), "2s");
    assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    assert_eq!(human(Duration::ZERO), "0ms");
}

#[tokio::test]
async fn call_logs_carry_no_personal_data() {
    let dir = sql::sample_dir();
    let srv = server::serve(|_| Some((200, r#"{"name":"Ada Lovelace","vip":true}"#.into()))).await;
    let toml = format!(
        "{}\n[[data_sources]]\nname = 'crm'\nkind = 'http'\nproxy = 'none'\nurl = 'http://{}/c/{{number}}'\n",
        sql::SAMPLE_BLOCKS,
        srv.addr
    );
    let c = build(&toml, dir.path(), &[]).await.expect("build");
    let capture = crate::test_log::LogCapture::of("engine::connectors");
    let number = params(json!({ "number": "+33100000001" }));
    let calls = async {
        assert!(matches!(
            c.lookup("directory", &number, LONG).await,
            Ok(Some(_))
        ));
        assert!(matches!(c.lookup("crm", &number, LONG).await, Ok(Some(_))));
        assert!(c
            .lookup(
                "directory",
                &params(json!({ "number": ["+33100000001"] })),
                LONG
            )
            .await
            .is_err());
    };
    calls.with_subscriber(capture.clone()).await;
    let lines = capture.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("connector call"))
            .count(),
        3,
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("elapsed_ms=") && l.contains("found (3 fields)")),
        "{lines:#?}"
    );
    for secret in ["33100000001", "Ada", "Lovelace"] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "`{secret}` leaked: {lines:#?}"
        );
    }
}

/// Every TOML example of docs/connectors.md builds (env secrets given, sample data present).
#[tokio::test]
async fn documentation_examples_build() {
    let dir = sql::sample_dir();
    build(sql::SAMPLE_BLOCKS, dir.path(), &[])
        .await
        .expect("sample database");
    let docs = include_str!("../../../../docs/connectors.md");
    let blocks: Vec<&str> = docs
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    let env = [("SVI_CRM_TOKEN", "t"), ("SVI_HELPDESK_KEY", "k")];
    for block in blocks {
        if let Err(e) = build(block, dir.path(), &env).await {
            panic!("{e}\n{block}");
        }
    }
}
