//! Operator-facing commands: the monitoring check, and the engine under systemd (the
//! notification protocol of `Type=notify` units with a watchdog).

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

#[test]
fn under_systemd_the_engine_says_ready_feeds_the_watchdog_and_says_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).expect("bind");
    let engine = EngineProc::start(EngineOptions {
        env: vec![
            ("NOTIFY_SOCKET".into(), path.display().to_string()),
            // systemd's WatchdogSec=1: the engine pings every half of it.
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        ..EngineOptions::default()
    });
    let recv = |within: Duration| -> Option<String> {
        socket.set_read_timeout(Some(within)).expect("timeout");
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    // `start` returned once the engine answered OPTIONS; READY=1 came before or at that.
    assert_eq!(recv(Duration::from_secs(5)).as_deref(), Some("READY=1"));
    for _ in 0..3 {
        assert_eq!(recv(Duration::from_secs(3)).as_deref(), Some("WATCHDOG=1"));
    }
    let (status, log) = engine.terminate(Duration::from_secs(15));
    assert!(status.success(), "{log}");
    let mut last = Vec::new();
    while let Some(m) = recv(Duration::from_millis(500)) {
        last.push(m);
    }
    assert!(last.contains(&"STOPPING=1".to_string()), "{last:?}");
}
