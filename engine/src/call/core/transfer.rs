//! `transfer` steps. Blind: REFER (RFC 3515) asks the PBX to call the target and replace the
//! caller's leg; the PBX reports progress in NOTIFYs (a 2xx sipfrag means the target
//! answered). Bridged: the engine calls the target itself, the caller hears ringback, and
//! on answer the two are bridged; no answer within the step's timeout, a refusal or an
//! unusable answer takes the step's `failed` branch.

use std::time::{Duration, Instant};

use ivr_scripts::{Input, TransferOutcome};
use sip::message::{HeaderName, Method};

use super::io::{MediaOut, Output, StreamId};
use super::leg::LegEvent;
use super::phase::{CallerLeg, LegPurpose, Phase, Step};
use super::CallCore;
use crate::call::transfer::{is_uri, refer_target};
use crate::dialplan::Purpose;

impl CallCore {
    /// A number the engine dials for the caller (a transfer, a callback) must pass the
    /// toll-fraud policy of its route (`crate::dialplan`); a refusal is logged and kept for
    /// the call record.
    pub(super) fn dial_for_caller(&mut self, purpose: Purpose, number: &str) -> Result<(), String> {
        crate::dialplan::check(&self.env.config, purpose, number).map_err(|refused| {
            tracing::warn!(call = %self.facts.id, "{refused}");
            let text = refused.to_string();
            self.dial_refused = Some(text.clone());
            text
        })
    }

    /// A blind transfer with REFER; the result comes from the REFER's answer and NOTIFYs.
    pub(super) fn refer(&mut self, now: Instant, target: &str, timeout: Duration) -> Option<Input> {
        if !is_uri(target) {
            // The PBX would dial this number for us: the toll-fraud policy applies.
            if let Err(why) = self.dial_for_caller(Purpose::Transfer, target) {
                return Some(Input::TransferResult(TransferOutcome::Failed(why)));
            }
        }
        let CallerLeg::Answered { dialog, .. } = &mut self.caller.leg else {
            let why = "the call is not answered".to_string();
            return Some(Input::TransferResult(TransferOutcome::Failed(why)));
        };
        let refer_to = refer_target(target, dialog);
        let local_uri = dialog.local_uri.uri.to_string();
        // Answered: the dialog is there.
        let (mut refer, peer) = self.caller_request(Method::Refer)?;
        refer
            .headers
            .push(HeaderName::ReferTo, format!("<{refer_to}>"));
        refer
            .headers
            .push(HeaderName::ReferredBy, format!("<{local_uri}>"));
        let req = self.send(refer, peer);
        tracing::info!(call = %self.facts.id, "blind transfer requested (REFER)");
        let deadline = self.stamp(now) + timeout;
        self.phase = Phase::Flow(Step::Referring { req, deadline });
        None
    }

    /// A `transfer` step in `bridged` mode: the engine calls the target itself and bridges
    /// the caller to it on answer; the caller hears ringback meanwhile.
    pub(super) fn bridged_transfer(
        &mut self,
        now: Instant,
        target: &str,
        timeout: Duration,
    ) -> Option<Input> {
        let to = match self.env.transfer_target(target, self.caller.peer) {
            Ok(t) => t,
            Err(e) => {
                let why = format!("transfer target `{target}`: {e}");
                return Some(Input::TransferResult(TransferOutcome::Failed(why)));
            }
        };
        if let Some(number) = &to.number {
            if let Err(why) = self.dial_for_caller(Purpose::Transfer, number) {
                return Some(Input::TransferResult(TransferOutcome::Failed(why)));
            }
        }
        let from = self.facts.caller.reveal().clone();
        let leg = self.place_leg(to, LegPurpose::Transfer, from);
        let tone = self.env.ringback(&self.env.config.default_language);
        let ringback = self.play(vec![tone]).unwrap_or_default();
        let deadline = self.stamp(now) + timeout;
        self.phase = Phase::Flow(Step::Ringing {
            leg,
            deadline,
            ringback,
        });
        None
    }

    /// What happened on the bridged-transfer target's leg.
    pub(super) fn transfer_leg_event(&mut self, now: Instant, stream: StreamId, event: LegEvent) {
        match event {
            LegEvent::Ringing | LegEvent::MediaUpdated(_) | LegEvent::Bye => {}
            LegEvent::Answered(Some(n)) => {
                let params = self.env.leg_params(&n);
                self.push(Output::Media(MediaOut::Params { stream, params }));
                tracing::info!(call = %self.facts.id, "bridged transfer answered");
                self.bridge(now, stream);
                self.resume(now, Input::TransferResult(TransferOutcome::Completed));
            }
            LegEvent::Answered(None) => {
                // No common codec or no SDP: the leg cannot carry audio. Hang it up rather
                // than bridge the caller to silence.
                tracing::warn!(call = %self.facts.id, "the target answered without a usable SDP answer");
                self.transfer_failed(
                    now,
                    "the called party answered without a usable codec".into(),
                );
            }
            LegEvent::Failed { why, .. } => {
                tracing::info!(call = %self.facts.id, %why, "bridged transfer failed");
                self.transfer_failed(now, why);
            }
        }
    }

    /// The target did not answer within the step's timeout: CANCEL, `failed` branch.
    pub(super) fn ringing_timeout(&mut self, now: Instant) {
        tracing::info!(call = %self.facts.id, "bridged transfer: no answer in time");
        self.transfer_failed(now, "no answer from the target".into());
    }

    /// The transfer step fails: what rings is hung up, the flow takes `failed`.
    pub(super) fn transfer_failed(&mut self, now: Instant, why: String) {
        let phase = std::mem::replace(&mut self.phase, Phase::Flow(Step::Running));
        match phase {
            Phase::Flow(Step::Ringing { leg, .. }) => {
                self.hang_up(now, leg);
                self.stop_playback();
            }
            Phase::Flow(Step::Referring { .. }) => {}
            other => {
                self.phase = other;
                return;
            }
        }
        self.resume(now, Input::TransferResult(TransferOutcome::Failed(why)));
    }
}
