//! Operator-facing commands: the monitoring check.

use std::process::Command;

use svi_tests::ports::free_sip_port;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

fn health(addr: &str) -> (i32, String) {
    let out = Command::new(svi_bin())
        .args(["health", "--sip", addr, "--timeout-ms", "1500"])
        .output()
        .expect("svi health");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn health_is_ok_for_a_running_engine_and_critical_without_one() {
    let engine = EngineProc::start(EngineOptions::default());
    let (code, line) = health(&engine.sip.to_string());
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("SVI OK - SIP answered in") && line.contains("| response_time="),
        "{line}"
    );
    let nobody = format!("127.0.0.1:{}", free_sip_port());
    let (code, line) = health(&nobody);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("SVI CRITICAL"), "{line}");
}
