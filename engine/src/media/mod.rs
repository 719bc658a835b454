//! Media: RTP endpoints for call legs, G.711, DTMF, prompts, and the workers that pace them.
//!
//! The design has two halves, as everywhere in svi:
//!
//! - **Sans-IO cores.** [`stream::MediaStream`] is one call leg's media as a state machine:
//!   datagrams, commands and 20 ms ticks go in with the current time, packets to send and
//!   events for the call actor come out. It owns no socket and reads no clock, so all of its
//!   behaviour (playback, symmetric RTP, DTMF both ways, RTP timeout) is tested in virtual
//!   time. Its parts are cores too: [`rtp`] (sequence, loss, jitter, RTCP), [`srtp`] (SRTP
//!   with SDES keys), [`dtmf`]
//!   (RFC 4733 and Goertzel in-band detection), [`g711`] and [`codec`].
//! - **A thin driver.** [`worker::MediaWorkers`] runs a few tasks (one per CPU), each pacing
//!   many streams on a single 20 ms interval and moving datagrams between sockets and
//!   streams with non-blocking calls. A timer task per call does not scale; this does.
//!
//! Prompts ([`prompt`]) are converted once, at load, to 8 kHz PCM and to ready-made A-law and
//! µ-law frames shared by every call, so playing costs no audio processing. Ports come from
//! [`ports::PortAllocator`], which binds RTP/RTCP pairs in the configured range.
//!
//! The call actor's view: allocate a port pair, `MediaWorkers::open` it with the negotiated
//! [`MediaParams`], then drive it through the returned [`MediaHandle`] and listen to the
//! [`MediaEvent`] receiver.
//! Legs exchange decoded audio through taps and feeds named by a [`Link`]
//! ([`MediaHandle::add_tap`], [`MediaHandle::add_feed`]): the bridge, call recording and
//! supervision each use their own key, so they come and go independently.

pub mod codec;
pub mod dtmf;
pub mod fuzzing;
pub mod g711;
pub mod ports;
pub mod prompt;
pub mod rtp;
pub mod srtp;
pub mod stream;
pub mod tally;
pub mod worker;

use std::net::IpAddr;

pub use codec::Codec;
pub use dtmf::{DtmfDigit, DtmfSource};
pub use ports::{PortAllocator, RtpAllocation};
pub use prompt::{Prompt, PromptError, PromptStore};
pub use stream::{Link, MediaCommand, MediaEvent, MediaParams, MediaStats, MediaStream, Transmit};
pub use worker::{AudioFeed, AudioTap, MediaHandle, MediaWorkers};

/// Errors of the media runtime (ports, sockets, workers). Prompt files have their own
/// [`PromptError`], reported at load time.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The configured RTP range holds no even/odd port pair.
    #[error("RTP port range {low}-{high} holds no even/odd port pair")]
    InvalidPortRange {
        /// Configured low bound.
        low: u16,
        /// Configured high bound.
        high: u16,
    },
    /// Every pair of the range is in use (by svi or other programs).
    #[error("no free RTP port pair in {low}-{high} on {ip}")]
    PortsExhausted {
        /// Address the ports are bound on.
        ip: IpAddr,
        /// First port of the range.
        low: u16,
        /// Last port of the range.
        high: u16,
    },
    /// Binding failed for another reason than the port being busy (wrong IP, permissions).
    #[error("cannot bind RTP port {port} on {ip}: {source}")]
    Bind {
        /// Address.
        ip: IpAddr,
        /// Port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// A socket operation failed.
    #[error("RTP socket error: {source}")]
    Socket {
        /// The OS error.
        source: std::io::Error,
    },
    /// The media worker serving the stream has stopped.
    #[error("media worker stopped")]
    WorkerGone,
}
