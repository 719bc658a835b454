//! The admin API on the sample HA pair (issue 14, acceptance 6): users and API keys are
//! replicated, so those made on the active node work on the new one after a failover.

use std::time::Duration;

use serde_json::json;
use svi_tests::admin::{add_user, create_key, svi_cli, Api, Auth};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_a_key_made_on_the_active_node_work_on_the_new_one_after_a_failover() {
    use svi_tests::ha::{wait_role, HaSpec};
    let spec = HaSpec::new("");
    // A pair's accounts are written through its running active node, never offline.
    let offline = spec.dir.path().join("offline");
    let (code, _, err) = svi_cli(
        &offline,
        Some(&spec.configs[0]),
        &[
            "user",
            "add",
            "olga",
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("HA pair"), "{err}");

    let _w = spec.witness();
    let mut a = spec.node(0, None);
    let b = spec.node(1, None);
    assert!(
        wait_role(&a.data_dir(), "active", Duration::from_secs(30)),
        "{}",
        a.log_text()
    );
    assert!(
        wait_role(&b.data_dir(), "standby", Duration::from_secs(20)),
        "{}",
        b.log_text()
    );

    add_user(
        &a.data_dir(),
        Some(&spec.configs[0]),
        "olga",
        "supervisor",
        PASSWORD,
    );
    let key = create_key(
        &a.data_dir(),
        Some(&spec.configs[0]),
        "supervisor",
        "failover",
    );
    let on_a = Api::new(&a);
    assert_eq!(on_a.get("/api/v1/ha", Auth::Key(&key)).await.status, 200);

    // The standby serves reads, and sends writes to the active node with its address.
    let on_b = Api::new(&b);
    let admin_key = create_key(&a.data_dir(), Some(&spec.configs[0]), "admin", "ops");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let refused = loop {
        every.tick().await;
        let a = on_b
            .send(
                "POST",
                "/api/v1/apikeys",
                Auth::Key(&admin_key),
                Some(&json!({"name": "x", "role": "agent"})),
            )
            .await;
        // The key reaches B once the log entry is applied there.
        if a.status != 401 || tokio::time::Instant::now() > deadline {
            break a;
        }
    };
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json["error"], "not_active");
    assert_eq!(refused.json["active_node"], 1);

    a.kill9();
    assert!(
        wait_role(&b.data_dir(), "active", Duration::from_secs(30)),
        "{}",
        b.log_text()
    );
    let ha = on_b.get("/api/v1/ha", Auth::Key(&key)).await;
    assert_eq!(
        (ha.status, ha.json["role"].as_str()),
        (200, Some("active")),
        "{}",
        ha.text
    );
    assert!(
        on_b.login("olga", PASSWORD).await.is_some(),
        "olga logs in on B"
    );
    // And the audit log came along: the user was made on A.
    let audit = on_b.get("/api/v1/audit", Auth::Key(&admin_key)).await;
    assert!(
        audit
            .json
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["action"] == "user.add"
                && e["target"] == "user:olga"
                && e["node"] == "node-a")),
        "{}",
        audit.text
    );
}
