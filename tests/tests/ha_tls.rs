//! The cluster link inside TLS with real processes: each member's certificate made by
//! `svi ha cert` and pinned in every configuration; the pair forms and replicates through
//! it, and a node whose certificate nobody pinned does not start.

use std::process::Command;
use std::time::Duration;

use svi_tests::ha::{cert_fingerprint, one_call, wait_records, HaSpec};
use svi_tests::proc::svi_bin;

#[test]
fn a_pair_with_pinned_certificates_forms_replicates_and_refuses_an_unpinned_node() {
    let spec = HaSpec::new_tls("");
    let config_b = std::fs::read_to_string(&spec.configs[1]).expect("config");
    let pinned_b = cert_fingerprint(&spec.data_dir(1));
    assert!(
        config_b.contains(&pinned_b),
        "`svi ha cert` prints the same fingerprint again"
    );
    let (_w, a, mut b) = spec.start_pair();
    for node in [&a, &b] {
        assert!(
            !node.log_text().contains("not encrypted"),
            "{}",
            node.log_text()
        );
    }
    assert!(one_call(a.sip, spec.dir.path()), "a call through A");
    let on_b = wait_records(&b.data_dir(), 1, Duration::from_secs(10));
    assert_eq!(on_b.len(), 1, "the record reached B over TLS");

    // B's key is lost and a new one made: until it is pinned, B does not start.
    b.kill9();
    std::fs::remove_dir_all(spec.data_dir(1).join("cluster-tls")).expect("remove B's key");
    let fresh = cert_fingerprint(&spec.data_dir(1));
    assert_ne!(fresh, pinned_b);
    let out = Command::new(svi_bin())
        .args(["run", "--sip-listen", "127.0.0.1:0", "--config"])
        .arg(&spec.configs[1])
        .arg("--data-dir")
        .arg(spec.data_dir(1))
        .output()
        .expect("svi run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "B started with an unpinned key: {err}"
    );
    assert!(
        err.contains("is not pinned for member 2") && err.contains(&fresh),
        "the error names the member and the certificate to pin: {err}"
    );
}
