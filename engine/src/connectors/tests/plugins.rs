//! The registry of kinds (a plug-in's kind injected by the embedder), secret settings, the
//! redacted configuration dump, and the helpdesk plug-in on the SQLite fixture. The
//! access-control plug-in and the PostgreSQL helpdesk run against the reference servers in
//! `tests/tests/plugins.rs`.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::{params, LONG};
use crate::config::{ConnectorConfig, EngineConfig};
use crate::connectors::{
    BuildContext, BuildFuture, BuildOptions, CallFuture, Connector, ConnectorKind, Connectors,
    Kinds, Record, Settings,
};
use crate::secrets::SecretKey;

/// A plug-in kind: answers `{"greeting": <its setting>}`.
struct Greeter;

struct Greeting {
    name: String,
    text: String,
}

impl Connector for Greeting {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "greeter"
    }
    fn call<'a>(&'a self, _: &'a Record) -> CallFuture<'a> {
        Box::pin(async move { Ok(Some(params(json!({ "greeting": self.text })))) })
    }
}

impl ConnectorKind for Greeter {
    fn name(&self) -> &'static str {
        "greeter"
    }
    fn build<'a>(&'a self, cfg: &'a ConnectorConfig, _cx: &'a BuildContext<'a>) -> BuildFuture<'a> {
        Box::pin(async move {
            let s = Settings::new(cfg, &["text"])?;
            Ok(Arc::new(Greeting {
                name: s.name().to_string(),
                text: s.required_string("text")?.to_string(),
            }) as Arc<dyn Connector>)
        })
    }
}

async fn build_with_kinds(toml: &str, dir: &Path, kinds: &Kinds) -> Result<Connectors, String> {
    let config = EngineConfig::parse(toml, Path::new("t.toml"), dir).map_err(|e| e.to_string())?;
    Connectors::build_with(
        &config,
        BuildOptions {
            kinds,
            env: &|v: &str| (v == "SVI_TEST_TOKEN").then(|| "from-env".to_string()),
            data_dir: Some(dir.to_path_buf()),
            audit: None,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn an_embedder_registers_a_kind_and_configuration_uses_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let toml = "[[data_sources]]\nname = 'hello'\nkind = 'greeter'\ntext = 'bonjour'\n";
    let e = build_with_kinds(toml, dir.path(), &Kinds::builtin())
        .await
        .expect_err("unknown kind");
    assert_eq!(
        e,
        "data_sources[0].kind: `greeter` is not a connector kind (access_control, helpdesk, http, sql)"
    );
    let mut kinds = Kinds::builtin();
    kinds.register(Arc::new(Greeter)).expect("register");
    assert!(
        kinds.register(Arc::new(Greeter)).is_err(),
        "a name is taken once"
    );
    let c = build_with_kinds(toml, dir.path(), &kinds)
        .await
        .expect("build");
    assert_eq!(
        c.lookup("hello", &Record::new(), LONG).await,
        Ok(Some(params(json!({ "greeting": "bonjour" }))))
    );
    let e = build_with_kinds(
        "[[data_sources]]\nname = 'hello'\nkind = 'greeter'\ntext = 'x'\ntxet = 'y'\n",
        dir.path(),
        &kinds,
    )
    .await
    .expect_err("unknown setting");
    assert!(
        e.starts_with("data_sources[0].txet: not a setting of kind `greeter`"),
        "{e}"
    );
}

#[tokio::test]
async fn secret_settings_are_encrypted_or_from_the_environment_never_in_clear() {
    let dir = tempfile::tempdir().expect("tmp");
    let rest = |api_key: &str| {
        format!("[[connections]]\nname = 'acs'\nkind = 'rest'\nurl = 'https://acs.example.com/api'\napi_key = '{api_key}'\n")
    };
    let e = build_with_kinds(&rest("plain-key"), dir.path(), &Kinds::builtin())
        .await
        .expect_err("clear text");
    assert!(
        e.starts_with("connections[0].api_key: is a secret: write it encrypted"),
        "{e}"
    );
    assert!(!e.contains("plain-key"), "{e}");
    let e = build_with_kinds(&rest("enc:v1:AAAA"), dir.path(), &Kinds::builtin())
        .await
        .expect_err("no key file");
    assert!(
        e.contains("no key file") && e.contains("secrets.key"),
        "{e}"
    );
    let key = SecretKey::load_or_create(dir.path()).expect("key");
    let sealed = key.encrypt("s3cret-api-key");
    build_with_kinds(&rest(&sealed), dir.path(), &Kinds::builtin())
        .await
        .expect("encrypted key");
    build_with_kinds(&rest("${SVI_TEST_TOKEN}"), dir.path(), &Kinds::builtin())
        .await
        .expect("from the environment");
    let other = SecretKey::load_or_create(tempfile::tempdir().expect("tmp").path()).expect("key");
    let e = build_with_kinds(&rest(&other.encrypt("x")), dir.path(), &Kinds::builtin())
        .await
        .expect_err("another key");
    assert!(e.contains("cannot be decrypted"), "{e}");
}

#[test]
fn a_configuration_dump_shows_no_secret() {
    let toml = "[[connections]]\nname='acs'\nkind='rest'\nurl='https://acs.example.com'\napi_key='enc:v1:c2VjcmV0LWJ5dGVz'\npassword='${ACS_PASSWORD}'\n[[data_sources]]\nname='crm'\nkind='http'\nurl='https://crm.example.com/{n}'\nheaders={ Authorization='Bearer hunter2' }\n";
    let config = EngineConfig::parse(toml, Path::new("t.toml"), Path::new("/")).expect("parse");
    let dump = format!("{config:?}");
    for secret in ["c2VjcmV0LWJ5dGVz", "ACS_PASSWORD", "hunter2"] {
        assert!(!dump.contains(secret), "`{secret}` in the dump: {dump}");
    }
    assert!(
        dump.contains("acs.example.com"),
        "non-secret settings stay: {dump}"
    );
}

/// `samples/data/helpdesk.sql` in a `data/` directory, and the helpdesk entries of the
/// sample configuration (plus `open_tickets`).
fn helpdesk(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("data")).expect("data");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/data/helpdesk.sql"),
        dir.path().join("data/helpdesk.sql"),
    )
    .expect("fixture");
    let toml = format!(
        "[[connections]]\nname='hd'\nkind='sql'\ndatabase='data/helpdesk.db'\ninit_sql='data/helpdesk.sql'\n\
         [[data_sources]]\nname='user'\nkind='helpdesk'\nconnection='hd'\noperation='user_by_phone'\n\
         [[data_sources]]\nname='status'\nkind='helpdesk'\nconnection='hd'\noperation='ticket_status'\n\
         [[data_sources]]\nname='open'\nkind='helpdesk'\nconnection='hd'\noperation='open_tickets'\n\
         [[actions]]\nname='create'\nkind='helpdesk'\nconnection='hd'\noperation='create_incident'\n{extra}"
    );
    (dir, toml)
}

