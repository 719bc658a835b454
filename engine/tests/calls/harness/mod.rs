//! The in-process engine harness: the real engine wiring (dispatcher, call cores and their
//! drivers, the ACD, flows, agents' registrar) on a channel-backed SIP transport, with
//! scripted test UAs on the same in-process network, a media stand-in where the media
//! workers are, and call records kept in memory. Time is tokio's virtual time, paused once
//! the engine is up: a call that lasts minutes runs in milliseconds, and its deadlines
//! (menu timeouts, ring timeouts, RTP timeouts, queue waits) fire in order.
//!
//! - `net`: the network between the engine and the UAs;
//! - `ua`: the scripted user agent (dial, answer, hang up, INFO digits, register);
//! - `media`: the media stand-in (what each party heard, links between streams, digits);
//! - `records`: the record writer a test waits on;
//! - `log`: the engine's log lines.

pub mod log;
pub mod media;
pub mod net;
pub mod records;
pub mod ua;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use engine::acd::{
    queue_stats, AcdEvent, AcdSnapshot, AgentSnapshot, AgentState, QueueId, QueueStats, Timestamp,
};
use engine::config::EngineConfig;
use engine::media::PromptStore;
use engine::replication::Replication;
use engine::storage::{CallRecord, Storage};
use engine::{Engine, EngineHandle, EngineIo, SipIo};
use sip::endpoint::EndpointConfig;
use tokio::sync::watch;

pub use log::Log;
pub use media::StandIn;
pub use net::Net;
pub use ua::{sdp, Call, Ringing, Ua};

/// The engine's SIP address on the test network.
pub const ENGINE: &str = "127.0.0.1:5060";

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// The repository's sample prompts and flows.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// The sample prompts, read and encoded once for every scenario (it takes seconds in a
/// debug build).
pub fn sample_prompts() -> PromptStore {
    static PROMPTS: OnceLock<PromptStore> = OnceLock::new();
    PROMPTS
        .get_or_init(|| {
            let (store, problems) =
                PromptStore::load_dir(&samples().join("prompts")).expect("samples/prompts");
            assert!(problems.is_empty(), "{problems:?}");
            store
        })
        .clone()
}

/// The length of a sample prompt (English).
pub fn prompt_len(name: &str) -> Duration {
    let path = samples().join("prompts/en").join(format!("{name}.wav"));
    engine::media::Prompt::load_wav(&path, name)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .duration()
}

/// The support queue and its agents, as in the sample configuration (agents' phones
/// register with the engine).
pub const SUPPORT: &str = r#"
[[queues]]
id = "support"
name = "Support"
strategy = "best_skill"
skills = { support = 1 }
ring_timeout = 15000
wrap_up = 5000
max_wait = 120000
on_no_agents = { flow = {} }
announce = { every = 30000, on_arrival = true }

[[agents]]
id = "1001"
name = "Agent 1001"
password = "demo-1001"
skills = { support = 5 }

[[agents]]
id = "1002"
name = "Agent 1002"
password = "demo-1002"
skills = { support = 3 }
"#;

/// The support queue with `extra` settings (defaults otherwise) and `agents` (id,
/// password) without skills, as the end-to-end tests of the ACD's faults configure it.
pub fn queue(extra: &str, agents: &[(&str, &str)]) -> String {
    let mut text = format!("[[queues]]\nid = \"support\"\n{extra}\n");
    for (id, password) in agents {
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\nname = \"Agent {id}\"\npassword = \"{password}\"\n"
        ));
    }
    text
}

/// The demo flow of the samples.
pub fn demo_flow() -> String {
    std::fs::read_to_string(samples().join("flows/demo.yaml")).expect("samples/flows/demo.yaml")
}

pub struct Harness {
    pub engine: Option<Engine>,
    pub handle: EngineHandle,
    pub net: Net,
    pub media: StandIn,
    pub log: Log,
    _log: tracing::subscriber::DefaultGuard,
    written: watch::Receiver<records::Written>,
    active: watch::Sender<bool>,
    /// The engine's database (replicated documents the engine reads, as a state machine
    /// would have applied them).
    pub storage: Storage,
    next_ua: u16,
    /// The configuration, data and flows (removed with the harness).
    _dir: tempfile::TempDir,
}

