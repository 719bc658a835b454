//! The media stand-in: the engine's `MediaPort` without sockets or audio processing. A
//! stream plays its prompts for their length (virtual time) and reports each end, passes
//! on the digits a test keys for its remote party, raises the RTP timeout for a remote
//! party that went silent, and feeds its taps a 20 ms frame every 20 ms while its remote
//! party talks. What each stream was told is kept for the test: what a party was played,
//! which streams are linked, the digits sent.
//!
//! Each stream's remote party speaks with its own "voice": a frame whose samples all hold
//! a value unique to the stream. A stream reads its feeds every 20 ms, as a worker would,
//! and keeps the voices it received: so a test tells who hears whom through the links the
//! engine made (bridge, recorder, supervision), as the tone-detecting test phones do on
//! the wire.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use engine::call::{MediaPort, StreamPort};
use engine::media::{
    AudioFeed, AudioTap, DtmfDigit, DtmfSource, Link, MediaError, MediaEvent, MediaParams,
    MediaStats, Prompt,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One play request as the stream got it.
#[derive(Debug, Clone)]
pub struct Played {
    pub id: u64,
    pub prompts: Vec<String>,
    /// Cleared before its end.
    pub stopped: bool,
}

struct Stream {
    local: SocketAddr,
    params: MediaParams,
    events: mpsc::Sender<MediaEvent>,
    played: Vec<Played>,
    /// When what is queued ends; plays queue back to back.
    busy_until: Instant,
    /// Bumped by `StopPlayback`: pending ends of older plays are void.
    generation: u64,
    /// Bumped when the RTP timeout is re-armed.
    rtp_generation: u64,
    sent_dtmf: Vec<char>,
    taps: BTreeMap<Link, AudioTap>,
    feeds: BTreeMap<Link, AudioFeed>,
    /// The voices received through the feeds since the last `clear_heard`.
    voices: BTreeSet<i16>,
    open: bool,
}

/// The voice of the remote party of stream `key`.
fn voice(key: u16) -> i16 {
    1000 + key as i16
}

#[derive(Default)]
struct Streams {
    next: u16,
    streams: BTreeMap<u16, Stream>,
    /// Remote parties that send no RTP.
    silent: HashSet<SocketAddr>,
}

/// The stand-in, shared by the engine (as its `MediaPort`) and the test. A mutex because
/// the engine's call tasks, the stand-in's timer tasks and the test all reach the same
/// streams; it is never held across an await.
#[derive(Clone, Default)]
pub struct StandIn {
    shared: Arc<Mutex<Streams>>,
}

struct Port {
    key: u16,
    shared: Arc<Mutex<Streams>>,
}

fn lock(m: &Mutex<Streams>) -> MutexGuard<'_, Streams> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MediaPort for StandIn {
    fn open(
        &self,
        params: MediaParams,
    ) -> Pin<Box<dyn Future<Output = Result<engine::call::media::Opened, MediaError>> + Send + '_>>
    {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(64);
            let mut s = lock(&self.shared);
            s.next += 1;
            let key = s.next;
            let local = SocketAddr::from(([127, 0, 0, 1], 40_000 + 2 * key));
            s.streams.insert(
                key,
                Stream {
                    local,
                    params,
                    events: tx,
                    played: Vec::new(),
                    busy_until: Instant::now(),
                    generation: 0,
                    rtp_generation: 0,
                    sent_dtmf: Vec::new(),
                    taps: BTreeMap::new(),
                    feeds: BTreeMap::new(),
                    voices: BTreeSet::new(),
                    open: true,
                },
            );
            let port = Port {
                key,
                shared: self.shared.clone(),
            };
            spawn_feeder(self.shared.clone(), key);
            Ok((Box::new(port) as Box<dyn StreamPort>, rx))
        })
    }
}

