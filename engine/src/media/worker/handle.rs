//! [`MediaHandle`]: the call's side of a media stream, a thin sender of commands and link
//! changes to the stream's worker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{AudioFeed, AudioTap, LinkChange};
use crate::media::dtmf::DtmfDigit;
use crate::media::prompt::Prompt;
use crate::media::stream::{Link, MediaCommand, MediaParams, MediaStats, DEFAULT_DTMF_DURATION};
use crate::media::MediaError;

/// The call actor's side of a media stream. Dropping it ends the stream and frees its ports.
#[derive(Debug)]
pub struct MediaHandle {
    pub(super) links: mpsc::UnboundedSender<LinkChange>,
    pub(super) commands: mpsc::UnboundedSender<MediaCommand>,
    pub(super) local_addr: SocketAddr,
    pub(super) stats: watch::Receiver<MediaStats>,
    pub(super) next_play_id: Arc<AtomicU64>,
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

    /// Queues prompts under an id the caller chose (unique among its own playbacks on
    /// this stream); it comes back in `PlaybackFinished`/`PlaybackStopped`.
    pub fn play_as(&self, id: u64, prompts: Vec<Prompt>) -> Result<(), MediaError> {
        self.send(MediaCommand::Play { prompts, id })
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

    /// Sets (`Some`) or removes (`None`) the tap of [`Link::Relay`]: the bridged peer.
    /// Same as [`MediaHandle::add_tap`] / [`MediaHandle::remove_tap`] with that key.
    pub fn tap_inbound(&self, tap: Option<AudioTap>) -> Result<(), MediaError> {
        match tap {
            Some(tap) => self.add_tap(Link::Relay, tap),
            None => self.remove_tap(Link::Relay),
        }
    }

    /// Sets (`Some`) or removes (`None`) the feed of [`Link::Relay`]: the bridged peer.
    /// Same as [`MediaHandle::add_feed`] / [`MediaHandle::remove_feed`] with that key.
    pub fn feed_live(&self, feed: Option<AudioFeed>) -> Result<(), MediaError> {
        match feed {
            Some(feed) => self.add_feed(Link::Relay, feed),
            None => self.remove_feed(Link::Relay),
        }
    }

    /// Sends a copy of every decoded inbound 20 ms frame to `tap` from the next tick on,
    /// replacing the tap of the same `link` if any. When the stream had no tap, the audio
    /// it buffered before is discarded: a consumer starts with the present. Frames that do
    /// not fit in the channel are dropped and counted ([`MediaStats::tap_dropped`]): a slow
    /// reader never stalls the media of other calls. A tap whose receiver is dropped is
    /// removed by the worker.
    pub fn add_tap(&self, link: Link, tap: AudioTap) -> Result<(), MediaError> {
        self.change_link(LinkChange::AddTap(link, tap))
    }

    /// Stops the tap of `link` (nothing happens if there is none).
    pub fn remove_tap(&self, link: Link) -> Result<(), MediaError> {
        self.change_link(LinkChange::RemoveTap(link))
    }

    /// Mixes the frames of `feed` (usually another leg's tap) into what the stream sends
    /// when no prompt plays, replacing the feed of the same `link` if any (its pending
    /// audio is kept). Every feed has a small buffer ([`MAX_LIVE_FRAMES`]) that absorbs the
    /// phase difference between legs. A feed whose sender is dropped plays out what it
    /// has and is removed.
    ///
    /// [`MAX_LIVE_FRAMES`]: super::stream::MAX_LIVE_FRAMES
    pub fn add_feed(&self, link: Link, feed: AudioFeed) -> Result<(), MediaError> {
        self.change_link(LinkChange::AddFeed(link, feed))
    }

    /// Stops the feed of `link` and discards its pending audio.
    pub fn remove_feed(&self, link: Link) -> Result<(), MediaError> {
        self.change_link(LinkChange::RemoveFeed(link))
    }

    fn change_link(&self, change: LinkChange) -> Result<(), MediaError> {
        self.links.send(change).map_err(|_| MediaError::WorkerGone)
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
