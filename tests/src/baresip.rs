//! Debian's baresip as a third-party softphone: headless (no sound card: a WAV file as the
//! microphone, by default a 440 Hz tone; the speaker discarded), driven by commands on its
//! standard input, read through its log. A test skips with a visible notice where baresip is
//! not installed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Whether baresip can run here; prints why not (the test then skips).
pub fn available() -> bool {
    let ok = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIPPED: baresip is not installed (Debian's baresip-core; the test script installs it)");
    }
    ok
}

pub struct Baresip {
    child: Child,
    stdin: ChildStdin,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    readers: Vec<std::thread::JoinHandle<()>>,
    pub dir: PathBuf,
}

impl Baresip {
    /// Starts baresip in `dir` with one account line (`<sip:...>;params`) and `extra` lines
    /// of configuration (TLS files...), listening on loopback.
    pub fn start(dir: &Path, account: &str, extra: &str) -> Baresip {
        std::fs::create_dir_all(dir).expect("baresip dir");
        // baresip 1.0 ends a call when its file source ends (and its tone source runs at
        // 48 kHz only): two minutes of tone outlast any test call.
        let mic = dir.join("mic.wav");
        write_tone(&mic, Duration::from_secs(120));
        Self::start_with_mic(dir, account, extra, &mic)
    }

    /// A caller (PCMA only) calling `uri` with media encryption `mediaenc` (`srtp`,
    /// `srtp-mand`...; empty for none), sending `mic` (8 kHz mono) as its audio.
    pub fn call(dir: &Path, uri: &str, mediaenc: &str, mic: &Path) -> Baresip {
        let mut account = "<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMA".to_string();
        if !mediaenc.is_empty() {
            account.push_str(&format!(";mediaenc={mediaenc}"));
        }
        let mut phone = Self::start_with_mic(dir, &account, "", mic);
        phone.keys(&format!("/dial {uri}\n"));
        phone
    }

    /// [`Baresip::start`] with `mic` (a WAV file, 8 kHz mono) as the microphone.
    pub fn start_with_mic(dir: &Path, account: &str, extra: &str, mic: &Path) -> Baresip {
        std::fs::create_dir_all(dir).expect("baresip dir");
        let port = crate::ports::free_sip_port();
        let config = format!(
            "module_path /usr/lib/baresip/modules\n\
             poll_method epoll\n\
             sip_listen 127.0.0.1:{port}\n\
             call_local_timeout 120\n\
             audio_source aufile,{mic}\n\
             audio_player aubridge,nil\n\
             audio_alert aubridge,nil\n\
             audio_srate 8000\n\
             audio_channels 1\n\
             module stdio.so\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module srtp.so\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             {extra}\n",
            mic = mic.display()
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(dir.join("accounts"), format!("{account}\n")).expect("accounts");
        std::fs::write(dir.join("contacts"), "").expect("contacts");
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .arg("-v")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baresip");
        let stdin = child.stdin.take().expect("stdin");
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let echo = std::env::var("SVI_TEST_ECHO").is_ok();
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[baresip] {line}");
                    }
                    if let Ok(mut l) = log.0.lock() {
                        l.push(line);
                    }
                    log.1.notify_all();
                }
            }));
        }
        Baresip {
            child,
            stdin,
            log,
            readers,
            dir: dir.to_path_buf(),
        }
    }

    /// Stops baresip; all it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log_text()
    }

    pub fn log_text(&self) -> String {
        self.log.0.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits until a log line contains `needle`; the line.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.0.lock().ok()?;
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.log.1.wait_timeout(lines, left).ok()?.0;
        }
    }

    /// Types `keys` on baresip's console (the stdio module): `/dial URI`, `/accept`, digits
    /// during a call (sent as DTMF), `/hangup`.
    pub fn keys(&mut self, keys: &str) {
        let _ = self.stdin.write_all(keys.as_bytes());
        let _ = self.stdin.flush();
    }
}

/// A 440 Hz tone, 8 kHz mono 16-bit.
fn write_tone(path: &Path, length: Duration) {
    write_mic(
        path,
        (0..(length.as_millis() as u64 * 8)).map(|n| {
            ((n as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 4000.0) as i16
        }),
    );
}

/// A microphone file for baresip: `samples` as 8 kHz mono 16-bit WAV.
pub fn write_mic(path: &Path, samples: impl Iterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("microphone file");
    for sample in samples {
        w.write_sample(sample).expect("sample");
    }
    w.finalize().expect("microphone file");
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
