//! The bridge: the caller and a second party (an agent, a bridged-transfer target) hear each
//! other through the engine's media workers (each stream's inbound audio is the other's
//! outbound audio), digits are relayed both ways (RFC 4733), and two sub-states run beside
//! it: the call recording and supervision.
//!
//! Supervision: the engine calls a supervisor's phone and mixes it in.
//!
//! | mode      | the supervisor hears | the agent hears        | the caller hears       |
//! |-----------|----------------------|------------------------|------------------------|
//! | `listen`  | caller + agent       | caller                 | agent                  |
//! | `whisper` | caller + agent       | caller + supervisor    | agent                  |
//! | `barge`   | caller + agent       | caller + supervisor    | agent + supervisor     |
//!
//! All of it is the media workers' taps and mixed feeds (`Link::Supervisor` on the caller's
//! and agent's streams; `Link::Caller`/`Link::Agent` on the supervisor's): no mixing task,
//! no extra delay. The mode can change during the call; `stop` hangs up the supervisor's
//! leg, as does the end of the call.

use std::time::Instant;

use super::io::{
    AcdOut, CommandError, CommandOutcome, MediaOut, Output, RecordingOut, StreamId, SuperviseMode,
};
use super::leg::LegEvent;
use super::phase::{Bridge, CallRecording, LegPurpose, Phase, Supervision};
use super::CallCore;
use crate::acd;
use crate::media::{DtmfDigit, Link, MediaEvent};
use crate::storage::EndReason;

/// Frames buffered towards each mixed feed of a supervision (100 ms).
const SUPERVISE_CAPACITY: usize = 5;

impl CallCore {
    fn route(&mut self, from: StreamId, tap: Link, to: StreamId, feed: Link, capacity: usize) {
        self.push(Output::Media(MediaOut::Route {
            from,
            tap,
            to,
            feed,
            capacity,
        }));
    }

    fn unroute(&mut self, stream: StreamId, link: Link) {
        self.push(Output::Media(MediaOut::Unroute { stream, link }));
    }

    /// Connects the caller and `peer` (answered), and starts recording when the call's
    /// queue or flow asks for it.
    pub(super) fn bridge(&mut self, now: Instant, peer: StreamId) {
        self.stop_playback();
        // Ringback the agent heard while a callback dialled the caller.
        self.push(Output::Media(MediaOut::StopPlayback { stream: peer }));
        let caller = self.caller.stream;
        self.push(Output::Media(MediaOut::Bridge { caller, peer }));
        let purpose = self.leg(peer).map(|l| l.purpose.clone());
        tracing::info!(call = %self.facts.id, ?purpose, "bridging the caller and the second leg");
        let flow = self.flow.loaded.flow.name().to_string();
        let recorded = self
            .env
            .config
            .recording
            .policy(self.queue.queue.as_deref(), Some(&flow))
            .draw();
        let recording = if recorded {
            // What the record would say if the engine died now: found again at the next start.
            let journal = self.record(now, EndReason::EngineFailure);
            self.push(Output::Recording(RecordingOut::Start {
                left: caller,
                right: peer,
                journal: Box::new(journal),
            }));
            CallRecording::Starting
        } else {
            CallRecording::Off
        };
        self.phase = Phase::Bridged(Box::new(Bridge {
            peer,
            recording,
            supervision: Supervision::Off,
            last_digit: None,
        }));
    }

    /// The bridge ends with the call: supervisor and peer hung up (unless the peer hung up
    /// first), the ACD told for an agent. True if the recording is being completed.
    pub(super) fn end_bridge(&mut self, now: Instant, b: Bridge, _reason: EndReason) -> bool {
        let Bridge {
            peer,
            recording,
            supervision,
            ..
        } = b;
        self.stop_supervision(now, supervision, peer);
        let recording = match recording {
            CallRecording::On { .. } => {
                self.push(Output::Recording(RecordingOut::Stop));
                true
            }
            // Its outcome is pending: stopped when it comes.
            CallRecording::Starting => true,
            CallRecording::Off => false,
        };
        self.unroute(self.caller.stream, Link::Relay);
        let agent = self.leg(peer).is_some_and(|l| l.agent().is_some());
        self.hang_up(now, peer);
        if agent {
            let call = self.call_key();
            self.acd(acd::Input::CallEnded { call });
            self.push(Output::Acd(AcdOut::Leave));
        }
        recording
    }