impl Harness {
    /// An engine with `flows` (file name, YAML) in its flows directory, the first one
    /// answering every number, and `extra` configuration (queues, agents...). Time is
    /// paused once it is ready.
    pub async fn start(flows: &[(&str, &str)], extra: &str) -> Harness {
        Harness::start_with(flows, "", extra).await
    }

    /// As `start`, with `sip` settings added to the `[sip]` section. Callbacks and transfers
    /// dial only what the dial plan allows: the scenarios' numbers (`2...`, `06...`) unless
    /// `sip` gives its own `dial_prefixes`.
    pub async fn start_with(flows: &[(&str, &str)], sip: &str, extra: &str) -> Harness {
        let dial = if sip.contains("dial_prefixes") {
            ""
        } else {
            "dial_prefixes = [\"2\", \"06\"]\n"
        };
        let (log, log_guard) = Log::capture();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let flows_dir = dir.path().join("flows");
        std::fs::create_dir_all(&flows_dir).expect("flows dir");
        for (file, yaml) in flows {
            std::fs::write(flows_dir.join(format!("{file}.yaml")), yaml).expect("flow file");
        }
        let first = flows.first().map(|(f, _)| *f).unwrap_or("demo");
        let text = format!(
            "[node]\nname = \"harness\"\ndata_dir = \"{data}\"\n\
             [sip]\nlisten = \"{ENGINE}\"\ntransports = [\"udp\"]\n\
             allowed_networks = [\"127.0.0.0/8\"]\n{dial}{sip}\n\
             [rtp]\nports = \"40000-40999\"\ntimeout_secs = 30\n\
             [prompts]\ndir = \"{prompts}\"\ndefault_language = \"en\"\n\
             [flows]\ndir = \"{flows}\"\ndefault = \"{first}\"\n\
             [[routes]]\nnumber = \"*\"\nflow = \"{first}\"\n\
             [recording]\ndefault = \"none\"\n{extra}",
            data = dir.path().join("data").display(),
            prompts = samples().join("prompts").display(),
            flows = flows_dir.display(),
        );
        let file = dir.path().join("svi.toml");
        let config =
            EngineConfig::parse(&text, &file, dir.path()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let storage = Storage::open(&config.data_dir).await.expect("storage");
        let (writer, written) = records::MemoryWriter::new();
        let (active_tx, active) = watch::channel(true);
        // `[ha] call_survival = true` in `extra` turns it on (the binary reads it with the
        // rest of `[ha]`).
        let call_survival = config
            .ha
            .as_ref()
            .and_then(|t| t.get("call_survival"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let replication = Replication {
            writer: Arc::new(writer),
            active,
            lease: None,
            ha: None,
            call_survival,
        };
        let net = Net::default();
        let engine_addr: SocketAddr = ENGINE.parse().expect("addr");
        let endpoint = EndpointConfig {
            t1: config.sip.t1,
            user_agent: config.sip.user_agent.clone(),
            force_rport: config.sip.force_rport,
            ..EndpointConfig::default()
        };
        let (handle, events, task) = net.endpoint(engine_addr, endpoint);
        let media = StandIn::default();
        let io = EngineIo {
            sip: Some(SipIo {
                handle,
                events,
                task,
            }),
            media: Some(Arc::new(media.clone())),
            // The directory is not changed during a scenario: no periodic scans.
            flow_scan: Some(Duration::from_secs(24 * 3600)),
            prompts: Some(sample_prompts()),
        };
        let engine = Engine::start_with_io(config, storage.clone(), replication, io)
            .await
            .expect("the engine starts");
        tokio::time::pause();
        Harness {
            handle: engine.handle(),
            engine: Some(engine),
            net,
            media,
            log,
            _log: log_guard,
            written,
            active: active_tx,
            storage,
            next_ua: 0,
            _dir: dir,
        }
    }

    /// A new UA (`user`) on the network, at its own address.
    pub fn ua(&mut self, user: &str) -> Ua {
        self.next_ua += 1;
        self.ua_at(user, 6000 + 2 * self.next_ua)
    }

    /// A new UA (`user`) at 127.0.0.1:`port` (for a flow that names its address).
    pub fn ua_at(&mut self, user: &str, port: u16) -> Ua {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ua::new(&self.net, user, addr, ENGINE.parse().expect("addr"))
    }

    /// Agent `id`'s phone, registered with the engine (digest, `password`): the agent is
    /// ready once it returns.
    pub async fn agent(&mut self, id: &str, password: &str) -> Ua {
        let mut phone = self.ua(id);
        phone.register(password).await;
        self.wait_agent(id, secs(5), |a| a.state == AgentState::Ready)
            .await;
        phone
    }

    /// A caller that dials the demo flow and keys 2 in the main menu (the support queue),
    /// once the ACD holds `n` calls.
    pub async fn queued_caller(&mut self, user: &str, n: usize) -> (Ua, Call) {
        let mut caller = self.ua(user);
        let call = caller.dial("3000", secs(5)).await;
        tokio::time::sleep(prompt_len("welcome") + secs(1)).await;
        self.media.key(caller.rtp, "2");
        self.wait_acd("the call queued", secs(5), |s| s.calls.len() >= n)
            .await;
        (caller, call)
    }

    /// Waits until no call is left and every media stream is closed (a call ends once
    /// its record is stored and our BYE answered; its streams close as its task ends).
    pub async fn idle(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let mut active = self.handle.watch_active_calls().expect("an engine");
        let drained = tokio::time::timeout_at(deadline, active.wait_for(|n| *n == 0))
            .await
            .is_ok();
        assert!(drained, "calls left after {within:?}: {}", *active.borrow());
        while self.media.open_streams() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} streams open after {within:?}",
                self.media.open_streams()
            );
            tokio::time::sleep(ms(1)).await;
        }
    }

