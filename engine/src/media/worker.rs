//! Media workers: the thin tokio driver of many `MediaStream`s.
//!
//! A timer task per stream does not scale (measured: p99 tick lateness collapses near 1,000
//! streams), so a few workers (one per CPU by default) each pace many streams on a single
//! 20 ms `interval`. On every tick a worker, for each of its streams: applies the call
//! actor's commands, drains both sockets with non-blocking `try_recv_from`, calls
//! `tick(now)`, sends the output with `try_send_to` (a full socket buffer drops and counts the
//! packet rather than stalling every other call), forwards events, and now and then publishes
//! a stats snapshot. No per-stream task, no per-stream timer, no await per packet.
//!
//! Every stream of a worker sees the same `now`: the tick's scheduled deadline, not the time
//! the worker woke up. Streams are created at a tick, so their 20 ms schedules line up with
//! the worker's and each tick is exactly one frame, whatever the wake-up latency.
//!
//! A call actor holds a [`MediaHandle`]; dropping it closes the command channel, and the
//! worker then removes the stream and drops its sockets, which frees the port pair.
//!
//! Datagrams a stream refuses for their source (see [`super::stream::latch`]) add up in one
//! engine-wide counter ([`MediaWorkers::unexpected_source_packets`], for metrics) and in a
//! warning line that each worker writes at most once per [`UNEXPECTED_LOG_EVERY`] with the
//! count and the last source, so a flood costs a counter increment per packet, not a log
//! line.
//!
//! Audio links between legs (bridge, recording, supervision) are channels of decoded 20 ms
//! frames, each named by a [`Link`]: a stream copies every inbound frame to each of its taps
//! and sends the mix of its feeds ([`super::stream::mix`]). Taps are bounded channels read
//! with `try_send`: a full one loses the frame (counted in [`MediaStats::tap_dropped`]),
//! never the worker's time.

mod handle;

pub use self::handle::MediaHandle;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::codec::FRAME_DURATION;
use super::ports::RtpAllocation;
use super::stream::{Link, MediaCommand, MediaEvent, MediaParams, MediaStats, MediaStream};
use super::MediaError;
use crate::acl::Acl;

/// Events buffered per call before the worker starts dropping them (and warning).
pub const EVENT_CHANNEL_CAPACITY: usize = 64;
/// Datagrams read per socket per tick at most, so a flood on one call cannot starve others.
const MAX_DATAGRAMS_PER_TICK: usize = 64;
/// Ticks between stats snapshots (500 ms).
const STATS_EVERY_TICKS: u32 = 25;
/// Receive buffer: a G.711 packet is 172 bytes; anything up to a jumbo frame fits.
const RECEIVE_BUFFER: usize = 9000;
/// Shortest interval between two warnings of a worker about refused media sources.
pub const UNEXPECTED_LOG_EVERY: Duration = Duration::from_secs(1);

/// The pool of media workers.
pub struct MediaWorkers {
    workers: Vec<Worker>,
    /// Play ids are unique in the process, so logs can follow one across calls.
    next_play_id: Arc<AtomicU64>,
    next_worker: AtomicUsize,
    /// Datagrams refused for their source, over all streams since the start.
    unexpected_source: Arc<AtomicU64>,
    /// Every stream's stats snapshots, for RTP totals.
    tally: super::tally::MediaTally,
    /// Join handles, taken once by `shutdown`. A `Mutex` so that `shutdown` works through
    /// a shared reference; it is never held across an await.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Worker {
    inbox: mpsc::UnboundedSender<WorkerMessage>,
    streams: Arc<AtomicUsize>,
}

/// What a worker task shares with the pool.
struct WorkerShared {
    streams: Arc<AtomicUsize>,
    allowed: Arc<Acl>,
    unexpected_source: Arc<AtomicU64>,
}

/// A worker's rate-limited warning about datagrams refused for their source.
#[derive(Default)]
struct UnexpectedLog {
    pending: u64,
    last_from: Option<SocketAddr>,
    logged_at: Option<Instant>,
}

impl UnexpectedLog {
    fn add(&mut self, count: u64, from: SocketAddr) {
        self.pending += count;
        self.last_from = Some(from);
    }