#[tokio::test]
async fn helpdesk_on_sqlite_identifies_creates_and_reads_tickets() {
    let (dir, toml) = helpdesk("");
    let c = build_with_kinds(&toml, dir.path(), &Kinds::builtin())
        .await
        .expect("build");
    let ada = c
        .lookup("user", &params(json!({ "number": "+33100000001" })), LONG)
        .await;
    assert_eq!(
        ada,
        Ok(Some(params(json!({
            "id": "1", "name": "Ada Lovelace", "site": "Paris", "vip": true, "language": "fr"
        }))))
    );
    assert_eq!(
        c.lookup("user", &params(json!({ "number": "+33999" })), LONG)
            .await,
        Ok(None)
    );
    let created = c
        .action(
            "create",
            &params(json!({
                "number": "+33100000002", "user": "2", "category": "software",
                "summary": "Phone call about software", "priority": "normal",
                "recording": "recordings/c1.wav"
            })),
            LONG,
        )
        .await
        .expect("created")
        .expect("a record");
    let ticket = created["ticket"]
        .as_str()
        .expect("ticket as text")
        .to_string();
    assert_eq!(ticket, "4713");
    assert_eq!(
        c.lookup("status", &params(json!({ "ticket": ticket })), LONG)
            .await,
        Ok(Some(params(json!({
            "ticket": "4713", "status": "new", "summary": "Phone call about software"
        }))))
    );
    assert_eq!(
        c.lookup("open", &params(json!({ "user": 2 })), LONG).await,
        Ok(Some(params(json!({ "count": 2, "latest": "4713" }))))
    );
    // An unknown caller's incident: no user id.
    let created = c
        .action(
            "create",
            &params(json!({
                "number": "+33999", "user": null, "category": "hardware",
                "summary": "s", "priority": "normal", "recording": null
            })),
            LONG,
        )
        .await;
    assert!(matches!(created, Ok(Some(_))), "{created:?}");
}

#[tokio::test]
async fn helpdesk_queries_map_onto_another_schema_and_wrong_types_are_errors() {
    let (dir, toml) = helpdesk(
        "[[data_sources]]\nname='mapped'\nkind='helpdesk'\nconnection='hd'\noperation='user_by_phone'\n\
         query=\"SELECT id, name AS name, site, CASE WHEN vip THEN 'yes' ELSE 'no' END AS vip FROM users WHERE phone = :number\"\n",
    );
    let c = build_with_kinds(&toml, dir.path(), &Kinds::builtin())
        .await
        .expect("build");
    let e = c
        .lookup("mapped", &params(json!({ "number": "+33100000001" })), LONG)
        .await
        .expect_err("vip is text");
    assert_eq!(e, "mapped: field `vip` is not a boolean");
    // A query without a column the operation needs is refused at start-up.
    let (dir, toml) = helpdesk(
        "[[data_sources]]\nname='bad'\nkind='helpdesk'\nconnection='hd'\noperation='user_by_phone'\nquery='SELECT id, name FROM users WHERE phone = :number'\n",
    );
    let e = build_with_kinds(&toml, dir.path(), &Kinds::builtin())
        .await
        .expect_err("no vip column");
    assert!(
        e.starts_with("data_sources[3].query: returns no column `vip`"),
        "{e}"
    );
    for (entry, expected) in [
        (
            "operation='delete_everything'",
            "data_sources[3].operation: `delete_everything` is not a helpdesk operation",
        ),
        (
            "operation='create_incident'",
            "data_sources[3].operation: `create_incident` belongs in [[actions]]",
        ),
        (
            "operation='ticket_status'\npath='/x'",
            "data_sources[3].path: is a REST setting",
        ),
    ] {
        let (dir, toml) = helpdesk(&format!(
            "[[data_sources]]\nname='bad'\nkind='helpdesk'\nconnection='hd'\n{entry}\n"
        ));
        let e = build_with_kinds(&toml, dir.path(), &Kinds::builtin())
            .await
            .expect_err(entry);
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
}
