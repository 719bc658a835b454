//! Calls the engine places (an alarm call-out; later callbacks on request and campaigns):
//! the call starts with our INVITE instead of the caller's. The called number rings on a
//! leg of the call's leg table (`sip::uac`, as for any leg the engine places) for at most
//! the ring timeout (`Dialing`); when it answers, that leg becomes the call's caller side
//! (its dialog, SDP session and stream, as a caller dialled back does) and the flow starts
//! as for an inbound call. Not answered, busy or refused: the call ends `no_answer` (or
//! `error` when the number cannot be dialled at all), and whoever placed it decides what
//! comes next. One number per call: trying a list in turn is the placer's policy.

use std::time::{Duration, Instant, SystemTime};

use ivr_scripts::Interpreter;
use sip::endpoint::{Peer, Transport};
use sip::sdp::{LocalMedia, SdpSession};

use super::io::{StreamId, TargetError};
use super::leg::LegEvent;
use super::phase::{Caller, CallerLeg, Dialing, LegPurpose, Phase, Step};
use super::target::LegTarget;
use super::{CallCore, CallEnv, Facts, FlowRun, Outbox, QueueRecord, CALLER_STREAM};
use crate::acd::Timeline;
use crate::flows::FlowSet;
use crate::storage::EndReason;
use pii::Pii;

/// A call for the engine to place.
#[derive(Clone, PartialEq, Eq)]
pub struct Originate {
    /// The flow the answered call runs.
    pub flow: String,
    /// A number (through the first trunk), a registered extension, or a SIP URI.
    pub number: String,
    /// How long the number rings before the call gives up.
    pub ring_timeout: Duration,
    /// Our identity in From (its user part): what the called phone shows, and the call's
    /// `caller` for the flow and the record.
    pub caller_id: String,
}

/// Never prints the number (personal data).
impl std::fmt::Debug for Originate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Originate")
            .field("flow", &self.flow)
            .field("number", &Pii::new(&self.number))
            .field("ring_timeout", &self.ring_timeout)
            .field("caller_id", &self.caller_id)
            .finish()
    }
}

/// Why a call cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    #[error("flow `{0}` is not loaded")]
    NoFlow(String),
    #[error("the number cannot be dialled: {0}")]
    Target(#[from] TargetError),
    #[error("`{0}` is not a usable caller id (letters, digits and `+-._`)")]
    CallerId(String),
    #[error("the ring timeout must be more than zero")]
    RingTimeout,
    #[error("this node does not place calls now (standby, stopping or at sip.max_calls)")]
    NotServing,
}

/// The caller side before anyone answered: no dialog, no stream. `via_pbx` needs the PBX
/// an inbound call came from only when no trunk is configured, which `target` refuses
/// first; this peer is never dialled.
const NOBODY: Peer = Peer {
    transport: Transport::Udp,
    addr: std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
};

/// Where `number` rings: a SIP URI as given, a registered extension at its phone, any
/// other number through the first trunk, which must exist (there is no PBX a call came
/// from to send it back to).
fn target(env: &CallEnv, number: &str) -> Result<LegTarget, TargetError> {
    let uri = number.starts_with("sip:") || number.starts_with("sips:");
    if !uri && env.contacts.contact(number).is_none() && env.config.trunks.is_empty() {
        return Err(TargetError::NoTrunk);
    }
    env.transfer_target(number, NOBODY)
}

impl CallCore {
    /// A call the engine places: the number's leg opens its stream at once (its INVITE
    /// goes when the driver reports the stream open).
    pub fn originate(
        now: Instant,
        wall: SystemTime,
        env: CallEnv,
        flows: &FlowSet,
        order: Originate,
    ) -> Result<CallCore, OriginateError> {
        let loaded = flows
            .get(&order.flow)
            .ok_or_else(|| OriginateError::NoFlow(order.flow.clone()))?;
        let caller_id = order.caller_id;
        let usable = |c: char| c.is_ascii_alphanumeric() || "+-._".contains(c);
        if caller_id.is_empty() || !caller_id.chars().all(usable) {
            return Err(OriginateError::CallerId(caller_id));
        }
        if order.ring_timeout.is_zero() {
            return Err(OriginateError::RingTimeout);
        }
        let target = target(&env, &order.number)?;
        let clock = Timeline::new(now, wall);
        let facts = Facts {
            id: format!("{:016x}", rand::random::<u64>()),
            sip_call_id: String::new(),
            caller: Pii::new(caller_id.clone()),
            called: Pii::new(order.number),
            started_at: clock.stamp(now),
        };
        let interp = Interpreter::new(loaded.flow.clone(), facts.call_info());
        let sdp = SdpSession::new(LocalMedia::new(env.rtp_ip(), 0, 0));
        let deadline = clock.stamp(now) + order.ring_timeout;
        tracing::info!(call = %facts.id, flow = %order.flow, version = %loaded.version, "placing a call");
        let mut core = CallCore {
            env,
            clock,
            facts,
            flow: FlowRun { loaded, interp },
            caller: Caller {
                peer: NOBODY,
                stream: CALLER_STREAM,
                sdp,
                leg: CallerLeg::Closed,
            },
            // Replaced below, once the leg has its stream.
            phase: Phase::Flow(Step::Running),
            answered_at: None,
            codec: None,
            queue: QueueRecord::default(),
            desk: Pii::default(),
            recorded: None,
            legs: Default::default(),
            io: Outbox::new(),
            dial_refused: None,
            failover: None,
        };
        let leg = core.place_leg(target, LegPurpose::Callee, caller_id);
        core.phase = Phase::Dialing(Dialing { leg, deadline });
        Ok(core)
    }

    /// The number rang for the whole ring timeout: CANCEL, and the call is over.
    pub(super) fn ring_timeout(&mut self, now: Instant) {
        tracing::info!(call = %self.facts.id, "the called number did not answer in time");
        self.end(now, EndReason::NoAnswer);
    }

    /// What happened on the leg of the number the call rings.
    pub(super) fn callee_leg_event(&mut self, now: Instant, stream: StreamId, event: LegEvent) {
        match event {
            LegEvent::Ringing | LegEvent::MediaUpdated(_) | LegEvent::Bye => {}
            LegEvent::Answered(Some(_)) => {
                // The leg is the call's caller side from now on; the flow sees the call as
                // answered.
                if !self.leg_becomes_caller(stream) {
                    return self.end(now, EndReason::Error);
                }
                tracing::info!(call = %self.facts.id, "the called number answered");
                self.facts.sip_call_id = self.caller_call_id().to_string();
                self.answered_at = Some(self.stamp(now));
                self.phase = Phase::Flow(Step::Running);
                self.start(now);
            }
            LegEvent::Answered(None) => {
                tracing::warn!(call = %self.facts.id, "answered without a usable codec; hanging up");
                self.end(now, EndReason::Error);
            }
            LegEvent::Failed { status, why } => {
                if let Some(call_id) = self.leg(stream).and_then(|l| l.call_id()) {
                    self.facts.sip_call_id = call_id.to_string();
                }
                tracing::info!(call = %self.facts.id, status, %why, "the called number was not reached");
                let reason = match status {
                    408 | 480 | 486 | 487 | 600 | 603 => EndReason::NoAnswer,
                    _ => EndReason::Error,
                };
                self.end(now, reason);
            }
        }
    }
}
