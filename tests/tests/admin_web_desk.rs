//! The agent desk shows the caller's data from the flow (issue 15), in a real browser: a
//! flow looks the caller up in the sample directory (SQLite) and collects a ticket number
//! from the caller's keys, then queues the call with `desk: { name, vip, ticket }`; agent
//! 1001's phone (sipp) takes it and the agent's desk, in Debian's headless Chromium, shows
//! the name, the VIP flag and the ticket, in English and in French. The flow's other
//! variables (the whole directory record) never reach the page. Waits are DOM observations
//! in the page with deadlines.

use std::time::Duration;

use svi_tests::admin::{add_agent_user, create_key, Api, Auth};
use svi_tests::browser::{installed, screenshots, Browser};
use svi_tests::contact::register_phone;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{Caller, Codec, Dtmf};

const PASSWORD: &str = "the desk shows the flow data";
const SECOND: Duration = Duration::from_secs(1);

/// Looks the caller up, asks for a 4-digit ticket number, queues with three desk values.
const DESK_FLOW: &str = "flow: desk
language: en
start: identify
steps:
  identify:
    lookup: directory
    params: { number: caller }
    into: contact
    ok: ask_ticket
    not_found: ask_ticket
    error: ask_ticket
  ask_ticket:
    collect: []
    into: ticket
    min_digits: 4
    max_digits: 4
    timeout: 10s
    exhausted: end
    next: to_agent
  to_agent:
    queue: support
    desk: { name: contact.name, vip: contact.vip, ticket: ticket }
    overflow: end
  end:
    hangup:
";

/// The sample configuration with `desk` as the only flow, and the sipp caller (its number
/// is `sipp`) in the sample directory as a VIP.
fn desk_engine(dir: &std::path::Path, accounts: impl FnOnce(&std::path::Path)) -> EngineProc {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("flows dir");
    std::fs::write(flows.join("desk.yaml"), DESK_FLOW).expect("flow");
    let config = svi_tests::config::sample(dir, |text| {
        svi_tests::config::md5_only(text)
            .replace(
                &format!(
                    "dir = \"{}\"",
                    svi_tests::repo_root().join("samples/flows").display()
                ),
                &format!("dir = \"{}\"", flows.display()),
            )
            .replace("flow = \"demo\"", "flow = \"desk\"")
            .replace("default = \"demo\"", "default = \"desk\"")
    });
    let sql = dir.join("data/sample.sql");
    let mut text = std::fs::read_to_string(&sql).expect("sample.sql");
    text.push_str(
        "\nINSERT INTO directory (number, name, vip, language) \
         VALUES ('sipp', 'Ada Lovelace', 1, 'en');\n",
    );
    std::fs::write(&sql, text).expect("sample.sql");
    let data = dir.join("data");
    accounts(&data);
    EngineProc::start(EngineOptions {
        config: Some(config),
        data_dir: Some(data),
        ..EngineOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_desk_shows_the_name_vip_flag_and_ticket_the_flow_gathered() {
    assert!(
        installed("chromedriver") && installed("chromium"),
        "Debian's chromium and chromium-driver are needed (scripts/test.sh installs them)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut key = String::new();
    let engine = desk_engine(dir.path(), |data| {
        add_agent_user(data, "marc", "1001", PASSWORD);
        key = create_key(data, None, "supervisor", "tests");
    });
    let api = Api::new(&engine);
    let phone = register_phone(&engine, "1001", "demo-1001", Duration::from_secs(120));
    let b = Browser::start().await;
    let base = api.base.clone();

    // The agent becomes ready from the desk.
    b.sign_in(&base, "marc", PASSWORD, "desk").await;
    assert!(b
        .wait_for("dl.desk-state[data-agent=\"1001\"]", 10 * SECOND)
        .await
        .is_some());
    if b.wait_for("button[data-desk-action=\"login\"]", SECOND)
        .await
        .is_some()
    {
        b.click("button[data-desk-action=\"login\"]").await;
    }
    if b.wait_for("button[data-desk-action=\"ready\"]", 5 * SECOND)
        .await
        .is_some()
    {
        b.click("button[data-desk-action=\"ready\"]").await;
    }
    assert!(b
        .wait_for("dl.desk-state[data-state=\"ready\"]", 10 * SECOND)
        .await
        .is_some());
    assert!(b.wait_for("dl.desk-data", SECOND).await.is_none());

    // The caller keys its ticket number, 4242, and waits for the agent.
    let mut caller = Caller::new(Codec::Pcma);
    for (i, d) in "4242".chars().enumerate() {
        let pause = if i == 0 { 2 * SECOND } else { SECOND / 4 };
        caller = caller.dtmf(pause, Dtmf::Info(d));
    }
    caller.bye_timeout = Duration::from_secs(90);
    let call = caller.spawn_call(engine.dir.path(), engine.sip);
    let data = "dl.desk-data";
    assert!(
        b.wait_for(data, 30 * SECOND).await.is_some(),
        "no flow data on the desk\n{}",
        engine.log_text()
    );
    let field = |name: &str| format!("{data} div[data-field=\"{name}\"] dd");
    assert_eq!(b.text(&field("name")).await, "Ada Lovelace");
    assert_eq!(b.text(&field("vip")).await, "Yes");
    assert_eq!(b.text(&field("ticket")).await, "4242");
    let text = b.text(data).await;
    assert!(
        text.contains("Name") && text.contains("VIP") && text.contains("Ticket number"),
        "{text}"
    );
    // Only the three named values: the record's `language` column is not on the page.
    let fields = b
        .eval(
            "return document.querySelectorAll(arguments[0]).length;",
            serde_json::json!([format!("{data} div[data-field]")]),
        )
        .await;
    assert_eq!(fields, 3);
    let call_id = b
        .eval(
            "return document.querySelector('dl.desk-call').dataset.call;",
            serde_json::json!([]),
        )
        .await;
    let call_id = call_id.as_str().expect("call id").to_string();
    b.screenshot(&screenshots("en"), "desk-flow-data").await;

    b.click("button[data-lang=\"fr\"]").await;
    assert!(b.wait_for("html[lang=\"fr\"]", 10 * SECOND).await.is_some());
    assert!(b.wait_for(data, 10 * SECOND).await.is_some());
    assert_eq!(b.text(&field("vip")).await, "Oui");
    let text = b.text(data).await;
    assert!(
        text.contains("Nom") && text.contains("Numéro de ticket"),
        "{text}"
    );
    b.screenshot(&screenshots("fr"), "desk-flow-data").await;

    let hangup = api
        .send(
            "POST",
            &format!("/api/v1/calls/{call_id}/hangup"),
            Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(hangup.status, 200, "{}", hangup.text);
    let run = call.join().expect("caller");
    assert!(run.success(), "{}\n{}", run.report(), engine.log_text());
    b.quit().await;
    let phone = phone.join().expect("phone");
    assert!(phone.success(), "{}\n{}", phone.report(), engine.log_text());
}
