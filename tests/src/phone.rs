//! A scriptable test phone: a SIP user agent over UDP on 127.0.0.1 with a real-time G.711
//! RTP stream, for end-to-end tests that must know what each party *hears*.
//!
//! A [`Phone`] registers as an extension (digest MD5 or SHA-256), answers calls (180, then
//! 200 after an optional ring delay) or places them (answering one 401/407 challenge), hangs
//! up, sends a sine tone or silence every 20 ms and RFC 4733 digits, and keeps the last 30 s
//! of what it received. [`Phone::heard`] measures how much of that audio is at a frequency
//! (Goertzel, see [`tone`]); [`wav_channel_tone_power`] does the same on a recording.
//!
//! Every wait takes a deadline and returns on the event itself, never after a fixed sleep.
//!
//! Layout (one task per side, both owned by the phone and stopped when it is dropped):
//! - `ua`: the SIP side, an actor over `sip::transport` (which does transactions,
//!   retransmissions, 100 Trying and CANCEL matching), with `sip::dialog`, `sip::sdp`,
//!   `sip::register` and `sip::auth` for the rest (`ua::call`: the call's states);
//! - `media`: the RTP socket, the 20 ms sender and the receiver;
//! - `received`: the bounded ring of decoded audio; `g711`: the codec; `tone`: Goertzel and
//!   WAV analysis.
//!
//! ```ignore
//! // In a #[tokio::test(flavor = "multi_thread")] (or rt.block_on in a sync test).
//! let mut agent = Phone::start(PhoneConfig::new("1001").password("demo-1001")).await?;
//! agent.register(engine.sip, deadline(5)).await?;
//! let mut caller = Phone::start(PhoneConfig::new("caller")).await?;
//! caller.call(&format!("sip:5000@{}", engine.sip)).await?;
//! caller.wait_answered(deadline(5)).await?;
//! agent.wait_answered(deadline(10)).await?; // rang, auto-answered, ACK received
//! caller.set_tone(TONE_500_HZ, -12.0);
//! agent.set_tone(TONE_1700_HZ, -12.0);
//! let over = Duration::from_millis(500);
//! agent.wait_hears(TONE_500_HZ, over, deadline(3)).await?;
//! caller.wait_hears(TONE_1700_HZ, over, deadline(3)).await?;
//! assert!(!caller.hears(TONE_500_HZ, over));
//! caller.send_dtmf("1")?;
//! caller.hangup().await?;
//! assert_eq!(agent.wait_ended(deadline(5)).await?, Ended::RemoteBye);
//! ```

pub mod g711;
mod media;
mod received;
pub mod tone;
mod ua;

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

pub use received::{ReceivedFrame, KEEP as RECEIVED_AUDIO_KEPT};
pub use sip::sdp::Codec;
pub use tone::{level_dbfs, tone_power, wav_channel_samples, wav_channel_tone_power, WavError};

use media::{Media, MediaCommand};
use received::Received;
use ua::{Command, Ua};

/// Test tones: none is a DTMF frequency (697-1633 Hz rows and columns, their common
/// harmonics) nor a usual call-progress tone (425, 440, 480, 620 Hz), and they are 600 Hz
/// apart, twelve 50 Hz analysis bins, so each is measured without leakage from the others.
pub const TONE_500_HZ: f32 = 500.0;
pub const TONE_1100_HZ: f32 = 1100.0;
pub const TONE_1700_HZ: f32 = 1700.0;
pub const TONE_2300_HZ: f32 = 2300.0;
pub const TEST_TONES_HZ: [f32; 4] = [TONE_500_HZ, TONE_1100_HZ, TONE_1700_HZ, TONE_2300_HZ];

/// The share of received energy at a frequency above which [`Phone::hears`] says yes. A
/// tone alone measures above 0.9 through G.711; two tones mixed at equal level about 0.5
/// each; noise or another tone below 0.02.
pub const HEARS_THRESHOLD: f32 = 0.3;

/// What the phone sends while a call's media is up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    Silence,
    /// A sine of `freq_hz` whose peak is `level_dbfs` below full scale.
    Tone {
        freq_hz: f32,
        level_dbfs: f32,
    },
}

