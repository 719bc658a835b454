//! Kind `sql` against SQLite files created by `init_sql`.

use serde_json::{json, Map};
use tempfile::TempDir;

use super::{build, build_error, params, LONG};

/// The blocks proposed for `samples/svi.toml`, verbatim (see `sample_dir`).
pub(super) const SAMPLE_BLOCKS: &str = r#"
[[data_sources]]
name = "directory"
kind = "sql"
database = "data/sample.db"
init_sql = "data/sample.sql"
query = "SELECT name, vip, language FROM directory WHERE number = :number"
booleans = ["vip"]

[[data_sources]]
name = "appointments"
kind = "sql"
database = "data/sample.db"
init_sql = "data/sample.sql"
query = """
SELECT visitor, confirmed FROM appointments
WHERE host_extension = :host_extension AND date = :date
ORDER BY confirmed DESC LIMIT 1"""
booleans = ["confirmed"]
"#;

/// A directory laid out like `samples/`: `data/sample.sql` copied from the repository.
pub(super) fn sample_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/data/sample.sql");
    std::fs::create_dir(dir.path().join("data")).expect("data dir");
    std::fs::copy(script, dir.path().join("data/sample.sql")).expect("copy sample.sql");
    dir
}

/// A directory with `init.sql` holding `script`.
fn dir_with(script: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("init.sql"), script).expect("write init.sql");
    dir
}

fn source(query: &str, extra: &str) -> String {
    format!("[[data_sources]]\nname = 'q'\nkind = 'sql'\ndatabase = 'db.sqlite'\ninit_sql = 'init.sql'\nquery = \"{query}\"\n{extra}\n")
}

const TABLE: &str = "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, flag INTEGER, data BLOB);
INSERT INTO t VALUES ('a', 1, 1, x'00ff'), ('b', 2, 0, NULL);";

#[tokio::test]
async fn samples_serve_the_sample_flows() {
    let dir = sample_dir();
    let c = build(SAMPLE_BLOCKS, dir.path(), &[])
        .await
        .expect("sample blocks build");
    let c = &c;
    let lookup = |number: &str| {
        let p = params(json!({ "number": number }));
        async move { c.lookup("directory", &p, LONG).await }
    };
    assert_eq!(
        lookup("+33100000001").await,
        Ok(Some(params(
            json!({ "name": "Ada Lovelace", "vip": true, "language": "fr" })
        )))
    );
    assert_eq!(
        lookup("+33100000002").await,
        Ok(Some(params(
            json!({ "name": "Bob Martin", "vip": false, "language": "fr" })
        )))
    );
    assert_eq!(lookup("+33999999999").await, Ok(None));
    let visit = params(json!({ "host_extension": "4321", "date": "2026-03-10" }));
    assert_eq!(
        c.lookup("appointments", &visit, LONG).await,
        Ok(Some(params(
            json!({ "visitor": "Grace Hopper", "confirmed": true })
        )))
    );
    let nobody = params(json!({ "host_extension": "4321", "date": "2026-03-11" }));
    assert_eq!(c.lookup("appointments", &nobody, LONG).await, Ok(None));
    // The script ran once: building again over the same file keeps the data as it is.
    let again = build(SAMPLE_BLOCKS, dir.path(), &[])
        .await
        .expect("second build");
    assert!(matches!(
        again
            .lookup(
                "directory",
                &params(json!({ "number": "+33100000004" })),
                LONG
            )
            .await,
        Ok(Some(_))
    ));
}

#[tokio::test]
async fn parameters_bind_by_name_in_order_of_first_appearance() {
    let dir = dir_with(TABLE);
    let c = build(
        &source(
            "SELECT :b AS b1, :a AS a, :b AS b2, k FROM t WHERE n = :a OR k = :b",
            "",
        ),
        dir.path(),
        &[],
    )
    .await
    .expect("build");
    assert_eq!(
        c.lookup(
            "q",
            &params(json!({ "a": 2, "b": "zzz", "unused": true })),
            LONG
        )
        .await,
        Ok(Some(params(
            json!({ "b1": "zzz", "a": 2, "b2": "zzz", "k": "b" })
        )))
    );
    assert_eq!(
        c.lookup("q", &params(json!({ "a": 2 })), LONG).await,
        Err("parameter `b` is missing".into())
    );
}

#[tokio::test]
async fn values_map_to_json_by_storage_class() {
    let dir = dir_with(TABLE);
    let query = "SELECT k, n, flag, data, 2.5 AS r, NULL AS z, :s AS s, :i AS i, :f AS f, :t AS t, :n AS pn FROM t WHERE k = 'a'";
    let c = build(&source(query, "booleans = ['flag']"), dir.path(), &[])
        .await
        .expect("build");
    let p = params(json!({ "s": "x", "i": -7, "f": 0.5, "t": true, "n": null }));
    let expected = json!({ "k": "a", "n": 1, "flag": true, "data": "00ff", "r": 2.5, "z": null,
                           "s": "x", "i": -7, "f": 0.5, "t": 1, "pn": null });
    assert_eq!(c.lookup("q", &p, LONG).await, Ok(Some(params(expected))));
    for bad in [json!([1]), json!({ "x": 1 })] {
        let p = params(json!({ "s": bad, "i": 1, "f": 1, "t": 1, "n": 1 }));
        let e = c
            .lookup("q", &p, LONG)
            .await
            .expect_err("lists and maps are refused");
        assert!(e.contains("parameter `s`"), "{e}");
    }
}

