//! Callbacks on the wire: a waiting caller keys `1` (in a queue that offers callbacks),
//! hears a confirmation and is hung up, while the call keeps its place in the ACD. When its
//! turn comes the engine rings the agent (`CallbackCall`); once the agent answers it dials
//! the caller back (through the trunk, or the PBX the call came from), and when the caller
//! answers, the caller's new leg takes the place of the original one (dialog, SDP, media)
//! and the ACD bridges it to the agent as for any call. A caller who does not answer is
//! tried again after the queue's `retry_after`, up to `max_attempts`.

use sip::endpoint::ClientTxId;
use sip::message::{Method, Response};

use super::leg::{accept_2xx, hang_up_leg, Answer, Leg, LegPurpose};
use super::{Call, Next, Waiting};
use crate::acd::{self, CallId, CallbackResult};
use crate::call::signalling::finish_request;
use crate::storage::{EndReason, QueueOutcome};

/// Where a callback stands.
pub(in crate::call) enum Callback {
    /// The confirmation plays; the caller is hung up when it ends.
    Confirming { prompt: Option<u64> },
    /// The caller's leg is gone; the call waits in the ACD (`attempts` failed so far).
    Waiting { attempts: u32 },
    /// The agent answered; the caller is being dialled on `leg`.
    Dialing { attempts: u32, leg: Box<Leg> },
}

/// The digit a waiting caller keys to be called back.
pub(super) const CALLBACK_DIGIT: char = '1';

impl Call {
    /// The queue's callback settings, if it offers callbacks.
    pub(super) fn callback_config(&self) -> Option<&acd::CallbackConfig> {
        let queue = self.queue_record.queue.as_deref()?;
        self.ctx
            .config
            .acd
            .queues
            .iter()
            .find(|q| q.id.as_str() == queue)
            .and_then(|q| q.callback.as_ref())
    }

    /// The caller keyed the callback digit while waiting.
    pub(super) fn request_callback(&mut self) -> Next {
        if self.callback.is_none() && !self.bridged && self.callback_config().is_some() {
            tracing::info!(call = %self.id, "callback requested");
            self.ctx.acd.input(acd::Input::CallbackRequested {
                call: CallId::from(self.id.as_str()),
            });
        }
        Next::Wait
    }

    /// `CallbackAccepted`: confirm, then hang up the caller's leg.
    pub(super) fn callback_accepted(&mut self) -> Next {
        self.stop_playback();
        if let Waiting::Queue(q) = &mut self.waiting {
            q.moh = None;
        }
        let lang = self.language();
        let prompt = self.ctx.prompts.get(&lang, "queue_callback_confirm");
        let id = prompt.and_then(|p| self.media.as_ref().and_then(|(m, _)| m.play(vec![p]).ok()));
        self.callback = Some(Callback::Confirming { prompt: id });
        if id.is_none() {
            self.caller_leaves_for_callback(true);
        }
        Next::Wait
    }

    /// The confirmation is over (`true`: we send BYE) or the caller hung up first.
    pub(super) fn caller_leaves_for_callback(&mut self, send_bye: bool) {
        if send_bye {
            if let Some(d) = self.dialog.as_mut() {
                let mut bye = d.create_request(Method::Bye);
                let hop = d.target_addr();
                let peer =
                    crate::call::signalling::next_hop(hop, self.from, &self.ctx.config.sip.allowed);
                finish_request(
                    &mut bye,
                    self.ctx.local_sip,
                    self.from.transport,
                    &self.ctx.config.sip.user_agent,
                );
                let sip = self.ctx.sip.clone();
                tokio::spawn(async move {
                    let _ = sip.send_request(bye, peer).await;
                });
            }
        }
        self.dialog = None;
        self.media = None;
        self.callback = Some(Callback::Waiting { attempts: 0 });
        tracing::info!(call = %self.id, "caller hung up to be called back; the call keeps its place");
    }

    /// Whether a finished playback was the confirmation.
    pub(super) fn callback_prompt_finished(&mut self, id: u64) -> bool {
        if matches!(self.callback, Some(Callback::Confirming { prompt: Some(p) }) if p == id) {
            self.caller_leaves_for_callback(true);
            return true;
        }
        false
    }