/// Feeds the stream's taps every 20 ms while it is open and its remote party talks.
fn spawn_feeder(shared: Arc<Mutex<Streams>>, key: u16) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            let mut s = lock(&shared);
            let silent = s.silent.clone();
            let Some(stream) = s.streams.get_mut(&key).filter(|st| st.open) else {
                return;
            };
            if !stream.params.remote.is_some_and(|r| silent.contains(&r)) {
                for tap in stream.taps.values() {
                    let _ = tap.try_send(vec![voice(key); 160]);
                }
            }
            // The feeds are read as a worker would; what they carry is what the party hears.
            let Stream { feeds, voices, .. } = stream;
            for feed in feeds.values_mut() {
                while let Ok(frame) = feed.try_recv() {
                    voices.extend(frame.first().copied());
                }
            }
        }
    });
}

impl Port {
    fn with<T>(&self, f: impl FnOnce(&mut Stream) -> T) -> Result<T, MediaError> {
        let mut s = lock(&self.shared);
        match s.streams.get_mut(&self.key).filter(|st| st.open) {
            Some(stream) => Ok(f(stream)),
            None => Err(MediaError::WorkerGone),
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.shared).streams.get_mut(&self.key) {
            s.open = false;
            s.taps.clear();
            s.feeds.clear();
        }
    }
}

impl StreamPort for Port {
    fn local_addr(&self) -> SocketAddr {
        lock(&self.shared)
            .streams
            .get(&self.key)
            .map(|s| s.local)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    fn set_params(&self, params: MediaParams) -> Result<(), MediaError> {
        let rearm = self.with(|s| {
            s.params = params;
            s.rtp_generation += 1;
            s.rtp_generation
        })?;
        arm_rtp_timeout(self.shared.clone(), self.key, rearm);
        Ok(())
    }

    fn play(&self, id: u64, prompts: Vec<Prompt>) -> Result<(), MediaError> {
        let length: Duration = prompts.iter().map(Prompt::duration).sum();
        let names = prompts.iter().map(|p| p.name().to_string()).collect();
        let (ends, generation) = self.with(|s| {
            let ends = s.busy_until.max(Instant::now()) + length;
            s.busy_until = ends;
            s.played.push(Played {
                id,
                prompts: names,
                stopped: false,
            });
            (ends, s.generation)
        })?;
        let shared = self.shared.clone();
        let key = self.key;
        tokio::spawn(async move {
            tokio::time::sleep_until(ends).await;
            let s = lock(&shared);
            if let Some(stream) = s.streams.get(&key).filter(|st| st.open) {
                if stream.generation == generation {
                    let _ = stream.events.try_send(MediaEvent::PlaybackFinished { id });
                }
            }
        });
        Ok(())
    }

    fn stop_playback(&self) -> Result<(), MediaError> {
        self.with(|s| {
            let now = Instant::now();
            if s.busy_until > now {
                s.generation += 1;
                s.busy_until = now;
                if let Some(last) = s.played.last_mut() {
                    last.stopped = true;
                    let _ = s
                        .events
                        .try_send(MediaEvent::PlaybackStopped { id: last.id });
                }
            }
        })
    }

    fn send_dtmf(&self, digit: DtmfDigit) -> Result<(), MediaError> {
        self.with(|s| s.sent_dtmf.push(digit.to_char()))
    }

    fn add_tap(&self, link: Link, tap: AudioTap) -> Result<(), MediaError> {
        self.with(|s| {
            s.taps.insert(link, tap);
        })
    }

    fn remove_tap(&self, link: Link) -> Result<(), MediaError> {
        self.with(|s| {
            s.taps.remove(&link);
        })
    }

    fn add_feed(&self, link: Link, feed: AudioFeed) -> Result<(), MediaError> {
        self.with(|s| {
            s.feeds.insert(link, feed);
        })
    }

    fn remove_feed(&self, link: Link) -> Result<(), MediaError> {
        self.with(|s| {
            s.feeds.remove(&link);
        })
    }

    fn stats(&self) -> MediaStats {
        MediaStats::default()
    }
}

/// Raises `RtpTimeout` after the stream's timeout if its remote party is silent then.
fn arm_rtp_timeout(shared: Arc<Mutex<Streams>>, key: u16, generation: u64) {
    let timeout = lock(&shared)
        .streams
        .get(&key)
        .map(|s| s.params.rtp_timeout);
    let Some(timeout) = timeout else { return };
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let s = lock(&shared);
        if let Some(stream) = s.streams.get(&key).filter(|st| st.open) {
            let silent = stream.params.remote.is_some_and(|r| s.silent.contains(&r));
            if stream.rtp_generation == generation && silent {
                let _ = stream.events.try_send(MediaEvent::RtpTimeout);
            }
        }
    });
}

