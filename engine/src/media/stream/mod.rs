//! `MediaStream`: one call leg's media, as a sans-IO state machine.
//!
//! The stream owns no socket and reads no clock. Its driver (a media worker) feeds it
//! datagrams, commands and a tick every 20 ms, each with the current time, and drains what
//! it produced: datagrams to send ([`MediaStream::poll_transmit`]) and events for the call
//! actor ([`MediaStream::poll_event`]). Every behaviour is therefore tested in virtual time
//! with fabricated packets (see `tests.rs`).
//!
//! Sending is paced by the stream itself: it keeps a 20 ms schedule and, on each tick, sends
//! the frames that are due, catching up at most [`MAX_CATCH_UP`] frames after a late tick and
//! skipping the rest (the timestamp jumps, the far end conceals the gap). In each slot it
//! sends, in order of priority: an RFC 4733 event packet (audio pauses during an event), the
//! next prompt frame, the mix of the live feeds (other legs' audio, [`mix`]), or a frame of
//! silence. Sending silence when idle is deliberate: it keeps
//! NAT bindings open and satisfies the RTP timeouts of PBXs and SBCs, as most IVRs do.
//!
//! With SRTP negotiated ([`MediaParams::srtp`]), every packet sent is protected and every
//! datagram received must authenticate (and not be a replay) before anything else looks at
//! it, latching included ([`super::srtp`]); a stream whose SRTP could not be set up sends
//! and accepts nothing rather than fall back to plain RTP.
//!
//! Receiving: datagrams from a source that may not carry this stream (outside the SDP
//! address's host or `sip.allowed_networks`, see [`latch`]) are refused and counted; RTCP is
//! recognised and counted; RTP from the latched source goes through sequence tracking ([`RtpReceiver`]), then audio is decoded (kept in [`inbound`]
//! and fed to the in-band DTMF detector) and telephone events become digits. Once the remote
//! has sent any RFC 4733 event, in-band detection stops for good, so a PBX that sends both
//! never produces double digits.

pub mod inbound;
pub mod latch;
pub mod mix;
pub mod playback;
mod send;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pii::Pii;
use rtp_rs::RtpReader;

use self::inbound::{InboundAudio, InboundFrame};
use self::latch::{Latch, Verdict};
use self::mix::LiveMix;
pub use self::mix::{Link, MAX_LIVE_FRAMES};
use self::playback::Playback;
use self::send::OutgoingDtmf;
use super::codec::{Codec, FRAME_DURATION, SAMPLES_PER_FRAME, SAMPLE_RATE};
use super::dtmf::goertzel::InBandDetector;
use super::dtmf::rfc4733::Rfc4733Receiver;
use super::dtmf::{DtmfDigit, DtmfSource};
use super::prompt::Prompt;
use super::rtp::{rtcp, Arrival, RtpReceiver, RtpSender};
use super::srtp::SrtpSession;
use crate::acl::Acl;
use sip::sdp::SrtpKeys;

/// Frames sent at most in one tick to catch up with a late tick.
pub const MAX_CATCH_UP: u32 = 5;
/// Default duration of a DTMF digit we send.
pub const DEFAULT_DTMF_DURATION: Duration = Duration::from_millis(100);
/// RFC 3389 comfort noise, which we accept and ignore.
const COMFORT_NOISE_PT: u8 = 13;

/// Media parameters negotiated by SDP, set by the call actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// The audio codec.
    pub codec: Codec,
    /// Where the SDP says to send media; replaced by the latched source once media arrives.
    /// The stream drops an address outside its allow-list (it then waits for media from an
    /// allowed source, see [`latch`]).
    pub remote: Option<SocketAddr>,
    /// Negotiated `telephone-event` payload type; without it digits are sent in-band.
    pub telephone_event_pt: Option<u8>,
    /// Silence from the remote after which [`MediaEvent::RtpTimeout`] is raised. A call put
    /// on hold (`sendonly`/`inactive`) should get a longer value, or `Duration::MAX`.
    pub rtp_timeout: Duration,
    /// SRTP keys when the SDP exchange encrypted the stream (SDES); `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
}

