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
use super::dtmf::DtmfDigit;
use super::ports::RtpAllocation;
use super::prompt::Prompt;
use super::stream::{
    MediaCommand, MediaEvent, MediaParams, MediaStats, MediaStream, DEFAULT_DTMF_DURATION,
};
use super::MediaError;

/// Events buffered per call before the worker starts dropping them (and warning).
pub const EVENT_CHANNEL_CAPACITY: usize = 64;
/// Datagrams read per socket per tick at most, so a flood on one call cannot starve others.
const MAX_DATAGRAMS_PER_TICK: usize = 64;
/// Ticks between stats snapshots (500 ms).
const STATS_EVERY_TICKS: u32 = 25;
/// Receive buffer: a G.711 packet is 172 bytes; anything up to a jumbo frame fits.
const RECEIVE_BUFFER: usize = 9000;

/// The pool of media workers.
pub struct MediaWorkers {
    workers: Vec<Worker>,
    /// Play ids are unique in the process, so logs can follow one across calls.
    next_play_id: Arc<AtomicU64>,
    next_worker: AtomicUsize,
    /// Join handles, taken once by `shutdown`. A `Mutex` so that `shutdown` works through
    /// a shared reference; it is never held across an await.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Worker {
    inbox: mpsc::UnboundedSender<WorkerMessage>,
    streams: Arc<AtomicUsize>,
}

enum WorkerMessage {
    Open(Box<NewStream>),
    Shutdown,
}

/// Where a stream's decoded inbound audio goes while someone records it.
pub type AudioTap = mpsc::Sender<Vec<i16>>;

/// Relayed audio a stream sends (the other leg's tap).
pub type AudioFeed = mpsc::Receiver<Vec<i16>>;

struct NewStream {
    taps: mpsc::UnboundedReceiver<Option<AudioTap>>,
    feeds: mpsc::UnboundedReceiver<Option<AudioFeed>>,
    params: MediaParams,
    allocation: RtpAllocation,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
    stats: watch::Sender<MediaStats>,
}

impl MediaWorkers {
    /// Starts `workers` workers (at least one). Must be called inside a Tokio runtime.
    pub fn new(workers: usize) -> Self {
        let mut pool = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..workers.max(1) {
            let (inbox, receiver) = mpsc::unbounded_channel();
            let streams = Arc::new(AtomicUsize::new(0));
            tasks.push(tokio::spawn(run_worker(
                index,
                receiver,
                Arc::clone(&streams),
            )));
            pool.push(Worker { inbox, streams });
        }
        MediaWorkers {
            workers: pool,
            next_play_id: Arc::new(AtomicU64::new(1)),
            next_worker: AtomicUsize::new(0),
            tasks: Mutex::new(tasks),
        }
    }

