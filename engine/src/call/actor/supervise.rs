//! Supervision of a bridged call: the engine calls a supervisor's phone and mixes it in.
//!
//! | mode      | the supervisor hears | the agent hears        | the caller hears       |
//! |-----------|----------------------|------------------------|------------------------|
//! | `listen`  | caller + agent       | caller                 | agent                  |
//! | `whisper` | caller + agent       | caller + supervisor    | agent                  |
//! | `barge`   | caller + agent       | caller + supervisor    | agent + supervisor     |
//!
//! All of it is the media workers' taps and mixed feeds (`media::Link::Supervisor` on the
//! caller's and agent's streams; `Link::Caller`/`Link::Agent` on the supervisor's): no
//! mixing task, no extra delay. The mode can change during the call; `stop` hangs up the
//! supervisor's leg, as does the end of the call.

use sip::endpoint::{ClientTxId, ServerTxId};
use sip::message::{HeaderName, Method, Request, Response};
use tokio::sync::mpsc;

use super::leg::{accept_2xx, answer_reoffer, hang_up_leg, Answer, Leg, LegPurpose};
use super::{Call, Next};
use crate::call::SuperviseMode;
use crate::dispatch::Control;
use crate::media::{Link, MediaHandle};

/// Frames buffered towards each mixed feed (100 ms).
const SUPERVISE_CAPACITY: usize = 5;

pub(in crate::call) struct Supervision {
    leg: Leg,
    mode: SuperviseMode,
    /// The supervisor answered and the audio is wired.
    live: bool,
}

/// `from`'s inbound audio mixed into `to`'s outbound audio under `key`.
fn route(from: &MediaHandle, tap: Link, to: &MediaHandle, feed: Link) {
    let (tx, rx) = mpsc::channel(SUPERVISE_CAPACITY);
    let _ = from.add_tap(tap, tx);
    let _ = to.add_feed(feed, rx);
}

impl Call {
    /// `svi supervise MODE CALL EXT`: starts supervising (calling `target`), changes the
    /// mode of a running supervision, or stops it (`mode` None).
    pub(super) async fn supervise(
        &mut self,
        mode: Option<SuperviseMode>,
        target: Option<String>,
    ) -> Result<String, String> {
        let Some(mode) = mode else {
            return match self.supervision.is_some() {
                true => {
                    self.stop_supervision();
                    Ok("supervision stopped".into())
                }
                false => Err("the call is not supervised".into()),
            };
        };
        if !self.bridged || self.leg.as_ref().is_none_or(|l| l.dialog.is_none()) {
            return Err("the call is not bridged to an agent".into());
        }
        if let Some(sup) = self.supervision.as_mut() {
            sup.mode = mode;
            if sup.live {
                self.unwire_supervision();
                self.wire_supervision();
            }
            tracing::info!(call = %self.id, ?mode, "supervision mode changed");
            return Ok(format!("supervision is now {mode:?}"));
        }
        let target = target.ok_or("give the supervisor's extension or SIP URI")?;
        let to = self.transfer_target(&target)?;
        let leg = self
            .new_leg(to, LegPurpose::Supervisor, "supervision")
            .await?;
        tracing::info!(call = %self.id, ?mode, "calling the supervisor");
        self.supervision = Some(Supervision {
            leg,
            mode,
            live: false,
        });
        Ok(format!("calling {target} to {mode:?}"))
    }

    fn wire_supervision(&self) {
        let (Some((caller, _)), Some(agent), Some(sup)) = (
            self.media.as_ref(),
            self.leg.as_ref(),
            self.supervision.as_ref(),
        ) else {
            return;
        };
        let (agent, s) = (&agent.media, &sup.leg.media);
        route(caller, Link::Supervisor, s, Link::Caller);
        route(agent, Link::Supervisor, s, Link::Agent);
        if matches!(sup.mode, SuperviseMode::Whisper | SuperviseMode::Barge) {
            route(s, Link::Agent, agent, Link::Supervisor);
        }
        if sup.mode == SuperviseMode::Barge {
            route(s, Link::Caller, caller, Link::Supervisor);
        }
    }

