//! The engine registers its SIP user with a registrar (sipp playing the IPBX) using digest
//! authentication, refreshes before expiry, and unregisters on a clean shutdown.

use std::time::Duration;

use svi_tests::ports::free_sip_port;
use svi_tests::proc::{EngineOptions, EngineProc};
use svi_tests::sipp::{registrar_xml, Sipp};

/// A configuration using the repository's sample prompts and demo flow, with one trunk.
fn config_with_trunk(dir: &std::path::Path, registrar_port: u16) -> std::path::PathBuf {
    let samples = svi_tests::repo_root().join("samples");
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).expect("flows dir");
    std::fs::copy(samples.join("flows/demo.yaml"), flows.join("demo.yaml")).expect("copy demo");
    let config = dir.join("svi.toml");
    let text = format!(
        r#"[sip]
allowed_networks = ["127.0.0.0/8"]
[prompts]
dir = "{prompts}"
[flows]
dir = "{flows}"
[[queues]]
id = "support"
[[trunks]]
name = "ipbx"
registrar = "sip:127.0.0.1:{registrar_port}"
username = "svi"
password = "s3cret"
domain = "test.example"
expires = 60
"#,
        prompts = samples.join("prompts").display(),
        flows = flows.display(),
    );
    std::fs::write(&config, text).expect("write config");
    config
}

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
    let config = config_with_trunk(dir.path(), registrar_port);
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