    /// The ACD's snapshot once `done` holds (within `within` of virtual time).
    pub async fn wait_acd(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&AcdSnapshot) -> bool,
    ) -> AcdSnapshot {
        let mut rx = self.handle.watch_acd().expect("an engine, not a witness");
        let found = {
            let wait = rx.wait_for(|s| done(s));
            match tokio::time::timeout(within, wait).await {
                Ok(Ok(s)) => Some(AcdSnapshot::clone(&s)),
                _ => None,
            }
        };
        found
            .unwrap_or_else(|| panic!("{what}: not within {within:?}: {:#?}", rx.borrow().as_ref()))
    }

    /// Agent `id` once `done` holds.
    pub async fn wait_agent(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&AgentSnapshot) -> bool,
    ) -> AgentSnapshot {
        let what = format!("agent {id}");
        let s = self
            .wait_acd(&what, within, |s| {
                s.agents.iter().any(|a| a.id.as_str() == id && done(a))
            })
            .await;
        s.agents
            .into_iter()
            .find(|a| a.id.as_str() == id)
            .expect("found above")
    }

    /// The first `n` call records, once written (within `within` of virtual time).
    pub async fn records(&mut self, n: usize, within: Duration) -> Vec<CallRecord> {
        records::calls(&mut self.written, n, within).await
    }

    /// This node stops (`false`) or starts again being the active one.
    pub fn set_active(&self, active: bool) {
        self.active.send_replace(active);
    }

    /// What the engine wrote so far.
    pub fn written(&self) -> records::Written {
        self.written.borrow().clone()
    }

    /// The ACD events persisted so far.
    pub fn acd_events(&self) -> Vec<AcdEvent> {
        self.written
            .borrow()
            .docs
            .iter()
            .filter(|(c, _, _)| c == "acd_events")
            .flat_map(|(_, _, v)| {
                serde_json::from_value::<Vec<AcdEvent>>(v.clone()).expect("ACD events")
            })
            .collect()
    }

    /// The statistics of `queue` over every persisted ACD event (as `svi stats` computes
    /// them from the stored events), once `done` holds: events are written in batches.
    pub async fn stats(
        &mut self,
        queue: &str,
        within: Duration,
        done: impl Fn(&QueueStats) -> bool,
    ) -> QueueStats {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let events = self.acd_events();
            let from = events.iter().map(|e| e.at).min();
            let to = events.iter().map(|e| e.at).max();
            if let (Some(from), Some(to)) = (from, to) {
                let to = Timestamp::from_unix_ms(to.as_unix_ms() + 1);
                let stats = queue_stats(&events, &QueueId::from(queue), from, to, secs(20));
                if done(&stats) {
                    return stats;
                }
            }
            let changed = tokio::time::timeout_at(deadline, self.written.changed()).await;
            if changed.is_err() {
                panic!("{queue}: statistics never matched: {events:#?}");
            }
        }
    }
}
