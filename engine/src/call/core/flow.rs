//! The flow's effects: the core owns the `ivr_scripts::Interpreter`, performs each effect
//! it asks for (answer, play, collect, record, lookup, queue, transfer, hang up) and feeds
//! the outcome back as the next input, as soon as it is known.
//!
//! Digits (RFC 4733, in-band or SIP INFO, all alike here) go where the call is: to the
//! bridged party, to the queue (the callback key), to the message being recorded (its
//! terminator), to a playing prompt with barge-in, or to the digit collector.

use std::time::{Duration, Instant};

use ivr_scripts::{Effect, EffectKind, Input, PromptRef, TransferMode};
use pii::Pii;

use super::io::{MediaOut, MessageOut, Output, PlayId, SavedMessage};
use super::phase::{Message, Phase, Step, Wait};
use super::CallCore;
use crate::acd::Timestamp;
use crate::collect::{CollectSpec, Collected, DigitCollector};
use crate::media::{MediaEvent, Prompt};
use crate::storage::EndReason;

/// The digit a waiting caller keys to be called back.
pub(super) const CALLBACK_DIGIT: char = '1';

impl CallCore {
    /// Feeds `input` to the interpreter and performs effects until one must wait.
    pub(super) fn resume(&mut self, now: Instant, input: Input) {
        let mut input = input;
        loop {
            match self.phase {
                Phase::Ending(_) | Phase::Ended => return,
                // Answered by an agent or a transfer target: the flow is done, the bridge
                // goes on until a hangup.
                Phase::Bridged(_) => {}
                _ => self.phase = Phase::Flow(Step::Running),
            }
            let effect = self.flow.interp.resume(self.wall(now), input);
            for e in self.flow.interp.take_errors() {
                tracing::warn!(call = %self.facts.id, "{e}");
            }
            match self.perform(now, effect) {
                Some(next) => input = next,
                None => return,
            }
        }
    }

    /// Performs one effect: the input to resume with at once, or None (waiting or ended).
    fn perform(&mut self, now: Instant, effect: Effect) -> Option<Input> {
        tracing::debug!(call = %self.facts.id, step = %effect.step, "effect");
        let implicit = !matches!(
            effect.kind,
            EffectKind::Answer | EffectKind::Hangup { .. } | EffectKind::Finished { .. }
        );
        // A flow that plays before answering gets an implicit answer (no early media).
        if implicit && !self.is_answered() && !self.answer(now) {
            self.end(now, EndReason::Rejected);
            return None;
        }
        match effect.kind {
            EffectKind::Answer => {
                if self.answer(now) {
                    return Some(Input::Answered);
                }
                self.end(now, EndReason::Error);
                None
            }
            EffectKind::Play { prompts, barge_in } => match self.play_refs(&prompts) {
                Some(play) => {
                    self.phase = Phase::Flow(Step::Playing { play, barge_in });
                    None
                }
                None => Some(Input::PlaybackDone),
            },
            EffectKind::PlayAndCollect {
                prompts,
                min_digits,
                max_digits,
                terminator,
                first_digit_timeout,
                inter_digit_timeout,
                barge_in,
            } => {
                let spec = CollectSpec {
                    min_digits: min_digits as usize,
                    max_digits: max_digits.max(1) as usize,
                    terminator,
                    first_digit_timeout,
                    inter_digit_timeout,
                    barge_in,
                };
                let mut collector = DigitCollector::new(spec);
                let prompt = self.play_refs(&prompts);
                if prompt.is_none() {
                    collector.prompts_finished(self.stamp(now));
                }
                self.phase = Phase::Flow(Step::Collecting { prompt, collector });
                None
            }
            EffectKind::Lookup {
                source,
                params,
                timeout,
            } => self.connector(false, source, params, timeout),
            EffectKind::Action {
                action,
                params,
                timeout,
            } => self.connector(true, action, params, timeout),
            EffectKind::Queue {
                queue,
                priority,
                max_wait,
                desk,
            } => {
                self.desk = desk;
                self.enter_queue(now, queue, priority, max_wait);
                None
            }
            EffectKind::Transfer {
                target,
                mode: TransferMode::Blind,
                timeout,
            } => self.refer(now, &target, timeout),
            EffectKind::Transfer {
                target,
                mode: TransferMode::Bridged,
                timeout,
            } => self.bridged_transfer(now, &target, timeout),
            EffectKind::Record {
                prompts,
                beep,
                max_length,
                terminator,
            } => {
                self.record_message(now, &effect.step, prompts, beep, max_length, terminator);
                None
            }
            EffectKind::Finished { .. } if matches!(self.phase, Phase::Bridged(_)) => None,
            EffectKind::Hangup { .. } | EffectKind::Finished { .. } => {
                if self.is_answered() {
                    self.end(now, EndReason::EngineHangup);
                } else {
                    self.reject(now, 480, None);
                    self.end(now, EndReason::Rejected);
                }
                None
            }
        }
    }

