//! Flows through the admin API against a real `svi run` (issue 14): an upload is checked
//! first (line and column of each problem in the answer), a new version installs without
//! changing what calls run, and the simulate route runs the active or a given version with
//! the digits a caller would key, as `svi simulate` does.

use serde_json::{json, Value};
use svi_tests::admin::{create_key, Api, Auth};
use svi_tests::config::sample_flow;
use svi_tests::proc::{EngineOptions, EngineProc};

fn path_of(a: &Value) -> Vec<&str> {
    a["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|s| s.as_str().expect("step"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn flows_are_checked_on_upload_and_simulated_by_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let admin = create_key(&data, None, "admin", "console");
    let supervisor = create_key(&data, None, "supervisor", "designer");
    let engine = EngineProc::start(EngineOptions {
        data_dir: Some(data),
        ..EngineOptions::default()
    });
    let api = Api::new(&engine);
    let simulate = |body: Value| {
        let (api, key) = (&api, &supervisor);
        async move {
            api.send(
                "POST",
                "/api/v1/flows/demo/simulate",
                Auth::Key(key),
                Some(&body),
            )
            .await
        }
    };

    // The demo flow as it runs now: 1 is the information message, 2 the support queue.
    let one = simulate(json!({"inputs": "1"})).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(
        path_of(&one.json),
        ["welcome", "main_menu", "option1", "end"],
        "{}",
        one.text
    );
    assert_eq!(one.json["ending"], "finished", "{}", one.text);
    assert!(
        one.json["effects"].as_array().is_some_and(|e| e.len() >= 4),
        "{}",
        one.text
    );
    let active = one.json["version"].as_str().expect("version").to_string();
    let two = simulate(json!({"inputs": "2"})).await;
    assert_eq!(two.json["ending"], "routed", "{}", two.text);
    assert_eq!(path_of(&two.json).last(), Some(&"support"), "{}", two.text);
    // Nothing keyed three times: goodbye.
    let none = simulate(json!({"inputs": "- - -"})).await;
    assert!(path_of(&none.json).contains(&"goodbye"), "{}", none.text);

    // Bad input is refused field by field; an unknown flow is 404.
    for (body, field) in [
        (json!({"at": "tomorrow"}), "at"),
        (json!({"stubs": 5}), "stubs"),
        (json!({"version": "../x"}), "version"),
        (json!({"caller": ""}), "caller"),
    ] {
        let a = simulate(body.clone()).await;
        assert_eq!(
            (a.status, a.json["field"].as_str()),
            (400, Some(field)),
            "{body}: {}",
            a.text
        );
    }
    let unknown = api
        .send(
            "POST",
            "/api/v1/flows/nothing/simulate",
            Auth::Key(&supervisor),
            Some(&json!({})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);

    // An upload with a step that does not exist: 400 with its line and column.
    let demo = sample_flow("demo");
    let broken = demo.replacen("next: main_menu\n", "next: nowhere\n", 1);
    let refused = api
        .send(
            "POST",
            "/api/v1/flows",
            Auth::Key(&admin),
            Some(&json!({"source": broken})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    let d = &refused.json["diagnostics"][0];
    let line = broken
        .lines()
        .position(|l| l.contains("nowhere"))
        .expect("line")
        + 1;
    assert_eq!(d["line"], line, "{}", refused.text);
    assert!(
        d["column"].as_u64().is_some_and(|c| c > 0),
        "{}",
        refused.text
    );

    // A new version where 1 says goodbye, installed but not active: calls and the
    // default simulation keep the active version; asked by name, the new one runs.
    let changed = demo.replace("\"1\": option1", "\"1\": goodbye");
    let installed = api
        .send(
            "POST",
            "/api/v1/flows",
            Auth::Key(&admin),
            Some(&json!({"source": changed, "activate": false})),
        )
        .await;
    assert_eq!(installed.status, 201, "{}", installed.text);
    let version = installed.json["version"].as_str().expect("version");
    assert_ne!(version, active);
    let still = simulate(json!({"inputs": "1"})).await;
    assert_eq!(still.json["version"], active.as_str(), "{}", still.text);
    assert_eq!(path_of(&still.json)[2], "option1", "{}", still.text);
    let new = simulate(json!({"inputs": "1", "version": version})).await;
    assert_eq!(new.status, 200, "{}", new.text);
    assert_eq!(new.json["version"], version, "{}", new.text);
    assert_eq!(path_of(&new.json)[2], "goodbye", "{}", new.text);
    let missing = simulate(json!({"version": "000000000000"})).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}