    pub(super) fn recording_started(&mut self, now: Instant, started: Result<String, String>) {
        let since = self.stamp(now);
        match (&mut self.phase, started) {
            (Phase::Bridged(b), Ok(file)) => {
                tracing::info!(call = %self.facts.id, "recording the call");
                b.recording = CallRecording::On {
                    file,
                    since,
                    paused: false,
                };
            }
            (Phase::Bridged(b), Err(e)) => {
                tracing::warn!(call = %self.facts.id, error = %e, "the call is not recorded");
                b.recording = CallRecording::Off;
            }
            // The call ended meanwhile: complete what was started.
            (Phase::Ending(_), Ok(_)) => self.push(Output::Recording(RecordingOut::Stop)),
            (Phase::Ending(e), Err(_)) => {
                e.recording = false;
                self.try_finish(now);
            }
            _ => {}
        }
    }

    /// `svi record pause|resume`.
    pub(super) fn pause_recording(&mut self, pause: bool) -> Result<CommandOutcome, CommandError> {
        let Phase::Bridged(b) = &mut self.phase else {
            return Err(CommandError::NotRecorded);
        };
        let CallRecording::On { paused, .. } = &mut b.recording else {
            return Err(CommandError::NotRecorded);
        };
        *paused = pause;
        self.push(Output::Recording(if pause {
            RecordingOut::Pause
        } else {
            RecordingOut::Resume
        }));
        let what = if pause { "paused" } else { "resumed" };
        tracing::info!(call = %self.facts.id, "recording {what} by an operator");
        Ok(if pause {
            CommandOutcome::RecordingPaused
        } else {
            CommandOutcome::RecordingResumed
        })
    }

    /// A caller's digit during the bridge goes on to the second party.
    pub(super) fn relay_digit(&mut self, digit: char) -> bool {
        let Phase::Bridged(b) = &self.phase else {
            return false;
        };
        let stream = b.peer;
        if let Some(digit) = DtmfDigit::from_char(digit) {
            self.push(Output::Media(MediaOut::SendDtmf { stream, digit }));
        }
        true
    }

