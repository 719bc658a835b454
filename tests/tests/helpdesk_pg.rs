//! Issue 16, acceptance 5: the helpdesk plug-in on PostgreSQL, a private server started by
//! the test (initdb in a temporary directory, a free port, password authentication), with
//! the generic ITIL fixture `tests/fixtures/helpdesk-postgres.sql` and the engine's own
//! least-privilege account. Skipped, with a notice on stderr, only where PostgreSQL's server
//! programs are missing (`scripts/test.sh` installs them).

use std::path::Path;
use std::time::Duration;

use engine::config::EngineConfig;
use engine::connectors::{BuildOptions, Connectors, Kinds};
use serde_json::{json, Map, Value};
use svi_tests::postgres::PgServer;

const LONG: Duration = Duration::from_secs(10);
const IVR_PASSWORD: &str = "pg-ivr-password-9d21";

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn server() -> Option<PgServer> {
    match PgServer::start() {
        Ok(pg) => {
            let fixture = svi_tests::repo_root().join("tests/fixtures/helpdesk-postgres.sql");
            pg.create_db("helpdesk", &fixture)
                .expect("helpdesk fixture");
            Some(pg)
        }
        Err(why) => {
            eprintln!("NOTICE: the PostgreSQL variant of the helpdesk tests is skipped: {why}");
            None
        }
    }
}

/// The helpdesk operations on `connection` (TOML settings of a `sql` connection).
async fn build(connection: &str, extra: &str) -> Result<Connectors, String> {
    let dir = tempfile::tempdir().expect("tmp");
    let key = engine::secrets::SecretKey::load_or_create(dir.path()).expect("key");
    let toml = format!(
        "[[connections]]\nname='hd'\nkind='sql'\n{connection}\npassword='{}'\n\
         [[data_sources]]\nname='user'\nkind='helpdesk'\nconnection='hd'\noperation='user_by_phone'\n\
         [[data_sources]]\nname='status'\nkind='helpdesk'\nconnection='hd'\noperation='ticket_status'\n\
         [[data_sources]]\nname='open'\nkind='helpdesk'\nconnection='hd'\noperation='open_tickets'\n\
         [[actions]]\nname='create'\nkind='helpdesk'\nconnection='hd'\noperation='create_incident'\n{extra}",
        key.encrypt(IVR_PASSWORD)
    );
    let config =
        EngineConfig::parse(&toml, Path::new("t.toml"), dir.path()).map_err(|e| e.to_string())?;
    Connectors::build_with(
        &config,
        BuildOptions {
            kinds: &Kinds::builtin(),
            env: &|_: &str| None,
            data_dir: Some(dir.path().to_path_buf()),
            audit: None,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn helpdesk_on_postgresql_identifies_creates_and_reads_tickets() {
    let Some(pg) = server() else { return };
    let url = format!("url = 'postgres://svi_ivr@127.0.0.1:{}/helpdesk'", pg.port);
    let c = build(&url, "").await.expect("build");
    assert_eq!(
        c.lookup("user", &params(json!({ "number": "+33100000001" })), LONG)
            .await,
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
        .expect("record");
    let ticket = created["ticket"].as_str().expect("text").to_string();
    assert_eq!(ticket, "5000", "the identity's first value");
    // In the database afterwards, as created.
    assert_eq!(
        pg.psql("helpdesk", &format!("SELECT user_id, category, priority, recording, status FROM tickets WHERE number = {ticket}"))
            .expect("psql"),
        "2|software|normal|recordings/c1.wav|new"
    );
    // Keyed digits (text) against the integer column: bound as the server's type.
    assert_eq!(
        c.lookup("status", &params(json!({ "ticket": "4711" })), LONG)
            .await,
        Ok(Some(params(json!({
            "ticket": "4711", "status": "in_progress", "summary": "Laptop does not start"
        }))))
    );
    assert_eq!(
        c.lookup("status", &params(json!({ "ticket": "99" })), LONG)
            .await,
        Ok(None)
    );
    let e = c
        .lookup("status", &params(json!({ "ticket": "12a" })), LONG)
        .await
        .expect_err("not digits");
    assert_eq!(e, "parameter `ticket` cannot be used as an integer");
    assert_eq!(
        c.lookup("open", &params(json!({ "user": "2" })), LONG)
            .await,
        Ok(Some(params(json!({ "count": 2, "latest": "5000" }))))
    );
}

#[tokio::test]
async fn an_odbc_style_dsn_reaches_the_same_database_and_lookups_cannot_write() {
    let Some(pg) = server() else { return };
    let dsn = format!(
        "dsn = 'Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database=helpdesk;Uid=svi_ivr'",
        pg.port
    );
    let sneaky = "[[data_sources]]\nname='sneaky'\nkind='sql'\nconnection='hd'\nquery='WITH d AS (DELETE FROM tickets RETURNING number) SELECT count(*) AS n FROM d'\n";
    let c = build(&dsn, sneaky).await.expect("build");
    assert!(matches!(
        c.lookup("user", &params(json!({ "number": "+33100000002" })), LONG)
            .await,
        Ok(Some(_))
    ));
    let e = c
        .lookup("sneaky", &Map::new(), LONG)
        .await
        .expect_err("read-only");
    assert!(
        e.starts_with("database: ") && e.contains("read-only"),
        "{e}"
    );
    assert_eq!(
        pg.psql("helpdesk", "SELECT count(*) FROM tickets")
            .expect("psql"),
        "2"
    );
    // A password in the DSN is refused: it belongs in the encrypted `password` setting.
    let e = build(&dsn.replace("Uid=svi_ivr", "Uid=svi_ivr;Pwd=x"), "")
        .await
        .expect_err("Pwd");
    assert!(
        e.starts_with("connections[0].dsn: holds the password"),
        "{e}"
    );
}