/// How the phone treats an incoming INVITE (it always sends 180 first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// 200 after ringing for `ring`.
    Auto { ring: Duration },
    /// Rings until [`Phone::answer`] or [`Phone::reject`].
    Manual,
}

/// Why a call ended, as [`Phone::wait_ended`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The peer sent BYE.
    RemoteBye,
    /// We sent BYE ([`Phone::hangup`]) and it was answered or timed out.
    LocalBye,
    /// The caller cancelled the INVITE we were ringing with.
    RemoteCancel,
    /// We cancelled our own INVITE before it was answered.
    LocalCancel,
    /// We refused the incoming INVITE ([`Phone::reject`], or [`Phone::hangup`] while ringing:
    /// 603), or answered it 488 because its offer had no usable audio.
    LocalReject { status: u16 },
    /// Our INVITE got a final error response.
    Rejected { status: u16 },
    /// Our INVITE got no final response (Timer B).
    Timeout,
    /// We answered but no ACK came (64*T1); we sent BYE.
    NoAck,
}

/// How a received digit came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfVia {
    Rfc4733,
    SipInfo,
}

/// Everything the phone reports; `call` numbers the phone's calls from 1. Waits refer to the
/// newest call (the last placed, or the last that rang) and ignore what is left of older ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    Incoming { call: u32, from: String },
    Ringing { call: u32 },
    Answered { call: u32 },
    Ended { call: u32, why: Ended },
    Dtmf { digit: char, via: DtmfVia },
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("cannot bind the phone's sockets: {0}")]
    Bind(#[from] std::io::Error),
    #[error("SIP transport: {0}")]
    Sip(#[from] sip::transport::DriverError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("the call ended ({0:?}) while waiting for {1}")]
    CallEnded(Ended, &'static str),
    #[error("the phone's tasks have stopped")]
    Stopped,
    #[error("`{0}` is not a SIP URI with an IP address")]
    BadUri(String),
    #[error("no call in a state that allows this")]
    NoCall,
    #[error("the phone is already in a call")]
    Busy,
    #[error("`{0}` is not a DTMF key")]
    BadDigit(char),
    #[error("registration failed: {0}")]
    Registration(String),
}

/// A phone's identity and behaviour.
#[derive(Clone)]
pub struct PhoneConfig {
    /// User part of our AOR and Contact, and the digest user name.
    pub user: String,
    /// Digest password, for REGISTER and for a challenged INVITE.
    pub password: Option<String>,
    /// Host part of our AOR; the registrar's (or callee's) address when `None`.
    pub domain: Option<String>,
    pub answer: AnswerMode,
    /// Codecs we offer and accept, in our preference order.
    pub codecs: Vec<Codec>,
    /// Registration lifetime asked for, in seconds (refreshed at half of what is granted).
    pub expires: u32,
}

/// Never prints the password.
impl std::fmt::Debug for PhoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneConfig")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("answer", &self.answer)
            .field("codecs", &self.codecs)
            .finish_non_exhaustive()
    }
}

impl PhoneConfig {
    /// Auto-answer at once, PCMU then PCMA, no password.
    pub fn new(user: &str) -> Self {
        PhoneConfig {
            user: user.to_string(),
            password: None,
            domain: None,
            answer: AnswerMode::Auto {
                ring: Duration::ZERO,
            },
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            expires: 300,
        }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }

    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_string());
        self
    }

    pub fn answer(mut self, mode: AnswerMode) -> Self {
        self.answer = mode;
        self
    }

    pub fn codecs(mut self, codecs: &[Codec]) -> Self {
        self.codecs = codecs.to_vec();
        self
    }
}

/// A deadline `secs` seconds from now, for the waits.
pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// The handle a test holds. Needs a tokio runtime (a multi-thread one if the test also
/// blocks, e.g. on `EngineProc` helpers). Dropping it stops both tasks, without a BYE.
pub struct Phone {
    user: String,
    sip_addr: SocketAddr,
    rtp_addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    media: mpsc::UnboundedSender<MediaCommand>,
    signal: watch::Sender<Signal>,
    events: mpsc::UnboundedReceiver<PhoneEvent>,
    /// Events received but not yet taken by a wait (waits pick theirs out of order).
    backlog: VecDeque<PhoneEvent>,
    /// Written by the media task, read synchronously by `heard` (which is not async so that
    /// assertions stay one-liners): a mutex is the simplest sharing for that.
    received: Arc<Mutex<Received>>,
    frames: watch::Receiver<u64>,
    /// The call waits refer to: the newest one placed or announced as incoming.
    current: Option<u32>,
}