impl StandIn {
    fn streams_of(&self, remote: SocketAddr) -> Vec<u16> {
        lock(&self.shared)
            .streams
            .iter()
            .filter(|(_, s)| s.params.remote == Some(remote))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The party at `remote` keys `digits` (RFC 4733): its streams report them.
    pub fn key(&self, remote: SocketAddr, digits: &str) {
        let s = lock(&self.shared);
        for stream in s
            .streams
            .values()
            .filter(|st| st.open && st.params.remote == Some(remote))
        {
            for c in digits.chars() {
                let digit = DtmfDigit::from_char(c).expect("a DTMF digit");
                let source = DtmfSource::Rfc4733;
                let digit = digit.into();
                let _ = stream.events.try_send(MediaEvent::Dtmf { digit, source });
            }
        }
    }

    /// The party at `remote` stops sending RTP (a phone that vanished).
    pub fn silence(&self, remote: SocketAddr) {
        lock(&self.shared).silent.insert(remote);
        for key in self.streams_of(remote) {
            let generation = {
                let mut s = lock(&self.shared);
                let Some(stream) = s.streams.get_mut(&key) else {
                    continue;
                };
                stream.rtp_generation += 1;
                stream.rtp_generation
            };
            arm_rtp_timeout(self.shared.clone(), key, generation);
        }
    }

    /// Every prompt the party at `remote` was played, in order (stopped ones included).
    pub fn heard(&self, remote: SocketAddr) -> Vec<String> {
        let s = lock(&self.shared);
        s.streams
            .values()
            .filter(|st| st.params.remote == Some(remote))
            .flat_map(|st| st.played.iter().flat_map(|p| p.prompts.clone()))
            .collect()
    }

    /// The digits the engine sent to the party at `remote`.
    pub fn sent_dtmf(&self, remote: SocketAddr) -> String {
        let s = lock(&self.shared);
        s.streams
            .values()
            .filter(|st| st.params.remote == Some(remote))
            .flat_map(|st| st.sent_dtmf.clone())
            .collect()
    }

    /// Forgets the voices every party heard so far (a fresh listening window).
    pub fn clear_heard(&self) {
        for s in lock(&self.shared).streams.values_mut() {
            s.voices.clear();
        }
    }

    /// Whether the party at `listener` heard the party at `talker` since `clear_heard`.
    pub fn hears(&self, listener: SocketAddr, talker: SocketAddr) -> bool {
        let s = lock(&self.shared);
        let talkers: Vec<i16> = s
            .streams
            .iter()
            .filter(|(_, st)| st.params.remote == Some(talker))
            .map(|(k, _)| voice(*k))
            .collect();
        s.streams
            .values()
            .filter(|st| st.params.remote == Some(listener))
            .any(|st| talkers.iter().any(|v| st.voices.contains(v)))
    }

    /// Who hears whom after `window` (virtual time) of a fresh listening window: for each
    /// listener in `parties`, the parties it heard.
    pub async fn hearing(&self, parties: &[SocketAddr], window: Duration) -> Vec<Vec<SocketAddr>> {
        self.clear_heard();
        tokio::time::sleep(window).await;
        parties
            .iter()
            .map(|l| {
                parties
                    .iter()
                    .filter(|t| t != &l && self.hears(*l, **t))
                    .copied()
                    .collect()
            })
            .collect()
    }

    /// Streams still open (the engine closes each one when its call or leg ends).
    pub fn open_streams(&self) -> usize {
        lock(&self.shared)
            .streams
            .values()
            .filter(|s| s.open)
            .count()
    }
}