    /// An event of the bridged party's stream: its digits go to the caller (and may be
    /// feature codes); silence past the RTP timeout means the phone vanished.
    pub(super) fn peer_media(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { digit, .. } => {
                let digit = *digit.reveal();
                let stream = self.caller.stream;
                self.push(Output::Media(MediaOut::SendDtmf { stream, digit }));
                self.feature_code(digit.to_char());
            }
            MediaEvent::RtpTimeout => {
                tracing::warn!(call = %self.facts.id, "no RTP from the second leg; ending the call");
                self.end(now, EndReason::RtpTimeout);
            }
            _ => {}
        }
    }

    /// Feature codes keyed by the agent during the bridge: `*7` pauses the recording (a
    /// card number is coming), `*8` resumes it.
    fn feature_code(&mut self, digit: char) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        let previous = b.last_digit.replace(digit);
        let CallRecording::On { paused, .. } = &mut b.recording else {
            return;
        };
        let out = match (previous, digit) {
            (Some('*'), '7') => RecordingOut::Pause,
            (Some('*'), '8') => RecordingOut::Resume,
            _ => return,
        };
        *paused = matches!(out, RecordingOut::Pause);
        tracing::info!(call = %self.facts.id, paused = *paused, "recording paused or resumed by the agent");
        self.push(Output::Recording(out));
    }

    /// What happened on the bridged party's leg: it hung up.
    pub(super) fn peer_leg_event(&mut self, now: Instant, event: LegEvent) {
        let Phase::Bridged(b) = &self.phase else {
            return;
        };
        if !matches!(event, LegEvent::Bye) {
            return;
        }
        let purpose = self.leg(b.peer).map(|l| l.purpose.clone());
        tracing::info!(call = %self.facts.id, ?purpose, "the second party hung up");
        let reason = match purpose {
            Some(LegPurpose::Agent(_)) => EndReason::AgentHangup,
            _ => EndReason::TargetHangup,
        };
        self.end(now, reason);
    }

    /// `svi supervise`: starts supervising (calling `target`), changes the mode of a
    /// running supervision, or stops it (`mode` None).
    pub(super) fn supervise(
        &mut self,
        now: Instant,
        mode: Option<SuperviseMode>,
        target: Option<String>,
    ) -> Result<CommandOutcome, CommandError> {
        let Phase::Bridged(b) = &mut self.phase else {
            return match mode {
                None => Err(CommandError::NotSupervised),
                Some(_) => Err(CommandError::NotBridged),
            };
        };
        let Some(mode) = mode else {
            let peer = b.peer;
            return match std::mem::replace(&mut b.supervision, Supervision::Off) {
                Supervision::Off => Err(CommandError::NotSupervised),
                running => {
                    self.stop_supervision(now, running, peer);
                    Ok(CommandOutcome::SupervisionStopped)
                }
            };
        };
        match &mut b.supervision {
            Supervision::Calling { mode: m, .. } => {
                *m = mode;
                return Ok(CommandOutcome::SupervisionChanged { mode });
            }
            Supervision::Live { mode: m, .. } => {
                *m = mode;
                self.unwire_supervision();
                self.wire_supervision();
                tracing::info!(call = %self.facts.id, ?mode, "supervision mode changed");
                return Ok(CommandOutcome::SupervisionChanged { mode });
            }
            Supervision::Off => {}
        }
        let target = target.ok_or(CommandError::NoSupervisor)?;
        let to = self.env.transfer_target(&target, self.caller.peer)?;
        let leg = self.place_leg(to, LegPurpose::Supervisor, "supervision".into());
        tracing::info!(call = %self.facts.id, ?mode, "calling the supervisor");
        if let Phase::Bridged(b) = &mut self.phase {
            b.supervision = Supervision::Calling { leg, mode };
        }
        Ok(CommandOutcome::SupervisorCalled { target, mode })
    }

    /// The streams of the bridge and of its live supervisor, with the mode.
    fn supervised(&self) -> Option<(StreamId, StreamId, SuperviseMode)> {
        let Phase::Bridged(b) = &self.phase else {
            return None;
        };
        match &b.supervision {
            Supervision::Live { leg, mode } => Some((b.peer, *leg, *mode)),
            _ => None,
        }
    }

    fn wire_supervision(&mut self) {
        let Some((agent, sup, mode)) = self.supervised() else {
            return;
        };
        let caller = self.caller.stream;
        let c = SUPERVISE_CAPACITY;
        self.route(caller, Link::Supervisor, sup, Link::Caller, c);
        self.route(agent, Link::Supervisor, sup, Link::Agent, c);
        if matches!(mode, SuperviseMode::Whisper | SuperviseMode::Barge) {
            self.route(sup, Link::Agent, agent, Link::Supervisor, c);
        }
        if mode == SuperviseMode::Barge {
            self.route(sup, Link::Caller, caller, Link::Supervisor, c);
        }
    }

    fn unwire_supervision(&mut self) {
        let Some((agent, sup, _)) = self.supervised() else {
            return;
        };
        self.unwire(agent, sup);
    }

    fn unwire(&mut self, agent: StreamId, sup: StreamId) {
        let caller = self.caller.stream;
        self.unroute(caller, Link::Supervisor);
        self.unroute(agent, Link::Supervisor);
        self.unroute(sup, Link::Caller);
        self.unroute(sup, Link::Agent);
    }

    /// Hangs up the supervisor's leg and takes it out of the mix.
    fn stop_supervision(&mut self, now: Instant, supervision: Supervision, agent: StreamId) {
        match supervision {
            Supervision::Off => {}
            Supervision::Calling { leg, .. } => self.hang_up(now, leg),
            Supervision::Live { leg, .. } => {
                self.unwire(agent, leg);
                self.hang_up(now, leg);
                tracing::info!(call = %self.facts.id, "supervision ended");
            }
        }
    }

    /// What happened on the supervisor's leg.
    pub(super) fn supervisor_leg_event(&mut self, now: Instant, stream: StreamId, event: LegEvent) {
        let Phase::Bridged(b) = &mut self.phase else {
            return;
        };
        let peer = b.peer;
        match event {
            LegEvent::Ringing | LegEvent::MediaUpdated(_) => {}
            LegEvent::Answered(Some(n)) => {
                let Supervision::Calling { leg, mode } = b.supervision else {
                    return;
                };
                b.supervision = Supervision::Live { leg, mode };
                let params = self.env.leg_params(&n);
                self.push(Output::Media(MediaOut::Params { stream, params }));
                tracing::info!(call = %self.facts.id, ?mode, "supervision started");
                self.wire_supervision();
            }
            LegEvent::Answered(None) => {
                tracing::warn!(call = %self.facts.id, "the supervisor's phone answered without a usable codec");
                let running = std::mem::replace(&mut b.supervision, Supervision::Off);
                self.stop_supervision(now, running, peer);
            }
            LegEvent::Failed { why, .. } => {
                tracing::warn!(call = %self.facts.id, %why, "the supervisor's phone did not answer");
                b.supervision = Supervision::Off;
                self.retire(stream);
            }
            LegEvent::Bye => {
                // The supervisor hung up: out of the mix, the call goes on.
                b.supervision = Supervision::Off;
                self.unwire(peer, stream);
                self.retire(stream);
                tracing::info!(call = %self.facts.id, "the supervisor hung up");
            }
        }
    }
}
