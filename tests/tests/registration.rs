//! The engine registers its SIP user with a registrar (sipp playing the IPBX) using digest
//! authentication, refreshes before expiry, and unregisters on a clean shutdown.

use std::time::Duration;

use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{registrar_xml, Sipp};

#[test]
fn registers_with_digest_refreshes_and_unregisters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registrar_port = free_sip_port();
    // The registrar grants 6 s: the engine must refresh after about half of it.
    let registrar = std::thread::spawn({
        let dir = dir.path().to_path_buf();
        move || {
            let mut s = Sipp::new(registrar_xml("svi", "s3cret", 6))
                .arg("-i")
                .arg("127.0.0.1")
                .arg("-p")
                .arg(registrar_port.to_string())
                .arg("-m")
                .arg("1");
            s.timeout = Duration::from_secs(40);
            s.run(&dir, None)
        }
    });
    let trunk = format!(
        "[[trunks]]\nname = \"ipbx\"\nregistrar = \"sip:127.0.0.1:{registrar_port}\"\nusername = \"svi\"\npassword = \"s3cret\"\ndomain = \"test.example\"\nexpires = 60\n"
    );
    let config = svi_tests::config::write(
        dir.path(),
        &[("demo", &svi_tests::config::sample_flow("demo"))],
        &trunk,
    );
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let first = engine.wait_log("registered with the IPBX", Duration::from_secs(15));
    assert!(first.is_some(), "no registration:\n{}", engine.log_text());
    let refresh = engine.wait_log("refreshed=true", Duration::from_secs(10));
    assert!(
        refresh.is_some(),
        "no refresh before expiry:\n{}",
        engine.log_text()
    );
    let (status, log) = engine.terminate(Duration::from_secs(15));
    assert!(status.success(), "engine exit {status:?}\n{log}");
    assert!(
        log.contains("unregistered from the IPBX") && log.contains("clean=true"),
        "{log}"
    );
    let run = registrar.join().expect("registrar thread");
    assert!(run.success(), "{}", run.report());
    let messages = run.messages();
    let registers = messages.matches("REGISTER sip:").count();
    // Challenged, authorised, refreshed, unregistered: sipp checked each credential.
    assert_eq!(registers, 4, "REGISTERs seen by the registrar:\n{messages}");
    assert!(messages.contains("Authorization: Digest"), "{messages}");
    assert!(
        messages.contains("Expires: 0"),
        "unregistration seen:\n{messages}"
    );
}