    /// Writes the warning if some are pending and the last one is old enough.
    fn flush(&mut self, now: Instant) {
        let due = self
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= UNEXPECTED_LOG_EVERY);
        if let (true, Some(from)) = (due && self.pending > 0, self.last_from) {
            tracing::warn!(
                packets = self.pending,
                last_source = %from,
                "RTP from an unexpected source refused (outside the SDP host or sip.allowed_networks)"
            );
            self.pending = 0;
            self.logged_at = Some(now);
        }
    }
}

enum WorkerMessage {
    Open(Box<NewStream>),
    Shutdown,
}

/// Where a stream's decoded inbound audio goes while someone records it.
pub type AudioTap = mpsc::Sender<Vec<i16>>;

/// Relayed audio a stream sends (the other leg's tap).
pub type AudioFeed = mpsc::Receiver<Vec<i16>>;

/// Changes to a stream's taps and feeds, applied by the worker at the next tick.
#[derive(Debug)]
enum LinkChange {
    AddTap(Link, AudioTap),
    RemoveTap(Link),
    AddFeed(Link, AudioFeed),
    RemoveFeed(Link),
}

struct NewStream {
    links: mpsc::UnboundedReceiver<LinkChange>,
    params: MediaParams,
    allocation: RtpAllocation,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
    stats: watch::Sender<MediaStats>,
}

impl MediaWorkers {
    /// Starts `workers` workers (at least one) whose streams exchange media only with hosts
    /// `allowed` (`sip.allowed_networks`). Must be called inside a Tokio runtime.
    pub fn new(workers: usize, allowed: Acl) -> Self {
        let allowed = Arc::new(allowed);
        let unexpected_source = Arc::new(AtomicU64::new(0));
        let mut pool = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..workers.max(1) {
            let (inbox, receiver) = mpsc::unbounded_channel();
            let streams = Arc::new(AtomicUsize::new(0));
            let shared = WorkerShared {
                streams: Arc::clone(&streams),
                allowed: Arc::clone(&allowed),
                unexpected_source: Arc::clone(&unexpected_source),
            };
            tasks.push(tokio::spawn(run_worker(index, receiver, shared)));
            pool.push(Worker { inbox, streams });
        }
        MediaWorkers {
            workers: pool,
            next_play_id: Arc::new(AtomicU64::new(1)),
            next_worker: AtomicUsize::new(0),
            unexpected_source,
            tally: super::tally::MediaTally::default(),
            tasks: Mutex::new(tasks),
        }
    }

    /// One worker per available CPU.
    pub fn with_default_size(allowed: Acl) -> Self {
        Self::new(
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            allowed,
        )
    }

    /// RTP and RTCP datagrams refused for their source since the start (see
    /// [`super::stream::latch`]): RTP from an unexpected source, for metrics.
    pub fn unexpected_source_packets(&self) -> u64 {
        self.unexpected_source.load(Ordering::Relaxed)
    }

    /// RTP totals over every stream since the start (see [`super::tally`]), for metrics.
    pub fn rtp_totals(&self) -> super::tally::RtpTotals {
        self.tally.totals()
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Streams per worker, for metrics.
    pub fn load(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.streams.load(Ordering::Relaxed))
            .collect()
    }

    /// Starts the media of a call leg on the least loaded worker. The stream starts sending
    /// (silence, or what is played) at the worker's next tick.
    pub fn open(
        &self,
        params: MediaParams,
        allocation: RtpAllocation,
    ) -> Result<(MediaHandle, mpsc::Receiver<MediaEvent>), MediaError> {
        let local_addr = allocation
            .local_addr()
            .map_err(|source| MediaError::Socket { source })?;
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let initial = MediaStats {
            remote: params.remote,
            ..MediaStats::default()
        };
        let (stats_tx, stats_rx) = watch::channel(initial);
        let worker = self.pick_worker();
        worker.streams.fetch_add(1, Ordering::Relaxed);
        let message = WorkerMessage::Open(Box::new(NewStream {
            links: link_rx,
            params,
            allocation,
            commands: command_rx,
            events: event_tx,
            stats: stats_tx,
        }));
        if worker.inbox.send(message).is_err() {
            worker.streams.fetch_sub(1, Ordering::Relaxed);
            return Err(MediaError::WorkerGone);
        }
        self.tally.add(stats_rx.clone());
        let handle = MediaHandle {
            links: link_tx,
            commands: command_tx,
            local_addr,
            stats: stats_rx,
            next_play_id: Arc::clone(&self.next_play_id),
        };
        Ok((handle, event_rx))
    }