impl Default for MediaParams {
    fn default() -> Self {
        MediaParams {
            codec: Codec::Pcma,
            remote: None,
            telephone_event_pt: Some(101),
            rtp_timeout: Duration::from_secs(30),
            srtp: None,
        }
    }
}

/// Orders from the call actor.
#[derive(Debug, Clone)]
pub enum MediaCommand {
    /// Queue prompts, played back to back; `id` comes back in the playback events.
    Play {
        /// Prompts in order.
        prompts: Vec<Prompt>,
        /// Caller-chosen id.
        id: u64,
    },
    /// Clear the playback queue.
    StopPlayback,
    /// Send a digit (RFC 4733 if negotiated, else in-band tones); digits queue up.
    SendDtmf {
        /// The digit.
        digit: DtmfDigit,
        /// How long the key is held.
        duration: Duration,
    },
    /// New negotiated parameters (re-INVITE, late SDP).
    SetParams(MediaParams),
}

/// What the call actor hears from its media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The first RTP packet arrived.
    FirstPacket {
        /// Its source.
        from: SocketAddr,
    },
    /// A digit from the remote (personal data: part of a PIN, a card number...).
    Dtmf {
        /// The digit.
        digit: Pii<DtmfDigit>,
        /// How it arrived.
        source: DtmfSource,
    },
    /// A play request sent its last frame.
    PlaybackFinished {
        /// The request.
        id: u64,
    },
    /// A play request was cleared before its end.
    PlaybackStopped {
        /// The request.
        id: u64,
    },
    /// No RTP for `rtp_timeout`. Raised once, and again only after media resumed and
    /// stopped anew.
    RtpTimeout,
}

/// A datagram to send from the RTP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The RTP packet.
    pub payload: Vec<u8>,
}

/// A snapshot of the stream's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets produced for sending.
    pub packets_sent: u64,
    /// Payload octets produced for sending.
    pub octets_sent: u64,
    /// Packets the driver could not send (socket buffer full, send error).
    pub send_dropped: u64,
    /// Distinct RTP packets received from the latched source.
    pub packets_received: u64,
    /// RTP packets expected but not received.
    pub packets_lost: u64,
    /// RTP packets received twice.
    pub packets_duplicate: u64,
    /// RTP packets too old or out of sequence to be played (late).
    pub packets_late: u64,
    /// Interarrival jitter (RFC 3550). The worker reads sockets every 20 ms, so this
    /// includes up to 20 ms of polling delay.
    pub jitter: Duration,
    /// RTCP packets received.
    pub rtcp_received: u64,
    /// Datagrams that were neither RTCP nor usable RTP (bad header, unknown payload type,
    /// unconfirmed sequence jump, a source being learnt but not latched).
    pub packets_ignored: u64,
    /// Datagrams (RTP or RTCP) refused because of their source: outside the SDP address's
    /// host, or outside `sip.allowed_networks` (see [`latch`]).
    pub unexpected_source: u64,
    /// SRTP/SRTCP packets refused: failed authentication, replayed, or plain while SRTP was
    /// negotiated.
    pub srtp_refused: u64,
    /// 20 ms slots skipped because ticks came too late to catch up.
    pub frames_skipped: u64,
    /// Times a feed ran ahead of this stream's sending and lost its oldest audio.
    pub live_dropped: u64,
    /// Inbound frames a full tap could not take (set by the worker, which owns the taps).
    pub tap_dropped: u64,
    /// Where media is sent.
    pub remote: Option<SocketAddr>,
}

/// Datagrams refused for their source: the stream's total, and what the driver has not
/// collected yet.
#[derive(Debug, Default)]
struct UnexpectedSources {
    total: u64,
    pending: u64,
    last: Option<SocketAddr>,
}

impl UnexpectedSources {
    fn record(&mut self, from: SocketAddr) {
        self.total += 1;
        self.pending += 1;
        self.last = Some(from);
    }

    fn take(&mut self) -> Option<(u64, SocketAddr)> {
        let last = self.last.take()?;
        Some((std::mem::take(&mut self.pending), last))
    }
}