fn random_u64() -> u64 {
    // A fresh RandomState is randomly keyed: enough for SSRCs and SDP session ids.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// The call an event belongs to; `None` for digits, which belong to no call in particular.
fn call_of(event: &PhoneEvent) -> Option<u32> {
    match event {
        PhoneEvent::Incoming { call, .. }
        | PhoneEvent::Ringing { call }
        | PhoneEvent::Answered { call }
        | PhoneEvent::Ended { call, .. } => Some(*call),
        PhoneEvent::Dtmf { .. } => None,
    }
}

enum Pick<T> {
    Take(T),
    Fail(PhoneError),
    Skip,
}

impl Phone {
    /// Binds SIP and RTP on 127.0.0.1 (ephemeral ports) and starts the phone's tasks.
    pub async fn start(config: PhoneConfig) -> Result<Phone, PhoneError> {
        let rtp = UdpSocket::bind("127.0.0.1:0").await?;
        let rtp_addr = rtp.local_addr()?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (signal, signal_rx) = watch::channel(Signal::Silence);
        let (frames_tx, frames) = watch::channel(0u64);
        let received = Arc::new(Mutex::new(Received::default()));
        let seed = random_u64();
        tokio::spawn(
            Media {
                socket: rtp,
                commands: media_rx,
                signal: signal_rx,
                received: received.clone(),
                frames: frames_tx,
                events: events_tx.clone(),
                seed,
            }
            .run(),
        );
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let user = config.user.clone();
        let ua = Ua::start(config, rtp_addr, commands_rx, events_tx, media_tx.clone()).await?;
        let sip_addr = ua.local_addr();
        tokio::spawn(ua.run());
        Ok(Phone {
            user,
            sip_addr,
            rtp_addr,
            commands,
            media: media_tx,
            signal,
            events,
            backlog: VecDeque::new(),
            received,
            frames,
            current: None,
        })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp_addr
    }

    /// Our Contact, which another phone can call directly: `sip:user@127.0.0.1:port`.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.sip_addr)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, PhoneError>>) -> Command,
        deadline: Instant,
        what: &'static str,
    ) -> Result<T, PhoneError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .map_err(|_| PhoneError::Stopped)?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(PhoneError::Stopped),
            Err(_) => Err(PhoneError::Timeout(what)),
        }
    }

    /// Registers `sip:user@domain` with our Contact at the registrar (digest challenges are
    /// answered with the configured password); returns once a 2xx came.
    pub async fn register(
        &self,
        registrar: SocketAddr,
        deadline: Instant,
    ) -> Result<(), PhoneError> {
        self.ask(
            |reply| Command::Register { registrar, reply },
            deadline,
            "the REGISTER's answer",
        )
        .await
    }

    /// Removes our binding (`Expires: 0`); returns once the registrar confirmed.
    pub async fn unregister(&self, deadline: Instant) -> Result<(), PhoneError> {
        self.ask(
            |reply| Command::Unregister { reply },
            deadline,
            "the un-REGISTER's answer",
        )
        .await
    }

    /// Places a call to `uri` (`sip:user@ip:port`), sent to the URI's address; returns once
    /// the INVITE is on its way. Follow with [`Phone::wait_answered`].
    pub async fn call(&mut self, uri: &str) -> Result<(), PhoneError> {
        let uri = uri.to_string();
        let call = self
            .ask(
                |reply| Command::Call { uri, reply },
                deadline(5),
                "the INVITE to go out",
            )
            .await?;
        self.current = Some(call);
        Ok(())
    }

    /// Answers the ringing call (with [`AnswerMode::Manual`]).
    pub async fn answer(&self) -> Result<(), PhoneError> {
        self.ask(|reply| Command::Answer { reply }, deadline(5), "answer")
            .await
    }

    /// Refuses the ringing call with `status` (486, 603...).
    pub async fn reject(&self, status: u16) -> Result<(), PhoneError> {
        self.ask(
            |reply| Command::Reject { status, reply },
            deadline(5),
            "reject",
        )
        .await
    }

    /// Ends the call: BYE once answered, CANCEL while our INVITE is pending, 603 while we
    /// ring. [`Phone::wait_ended`] then reports the end.
    pub async fn hangup(&self) -> Result<(), PhoneError> {
        self.ask(|reply| Command::Hangup { reply }, deadline(5), "hang up")
            .await
    }

    /// Sends `signal` from the next frame on (the choice holds across calls).
    pub fn set_signal(&self, signal: Signal) {
        self.signal.send_replace(signal);
    }

    /// Sends a sine of `freq_hz` with its peak at `level_dbfs` (e.g. -12.0).
    pub fn set_tone(&self, freq_hz: f32, level_dbfs: f32) {
        self.set_signal(Signal::Tone {
            freq_hz,
            level_dbfs,
        });
    }

    pub fn set_silence(&self) {
        self.set_signal(Signal::Silence);
    }

    /// Queues RFC 4733 digits (0-9, *, #, A-D), each 100 ms with 60 ms between them. Sent
    /// only while media is up and telephone-event was negotiated.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), PhoneError> {
        let events = digits
            .chars()
            .map(|c| media::dtmf_event(c).ok_or(PhoneError::BadDigit(c)))
            .collect::<Result<Vec<_>, _>>()?;
        for e in events {
            self.media
                .send(MediaCommand::Dtmf(e))
                .map_err(|_| PhoneError::Stopped)?;
        }
        Ok(())
    }

    /// Sends one digit as SIP INFO (`application/dtmf-relay`) in the current call.
    pub async fn send_dtmf_info(&self, digit: char) -> Result<(), PhoneError> {
        media::dtmf_event(digit).ok_or(PhoneError::BadDigit(digit))?;
        self.ask(
            |reply| Command::InfoDtmf { digit, reply },
            deadline(5),
            "INFO",
        )
        .await
    }

    /// The samples received during the last `over` (arrival time), concatenated.
    pub fn received_samples(&self, over: Duration) -> Vec<i16> {
        let since = Instant::now()
            .checked_sub(over)
            .unwrap_or_else(Instant::now);
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .samples_since(since)
    }

    /// The frames received during the last `over`, with their arrival times.
    pub fn received_frames(&self, over: Duration) -> Vec<ReceivedFrame> {
        let since = Instant::now()
            .checked_sub(over)
            .unwrap_or_else(Instant::now);
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .frames_since(since)
            .cloned()
            .collect()
    }

    /// Audio packets received since the phone started.
    pub fn frames_received(&self) -> u64 {
        *self.frames.borrow()
    }

    /// Forgets the audio received so far (e.g. between two phases of a test).
    pub fn clear_received(&self) {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The share (0..=1) of the energy received during the last `over` that is at `freq_hz`;
    /// 0 when that audio is silence or absent.
    pub fn heard(&self, freq_hz: f32, over: Duration) -> f32 {
        tone_power(&self.received_samples(over), 8000, freq_hz)
    }

    /// Whether `freq_hz` holds more than [`HEARS_THRESHOLD`] of what was heard during `over`.
    pub fn hears(&self, freq_hz: f32, over: Duration) -> bool {
        self.heard(freq_hz, over) > HEARS_THRESHOLD
    }

    /// RMS level (dBFS) of what was received during the last `over`.
    pub fn level_dbfs(&self, over: Duration) -> f32 {
        level_dbfs(&self.received_samples(over))
    }

    /// Waits until [`Phone::hears`] `freq_hz` over the last `over`, re-checking on each
    /// received frame; returns the share measured.
    pub async fn wait_hears(
        &mut self,
        freq_hz: f32,
        over: Duration,
        deadline: Instant,
    ) -> Result<f32, PhoneError> {
        loop {
            let share = self.heard(freq_hz, over);
            if share > HEARS_THRESHOLD {
                return Ok(share);
            }
            match tokio::time::timeout_at(deadline.into(), self.frames.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(PhoneError::Stopped),
                Err(_) => return Err(PhoneError::Timeout("the tone to be heard")),
            }
        }
    }

    /// Waits until `count` more audio frames (20 ms each, usually) have been received, e.g.
    /// to fill an analysis window after [`Phone::clear_received`] or a tone change.
    pub async fn wait_frames(&mut self, count: u64, deadline: Instant) -> Result<(), PhoneError> {
        let target = self.frames_received() + count;
        let wait = self.frames.wait_for(|n| *n >= target);
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(PhoneError::Stopped),
            Err(_) => Err(PhoneError::Timeout("audio frames")),
        }
    }

    /// Makes the newest call seen the current one and forgets the events of older calls,
    /// which no wait can ask for any more (the phone has one call at a time, so a newer
    /// call means the older one is over).
    fn adopt_newest_call(&mut self) {
        let newest = self
            .backlog
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::Incoming { call, .. } => Some(*call),
                _ => None,
            })
            .chain(self.current)
            .max();
        self.current = newest;
        if let Some(current) = newest {
            self.backlog
                .retain(|e| call_of(e).is_none_or(|call| call >= current));
        }
    }

    /// Waits for an event that `pick` takes or fails on, given the current call; other
    /// events stay for later waits.
    async fn wait_for<T>(
        &mut self,
        deadline: Instant,
        what: &'static str,
        pick: impl Fn(&PhoneEvent, Option<u32>) -> Pick<T>,
    ) -> Result<T, PhoneError> {
        loop {
            self.adopt_newest_call();
            for i in 0..self.backlog.len() {
                match pick(&self.backlog[i], self.current) {
                    Pick::Take(v) => {
                        self.backlog.remove(i);
                        return Ok(v);
                    }
                    Pick::Fail(e) => return Err(e),
                    Pick::Skip => {}
                }
            }
            match tokio::time::timeout_at(deadline.into(), self.events.recv()).await {
                Ok(Some(ev)) => self.backlog.push_back(ev),
                Ok(None) => return Err(PhoneError::Stopped),
                Err(_) => return Err(PhoneError::Timeout(what)),
            }
        }
    }

    /// Waits for an incoming call (ringing, before any answer); returns the caller's From URI.
    pub async fn wait_incoming(&mut self, deadline: Instant) -> Result<String, PhoneError> {
        self.wait_for(deadline, "an incoming call", |e, _| match e {
            PhoneEvent::Incoming { from, .. } => Pick::Take(from.clone()),
            _ => Pick::Skip,
        })
        .await
    }

    /// Waits until our outgoing call rings (180/183).
    pub async fn wait_ringing(&mut self, deadline: Instant) -> Result<(), PhoneError> {
        self.wait_for(deadline, "ringing", |e, current| match e {
            PhoneEvent::Ringing { call } if Some(*call) == current => Pick::Take(()),
            PhoneEvent::Ended { call, why } if Some(*call) == current => {
                Pick::Fail(PhoneError::CallEnded(*why, "ringing"))
            }
            _ => Pick::Skip,
        })
        .await
    }

    /// Waits until the current call is established: the 2xx to our INVITE (ACK sent), or the
    /// ACK to our 2xx. Fails at once if the call ends first.
    pub async fn wait_answered(&mut self, deadline: Instant) -> Result<(), PhoneError> {
        self.wait_for(deadline, "the call to be answered", |e, current| match e {
            PhoneEvent::Answered { call } if Some(*call) == current => Pick::Take(()),
            PhoneEvent::Ended { call, why } if Some(*call) == current => {
                Pick::Fail(PhoneError::CallEnded(*why, "the answer"))
            }
            _ => Pick::Skip,
        })
        .await
    }

    /// Waits for the end of the current call and says who ended it and how.
    pub async fn wait_ended(&mut self, deadline: Instant) -> Result<Ended, PhoneError> {
        self.wait_for(deadline, "the call to end", |e, current| match e {
            PhoneEvent::Ended { call, why } if Some(*call) == current => Pick::Take(*why),
            _ => Pick::Skip,
        })
        .await
    }

    /// Waits for the next received digit (RFC 4733 or SIP INFO).
    pub async fn wait_dtmf(&mut self, deadline: Instant) -> Result<(char, DtmfVia), PhoneError> {
        self.wait_for(deadline, "a DTMF digit", |e, _| match e {
            PhoneEvent::Dtmf { digit, via } => Pick::Take((*digit, *via)),
            _ => Pick::Skip,
        })
        .await
    }
}