    /// Plays `prompts` to the caller; None when there is nothing to play.
    pub(super) fn play(&mut self, prompts: Vec<Prompt>) -> Option<PlayId> {
        if prompts.is_empty() {
            return None;
        }
        let id = self.new_play();
        self.push(Output::Media(MediaOut::Play {
            stream: self.caller.stream,
            id,
            prompts,
        }));
        Some(id)
    }

    fn play_refs(&mut self, refs: &[PromptRef]) -> Option<PlayId> {
        let prompts = self.env.prompts(&self.facts.id, refs);
        self.play(prompts)
    }

    pub(super) fn stop_playback(&mut self) {
        let stream = self.caller.stream;
        self.push(Output::Media(MediaOut::StopPlayback { stream }));
    }

    /// Starts a connector call; its result comes back through `handle_connector`.
    fn connector(
        &mut self,
        action: bool,
        name: String,
        params: Pii<serde_json::Map<String, serde_json::Value>>,
        timeout: Duration,
    ) -> Option<Input> {
        self.push(Output::Connector {
            action,
            name,
            params,
            timeout,
        });
        self.phase = Phase::Flow(Step::Connector { action });
        None
    }

    /// A `record` step: its prompts and a beep, then the caller's audio.
    fn record_message(
        &mut self,
        now: Instant,
        step: &str,
        prompts: Vec<PromptRef>,
        beep: bool,
        max_length: Duration,
        terminator: Option<char>,
    ) {
        let file = format!("{}-{}.wav", self.facts.id, step.replace('/', "_"));
        let path = self.env.config.data_dir.join("messages").join(file);
        let mut list = self.env.prompts(&self.facts.id, &prompts);
        if beep {
            let lang = prompts
                .first()
                .map(|p| p.language.clone())
                .unwrap_or_else(|| self.env.config.default_language.clone());
            list.push(self.env.beep(&lang));
        }
        match self.play(list) {
            Some(prompt) => {
                self.phase = Phase::Flow(Step::Message(Message::Prompting {
                    prompt,
                    path,
                    max_length,
                    terminator,
                }))
            }
            None => self.capture(now, path, max_length, terminator),
        }
    }

    /// Starts capturing the caller once the record step's prompts are over.
    fn capture(
        &mut self,
        now: Instant,
        path: std::path::PathBuf,
        max_length: Duration,
        terminator: Option<char>,
    ) {
        self.push(Output::Message(MessageOut::Start {
            stream: self.caller.stream,
            path,
            max_length,
        }));
        let until = self.stamp(now) + max_length;
        self.phase = Phase::Flow(Step::Message(Message::Capturing { until, terminator }));
    }

    /// Ends the capture (terminator, limit): the file is written, then `RecordDone`.
    fn save_message(&mut self) {
        self.push(Output::Message(MessageOut::Save));
        self.phase = Phase::Flow(Step::Message(Message::Saving));
    }

    pub(super) fn message_saved(&mut self, now: Instant, saved: Result<SavedMessage, String>) {
        let input = match saved {
            Ok(m) => {
                tracing::info!(call = %self.facts.id, file = %m.path.display(), duration = ?m.duration, "message recorded");
                Input::RecordDone {
                    path: m.path.display().to_string(),
                    duration: m.duration,
                }
            }
            Err(e) => {
                tracing::error!(call = %self.facts.id, error = %e, "could not write the recorded message");
                Input::RecordDone {
                    path: String::new(),
                    duration: Duration::ZERO,
                }
            }
        };
        match &mut self.phase {
            Phase::Flow(Step::Message(Message::Saving)) => self.resume(now, input),
            Phase::Ending(e) if e.message => {
                e.message = false;
                self.try_finish(now);
            }
            _ => {}
        }
    }