    /// Stops every worker, dropping all streams (their event channels close), and waits
    /// for the tasks to end.
    pub async fn shutdown(&self) {
        for worker in &self.workers {
            // A worker that already ended has nothing to stop.
            let _ = worker.inbox.send(WorkerMessage::Shutdown);
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "media worker ended abnormally");
            }
        }
    }

    /// Least loaded worker; ties go round-robin so that bursts of calls spread out.
    fn pick_worker(&self) -> &Worker {
        let start = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let count = self.workers.len();
        let index = (0..count)
            .map(|offset| (start + offset) % count)
            .min_by_key(|&i| self.workers[i].streams.load(Ordering::Relaxed))
            .unwrap_or(0);
        &self.workers[index]
    }
}

/// One stream as a worker holds it.
struct Slot {
    stream: MediaStream,
    // Declared before `events` so that the ports are free once the call actor sees its
    // event channel close.
    allocation: RtpAllocation,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
    stats: watch::Sender<MediaStats>,
    events_dropped: u64,
    ticks: u32,
    links: mpsc::UnboundedReceiver<LinkChange>,
    /// A handful at most (relay, recorder, supervisor): vectors beat maps.
    taps: Vec<(Link, AudioTap)>,
    tap_dropped: u64,
    feeds: Vec<(Link, AudioFeed)>,
}

impl Slot {
    fn new(now: Instant, new: NewStream, allowed: Arc<Acl>) -> Self {
        let mut stream = MediaStream::new(now, new.params, allowed);
        // No tap yet: decoded audio would only be dropped (see `change_links`).
        stream.set_audio_wanted(false);
        Slot {
            stream,
            allocation: new.allocation,
            commands: new.commands,
            events: new.events,
            stats: new.stats,
            events_dropped: 0,
            ticks: 0,
            links: new.links,
            taps: Vec::new(),
            tap_dropped: 0,
            feeds: Vec::new(),
        }
    }

    /// Applies the call actor's changes to taps and feeds.
    fn change_links(&mut self) {
        let had_taps = !self.taps.is_empty();
        while let Ok(change) = self.links.try_recv() {
            match change {
                LinkChange::AddTap(link, tap) => {
                    self.taps.retain(|(l, _)| *l != link);
                    self.taps.push((link, tap));
                }
                LinkChange::RemoveTap(link) => self.taps.retain(|(l, _)| *l != link),
                LinkChange::AddFeed(link, feed) => {
                    self.feeds.retain(|(l, _)| *l != link);
                    self.feeds.push((link, feed));
                }
                LinkChange::RemoveFeed(link) => {
                    self.feeds.retain(|(l, _)| *l != link);
                    self.stream.remove_feed(link);
                }
            }
        }
        if !had_taps && !self.taps.is_empty() {
            // Tapping starts now: older buffered audio is not part of it.
            while self.stream.poll_inbound_audio().is_some() {}
        }
        self.stream.set_audio_wanted(!self.taps.is_empty());
    }

    /// Moves the other legs' frames into the stream's mix before it sends.
    fn take_feeds(&mut self) {
        let stream = &mut self.stream;
        self.feeds.retain_mut(|(link, feed)| loop {
            match feed.try_recv() {
                Ok(pcm) => stream.push_feed(*link, &pcm),
                Err(TryRecvError::Empty) => return true,
                // The producer is gone: what it sent still plays out.
                Err(TryRecvError::Disconnected) => return false,
            }
        });
    }