    /// The agent of a callback answered: dial the caller back.
    pub(super) async fn dial_caller_back(&mut self) {
        let Some(Callback::Waiting { attempts }) = self.callback else {
            return;
        };
        let number = self.caller.reveal().clone();
        let called = self.called.reveal().clone();
        let dialled = match self.via_pbx(&number) {
            Ok(to) => self.new_leg(to, LegPurpose::Customer, &called).await,
            Err(e) => Err(e),
        };
        match dialled {
            Ok(leg) => {
                tracing::info!(call = %self.id, attempt = attempts + 1, "calling the caller back");
                if let Some(agent) = &self.leg {
                    let _ = agent.media.play(vec![self.ringback_tone(&self.language())]);
                }
                self.callback = Some(Callback::Dialing {
                    attempts,
                    leg: Box::new(leg),
                });
            }
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "cannot call the caller back");
                self.callback_attempt_failed(attempts, CallbackResult::Failed(e));
            }
        }
    }

    pub(super) fn is_customer_tx(&self, tx: ClientTxId) -> bool {
        matches!(&self.callback, Some(Callback::Dialing { leg, .. }) if leg.tx == tx)
    }

    /// A response to the INVITE that calls the caller back.
    pub(super) fn customer_response(&mut self, response: Response) -> Next {
        let Some(Callback::Dialing { attempts, leg }) = self.callback.as_mut() else {
            return Next::Wait;
        };
        let attempts = *attempts;
        match response.status {
            100..=199 => Next::Wait,
            200..=299 => match accept_2xx(&self.ctx, leg, &response) {
                Answer::Again => Next::Wait,
                Answer::First(Some(n)) => {
                    let Some(Callback::Dialing { leg, .. }) = self.callback.take() else {
                        return Next::Wait;
                    };
                    let leg = *leg;
                    let params = self.leg_params(&n);
                    let _ = leg.media.set_params(params.clone());
                    // The caller's new leg is the call's leg from now on.
                    self.params = params;
                    self.codec = Some(super::media_codec(n.codec.codec));
                    self.dialog = leg.dialog;
                    self.sdp = Some(leg.sdp);
                    self.from = leg.peer;
                    self.media = Some((leg.media, leg.events));
                    self.callback = Some(Callback::Waiting { attempts });
                    self.queue_record.outcome = Some(QueueOutcome::Callback);
                    tracing::info!(call = %self.id, "the caller answered the callback");
                    self.ctx.acd.input(acd::Input::CallbackResult {
                        call: CallId::from(self.id.as_str()),
                        result: CallbackResult::Connected,
                    });
                    Next::Wait
                }
                Answer::First(None) => {
                    hang_up_leg(&self.ctx, leg);
                    self.callback_attempt_failed(
                        attempts,
                        CallbackResult::Failed("no usable codec".into()),
                    )
                }
            },
            status => {
                let result = match status {
                    408 | 480 | 486 | 487 | 600 | 603 => CallbackResult::NoAnswer,
                    s => CallbackResult::Failed(format!("the caller's line answered {s}")),
                };
                let _ = self.ctx.control.send(crate::dispatch::Control::LegEnded {
                    call_id: leg.call_id.clone(),
                });
                self.callback_attempt_failed(attempts, result)
            }
        }
    }

    pub(super) fn customer_timeout(&mut self) -> Next {
        let Some(Callback::Dialing { attempts, leg }) = self.callback.as_mut() else {
            return Next::Wait;
        };
        let attempts = *attempts;
        hang_up_leg(&self.ctx, leg);
        self.callback_attempt_failed(attempts, CallbackResult::NoAnswer)
    }

    /// The caller was not reached: free the agent, and try again later or give up.
    fn callback_attempt_failed(&mut self, attempts: u32, result: CallbackResult) -> Next {
        tracing::info!(call = %self.id, ?result, "callback attempt failed");
        self.drop_leg(false);
        self.queue_record.agent = None;
        self.queue_record.agent_answered_at = None;
        self.ctx.acd.input(acd::Input::CallbackResult {
            call: CallId::from(self.id.as_str()),
            result,
        });
        let attempts = attempts + 1;
        let max = self.callback_config().map(|c| c.max_attempts).unwrap_or(1);
        if attempts >= max {
            // The ACD gives up too (`CallbackFailed`): the call is over.
            tracing::warn!(call = %self.id, attempts, "the caller could not be called back");
            self.queue_record.outcome = Some(QueueOutcome::CallbackFailed);
            self.waiting = Waiting::Nothing;
            return Next::End(EndReason::EngineHangup);
        }
        self.callback = Some(Callback::Waiting { attempts });
        Next::Wait
    }
}
