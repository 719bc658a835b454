//! The media a call driver opens and commands, behind two small traits so that a test
//! harness can put a stand-in where the media workers are (the engine's own is
//! [`WorkerMedia`]: RTP port pairs from the allocator, streams paced by the media workers).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::media::{
    AudioFeed, AudioTap, DtmfDigit, Link, MediaError, MediaEvent, MediaHandle, MediaParams,
    MediaStats, MediaWorkers, PortAllocator, Prompt,
};

/// A stream as opened: its handle and its events.
pub type Opened = (Box<dyn StreamPort>, mpsc::Receiver<MediaEvent>);

/// Where a call's streams come from.
pub trait MediaPort: Send + Sync {
    /// Opens a stream (an RTP port pair) sending with `params`.
    fn open(
        &self,
        params: MediaParams,
    ) -> Pin<Box<dyn Future<Output = Result<Opened, MediaError>> + Send + '_>>;
}

/// One open stream; dropping it ends the stream and frees its ports.
pub trait StreamPort: Send {
    fn local_addr(&self) -> SocketAddr;
    fn set_params(&self, params: MediaParams) -> Result<(), MediaError>;
    /// Plays `prompts` back to back; `id` comes back in the playback events.
    fn play(&self, id: u64, prompts: Vec<Prompt>) -> Result<(), MediaError>;
    fn stop_playback(&self) -> Result<(), MediaError>;
    fn send_dtmf(&self, digit: DtmfDigit) -> Result<(), MediaError>;
    fn add_tap(&self, link: Link, tap: AudioTap) -> Result<(), MediaError>;
    fn remove_tap(&self, link: Link) -> Result<(), MediaError>;
    fn add_feed(&self, link: Link, feed: AudioFeed) -> Result<(), MediaError>;
    fn remove_feed(&self, link: Link) -> Result<(), MediaError>;
    fn stats(&self) -> MediaStats;
}

/// The engine's media: ports from the allocator, streams on the media workers.
pub struct WorkerMedia {
    pub workers: Arc<MediaWorkers>,
    pub ports: Arc<PortAllocator>,
}

impl MediaPort for WorkerMedia {
    fn open(
        &self,
        params: MediaParams,
    ) -> Pin<Box<dyn Future<Output = Result<Opened, MediaError>> + Send + '_>> {
        Box::pin(async move {
            let allocation = self.ports.allocate().await?;
            let (handle, events) = self.workers.open(params, allocation)?;
            Ok((Box::new(handle) as Box<dyn StreamPort>, events))
        })
    }
}

impl StreamPort for MediaHandle {
    fn local_addr(&self) -> SocketAddr {
        MediaHandle::local_addr(self)
    }

    fn set_params(&self, params: MediaParams) -> Result<(), MediaError> {
        MediaHandle::set_params(self, params)
    }

    fn play(&self, id: u64, prompts: Vec<Prompt>) -> Result<(), MediaError> {
        self.play_as(id, prompts)
    }

    fn stop_playback(&self) -> Result<(), MediaError> {
        MediaHandle::stop_playback(self)
    }

    fn send_dtmf(&self, digit: DtmfDigit) -> Result<(), MediaError> {
        MediaHandle::send_dtmf(self, digit)
    }

    fn add_tap(&self, link: Link, tap: AudioTap) -> Result<(), MediaError> {
        MediaHandle::add_tap(self, link, tap)
    }

    fn remove_tap(&self, link: Link) -> Result<(), MediaError> {
        MediaHandle::remove_tap(self, link)
    }

    fn add_feed(&self, link: Link, feed: AudioFeed) -> Result<(), MediaError> {
        MediaHandle::add_feed(self, link, feed)
    }

    fn remove_feed(&self, link: Link) -> Result<(), MediaError> {
        MediaHandle::remove_feed(self, link)
    }

    fn stats(&self) -> MediaStats {
        MediaHandle::stats(self)
    }
}

/// Default parameters of a new stream: the configured RTP timeout.
pub fn opening_params(rtp_timeout: Duration) -> MediaParams {
    MediaParams {
        rtp_timeout,
        ..MediaParams::default()
    }
}