/// The SRTP contexts for `keys`; `None` (logged) if they cannot be set up.
fn srtp_session(keys: &SrtpKeys) -> Option<SrtpSession> {
    SrtpSession::new(keys)
        .map_err(|error| tracing::error!(%error, "SRTP setup failed: media stops"))
        .ok()
}

/// `params` with an SDP address outside `allowed` dropped: the stream never sends there.
fn allowed_params(mut params: MediaParams, allowed: &Acl) -> MediaParams {
    if params.remote.is_some_and(|a| !allowed.allows(a.ip())) {
        tracing::debug!("SDP media address outside sip.allowed_networks: not used");
        params.remote = None;
    }
    params
}

/// One call leg's media state.
pub struct MediaStream {
    params: MediaParams,
    /// `sip.allowed_networks`: the only hosts media may come from or go to.
    allowed: Arc<Acl>,
    /// The SRTP contexts when `params.srtp` is set (`None` then only if setting them up
    /// failed: the stream then exchanges nothing).
    srtp: Option<SrtpSession>,
    srtp_refused: u64,
    sender: RtpSender,
    receiver: RtpReceiver,
    latch: Latch,
    playback: Playback,
    dtmf_queue: VecDeque<(DtmfDigit, Duration)>,
    dtmf_out: Option<OutgoingDtmf>,
    gap_frames: u8,
    rfc4733: Rfc4733Receiver,
    inband: Option<InBandDetector>,
    inbound: InboundAudio,
    /// Whether decoded inbound audio has a consumer (the driver's taps). Without one, and
    /// once in-band detection is off, audio packets are accounted for but not decoded.
    audio_wanted: bool,
    next_frame_at: Instant,
    last_packet_at: Instant,
    timed_out: bool,
    first_packet_seen: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    rtcp_received: u64,
    packets_ignored: u64,
    unexpected: UnexpectedSources,
    send_dropped: u64,
    frames_skipped: u64,
    /// Decoded audio of other legs (bridge, supervision), mixed and sent when no prompt
    /// plays.
    live: LiveMix,
}

impl MediaStream {
    /// A stream created at `now` that exchanges media only with hosts `allowed`: the first
    /// frame is due at once, the RTP timeout counts from now.
    pub fn new(now: Instant, params: MediaParams, allowed: Arc<Acl>) -> Self {
        Self::with_sender(now, params, allowed, RtpSender::new())
    }

    /// A stream with a chosen RTP sender (fixed SSRC, sequence and timestamp), for tests
    /// and reproducible traces.
    pub fn with_sender(
        now: Instant,
        params: MediaParams,
        allowed: Arc<Acl>,
        sender: RtpSender,
    ) -> Self {
        let srtp = params.srtp.as_ref().and_then(srtp_session);
        MediaStream {
            params: allowed_params(params, &allowed),
            allowed,
            srtp,
            srtp_refused: 0,
            sender,
            receiver: RtpReceiver::new(SAMPLE_RATE),
            latch: Latch::default(),
            playback: Playback::default(),
            dtmf_queue: VecDeque::new(),
            dtmf_out: None,
            gap_frames: 0,
            rfc4733: Rfc4733Receiver::new(),
            inband: Some(InBandDetector::new()),
            inbound: InboundAudio::default(),
            audio_wanted: true,
            next_frame_at: now,
            last_packet_at: now,
            timed_out: false,
            first_packet_seen: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rtcp_received: 0,
            packets_ignored: 0,
            unexpected: UnexpectedSources::default(),
            send_dropped: 0,
            frames_skipped: 0,
            live: LiveMix::default(),
        }
    }

    /// Queues a 20 ms frame of relayed audio from the default feed ([`Link::Relay`], a
    /// bridged call's other leg); see [`MediaStream::push_feed`].
    pub fn push_live(&mut self, pcm: Vec<i16>) {
        self.push_feed(Link::Relay, &pcm);
    }

    /// Queues decoded audio of the feed `link`. Each 20 ms slot without a prompt or a digit
    /// to send sends the sum of one frame of every feed that has one ([`mix`]). At most
    /// [`MAX_LIVE_FRAMES`] wait per feed: older audio is dropped, so delay stays bounded
    /// whatever the legs' clocks do. While a prompt plays, feeds are not consumed: they
    /// keep their latest frames, which follow the prompt.
    pub fn push_feed(&mut self, link: Link, pcm: &[i16]) {
        self.live.push(link, pcm);
    }

