//! Backup and restore end to end: a backup of a running engine with a call in progress
//! (hot), the data directory wiped, the backup restored, the engine started again: the
//! call records (`svi calls`), the recording, the agents' states and the admin API's
//! accounts (a user logs in with their password, an API key reads the records) are back;
//! `--without-history` leaves out the call records, the ACD events and the audit log, and
//! keeps the accounts. A damaged backup changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use svi_tests::admin::{add_user, create_key, Api, Auth};
use svi_tests::contact::{
    agent_phone, queued_caller, svi, svi_at, svi_ok, wait_agent, AUTO_ANSWER,
};
use svi_tests::ha::{calls, record_ids, recordings};
use svi_tests::proc::{EngineOptions, EngineProc};

fn start_on(data_dir: &Path) -> EngineProc {
    EngineProc::start(EngineOptions {
        data_dir: Some(data_dir.to_path_buf()),
        ..EngineOptions::default()
    })
}

/// The password of `ops`, the admin account made before the backup.
const OPS_PASSWORD: &str = "restored-with-the-node-0123";

/// The accounts made before the backup work on `engine`: `ops` logs in with its password
/// (and not with another), the API key reads the call records (`records`: the ones it must
/// list, none of `absent`). Returns the audit log's actions, as `ops` reads them.
async fn accounts_work(
    engine: &EngineProc,
    key: &str,
    records: &[String],
    absent: &[String],
) -> Vec<String> {
    let api = Api::new(engine);
    assert!(api.login("ops", "not-the-password-0123").await.is_none());
    let (cookie, csrf) = api
        .login("ops", OPS_PASSWORD)
        .await
        .unwrap_or_else(|| panic!("ops cannot log in:\n{}", engine.log_text()));
    let listed = api.get("/api/v1/records", Auth::Key(key)).await;
    assert_eq!(listed.status, 200, "the API key: {}", listed.text);
    for id in records {
        assert!(listed.text.contains(id.as_str()), "{id}: {}", listed.text);
    }
    for id in absent {
        assert!(!listed.text.contains(id.as_str()), "{id}: {}", listed.text);
    }
    let audit = api
        .get(
            "/api/v1/audit",
            Auth::Session {
                cookie: &cookie,
                csrf: &csrf,
            },
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    audit
        .json
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_backup_restored_on_a_wiped_node_brings_back_calls_recordings_and_agents() {
    let work = tempfile::tempdir().expect("tmp");
    let data = work.path().join("data");
    let engine = start_on(&data);

    // History: a recorded agent call, then short IVR calls.
    let agent = agent_phone(&engine, "1001", "demo-1001", AUTO_ANSWER).await;
    let caller = queued_caller(&engine, "alice", 1).await;
    engine
        .wait_log("caller and agent bridged", Duration::from_secs(10))
        .expect("bridged");
    caller.hangup().await.expect("hang up");
    engine.wait_calls(1, Duration::from_secs(10));
    let recorded = wait_recordings(&data, 1);
    assert!(calls(engine.sip, work.path(), 3), "{}", engine.log_text());
    engine.wait_calls(4, Duration::from_secs(10));
    let before = record_ids(&data);
    assert_eq!(before.len(), 4);
    // An agent's state: paused, with a reason.
    svi_ok(&engine, &["agent", "login", "1002"]);
    svi_ok(&engine, &["agent", "pause", "1002", "--reason", "lunch"]);
    wait_agent(&engine, "1002", |s| s["reason"] == "lunch");
    // Accounts of the admin API: a user with a password, an API key.
    add_user(&data, None, "ops", "admin", OPS_PASSWORD);
    let key = create_key(&data, None, "supervisor", "crm");

    // A call in progress while the backup runs.
    let in_progress = queued_caller(&engine, "bob", 2).await;
    engine
        .wait_log_count("caller and agent bridged", 2, Duration::from_secs(10))
        .expect("second call bridged");
    let tar = work.path().join("b.tar");
    let (code, text) = svi(
        &engine,
        &[
            "backup",
            "--recordings",
            "--json",
            "--out",
            tar.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let report = json(&text);
    assert_eq!(report["manifest"]["contents"]["calls"], 4, "{report:#}");
    let names: Vec<&str> = report["manifest"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(names.contains(&"svi.db"), "{names:?}");
    let wav = recorded[0]["file"].as_str().expect("file").to_string();
    assert!(
        names.contains(&format!("recordings/{wav}").as_str()),
        "{names:?}"
    );
    in_progress.hangup().await.expect("hang up");
    engine.wait_calls(5, Duration::from_secs(10));
    drop(agent);

    // A running node is never restored over.
    let (code, text) = svi_at(&["restore", tar.to_str().unwrap_or_default()], &data);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("stop it before"), "{text}");
    let (status, _) = engine.terminate(Duration::from_secs(15));
    assert!(status.success());

    // Wipe, restore, start.
    let wav_sha = recorded[0]["sha256"].clone();
    std::fs::remove_dir_all(&data).expect("wipe");
    let (code, text) = svi_at(
        &["restore", tar.to_str().unwrap_or_default(), "--json"],
        &data,
    );
    assert_eq!(code, 0, "{text}");
    let restored = json(&text);
    assert_eq!(restored["mode"], "new_cluster", "{restored:#}");
    assert_eq!(restored["recordings"], 1, "{restored:#}");
    let engine = start_on(&data);
    let mut after = record_ids(&data);
    after.sort();
    let mut want = before.clone();
    want.sort();
    assert_eq!(after, want, "the backed-up call records, and only those");
    let index = recordings(&data);
    assert_eq!(index.len(), 1);
    assert_eq!(index[0]["sha256"], wav_sha);
    let bytes = std::fs::read(data.join("recordings").join(&wav)).expect("recording file back");
    assert_eq!(
        Value::String(sha256_hex(&bytes)),
        wav_sha,
        "the recording's content is the recorded one"
    );
    wait_agent(&engine, "1002", |s| {
        s["state"] == "not_ready" && s["reason"] == "lunch"
    });
    let audit = accounts_work(&engine, &key, &before, &[]).await;
    assert!(
        audit.iter().any(|a| a == "user.add") && audit.iter().any(|a| a == "apikey.create"),
        "the audit log is back: {audit:?}"
    );
    // The restored node is a working node: it takes calls and records them.
    assert!(calls(engine.sip, work.path(), 1), "{}", engine.log_text());
    engine.wait_calls(5, Duration::from_secs(10));
    let (status, _) = engine.terminate(Duration::from_secs(15));
    assert!(status.success());

    // Without history: no call records, no ACD events (agents as configured), recordings
    // and their index kept.
    let lean = work.path().join("lean");
    let (code, text) = svi_at(
        &[
            "restore",
            tar.to_str().unwrap_or_default(),
            "--without-history",
            "--json",
        ],
        &lean,
    );
    assert_eq!(code, 0, "{text}");
    let r = json(&text);
    assert_eq!(r["without_history"]["calls_removed"], 4, "{r:#}");
    assert!(
        r["without_history"]["documents_removed"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "ACD events removed: {r:#}"
    );
    let engine = start_on(&lean);
    assert!(record_ids(&lean).is_empty());
    assert_eq!(recordings(&lean).len(), 1);
    let state = wait_agent(&engine, "1002", |s| s["state"] == "logged_out");
    assert!(state["reason"].is_null(), "{state}");
    // The accounts stay; the audit log is history.
    let audit = accounts_work(&engine, &key, &[], &before).await;
    assert!(
        !audit
            .iter()
            .any(|a| a == "user.add" || a == "apikey.create"),
        "no audit entry from before the backup: {audit:?}"
    );
}

#[test]
fn a_damaged_backup_is_refused_and_the_node_keeps_its_data() {
    let work = tempfile::tempdir().expect("tmp");
    let data = work.path().join("data");
    let engine = start_on(&data);
    assert!(calls(engine.sip, work.path(), 2), "{}", engine.log_text());
    engine.wait_calls(2, Duration::from_secs(10));
    let dir_backup = work.path().join("b");
    let (code, text) = svi(
        &engine,
        &["backup", "--out", dir_backup.to_str().unwrap_or_default()],
    );
    assert_eq!(code, 0, "{text}");
    // The checksum file is the one `sha256sum -c` reads.
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dir_backup)
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "{check:?}");
    let (status, _) = engine.terminate(Duration::from_secs(15));
    assert!(status.success());
    let ids = record_ids(&data);
    assert_eq!(ids.len(), 2);

    // One byte changed in the database copy: refused, nothing touched.
    let db = dir_backup.join("svi.db");
    let mut bytes = std::fs::read(&db).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&db, bytes).expect("write");
    let (code, text) = svi_at(&["restore", dir_backup.to_str().unwrap_or_default()], &data);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("checksum mismatch for svi.db"), "{text}");
    assert_eq!(record_ids(&data), ids);
    let aside: Vec<_> = std::fs::read_dir(&data)
        .expect("data")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("pre-restore-"))
        .collect();
    assert!(aside.is_empty(), "nothing set aside");
    // Not a backup at all.
    let junk = work.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar file at all").expect("junk");
    let (code, text) = svi_at(&["restore", junk.to_str().unwrap_or_default()], &data);
    assert_ne!(code, 0, "{text}");
    assert_eq!(record_ids(&data), ids);
}

