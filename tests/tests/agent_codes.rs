//! Feature codes dialled from an agent's registered phone: `*2` pauses the agent, `*1`
//! makes it ready, `*3` logs it out. The INVITE is challenged with the agent's password;
//! the answer's reason phrase says what happened.

use svi_tests::contact::{agent_state, wait_agent};
use svi_tests::phone::{deadline, Ended, Phone, PhoneConfig};
use svi_tests::proc::{EngineOptions, EngineProc};

fn wait_state(engine: &EngineProc, agent: &str, want: &str) {
    wait_agent(engine, agent, |s| s["state"] == want);
}

async fn dial(phone: &mut Phone, engine: &EngineProc, code: &str) -> Ended {
    phone
        .call(&format!("sip:{code}@{}", engine.sip))
        .await
        .expect("call");
    phone.wait_ended(deadline(5)).await.expect("final answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_pauses_readies_and_logs_out_from_its_phone() {
    let engine = EngineProc::start(EngineOptions::default());
    let mut phone = Phone::start(PhoneConfig::new("1001").password("demo-1001"))
        .await
        .expect("phone");
    phone
        .register(engine.sip, deadline(5))
        .await
        .expect("register");
    wait_state(&engine, "1001", "ready");

    assert_eq!(
        dial(&mut phone, &engine, "*2").await,
        Ended::Rejected { status: 480 }
    );
    wait_state(&engine, "1001", "not_ready");
    assert_eq!(
        dial(&mut phone, &engine, "*1").await,
        Ended::Rejected { status: 480 }
    );
    wait_state(&engine, "1001", "ready");
    assert_eq!(
        dial(&mut phone, &engine, "*3").await,
        Ended::Rejected { status: 480 }
    );
    wait_state(&engine, "1001", "logged_out");
    let log = engine.log_text();
    assert!(log.contains("agent feature code"), "{log}");

    // Somebody else's phone, or a wrong password, changes nothing.
    let mut intruder = Phone::start(PhoneConfig::new("1002").password("wrong"))
        .await
        .expect("phone");
    let ended = dial(&mut intruder, &engine, "*1").await;
    assert!(
        matches!(ended, Ended::Rejected { status } if status == 401 || status == 403),
        "{ended:?}"
    );
    assert_eq!(agent_state(&engine, "1002")["state"], "logged_out");
}