    /// Forgets the feed `link` and the audio it still had pending.
    pub fn remove_feed(&mut self, link: Link) {
        self.live.remove(link);
    }

    /// Tells the stream whether its decoded inbound audio has a consumer (true at
    /// creation). While it has none and in-band DTMF detection is off (the remote sent an
    /// RFC 4733 event), audio packets are not decoded: nothing would read the samples.
    pub fn set_audio_wanted(&mut self, wanted: bool) {
        self.audio_wanted = wanted;
    }

    /// The current parameters.
    pub fn params(&self) -> &MediaParams {
        &self.params
    }

    /// Applies a command from the call actor.
    pub fn handle_command(&mut self, _now: Instant, command: MediaCommand) {
        match command {
            MediaCommand::Play { prompts, id } => self.playback.enqueue(id, prompts),
            MediaCommand::StopPlayback => {
                for id in self.playback.stop() {
                    self.events.push_back(MediaEvent::PlaybackStopped { id });
                }
            }
            MediaCommand::SendDtmf { digit, duration } => {
                self.dtmf_queue.push_back((digit, duration))
            }
            MediaCommand::SetParams(params) => {
                let params = allowed_params(params, &self.allowed);
                if params.srtp != self.params.srtp {
                    self.srtp = match (self.srtp.take(), &params.srtp) {
                        (Some(mut session), Some(keys)) => match session.rekey(keys) {
                            Ok(()) => Some(session),
                            Err(error) => {
                                tracing::error!(%error, "SRTP rekeying failed: media stops");
                                None
                            }
                        },
                        (_, keys) => keys.as_ref().and_then(srtp_session),
                    };
                }
                if params.remote != self.params.remote {
                    self.latch.reset();
                }
                self.params = params;
            }
        }
    }