    /// Hands a copy of the decoded inbound audio to every tap; without taps, the stream's
    /// bounded buffer keeps only the last half second.
    fn drain_inbound(&mut self) {
        if self.taps.is_empty() {
            return;
        }
        while let Some(frame) = self.stream.poll_inbound_audio() {
            let mut pcm = Some(frame.pcm);
            let last = self.taps.len() - 1;
            let dropped = &mut self.tap_dropped;
            let mut index = 0;
            self.taps.retain(|(link, tap)| {
                let copy = if index == last {
                    pcm.take().unwrap_or_default()
                } else {
                    pcm.clone().unwrap_or_default()
                };
                index += 1;
                match tap.try_send(copy) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        *dropped += 1;
                        tracing::debug!(?link, dropped = *dropped, "audio tap full: frame dropped");
                        true
                    }
                    Err(TrySendError::Closed(_)) => false,
                }
            });
            if self.taps.is_empty() {
                break;
            }
        }
    }

    /// One tick of service; `false` once the handle is gone and the slot must be removed.
    fn service(&mut self, now: Instant, buffer: &mut [u8]) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.stream.handle_command(now, command),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        for socket in [self.allocation.rtp(), self.allocation.rtcp()] {
            for _ in 0..MAX_DATAGRAMS_PER_TICK {
                match socket.try_recv_from(buffer) {
                    Ok((len, from)) => self.stream.handle_datagram(now, from, &buffer[..len]),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        // E.g. ICMP port unreachable reported on the socket: nothing to read.
                        tracing::trace!(%error, "rtp receive error");
                        break;
                    }
                }
            }
        }
        self.change_links();
        self.take_feeds();
        self.stream.tick(now);
        self.drain_inbound();
        while let Some(transmit) = self.stream.poll_transmit() {
            if let Err(error) = self
                .allocation
                .rtp()
                .try_send_to(&transmit.payload, transmit.to)
            {
                self.stream.record_send_dropped();
                tracing::trace!(%error, to = %transmit.to, "rtp send dropped");
            }
        }
        while let Some(event) = self.stream.poll_event() {
            match self.events.try_send(event) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) => {
                    self.events_dropped += 1;
                    tracing::warn!(
                        dropped = self.events_dropped,
                        "call actor not reading media events"
                    );
                }
            }
        }
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % STATS_EVERY_TICKS == 0 {
            self.stats.send_replace(MediaStats {
                tap_dropped: self.tap_dropped,
                ..self.stream.stats()
            });
        }
        true
    }
}

async fn run_worker(
    index: usize,
    mut inbox: mpsc::UnboundedReceiver<WorkerMessage>,
    shared: WorkerShared,
) {
    let streams = shared.streams;
    let mut unexpected = UnexpectedLog::default();
    let mut interval = tokio::time::interval(FRAME_DURATION);
    // Skip, not Burst: after a stall, Burst would run several full passes over every
    // stream back to back, adding load exactly when the worker is behind. Each stream
    // catches up on its own schedule in a single pass (see `MediaStream::tick`).
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut slots: Vec<Slot> = Vec::new();
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    tracing::debug!(worker = index, "media worker started");
    loop {
        let now = interval.tick().await.into_std();
        loop {
            match inbox.try_recv() {
                Ok(WorkerMessage::Open(new)) => {
                    slots.push(Slot::new(now, *new, Arc::clone(&shared.allowed)))
                }
                Ok(WorkerMessage::Shutdown) => {
                    streams.fetch_sub(slots.len(), Ordering::Relaxed);
                    tracing::debug!(
                        worker = index,
                        streams = slots.len(),
                        "media worker stopped"
                    );
                    return;
                }
                Err(TryRecvError::Empty) => break,
                // The pool is gone: serve the remaining streams until their handles drop.
                Err(TryRecvError::Disconnected) if slots.is_empty() => return,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        slots.retain_mut(|slot| {
            let keep = slot.service(now, &mut buffer);
            if let Some((count, from)) = slot.stream.take_unexpected() {
                shared.unexpected_source.fetch_add(count, Ordering::Relaxed);
                unexpected.add(count, from);
            }
            if !keep {
                streams.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
        unexpected.flush(now);
    }
}

#[cfg(test)]
mod tests;