#[test]
fn the_active_node_takes_its_scheduled_backup_and_keeps_the_newest() {
    let work = tempfile::tempdir().expect("tmp");
    let backups = work.path().join("backups");
    std::fs::create_dir_all(&backups).expect("dir");
    for day in ["01", "02", "03"] {
        let name = format!("svi-backup-svi-202612{day}T000000Z.tar");
        std::fs::write(backups.join(name), b"old").expect("old backup");
    }
    std::fs::write(backups.join("by-hand.tar"), b"mine").expect("by hand");
    let config = svi_tests::config::write(
        work.path(),
        &[("demo", svi_tests::config::sample_flow("demo").as_str())],
        &format!(
            "[backup]\ndir = \"{}\"\nevery_hours = 24\nkeep = 2\n",
            backups.display()
        ),
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    // The newest backup is days old: the active node takes one at once.
    let line = engine
        .wait_log("scheduled backup taken", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no scheduled backup:\n{}", engine.log_text()));
    engine
        .wait_log("old backup deleted", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no retention after {line}:\n{}", engine.log_text()));
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(
        names[0], "by-hand.tar",
        "a file of another name is never deleted"
    );
    assert_eq!(names[1], "svi-backup-svi-20261203T000000Z.tar");
    assert!(
        names[2].starts_with("svi-backup-svi-20") && names[2] > names[1],
        "{names:?}"
    );
    // The new one is a complete backup: it restores.
    let (code, text) = svi_at(
        &[
            "restore",
            backups.join(&names[2]).to_str().unwrap_or_default(),
        ],
        &work.path().join("restored"),
    );
    assert_eq!(code, 0, "{text}");
}

fn wait_recordings(data: &Path, n: usize) -> Vec<Value> {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = recordings(data);
        if r.len() >= n {
            return r;
        }
        assert!(std::time::Instant::now() < end, "recordings: {r:?}");
        std::thread::yield_now();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), bytes).expect("write");
    let out = Command::new("sha256sum")
        .arg(file.path())
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