    /// Accounts for a datagram received on the RTP or the RTCP socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if !self.latch.admits(from, self.params.remote, &self.allowed) {
            self.unexpected.record(from);
            return;
        }
        let decrypted;
        let datagram = match (&self.params.srtp, self.srtp.as_mut()) {
            (None, _) => datagram,
            (Some(_), Some(srtp)) => {
                let clear = if rtcp::is_rtcp(datagram) {
                    srtp.unprotect_rtcp(datagram)
                } else {
                    srtp.unprotect_rtp(datagram)
                };
                match clear {
                    Ok(clear) => {
                        decrypted = clear;
                        &decrypted[..]
                    }
                    Err(error) => {
                        self.srtp_refused += 1;
                        tracing::trace!(%from, %error, "srtp refused");
                        return;
                    }
                }
            }
            (Some(_), None) => {
                self.srtp_refused += 1;
                return;
            }
        };
        if rtcp::is_rtcp(datagram) {
            self.rtcp_received += 1;
            let summary = rtcp::parse(datagram);
            tracing::trace!(%from, packets = summary.packets.len(), truncated = summary.truncated, "rtcp");
            return;
        }
        let Ok(packet) = RtpReader::new(datagram) else {
            self.packets_ignored += 1;
            return;
        };
        let payload_type = packet.payload_type();
        let audio_codec = Codec::from_payload_type(payload_type);
        let is_event = self.params.telephone_event_pt == Some(payload_type);
        if audio_codec.is_none() && !is_event && payload_type != COMFORT_NOISE_PT {
            self.packets_ignored += 1;
            return;
        }
        let seq = u16::from(packet.sequence_number());
        match self
            .latch
            .on_packet(now, from, seq, self.params.remote, &self.allowed)
        {
            Verdict::Use => {}
            Verdict::Latched => tracing::debug!(address = %from, "media source latched"),
            Verdict::Learning => {
                self.packets_ignored += 1;
                return;
            }
            Verdict::Refused => {
                self.unexpected.record(from);
                return;
            }
        }
        self.last_packet_at = now;
        self.timed_out = false;
        if !self.first_packet_seen {
            self.first_packet_seen = true;
            self.events.push_back(MediaEvent::FirstPacket { from });
        }
        let arrival = self.receiver.on_packet(
            now,
            packet.ssrc(),
            seq,
            packet.timestamp(),
            audio_codec.is_some(),
        );
        let extended_seq = match arrival {
            Arrival::Accepted { extended_seq, .. } => extended_seq,
            Arrival::Duplicate => return,
            Arrival::Discarded => {
                self.packets_ignored += 1;
                return;
            }
        };
        if is_event {
            if self.inband.take().is_some() {
                tracing::debug!("remote sends RFC 4733 events: in-band detection off");
            }
            if let Some(digit) = self.rfc4733.on_packet(packet.timestamp(), packet.payload()) {
                self.events.push_back(MediaEvent::Dtmf {
                    digit: Pii::new(digit),
                    source: DtmfSource::Rfc4733,
                });
            }
        } else if let Some(codec) = audio_codec {
            if !self.audio_wanted && self.inband.is_none() {
                return;
            }
            let pcm = self.inbound.push(extended_seq, packet.timestamp());
            codec.decode_into(packet.payload(), pcm);
            if let Some(detector) = self.inband.as_mut() {
                detector.process(pcm);
                while let Some(digit) = detector.poll_digit() {
                    self.events.push_back(MediaEvent::Dtmf {
                        digit: Pii::new(digit),
                        source: DtmfSource::InBand,
                    });
                }
            }
        }
    }

    /// Advances time: raises the RTP timeout and sends the frames that are due.
    pub fn tick(&mut self, now: Instant) {
        if !self.timed_out
            && now.saturating_duration_since(self.last_packet_at) >= self.params.rtp_timeout
        {
            self.timed_out = true;
            self.events.push_back(MediaEvent::RtpTimeout);
        }
        let mut sent = 0;
        while self.next_frame_at <= now {
            if sent == MAX_CATCH_UP {
                let behind = now.saturating_duration_since(self.next_frame_at);
                let missed = (behind.as_micros() / FRAME_DURATION.as_micros()) as u32 + 1;
                self.sender
                    .advance(missed.wrapping_mul(SAMPLES_PER_FRAME as u32));
                self.next_frame_at += FRAME_DURATION * missed;
                self.frames_skipped += u64::from(missed);
                self.sender.start_talk_spurt();
                break;
            }
            self.send_slot();
            self.sender.advance(SAMPLES_PER_FRAME as u32);
            self.next_frame_at += FRAME_DURATION;
            sent += 1;
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the call actor.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The oldest decoded inbound frame not yet taken (see [`inbound`]).
    pub fn poll_inbound_audio(&mut self) -> Option<InboundFrame> {
        self.inbound.pop()
    }

    /// The last half second of decoded inbound audio, without taking it.
    pub fn recent_inbound_audio(&self) -> impl Iterator<Item = &InboundFrame> {
        self.inbound.recent()
    }

    /// Datagrams refused for their source since the last call, and the last such source:
    /// what the driver adds to the engine-wide counter and reports in its rate-limited log.
    pub fn take_unexpected(&mut self) -> Option<(u64, SocketAddr)> {
        self.unexpected.take()
    }

    /// The driver failed to send a datagram we produced.
    pub fn record_send_dropped(&mut self) {
        self.send_dropped += 1;
    }

    /// Where media goes now.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.latch.target(self.params.remote)
    }

    /// Counters snapshot.
    pub fn stats(&self) -> MediaStats {
        let rx = self.receiver.stats();
        MediaStats {
            packets_sent: self.sender.packets_sent(),
            octets_sent: self.sender.octets_sent(),
            send_dropped: self.send_dropped,
            packets_received: rx.packets_received,
            packets_lost: rx.packets_lost,
            packets_duplicate: rx.duplicates,
            packets_late: rx.discarded,
            jitter: rx.jitter,
            rtcp_received: self.rtcp_received,
            packets_ignored: self.packets_ignored,
            unexpected_source: self.unexpected.total,
            srtp_refused: self.srtp_refused,
            frames_skipped: self.frames_skipped,
            live_dropped: self.live.dropped(),
            tap_dropped: 0,
            remote: self.remote(),
        }
    }
}
