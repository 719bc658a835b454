//! Schema migrations on data written by a previous release (`tests/fixtures/release-*`):
//! `svi migrate --check` reports the steps without changing the source, `svi run` applies
//! them at start after a backup, and data from a newer release is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use svi_tests::ha::{calls, record_ids};
use svi_tests::ports::{free_sip_port, rtp_range};
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

fn fixture() -> PathBuf {
    svi_tests::repo_root().join("tests/fixtures/release-49aeb37")
}

/// A copy of the previous release's data directory.
fn copy_of_previous_release(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("dir");
    for f in ["svi.db", "raft-log.db"] {
        std::fs::copy(fixture().join(f), data.join(f)).expect("copy fixture");
    }
    data
}

fn migrate_check(data: &Path) -> (i32, Value) {
    let out = Command::new(svi_bin())
        .args(["migrate", "--check", "--json", "--data-dir"])
        .arg(data)
        .output()
        .expect("svi migrate");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["file"] == name))
        .unwrap_or_else(|| panic!("{name} in {report:#}"))
}

/// The database files of `data`: names and a digest of their bytes.
fn read_all(data: &Path) -> Vec<(String, u64)> {
    use std::hash::{Hash as _, Hasher as _};
    let digest = |bytes: Vec<u8>| {
        let mut h = std::hash::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    };
    let mut out: Vec<(String, u64)> = std::fs::read_dir(data)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            e.path().is_file() && (name.ends_with(".db") || name.contains(".db-"))
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                digest(std::fs::read(e.path()).expect("read")),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_previous_release_s_data_is_checked_on_a_copy_then_migrated_at_start() {
    let work = tempfile::tempdir().expect("tmp");
    let data = copy_of_previous_release(work.path());
    let before = read_all(&data);

    let (code, report) = migrate_check(&data);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    let log = file(&report, "raft-log.db");
    assert_eq!(
        (log["from"].as_u64(), log["to"].as_u64()),
        (Some(0), Some(1)),
        "{log}"
    );
    assert_eq!(log["steps"][0], "raft log entries and pointers");
    assert_eq!(log["integrity"], "ok");
    let db = file(&report, "svi.db");
    assert_eq!(db["from"], 4, "{db}");
    assert_eq!(db["integrity"], "ok");
    assert_eq!(
        read_all(&data),
        before,
        "--check changed nothing in the data directory"
    );
    let ids = record_ids(&data);
    assert_eq!(ids.len(), 3, "the previous release's call records: {ids:?}");

    // At start: a backup of the file, then the steps.
    let engine = EngineProc::start(EngineOptions {
        data_dir: Some(data.clone()),
        ..EngineOptions::default()
    });
    // Both files: the raft log from before versioning, and `svi.db` from version 4 (the
    // release before the dial plan's `dial_refused` column).
    for (file, from) in [("raft-log.db", 0), ("svi.db", 4)] {
        engine
            .wait_log(
                &format!("file=\"{file}\" from={from} "),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|| panic!("{file} not migrated:\n{}", engine.log_text()));
    }
    let mut backups: Vec<String> = std::fs::read_dir(data.join("backups"))
        .expect("backups")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    backups.sort();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(
        backups[0].starts_with("pre-migrate-raft-log.db-v0-")
            && backups[1].starts_with("pre-migrate-svi.db-v4-"),
        "{backups:?}"
    );
    // The node works on the migrated data: the old records, and new calls.
    assert_eq!(record_ids(&data).len(), 3);
    assert!(calls(engine.sip, work.path(), 1), "{}", engine.log_text());
    engine.wait_calls(4, Duration::from_secs(10));
    let (status, _) = engine.terminate(Duration::from_secs(15));
    assert!(status.success());
    let (code, report) = migrate_check(&data);
    assert_eq!(code, 0);
    assert_eq!(file(&report, "raft-log.db")["from"], 1, "{report:#}");
    assert_eq!(file(&report, "raft-log.db")["steps"], serde_json::json!([]));
    assert_eq!(file(&report, "svi.db")["steps"], serde_json::json!([]));
}

#[test]
fn data_from_a_newer_release_is_refused_and_left_alone() {
    let work = tempfile::tempdir().expect("tmp");
    let data = copy_of_previous_release(work.path());
    // The SQLite header holds user_version at offset 60 (4 bytes, big-endian).
    let db = data.join("svi.db");
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&db, &bytes).expect("write");
    let before = read_all(&data);

    let (code, report) = migrate_check(&data);
    assert_eq!(code, 1, "{report:#}");
    let e = file(&report, "svi.db")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        e.contains("schema version 99") && e.contains("newer release"),
        "{e}"
    );

    let rtp = rtp_range(20);
    let out = Command::new(svi_bin())
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .arg("--sip-listen")
        .arg(format!("127.0.0.1:{}", free_sip_port()))
        .arg("--rtp-ports")
        .arg(format!("{}-{}", rtp.0, rtp.1))
        .output()
        .expect("svi run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("svi.db is at schema version 99"), "{err}");
    assert_eq!(read_all(&data), before, "nothing written to newer data");
}
