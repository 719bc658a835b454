//! Debian's baresip as a caller nobody here wrote: a temporary configuration (no audio
//! device: a WAV file as the microphone, the speaker discarded), one account, one call
//! placed with `-e /dial`. Its console output goes to a file the test reads after the call.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::ports::free_sip_port;

/// Whether baresip is installed (the test script installs Debian's `baresip-core`).
pub fn available() -> bool {
    Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

pub struct Baresip {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Calls `uri` with media encryption `mediaenc` (`srtp`, `srtp-mand`...; empty for
    /// none), sending `wav` (8 kHz mono) as its audio, PCMA only.
    pub fn call(uri: &str, mediaenc: &str, wav: &Path) -> Baresip {
        let dir = tempfile::tempdir().expect("tmp");
        let listen = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
        let config = format!(
            "poll_method epoll\nsip_listen {listen}\n\
             audio_player aubridge,nil\naudio_alert aubridge,nil\naudio_source aufile,{wav}\n\
             audio_srate 8000\naudio_channels 1\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule srtp.so\n\
             module_app account.so\nmodule_app menu.so\n",
            wav = wav.display()
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        let mut account = "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMA".to_string();
        if !mediaenc.is_empty() {
            account.push_str(&format!(";mediaenc={mediaenc}"));
        }
        std::fs::write(dir.path().join("accounts"), account + "\n").expect("accounts");
        std::fs::write(dir.path().join("contacts"), "").expect("contacts");
        let log = dir.path().join("console.log");
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .arg("-e")
            .arg(format!("/dial {uri}"))
            .arg("-t")
            .arg("60")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn baresip");
        Baresip {
            child,
            log,
            _dir: dir,
        }
    }

    /// Stops baresip and returns what it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
