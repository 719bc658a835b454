//! The Debian package: `scripts/package.sh` builds it (from this build's binary) with
//! configuration templates that hold no sample credential and that the engine refuses as
//! they are; installed on a clean system, its units pass `systemd-analyze verify`, the
//! `svi` user and `/var/lib/svi` exist, the service refuses to start until the
//! configuration is edited, then runs as `svi` and answers OPTIONS.
//!
//! The clean system is this machine's root seen through an overlay in a private mount
//! namespace (`unshare --mount`), over a tmpfs: everything the package writes (the user in
//! /etc/passwd, /etc/svi, /var/lib/svi, /usr/bin/svi) lands in the tmpfs and vanishes with
//! the test; the network is the machine's, so the engine inside is reached on loopback.
//! No systemd runs there (none runs on the test machine either): the test runs the unit's
//! `ExecStart` as the unit's `User`, as systemd would. The install test needs root.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use svi_tests::ports::{free_sip_port, rtp_range};
use svi_tests::probe::Probe;
use svi_tests::proc::svi_bin;

/// The package of this build, made once per test process (uncompressed: the debug binary
/// is large, and compressing it would only slow the tests down).
fn package() -> &'static Path {
    static PACKAGE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, deb) = PACKAGE.get_or_init(|| {
        let out = tempfile::tempdir().expect("tmp");
        let run = Command::new(svi_tests::repo_root().join("scripts/package.sh"))
            .arg("--binary")
            .arg(svi_bin())
            .args(["--compression", "none", "--out"])
            .arg(out.path())
            .output()
            .expect("scripts/package.sh");
        assert!(
            run.status.success(),
            "package.sh: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let path = String::from_utf8_lossy(&run.stdout).trim().to_string();
        assert!(path.ends_with(".deb"), "{path}");
        (out, path.into())
    });
    deb
}

fn dpkg_deb(args: &[&str]) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "dpkg-deb {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_holds_the_units_and_templates_the_engine_refuses_as_they_are() {
    let dir = tempfile::tempdir().expect("tmp");
    let deb = package();
    let deb_s = deb.to_str().unwrap_or_default();
    let files = dpkg_deb(&["--contents", deb_s]);
    for f in [
        "./usr/bin/svi",
        "./lib/systemd/system/svi.service",
        "./lib/systemd/system/svi-witness.service",
        "./etc/svi/svi.toml",
        "./etc/svi/witness.toml",
        "./etc/svi/flows/demo.yaml",
        "./usr/share/svi/prompts/en/welcome.wav",
        "./usr/share/svi/data/sample.sql",
        "./usr/share/doc/svi/operations.md",
    ] {
        assert!(files.contains(f), "{f} in:\n{files}");
    }
    let conffiles = dpkg_deb(&["--info", deb_s, "conffiles"]);
    assert!(conffiles.contains("/etc/svi/svi.toml"), "{conffiles}");
    assert!(
        conffiles.contains("/etc/svi/flows/demo.yaml"),
        "{conffiles}"
    );
    let control = dpkg_deb(&["--field", deb_s, "Package", "Depends"]);
    assert!(control.contains("Package: svi"), "{control}");

    let root = dir.path().join("root");
    dpkg_deb(&["--extract", deb_s, root.to_str().unwrap_or_default()]);
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/svi.service")).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=30",
        "User=svi",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/svi",
        "LimitNOFILE=65536",
        "Restart=on-failure",
        "ExecStart=/usr/bin/svi run --config /etc/svi/svi.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in:\n{unit}");
    }
    for conf in ["svi.toml", "witness.toml"] {
        let path = root.join("etc/svi").join(conf);
        let text = std::fs::read_to_string(&path).expect("template");
        assert!(text.contains("\nunconfigured = true\n"), "{text}");
        assert!(text.contains("data_dir = \"/var/lib/svi\""), "{text}");
        // No credential outside comments (examples in comments say `change-me`).
        let active = |l: &&str| !l.trim_start().starts_with('#');
        assert!(
            !text
                .lines()
                .filter(active)
                .any(|l| l.contains("demo-") || l.contains("change-me") || l.contains("password")),
            "{text}"
        );
        // As shipped, the engine refuses it (before opening anything).
        let cmd = if conf == "svi.toml" { "run" } else { "witness" };
        let out = Command::new(svi_bin())
            .args([cmd, "--config"])
            .arg(&path)
            .output()
            .expect("svi");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("node.unconfigured: this is the package's template"),
            "{err}"
        );
    }
}

