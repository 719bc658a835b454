//! Flow versions through `svi flow install|list|activate|rollback` on a running engine:
//! install checks the flow against the engine (an invalid one is refused at its line and
//! column, nothing installed), activation reaches new calls, rollback returns to the
//! previous version; on an HA pair the standby lists the active node's changes and refuses
//! to make its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use engine::flows::Installed;
use engine::handle::FlowListing;
use svi_tests::config::two_demo_versions as two_versions;
use svi_tests::contact::call_option_1;
use svi_tests::ha::{status, wait_role, HaSpec};
use svi_tests::path_of;
use svi_tests::proc::{svi_bin, EngineOptions, EngineProc};

/// `svi ARGS --data-dir DATA`: exit code, stdout, stderr.
fn svi(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(svi_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("svi");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn svi_ok(data: &Path, args: &[&str]) -> String {
    let (code, out, err) = svi(data, args);
    assert_eq!(code, 0, "svi {args:?}: {out}{err}");
    out
}

/// `svi flow list --json`, read back as the engine's own type.
fn flow_list(data: &Path) -> Vec<FlowListing> {
    let out = svi_ok(data, &["flow", "list", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Polls `svi flow list` until each of `names` has an active version (the engine installs
/// the flows directory's files once it runs: a deadline, not a sleep; each listing is a
/// process round trip).
fn wait_flows(data: &Path, names: &[&str]) -> Vec<FlowListing> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let flows = flow_list(data);
        let active = |n: &&str| flows.iter().any(|f| f.name == *n && f.active.is_some());
        if names.iter().all(active) {
            return flows;
        }
        assert!(
            Instant::now() < end,
            "never all active {names:?}: {flows:#?}"
        );
        std::thread::yield_now();
    }
}

fn demo(flows: &[FlowListing]) -> &FlowListing {
    flows
        .iter()
        .find(|f| f.name == "demo")
        .unwrap_or_else(|| panic!("no demo: {flows:#?}"))
}

fn install(data: &Path, file: &Path, activate: bool) -> Installed {
    let file = file.to_string_lossy();
    let mut args = vec!["flow", "install", &file, "--json"];
    if activate {
        args.push("--activate");
    }
    let out = svi_ok(data, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn install_list_activate_and_roll_back_reach_new_calls_on_one_node() {
    let dir = tempfile::tempdir().expect("tmp");
    let (v1, v2) = two_versions();
    let config = svi_tests::config::write(dir.path(), &[("demo", &v1)], "");
    let engine = EngineProc::start(EngineOptions {
        config: Some(config),
        ..EngineOptions::default()
    });
    let data = engine.data_dir();

    // The flows directory's file is installed and active.
    let flows = wait_flows(&data, &["demo"]);
    assert_eq!(flows.len(), 1, "{flows:#?}");
    let first = demo(&flows);
    assert_eq!(first.versions.len(), 1, "{first:#?}");
    let old = first.versions[0].version.clone();
    assert_eq!(first.active.as_deref(), Some(old.as_str()));
    assert!(first.versions[0].active);
    assert_eq!(first.rollback_to, None);

    // Installed, not active: the list shows it, calls still run the old version.
    let file = dir.path().join("demo-v2.yaml");
    std::fs::write(&file, &v2).expect("write v2");
    let installed = install(&data, &file, false);
    assert_eq!(
        (installed.name.as_str(), installed.new, installed.active),
        ("demo", true, false)
    );
    let new = installed.version.clone();
    assert_ne!(new, old);
    assert!(
        !install(&data, &file, false).new,
        "same source, same version"
    );
    let flows = flow_list(&data);
    let listed = demo(&flows);
    let versions: Vec<(&str, bool)> = listed
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.active))
        .collect();
    assert_eq!(versions, [(old.as_str(), true), (new.as_str(), false)]);
    assert_eq!(listed.versions[1].file, file.to_string_lossy());
    let table = svi_ok(&data, &["flow", "list"]);
    println!("svi flow list:\n{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&old) && l.contains(" * ") && l.contains("demo")),
        "{table}"
    );
    let call = call_option_1(&engine, dir.path(), 1);
    assert_eq!(path_of(&call), ["welcome", "main_menu", "option1", "end"]);
    assert_eq!(call["flow_version"], old.as_str());

    // Activated: new calls run it.
    let out = svi_ok(&data, &["flow", "activate", "demo", &new]);
    assert!(
        out.contains(&format!("demo version {new} is active")),
        "{out}"
    );
    let flows = flow_list(&data);
    let listed = demo(&flows);
    assert_eq!(listed.active.as_deref(), Some(new.as_str()));
    assert_eq!(listed.rollback_to.as_deref(), Some(old.as_str()));
    let call = call_option_1(&engine, dir.path(), 2);
    assert_eq!(
        path_of(&call),
        ["welcome", "main_menu", "option_one", "end"]
    );
    assert_eq!(call["flow_version"], new.as_str());

    // Rolled back: the previous version again, and nothing earlier to go back to.
    let out = svi_ok(&data, &["flow", "rollback", "demo"]);
    assert!(
        out.contains(&format!("demo version {old} is active")),
        "{out}"
    );
    let flows = flow_list(&data);
    assert_eq!(demo(&flows).active.as_deref(), Some(old.as_str()));
    assert_eq!(demo(&flows).rollback_to, None);
    let call = call_option_1(&engine, dir.path(), 3);
    assert_eq!(path_of(&call), ["welcome", "main_menu", "option1", "end"]);
    assert_eq!(call["flow_version"], old.as_str());
    let (code, _, err) = svi(&data, &["flow", "rollback", "demo"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("flow `demo` has no earlier version to roll back to"),
        "{err}"
    );

    // Unknown names and versions are refused, by name.
    let (code, _, err) = svi(&data, &["flow", "activate", "demo", "000000000000"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no installed flow version is `demo 000000000000`"),
        "{err}"
    );
    let (code, _, err) = svi(&data, &["flow", "activate", "nothing", &new]);
    assert_ne!(code, 0);
    assert!(err.contains("no installed flow is `nothing`"), "{err}");
}

/// The broken flows of the checker's corpus that the engine must refuse: a YAML error, and
/// names (a prompt, a queue) this engine does not have.
const BROKEN: [&str; 3] = [
    "yaml-syntax.yaml",
    "missing-prompt.yaml",
    "unknown-queue.yaml",
];

#[test]
fn an_invalid_flow_is_refused_at_its_line_and_column_and_nothing_is_installed() {
    let engine = EngineProc::start(EngineOptions::default());
    let data = engine.data_dir();
    let before = wait_flows(&data, &["demo", "reception", "service-desk"]);
    let broken = svi_tests::repo_root().join("ivr-scripts/tests/broken");
    for name in BROKEN {
        let path = std::path::absolute(broken.join(name)).expect("path");
        let text = std::fs::read_to_string(&path).expect("read");
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name} states its diagnostic"));
        let position = expect.split_whitespace().next().expect("position");
        let file = path.to_string_lossy();
        let (code, out, err) = svi(&data, &["flow", "install", &file, "--json"]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let needle = format!("{file}:{position}:");
        assert!(err.contains(&needle), "{name} must report {needle}:\n{err}");
        assert!(err.contains("refused: not installed"), "{err}");
        // --json: the diagnostics as data, with the same position.
        let diags: Vec<serde_json::Value> =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let (line, column) = position.split_once(':').expect("LINE:COL");
        let (line, column): (u64, u64) =
            (line.parse().expect("line"), column.parse().expect("column"));
        assert!(
            diags
                .iter()
                .any(|d| d["line"] == line && d["column"] == column),
            "{name}: {diags:#?}"
        );
    }
    assert_eq!(flow_list(&data), before, "nothing installed");
    let (code, _, err) = svi(&data, &["flow", "install", "/nonexistent/flow.yaml"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read /nonexistent/flow.yaml"), "{err}");
}

/// Polls `svi flow list` on `data` until demo's active version is `version`.
fn wait_active(data: &Path, version: &str) -> Vec<FlowListing> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let flows = flow_list(data);
        if demo(&flows).active.as_deref() == Some(version) {
            return flows;
        }
        assert!(Instant::now() < end, "never active {version}: {flows:#?}");
        std::thread::yield_now();
    }
}

#[test]
fn the_standby_lists_the_active_nodes_flow_changes_and_refuses_its_own() {
    let spec = HaSpec::new("");
    let _w = spec.witness();
    let a = spec.node(0, None);
    let b = spec.node(1, None);
    let form = Duration::from_secs(20);
    assert!(
        wait_role(&a.data_dir(), "active", form),
        "A active: {:?}\n{}",
        status(&a.data_dir()),
        a.log_text()
    );
    assert!(
        wait_role(&b.data_dir(), "standby", form),
        "B standby: {:?}\n{}",
        status(&b.data_dir()),
        b.log_text()
    );
    let (a_data, b_data) = (a.data_dir(), b.data_dir());
    // The samples' flows, installed by A from its files: the log holds them before what
    // follows, so B has them once it has the changes below.
    let old = demo(&wait_flows(&a_data, &["demo", "reception", "service-desk"]))
        .active
        .clone()
        .expect("demo active on A");
    wait_active(&b_data, &old);

    let (_, v2) = two_versions();
    let file: PathBuf = spec.dir.path().join("demo-v2.yaml");
    std::fs::write(&file, v2).expect("write v2");
    let installed = install(&a_data, &file, true);
    assert!(installed.new && installed.active, "{installed:?}");
    let on_b = wait_active(&b_data, &installed.version);
    assert_eq!(on_b, flow_list(&a_data), "the same versions on both nodes");
    assert_eq!(demo(&on_b).rollback_to.as_deref(), Some(old.as_str()));

    // The standby refuses changes: they are made on the active node.
    let f = file.to_string_lossy();
    let (code, _, err) = svi(&b_data, &["flow", "install", &f, "--activate"]);
    assert_ne!(code, 0);
    assert!(err.contains("this node is standby, not active"), "{err}");
    let (code, _, err) = svi(&b_data, &["flow", "rollback", "demo"]);
    assert_ne!(code, 0);
    assert!(err.contains("not active"), "{err}");

    // A rollback on the active node reaches the standby too.
    svi_ok(&a_data, &["flow", "rollback", "demo"]);
    let on_b = wait_active(&b_data, &old);
    assert_eq!(on_b, flow_list(&a_data));
}