#[tokio::test]
async fn actions_report_rows_affected() {
    let dir = dir_with(TABLE);
    let toml =
        "[[actions]]\nname = 'flag'\nkind = 'sql'\ndatabase = 'db.sqlite'\ninit_sql = 'init.sql'\n\
                query = 'UPDATE t SET flag = :flag WHERE k = :k OR :k = :all'\n";
    let c = build(toml, dir.path(), &[]).await.expect("build");
    let c = &c;
    let run = |k: &str| {
        let p = params(json!({ "flag": false, "k": k, "all": "*" }));
        async move { c.action("flag", &p, LONG).await }
    };
    assert_eq!(
        run("a").await,
        Ok(Some(params(json!({ "rows_affected": 1 }))))
    );
    assert_eq!(
        run("*").await,
        Ok(Some(params(json!({ "rows_affected": 2 }))))
    );
    assert_eq!(
        run("none").await,
        Ok(Some(params(json!({ "rows_affected": 0 }))))
    );
}

#[tokio::test]
async fn a_data_source_cannot_write_whatever_its_text() {
    let dir = dir_with(TABLE);
    let c = build(
        &source("WITH x AS (SELECT 1) DELETE FROM t RETURNING k", ""),
        dir.path(),
        &[],
    )
    .await
    .expect("build");
    let e = c
        .lookup("q", &Map::new(), LONG)
        .await
        .expect_err("query_only");
    assert!(e.contains("readonly"), "{e}");
}

#[tokio::test]
async fn database_errors_are_values() {
    let dir = dir_with("CREATE TABLE t (k TEXT PRIMARY KEY);");
    let toml =
        "[[actions]]\nname = 'add'\nkind = 'sql'\ndatabase = 'db.sqlite'\ninit_sql = 'init.sql'\n\
                query = 'INSERT INTO t (k) VALUES (:k)'\n";
    let c = build(toml, dir.path(), &[]).await.expect("build");
    let p = params(json!({ "k": "+33100000001" }));
    assert!(c.action("add", &p, LONG).await.is_ok());
    let e = c.action("add", &p, LONG).await.expect_err("duplicate key");
    assert!(
        e.starts_with("database: ") && e.contains("UNIQUE") && !e.contains("33100000001"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_at_build_with_its_key() {
    let dir = dir_with(TABLE);
    let db = "[[data_sources]]\nname = 'q'\nkind = 'sql'\ndatabase = 'db.sqlite'\ninit_sql = 'init.sql'\n";
    for (toml, expected) in [
        (source("SELECT * FROM nowhere", ""), "data_sources[0].query: the database refuses it: "),
        (source("SELECT * FROM t WHERE k = :numéro", ""), "data_sources[0].query: parameter `:numéro`"),
        (source("SELECT * FROM t WHERE k = ?", ""), "data_sources[0].query: positional `?`"),
        (source("DELETE FROM t", ""), "data_sources[0].query: a data source runs a SELECT, not DELETE"),
        (source("SELECT 1; SELECT 2", ""), "data_sources[0].query: only one statement"),
        (source("SELECT k FROM t", "booleans = ['flag']"), "data_sources[0].booleans: `flag` is not a column"),
        (source("SELECT k FROM t", "max_connections = 0"), "data_sources[0].max_connections: 0 is outside 1..=64"),
        (source("SELECT k FROM t", "qeury = 'x'"), "data_sources[0].qeury: not a setting of kind `sql`"),
        (db.to_string(), "data_sources[0].query: is required"),
        (format!("{db}url = 'sqlite:x.db'\nquery = 'SELECT 1'"), "data_sources[0].url: give one of `database`, `url` and `dsn`"),
        (
            "[[data_sources]]\nname='q'\nkind='sql'\nurl='mysql://h/db'\nquery='SELECT 1'".into(),
            "data_sources[0].url: must be a `sqlite:` or `postgres://` URL",
        ),
        ("[[data_sources]]\nname='q'\nkind='sql'\nurl='sqlite::memory:'\nquery='SELECT 1'".into(), "data_sources[0].url: an in-memory"),
        ("[[data_sources]]\nname='q'\nkind='sql'\ndatabase='absent.db'\nquery='SELECT 1'".into(), "data_sources[0].database: "),
        (
            "[[data_sources]]\nname='q'\nkind='sql'\ndatabase='x.db'\ninit_sql='absent.sql'\nquery='SELECT 1'".into(),
            "data_sources[0].init_sql: cannot read ",
        ),
    ] {
        let e = build_error(&toml, dir.path()).await;
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
    }
}

#[tokio::test]
async fn a_failing_init_script_leaves_no_half_built_database() {
    let dir = dir_with("CREATE TABLE a (x); CREATE TABLE b (;");
    let e = build_error(&source("SELECT * FROM a", ""), dir.path()).await;
    assert!(e.starts_with("data_sources[0].init_sql: "), "{e}");
    // Fixed script, same file: it runs, because the failed one left no table behind.
    std::fs::write(
        dir.path().join("init.sql"),
        "CREATE TABLE a (x); INSERT INTO a VALUES (1);",
    )
    .expect("rewrite");
    let c = build(&source("SELECT x FROM a", ""), dir.path(), &[])
        .await
        .expect("build");
    assert_eq!(
        c.lookup("q", &Map::new(), LONG).await,
        Ok(Some(params(json!({ "x": 1 }))))
    );
}