    /// One worker per available CPU.
    pub fn with_default_size() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
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
        let (tap_tx, tap_rx) = mpsc::unbounded_channel();
        let (feed_tx, feed_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let initial = MediaStats {
            remote: params.remote,
            ..MediaStats::default()
        };
        let (stats_tx, stats_rx) = watch::channel(initial);
        let worker = self.pick_worker();
        worker.streams.fetch_add(1, Ordering::Relaxed);
        let message = WorkerMessage::Open(Box::new(NewStream {
            taps: tap_rx,
            feeds: feed_rx,
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
        let handle = MediaHandle {
            taps: tap_tx,
            feeds: feed_tx,
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

/// The call actor's side of a media stream. Dropping it ends the stream and frees its ports.
#[derive(Debug)]
pub struct MediaHandle {
    taps: mpsc::UnboundedSender<Option<AudioTap>>,
    feeds: mpsc::UnboundedSender<Option<AudioFeed>>,
    commands: mpsc::UnboundedSender<MediaCommand>,
    local_addr: SocketAddr,
    stats: watch::Receiver<MediaStats>,
    next_play_id: Arc<AtomicU64>,
}

impl MediaHandle {
    /// The local RTP address (as bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// New negotiated parameters (re-INVITE, late SDP answer).
    pub fn set_params(&self, params: MediaParams) -> Result<(), MediaError> {
        self.send(MediaCommand::SetParams(params))
    }

    /// Queues prompts; the returned id comes back in `PlaybackFinished`/`PlaybackStopped`.
    pub fn play(&self, prompts: Vec<Prompt>) -> Result<u64, MediaError> {
        let id = self.next_play_id.fetch_add(1, Ordering::Relaxed);
        self.send(MediaCommand::Play { prompts, id })?;
        Ok(id)
    }

    /// Clears the playback queue (barge-in).
    pub fn stop_playback(&self) -> Result<(), MediaError> {
        self.send(MediaCommand::StopPlayback)
    }

    /// Sends a digit of the default duration (100 ms).
    pub fn send_dtmf(&self, digit: DtmfDigit) -> Result<(), MediaError> {
        self.send_dtmf_for(digit, DEFAULT_DTMF_DURATION)
    }

    /// Sends a digit held for `duration`.
    pub fn send_dtmf_for(&self, digit: DtmfDigit, duration: Duration) -> Result<(), MediaError> {
        self.send(MediaCommand::SendDtmf { digit, duration })
    }

    /// The latest stats snapshot (at most 500 ms old).
    pub fn stats(&self) -> MediaStats {
        self.stats.borrow().clone()
    }

    /// Sends every decoded inbound 20 ms frame to `tap` from now on (`None` stops). Frames
    /// that do not fit in the channel are dropped and counted by the worker: a slow reader
    /// never stalls the media of other calls.
    pub fn tap_inbound(&self, tap: Option<AudioTap>) -> Result<(), MediaError> {
        self.taps.send(tap).map_err(|_| MediaError::WorkerGone)
    }

    /// Sends the frames of `feed` (another leg's tap) when no prompt plays: the relay of a
    /// bridged call. `None` stops.
    pub fn feed_live(&self, feed: Option<AudioFeed>) -> Result<(), MediaError> {
        self.feeds.send(feed).map_err(|_| MediaError::WorkerGone)
    }

    /// A receiver notified at every stats snapshot.
    pub fn watch_stats(&self) -> watch::Receiver<MediaStats> {
        self.stats.clone()
    }

    fn send(&self, command: MediaCommand) -> Result<(), MediaError> {
        self.commands
            .send(command)
            .map_err(|_| MediaError::WorkerGone)
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
    taps: mpsc::UnboundedReceiver<Option<AudioTap>>,
    tap: Option<AudioTap>,
    tap_dropped: u64,
    feeds: mpsc::UnboundedReceiver<Option<AudioFeed>>,
    feed: Option<AudioFeed>,
}

impl Slot {
    fn new(now: Instant, new: NewStream) -> Self {
        Slot {
            stream: MediaStream::new(now, new.params),
            allocation: new.allocation,
            commands: new.commands,
            events: new.events,
            stats: new.stats,
            events_dropped: 0,
            ticks: 0,
            taps: new.taps,
            tap: None,
            tap_dropped: 0,
            feeds: new.feeds,
            feed: None,
        }
    }

    /// Moves relayed frames from the other leg into the stream before it sends.
    fn take_feed(&mut self) {
        while let Ok(feed) = self.feeds.try_recv() {
            self.feed = feed;
        }
        let Some(feed) = self.feed.as_mut() else {
            return;
        };
        loop {
            match feed.try_recv() {
                Ok(pcm) => self.stream.push_live(pcm),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.feed = None;
                    break;
                }
            }
        }
    }

    /// Hands the decoded inbound audio to the tap, if any; otherwise the stream's bounded
    /// buffer keeps only the last half second.
    fn drain_inbound(&mut self) {
        while let Ok(tap) = self.taps.try_recv() {
            if tap.is_some() {
                // Recording starts now: older buffered audio is not part of it.
                while self.stream.poll_inbound_audio().is_some() {}
            }
            self.tap = tap;
        }
        let Some(tap) = &self.tap else { return };
        while let Some(frame) = self.stream.poll_inbound_audio() {
            match tap.try_send(frame.pcm) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.tap_dropped += 1;
                    tracing::debug!(dropped = self.tap_dropped, "audio tap full: frame dropped");
                }
                Err(TrySendError::Closed(_)) => {
                    self.tap = None;
                    break;
                }
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
        self.take_feed();
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
            self.stats.send_replace(self.stream.stats());
        }
        true
    }
}

async fn run_worker(
    index: usize,
    mut inbox: mpsc::UnboundedReceiver<WorkerMessage>,
    streams: Arc<AtomicUsize>,
) {
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
                Ok(WorkerMessage::Open(new)) => slots.push(Slot::new(now, *new)),
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
            if !keep {
                streams.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests;
