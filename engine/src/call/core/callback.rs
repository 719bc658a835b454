//! Callbacks: a waiting caller keys `1` (in a queue that offers callbacks), hears a
//! confirmation and is hung up, while the call keeps its place in the ACD. When its turn
//! comes the engine rings the agent (`CallbackCall`); once the agent answers it dials the
//! caller back (through the trunk, or the PBX the call came from), and when the caller
//! answers, the caller's new leg takes the place of the original one (dialog, SDP, media)
//! and the ACD bridges it to the agent as for any call. A caller who does not answer is
//! tried again after the queue's `retry_after`, up to `max_attempts`.

use std::time::Instant;

use sip::message::Method;

use super::io::{AcdOut, MediaOut, Output, StreamId};
use super::leg::LegEvent;
use super::phase::{CallerLeg, LegPurpose, Phase, Queued, Wait};
use super::CallCore;
use crate::acd::{self, CallbackResult};
use crate::storage::{EndReason, QueueOutcome};

impl CallCore {
    /// The caller keyed the callback digit while waiting.
    pub(super) fn request_callback(&mut self) {
        let queue = self.queue.queue.clone().unwrap_or_default();
        if self.env.callback(&queue).is_some() {
            tracing::info!(call = %self.facts.id, "callback requested");
            let call = self.call_key();
            self.acd(acd::Input::CallbackRequested { call });
        }
    }

    /// `CallbackAccepted`: confirm, then hang up the caller's leg.
    pub(super) fn callback_accepted(&mut self, now: Instant) {
        self.stop_playback();
        let prompt = self
            .env
            .prompts
            .get(&self.language(), "queue_callback_confirm");
        let id = prompt.and_then(|p| self.play(vec![p]));
        match (id, &mut self.phase) {
            (Some(prompt), Phase::Queued(q)) => q.wait = Wait::Confirming { prompt },
            _ => self.caller_leaves_for_callback(now, true),
        }
    }

    /// The confirmation is over (`send_bye`: we hang up) or the caller hung up first.
    pub(super) fn caller_leaves_for_callback(&mut self, _now: Instant, send_bye: bool) {
        if send_bye {
            if let Some((bye, peer)) = self.caller_request(Method::Bye) {
                self.send(bye, peer);
            }
        }
        self.caller.leg = CallerLeg::Closed;
        let stream = self.caller.stream;
        self.push(Output::Media(MediaOut::Close { stream }));
        if let Phase::Queued(q) = &mut self.phase {
            q.wait = Wait::Away { attempts: 0 };
        }
        tracing::info!(call = %self.facts.id, "caller hung up to be called back; the call keeps its place");
    }

    /// The agent of a callback answered: dial the caller back.
    pub(super) fn dial_caller_back(&mut self, now: Instant, attempts: u32) {
        let number = self.facts.caller.reveal().clone();
        let allowed = self.dial_for_caller(crate::dialplan::Purpose::Callback, &number);
        let target = match allowed.and_then(|()| {
            self.env
                .via_pbx(&number, self.caller.peer)
                .map_err(|e| e.to_string())
        }) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(call = %self.facts.id, error = %e, "cannot call the caller back");
                return self.callback_attempt_failed(
                    now,
                    attempts,
                    CallbackResult::Failed(e.to_string()),
                );
            }
        };
        let called = self.facts.called.reveal().clone();
        let customer = self.place_leg(target, LegPurpose::Customer, called);
        tracing::info!(call = %self.facts.id, attempt = attempts + 1, "calling the caller back");
        let tone = self.env.ringback(&self.language());
        let Phase::Queued(q) = &self.phase else {
            return self.retire(customer);
        };
        let agent_stream = q.agents.iter().copied().find(|s| self.is_answered_leg(*s));
        if let Phase::Queued(q) = &mut self.phase {
            q.wait = Wait::Dialing { attempts, customer };
        }
        if let Some(stream) = agent_stream {
            // The agent hears ringback while the caller's phone rings.
            let id = self.new_play();
            self.push(Output::Media(MediaOut::Play {
                stream,
                id,
                prompts: vec![tone],
            }));
        }
    }

    /// What happened on the leg that calls the caller back.
    pub(super) fn customer_leg_event(&mut self, now: Instant, stream: StreamId, event: LegEvent) {
        let Phase::Queued(q) = &mut self.phase else {
            return;
        };
        let Wait::Dialing { attempts, .. } = q.wait else {
            return;
        };
        match event {
            LegEvent::Ringing | LegEvent::MediaUpdated(_) => {}
            LegEvent::Answered(Some(n)) => {
                // The caller's new leg is the call's leg from now on.
                if !self.leg_becomes_caller(stream) {
                    return;
                }
                if let Phase::Queued(q) = &mut self.phase {
                    q.wait = Wait::Reconnected;
                }
                let params = self.env.leg_params(&n);
                self.push(Output::Media(MediaOut::Params { stream, params }));
                self.codec = Some(super::env::media_codec(n.codec.codec));
                self.queue.outcome = Some(QueueOutcome::Callback);
                tracing::info!(call = %self.facts.id, "the caller answered the callback");
                let call = self.call_key();
                self.acd(acd::Input::CallbackResult {
                    call,
                    result: CallbackResult::Connected,
                });
            }
            LegEvent::Answered(None) => {
                q.wait = Wait::Away { attempts };
                self.hang_up(now, stream);
                let result = CallbackResult::Failed("no usable codec".into());
                self.callback_attempt_failed(now, attempts, result);
            }
            LegEvent::Failed { status, why } => {
                q.wait = Wait::Away { attempts };
                self.retire(stream);
                let result = match status {
                    408 | 480 | 486 | 487 | 600 | 603 => CallbackResult::NoAnswer,
                    _ => CallbackResult::Failed(why),
                };
                self.callback_attempt_failed(now, attempts, result);
            }
            // Not answered: no BYE can come.
            LegEvent::Bye => {}
        }
    }

    /// The caller was not reached: free the agent, and try again later or give up.
    fn callback_attempt_failed(&mut self, now: Instant, attempts: u32, result: CallbackResult) {
        tracing::info!(call = %self.facts.id, ?result, "callback attempt failed");
        if let Phase::Queued(q) = &mut self.phase {
            let agents = std::mem::take(&mut q.agents);
            q.wait = Wait::Away { attempts };
            for leg in agents {
                self.hang_up(now, leg);
            }
        }
        self.queue.agent = None;
        self.queue.agent_answered_at = None;
        let call = self.call_key();
        self.acd(acd::Input::CallbackResult { call, result });
        let attempts = attempts + 1;
        let queue = self.queue.queue.clone().unwrap_or_default();
        let max = self
            .env
            .callback(&queue)
            .map(|c| c.max_attempts)
            .unwrap_or(1);
        if attempts >= max {
            // The ACD gives up too (`CallbackFailed`): the call is over.
            tracing::warn!(call = %self.facts.id, attempts, "the caller could not be called back");
            self.queue.outcome = Some(QueueOutcome::CallbackFailed);
            self.phase = Phase::Flow(super::Step::Running);
            self.push(Output::Acd(AcdOut::Leave));
            return self.end(now, EndReason::EngineHangup);
        }
        if let Phase::Queued(Queued { wait, .. }) = &mut self.phase {
            *wait = Wait::Away { attempts };
        }
    }
}