    /// A digit from the caller, however it came (RFC 4733, in-band, SIP INFO): personal
    /// data, revealed only to compare it with the keys that mean something to the call.
    pub(super) fn digit(&mut self, now: Instant, digit: Pii<char>) {
        let d = *digit.reveal();
        if self.relay_digit(d) {
            return;
        }
        if d == CALLBACK_DIGIT {
            if let Phase::Queued(q) = &self.phase {
                if matches!(q.wait, Wait::Listening { .. }) {
                    return self.request_callback();
                }
            }
        }
        let at = self.stamp(now);
        let Phase::Flow(step) = &mut self.phase else {
            return;
        };
        match step {
            Step::Message(Message::Capturing { terminator, .. }) if *terminator == Some(d) => {
                self.save_message()
            }
            Step::Playing { barge_in: true, .. } => {
                self.stop_playback();
                self.resume(
                    now,
                    Input::Digits {
                        digits: digit.map(String::from),
                    },
                );
            }
            Step::Collecting { collector, .. } => {
                let out = collector.digit(at, digit);
                if out.stop_playback {
                    self.stop_playback();
                }
                if let Some(done) = out.result {
                    self.resume(now, collected_input(done));
                }
            }
            _ => {}
        }
    }

    /// An event of the caller's stream.
    pub(super) fn caller_media(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { digit, source } => {
                tracing::debug!(call = %self.facts.id, ?source, "digit received");
                self.digit(now, digit.map(|d| d.to_char()));
            }
            MediaEvent::PlaybackFinished { id } => self.playback_finished(now, id),
            MediaEvent::PlaybackStopped { .. } => {}
            MediaEvent::FirstPacket { from } => {
                tracing::debug!(call = %self.facts.id, %from, "first RTP packet");
            }
            MediaEvent::RtpTimeout => {
                tracing::info!(call = %self.facts.id, "no RTP from the caller in time; ending the call");
                self.end(now, EndReason::RtpTimeout);
            }
        }
    }

    fn playback_finished(&mut self, now: Instant, id: PlayId) {
        let at = self.stamp(now);
        match &mut self.phase {
            Phase::Queued(_) => self.queue_playback_finished(now, id),
            Phase::Flow(Step::Ringing { ringback, .. }) if *ringback == id => {
                // Ring again while the target has not answered.
                let tone = self.env.ringback(&self.env.config.default_language);
                if let Some(next) = self.play(vec![tone]) {
                    if let Phase::Flow(Step::Ringing { ringback, .. }) = &mut self.phase {
                        *ringback = next;
                    }
                }
            }
            Phase::Flow(Step::Playing { play, .. }) if *play == id => {
                self.resume(now, Input::PlaybackDone)
            }
            Phase::Flow(Step::Farewell { play }) if *play == id => {
                self.end(now, EndReason::EngineHangup)
            }
            Phase::Flow(Step::Collecting { prompt, collector }) if *prompt == Some(id) => {
                *prompt = None;
                collector.prompts_finished(at);
            }
            Phase::Flow(Step::Message(Message::Prompting { prompt, .. })) if *prompt == id => {
                let Phase::Flow(Step::Message(Message::Prompting {
                    path,
                    max_length,
                    terminator,
                    ..
                })) = std::mem::replace(&mut self.phase, Phase::Flow(Step::Running))
                else {
                    return;
                };
                self.capture(now, path, max_length, terminator);
            }
            _ => {}
        }
    }

    /// A deadline of the current step passed.
    pub(super) fn step_timeout(&mut self, now: Instant, at: Timestamp) {
        let Phase::Flow(step) = &mut self.phase else {
            return;
        };
        match step {
            Step::Collecting { collector, .. } => {
                if let Some(done) = collector.timeout(at) {
                    self.resume(now, collected_input(done));
                }
            }
            Step::Message(Message::Capturing { until, .. }) if *until <= at => self.save_message(),
            Step::Referring { deadline, .. } if *deadline <= at => {
                self.transfer_failed(now, "the transfer timed out".into())
            }
            Step::Ringing { deadline, .. } if *deadline <= at => self.ringing_timeout(now),
            _ => {}
        }
    }
}

/// A collect's input for the flow. Too few digits (ended by the terminator or the
/// inter-digit timeout) are given to the flow as keyed, which counts them as invalid; only
/// silence is no input (docs/flows.md, "Menus and collects"; `svi simulate` does the same).
fn collected_input(c: Collected) -> Input {
    match c {
        Collected::Timeout(digits) if digits.reveal().is_empty() => Input::Timeout,
        Collected::Digits(digits) | Collected::Timeout(digits) => Input::Digits { digits },
    }
}