    fn unwire_supervision(&self) {
        if let Some((caller, _)) = &self.media {
            let _ = caller.remove_tap(Link::Supervisor);
            let _ = caller.remove_feed(Link::Supervisor);
        }
        if let Some(agent) = &self.leg {
            let _ = agent.media.remove_tap(Link::Supervisor);
            let _ = agent.media.remove_feed(Link::Supervisor);
        }
        if let Some(sup) = &self.supervision {
            for link in [Link::Caller, Link::Agent] {
                let _ = sup.leg.media.remove_tap(link);
                let _ = sup.leg.media.remove_feed(link);
            }
        }
    }

    /// Hangs up the supervisor's leg and takes it out of the mix.
    pub(super) fn stop_supervision(&mut self) {
        self.unwire_supervision();
        if let Some(mut sup) = self.supervision.take() {
            hang_up_leg(&self.ctx, &mut sup.leg);
            tracing::info!(call = %self.id, "supervision ended");
        }
    }

    pub(super) fn is_supervisor_tx(&self, tx: ClientTxId) -> bool {
        self.supervision.as_ref().is_some_and(|s| s.leg.tx == tx)
    }

    pub(super) fn is_supervisor_request(&self, req: &Request) -> bool {
        self.supervision
            .as_ref()
            .is_some_and(|s| req.headers.call_id() == Some(s.leg.call_id.as_str()))
    }

    pub(super) fn supervisor_response(&mut self, response: Response) -> Next {
        let Some(sup) = self.supervision.as_mut() else {
            return Next::Wait;
        };
        match response.status {
            100..=199 => {}
            200..=299 => match accept_2xx(&self.ctx, &mut sup.leg, &response) {
                Answer::Again => {}
                Answer::First(Some(n)) => {
                    let params = self.leg_params(&n);
                    if let Some(sup) = self.supervision.as_mut() {
                        let _ = sup.leg.media.set_params(params);
                        sup.live = true;
                        tracing::info!(call = %self.id, mode = ?sup.mode, "supervision started");
                    }
                    self.wire_supervision();
                }
                Answer::First(None) => {
                    tracing::warn!(call = %self.id, "the supervisor's phone answered without a usable codec");
                    self.stop_supervision();
                }
            },
            status => {
                tracing::warn!(call = %self.id, status, "the supervisor's phone did not answer");
                if let Some(sup) = self.supervision.take() {
                    let _ = self.ctx.control.send(Control::LegEnded {
                        call_id: sup.leg.call_id,
                    });
                }
            }
        }
        Next::Wait
    }

    pub(super) fn supervisor_timeout(&mut self) -> Next {
        if self
            .supervision
            .as_ref()
            .is_some_and(|s| s.leg.dialog.is_none())
        {
            tracing::warn!(call = %self.id, "no answer from the supervisor's phone");
            self.stop_supervision();
        }
        Next::Wait
    }

    /// A request from the supervisor's phone: BYE ends the supervision (not the call).
    pub(super) fn supervisor_request(&mut self, tx: Option<ServerTxId>, req: Request) -> Next {
        let Some(sup) = self.supervision.as_mut() else {
            return Next::Wait;
        };
        if req.method == Method::Ack {
            return Next::Wait;
        }
        let mut status = 200;
        let mut body = None;
        if let Some(d) = sup.leg.dialog.as_mut() {
            if d.handle_request(&req).is_err() {
                status = 500;
            }
        }
        if status == 200 && matches!(req.method, Method::Invite | Method::Update) {
            match answer_reoffer(&mut sup.leg.sdp, &req) {
                Ok((_, sdp)) => body = Some(sdp),
                Err(_) => status = 488,
            }
        }
        let mut r = Response::for_request(&req, status);
        if let Some(d) = sup.leg.dialog.as_ref() {
            d.prepare_response(&mut r);
            r.headers.remove(&HeaderName::RecordRoute);
        }
        if let Some(sdp) = body {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp.to_string().into_bytes().into();
        }
        let ended = req.method == Method::Bye;
        if let Some(tx) = tx {
            self.ctx.sip.send_response(tx, r);
        }
        if ended {
            self.unwire_supervision();
            if let Some(sup) = self.supervision.take() {
                let _ = self.ctx.control.send(Control::LegEnded {
                    call_id: sup.leg.call_id,
                });
            }
            tracing::info!(call = %self.id, "the supervisor hung up");
        }
        Next::Wait
    }
}
