//! Recording copies in the HA pair, with real processes: a bridged call recorded on the
//! active node ends up, byte for byte, on the standby too, and `svi recordings` on both
//! nodes names both as holding the file.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use svi_tests::contact::hear_each_other;
use svi_tests::ha::{recordings, HaSpec};
use svi_tests::phone::{deadline, AnswerMode, Ended, Phone, PhoneConfig};

/// The pair's engine configuration: a flow that bridges every call to `target`, and every
/// bridged call recorded.
fn engine_config(dir: &Path, target: &str) -> String {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("flows dir");
    let flow = svi_tests::config::bridged_transfer_flow(target);
    std::fs::write(flows.join("bridged.yaml"), flow).expect("write flow");
    format!(
        "[sip]\nallowed_networks = [\"127.0.0.0/8\"]\n\n[prompts]\ndir = \"{prompts}\"\ndefault_language = \"en\"\n\n[flows]\ndir = \"{flows}\"\ndefault = \"bridged\"\n\n[recording]\ndefault = \"all\"\n",
        prompts = svi_tests::repo_root().join("samples/prompts").display(),
        flows = flows.display(),
    )
}

fn present_on(entry: &Value) -> Vec<String> {
    let mut names: Vec<String> = entry["present_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Polls `svi recordings` on `data_dir` until its single entry names both nodes.
fn wait_on_both(data_dir: &Path, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let [entry] = recordings(data_dir).as_slice() {
            if present_on(entry) == ["node-a", "node-b"] {
                return Some(entry.clone());
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        // `svi recordings` takes a few milliseconds: the loop is bounded by it.
        std::thread::yield_now();
    }
}

/// SHA-256 of a file with the system's `sha256sum`, if there is one.
fn sha256sum(path: &Path) -> Option<String> {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_made_on_the_active_node_is_copied_to_the_standby() {
    let mut desk = Phone::start(PhoneConfig::new("desk").answer(AnswerMode::Auto {
        ring: Duration::from_millis(100),
    }))
    .await
    .expect("desk phone");
    let work = tempfile::tempdir().expect("tmp");
    let spec = HaSpec::with_engine(&engine_config(work.path(), &desk.uri()), "");
    let (_witness, a, b) = spec.start_pair();

    // A recorded call through the active node: bridged to the desk, both talking.
    let mut caller = Phone::start(PhoneConfig::new("caller"))
        .await
        .expect("caller phone");
    caller
        .call(&format!("sip:service@{}", a.sip))
        .await
        .expect("call");
    caller.wait_answered(deadline(5)).await.expect("answered");
    desk.wait_answered(deadline(10))
        .await
        .expect("the desk answers");
    hear_each_other(&mut caller, &mut desk).await;
    // About a second of conversation in the file.
    caller.clear_received();
    caller.wait_frames(50, deadline(5)).await.expect("audio");
    caller.hangup().await.expect("hang up");
    assert_eq!(
        desk.wait_ended(deadline(5)).await.expect("BYE"),
        Ended::RemoteBye
    );

    // The standby copies the file and the index, replicated to both, names both nodes.
    let on_a = wait_on_both(&a.data_dir(), Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "A's index never named both nodes: {:?}\nA:\n{}\nB:\n{}",
            recordings(&a.data_dir()),
            a.log_text(),
            b.log_text()
        )
    });
    let on_b = wait_on_both(&b.data_dir(), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("B's index: {:?}", recordings(&b.data_dir())));
    assert_eq!(on_a, on_b, "the index is the same on both nodes");
    assert_eq!(on_a["origin"], "node-a");
    let file = on_a["file"].as_str().expect("file name");
    let sha = on_a["sha256"].as_str().expect("sha256");
    let original = a.data_dir().join("recordings").join(file);
    let copy = b.data_dir().join("recordings").join(file);
    let (x, y) = (
        std::fs::read(&original).expect("A's recording"),
        std::fs::read(&copy).expect("B's copy"),
    );
    assert_eq!(on_a["bytes"].as_u64(), Some(x.len() as u64));
    assert!(
        on_a["duration_ms"].as_u64() > Some(500),
        "a second of audio: {on_a}"
    );
    assert!(x == y, "B's copy differs from A's recording");
    assert!(!b
        .data_dir()
        .join("recordings")
        .join(format!("{file}.part"))
        .exists());
    if let (Some(sa), Some(sb)) = (sha256sum(&original), sha256sum(&copy)) {
        assert_eq!(
            (sa.as_str(), sb.as_str()),
            (sha, sha),
            "SHA-256 of both files"
        );
    }
    let calls = a.wait_calls(1, Duration::from_secs(5));
    assert_eq!(calls[0]["recording_sha256"].as_str(), Some(sha));
    assert!(
        b.wait_log("recording copied", Duration::from_secs(1))
            .is_some(),
        "B logs the copy:\n{}",
        b.log_text()
    );
}