/// What runs inside the container: install, verify, the refused start, the edited start;
/// then waits for a line on stdin before stopping the engine.
const INSIDE: &str = r#"
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
base=$1; deb=$2; port=$3; rtp=$4
mount -t tmpfs -o size=512m tmpfs "$base"
mkdir -p "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
mount --bind /proc "$base/root/proc"
mount --bind /dev "$base/root/dev"
mount -t tmpfs tmpfs "$base/root/run"
mount -t tmpfs tmpfs "$base/root/tmp"
cp "$deb" "$base/root/tmp/svi.deb"
exec chroot "$base/root" /bin/bash -c '
  port=$1; rtp=$2
  getent passwd svi >/dev/null && echo "USER-EXISTS-BEFORE"
  dpkg -i /tmp/svi.deb 2>&1 | sed "s/^/DPKG: /"
  echo "DPKG-RC=${PIPESTATUS[0]}"
  echo "SVI-UID=$(id -u svi)"
  echo "DATA=$(stat -c %U:%G:%a /var/lib/svi)"
  echo "CONF=$(stat -c %U:%G:%a /etc/svi/svi.toml)"
  systemd-analyze verify /lib/systemd/system/svi.service /lib/systemd/system/svi-witness.service 2>&1 | sed "s/^/VERIFY: /"
  echo "VERIFY-RC=${PIPESTATUS[0]}"
  unit=/lib/systemd/system/svi.service
  cmd=$(sed -n "s/^ExecStart=//p" $unit)
  user=$(sed -n "s/^User=//p" $unit)
  group=$(sed -n "s/^Group=//p" $unit)
  as_unit=(setpriv --reuid="$user" --regid="$group" --init-groups --)
  "${as_unit[@]}" $cmd 2>&1 | sed "s/^/UNEDITED: /"
  echo "UNEDITED-RC=${PIPESTATUS[0]}"
  sed -i -e "/^unconfigured = true/d" \
      -e "s|^listen = \"127.0.0.1:5060\"|listen = \"127.0.0.1:$port\"|" \
      -e "s|^ports = \"20000-29999\"|ports = \"$rtp\"|" /etc/svi/svi.toml
  # setpriv execs the command: $! is the engine itself.
  "${as_unit[@]}" $cmd >/tmp/svi.log 2>&1 &
  pid=$!
  echo "STARTED $pid"
  read -r _
  kill -TERM $pid
  wait $pid
  echo "STOP-RC=$?"
  sed "s/^/LOG: /" /tmp/svi.log
  ls -a /var/lib/svi | sed "s/^/DATADIR: /"
' inside "$port" "$rtp"
"#;

/// Kills the container's shell (and so its engine) if the test fails midway.
struct Container {
    child: std::process::Child,
    engine: Option<u32>,
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(pid) = self.engine {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{}", lines.join("\n")))
}

#[test]
fn installed_on_a_clean_system_the_service_starts_once_configured_and_answers_options() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the package install test needs root for its throwaway container (scripts/test.sh runs as root in CI)"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let deb = package();
    let base = dir.path().join("container");
    std::fs::create_dir_all(&base).expect("base");
    let port = free_sip_port();
    let rtp = rtp_range(20);
    let child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "bash",
            "-c",
            INSIDE,
            "inside",
        ])
        .arg(&base)
        .arg(deb)
        .arg(port.to_string())
        .arg(format!("{}-{}", rtp.0, rtp.1))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare");
    let mut c = Container {
        child,
        engine: None,
    };
    let stdout = c.child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let read_until = |lines: &mut Vec<String>, prefix: &str| loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.starts_with(prefix);
                lines.push(l);
                if done {
                    return;
                }
            }
            Err(_) => panic!("no `{prefix}` from the container:\n{}", lines.join("\n")),
        }
    };
    read_until(&mut lines, "STARTED ");
    let all = lines.join("\n");
    assert!(!all.contains("USER-EXISTS-BEFORE"), "a clean system: {all}");
    assert_eq!(value(&lines, "DPKG-RC="), "0", "{all}");
    assert!(
        all.contains("/etc/svi/svi.toml is the package's template: edit it"),
        "postinst says what to do: {all}"
    );
    let svi_uid = value(&lines, "SVI-UID=").to_string();
    assert_ne!(svi_uid, "0");
    assert_eq!(value(&lines, "DATA="), "svi:svi:750", "{all}");
    assert_eq!(value(&lines, "CONF="), "root:svi:640", "{all}");
    assert_eq!(value(&lines, "VERIFY-RC="), "0", "{all}");
    assert!(
        !lines.iter().any(|l| l.starts_with("VERIFY: ")),
        "systemd-analyze verify has nothing to say about the units:\n{all}"
    );
    assert_eq!(value(&lines, "UNEDITED-RC="), "2", "{all}");
    assert!(
        all.contains("UNEDITED: svi: error:") && all.contains("node.unconfigured"),
        "{all}"
    );

    let pid: u32 = value(&lines, "STARTED ").parse().expect("pid");
    c.engine = Some(pid);
    let mut probe = Probe::new(format!("127.0.0.1:{port}").parse().expect("addr"));
    assert!(
        probe.wait_ready(Duration::from_secs(30)),
        "the installed service answers OPTIONS:\n{all}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(svi_uid.as_str()),
        "the engine runs as the svi user: {uid_line}"
    );

    let mut stdin = c.child.stdin.take().expect("stdin");
    writeln!(stdin, "stop").expect("stop");
    read_until(&mut lines, "DATADIR: svi.db");
    let all = lines.join("\n");
    assert_eq!(
        value(&lines, "STOP-RC="),
        "0",
        "a clean stop on SIGTERM:\n{all}"
    );
    assert!(all.contains("LOG: ") && all.contains("svi ready"), "{all}");
    c.engine = None;
}
