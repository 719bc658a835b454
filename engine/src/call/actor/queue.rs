//! A call in an ACD queue: music while waiting, the agent leg the engine places when the
//! ACD picks an agent (an outbound INVITE, B2BUA), and the bridge: the two media streams
//! relay each other's audio through the engine (taps and feeds of the media workers).

use chrono::{DateTime, Utc};
use sip::dialog::Dialog;
use sip::endpoint::{new_call_id, new_tag, ClientTxId, Peer, Transport};
use sip::message::{HeaderName, Method, NameAddr, Request, Response, SipMessage, Uri};
use sip::sdp::{Direction, LocalMedia, SdpSession, SessionDescription};
use tokio::sync::mpsc;

use super::{media_codec, Call, Next, Waiting};
use crate::acd::{self, AgentId, CallId, QueueId, RingFailure};
use crate::call::signalling::{contact, finish_request, via};
use crate::config::REGISTERED;
use crate::dispatch::Control;
use crate::media::{MediaEvent, MediaHandle, MediaParams};
use ivr_scripts::{Input, QueueOutcome};

/// Frames buffered in each direction of a bridge (100 ms); the media worker keeps at most
/// 60 ms of it queued for sending.
const RELAY_CAPACITY: usize = 5;

pub(in crate::call) struct AgentLeg {
    pub agent: AgentId,
    pub call_id: String,
    invite: Request,
    tx: ClientTxId,
    peer: Peer,
    pub dialog: Option<Dialog>,
    sdp: SdpSession,
    pub media: MediaHandle,
    _events: mpsc::Receiver<MediaEvent>,
}

pub(in crate::call) struct Queued {
    pub actions: mpsc::UnboundedReceiver<acd::Action>,
    pub moh: Option<u64>,
    pub leg: Option<AgentLeg>,
    pub bridged: bool,
}

/// What the call record keeps of the queue.
#[derive(Default)]
pub(in crate::call) struct QueueRecord {
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub agent_answered_at: Option<DateTime<Utc>>,
}

impl Call {
    fn call_key(&self) -> CallId {
        CallId::from(self.id.as_str())
    }

    pub(super) fn enter_queue(
        &mut self,
        queue: String,
        priority: ivr_scripts::Priority,
        max_wait: Option<std::time::Duration>,
    ) -> Next {
        let call = self.call_key();
        let input = acd::Input::CallArrived {
            call: call.clone(),
            queue: QueueId::from(queue.as_str()),
            priority,
            max_wait,
        };
        let actions = self.ctx.acd.join(call, input);
        tracing::info!(call = %self.id, %queue, "call queued");
        self.queue_record.queue = Some(queue);
        self.queue_record.queued_at = Some(Utc::now());
        self.waiting = Waiting::Queue(Box::new(Queued {
            actions,
            moh: None,
            leg: None,
            bridged: false,
        }));
        Next::Wait
    }

    fn music(&mut self) {
        let lang = self.ctx.config.default_language.clone();
        let prompt = self.ctx.prompts.get(&lang, "music_on_hold");
        let id = prompt.and_then(|p| self.media.as_ref().and_then(|(m, _)| m.play(vec![p]).ok()));
        if let Waiting::Queue(q) = &mut self.waiting {
            q.moh = id;
        }
    }

    /// The end of a music round: play it again while waiting.
    pub(super) fn music_finished(&mut self, id: u64) -> bool {
        match &self.waiting {
            Waiting::Queue(q)
                if q.moh == Some(id)
                    && !q.bridged
                    && q.leg.as_ref().and_then(|l| l.dialog.as_ref()).is_none() =>
            {
                self.music();
                true
            }
            _ => false,
        }
    }

    pub(super) async fn acd_action(&mut self, action: acd::Action) -> Next {
        match action {
            acd::Action::Hold { .. } | acd::Action::Moved { .. } => {
                if let Waiting::Queue(q) = &self.waiting {
                    if q.moh.is_none() {
                        self.music();
                    }
                }
                Next::Wait
            }
            acd::Action::Announce {
                position,
                expected_wait,
                ..
            } => {
                tracing::debug!(call = %self.id, position, ?expected_wait, "queue position");
                Next::Wait
            }
            acd::Action::RingAgent { agent, contact, .. } => {
                if let Err(reason) = self.ring_agent(agent.clone(), &contact).await {
                    tracing::warn!(call = %self.id, %agent, %reason, "cannot ring the agent");
                    self.ctx.acd.input(acd::Input::RingFailed {
                        call: self.call_key(),
                        agent,
                        failure: RingFailure::Failed(reason),
                    });
                }
                Next::Wait
            }
            acd::Action::CancelRing { .. } => {
                self.drop_leg(false);
                Next::Wait
            }
            acd::Action::Bridge { agent, .. } => self.bridge(agent),
            acd::Action::Overflow { reason, .. } => {
                tracing::info!(call = %self.id, ?reason, "queue overflow");
                self.ctx.acd.leave(self.call_key());
                self.stop_playback();
                Next::Resume(Input::QueueResult(QueueOutcome::Overflow))
            }
            acd::Action::CallbackAccepted { .. } | acd::Action::CallbackCall { .. } => {
                tracing::warn!(call = %self.id, "callbacks are not wired to telephony yet");
                Next::Wait
            }
        }
    }

    /// Where to ring an agent: its registered phone, or the SIP URI configured as contact.
    fn agent_target(&self, agent: &AgentId, contact: &str) -> Result<(Uri, Peer), String> {
        let uri = if contact == REGISTERED {
            let contacts = self.ctx.agent_contacts.borrow();
            contacts
                .get(agent.as_str())
                .and_then(|c| c.first().cloned())
                .ok_or("the agent's phone is not registered")?
        } else {
            Uri::parse(contact).map_err(|e| format!("contact: {e}"))?
        };
        let sip = uri.as_sip().ok_or("the agent contact is not a SIP URI")?;
        let ip: std::net::IpAddr = sip
            .host_unbracketed()
            .parse()
            .map_err(|_| "the agent contact is not an IP address (no DNS for contacts)")?;
        if !self.ctx.config.sip.allowed.allows(ip) {
            return Err("the agent contact is outside sip.allowed_networks".into());
        }
        let transport = if sip.transport().as_deref() == Some("tcp") {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        Ok((
            uri.clone(),
            Peer {
                transport,
                addr: std::net::SocketAddr::new(ip, sip.port.unwrap_or(5060)),
            },
        ))
    }

    async fn ring_agent(&mut self, agent: AgentId, contact: &str) -> Result<(), String> {
        let (uri, peer) = self.agent_target(&agent, contact)?;
        let allocation = self.ctx.ports.allocate().await.map_err(|e| e.to_string())?;
        let local_ip = match self.ctx.config.rtp.ip {
            ip if ip.is_unspecified() => self.ctx.local_sip.ip(),
            ip => ip,
        };
        let mut sdp = SdpSession::new(LocalMedia::new(
            local_ip,
            allocation.port(),
            rand::random::<u32>() as u64,
        ));
        let offer = sdp.offer(Direction::SendRecv);
        let params = MediaParams {
            rtp_timeout: self.ctx.config.rtp.timeout,
            ..MediaParams::default()
        };
        let (media, events) = self
            .ctx
            .media
            .open(params, allocation)
            .map_err(|e| e.to_string())?;
        let call_id = new_call_id();
        let mut invite = Request::new(Method::Invite, uri.clone());
        invite
            .headers
            .push(HeaderName::Via, via(self.ctx.local_sip, peer.transport));
        invite.headers.push(HeaderName::MaxForwards, "70");
        // The agent's phone shows the caller's number (personal data, sent on purpose).
        let from = format!(
            "<sip:{}@{}>;tag={}",
            self.caller.reveal(),
            self.ctx.local_sip,
            new_tag()
        );
        invite.headers.push(HeaderName::From, from);
        invite
            .headers
            .push(HeaderName::To, NameAddr::new(uri).to_string());
        invite.headers.push(HeaderName::CallId, call_id.clone());
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(
            HeaderName::Contact,
            NameAddr::new(crate::call::signalling::contact(
                self.ctx.local_sip,
                peer.transport,
            ))
            .to_string(),
        );
        invite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        invite.body = offer.to_string().into_bytes().into();
        let _ = self.ctx.control.send(Control::Leg {
            call_id: call_id.clone(),
            call: self.me.clone(),
        });
        let tx = self
            .ctx
            .sip
            .send_request(invite.clone(), peer)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(call = %self.id, %agent, "ringing the agent");
        if let Waiting::Queue(q) = &mut self.waiting {
            q.leg = Some(AgentLeg {
                agent,
                call_id,
                invite,
                tx,
                peer,
                dialog: None,
                sdp,
                media,
                _events: events,
            });
        }
        Ok(())
    }

    /// Ends the agent leg: BYE when answered, CANCEL while ringing.
    pub(super) fn drop_leg(&mut self, answered_only: bool) {
        let Waiting::Queue(q) = &mut self.waiting else {
            return;
        };
        let Some(mut leg) = q.leg.take() else { return };
        match leg.dialog.as_mut() {
            Some(d) => {
                let mut bye = d.create_request(Method::Bye);
                finish_request(
                    &mut bye,
                    self.ctx.local_sip,
                    leg.peer.transport,
                    &self.ctx.config.sip.user_agent,
                );
                let sip = self.ctx.sip.clone();
                let peer = leg.peer;
                tokio::spawn(async move {
                    let _ = sip.send_request(bye, peer).await;
                });
            }
            None if !answered_only => self.ctx.sip.cancel(leg.tx),
            None => {}
        }
        let _ = leg.media.tap_inbound(None);
        let _ = self.ctx.control.send(Control::LegEnded {
            call_id: leg.call_id,
        });
    }

    /// A response to our INVITE to the agent.
    pub(super) fn leg_response(&mut self, tx: ClientTxId, response: Response) -> Next {
        let Waiting::Queue(q) = &mut self.waiting else {
            return Next::Wait;
        };
        let Some(leg) = q.leg.as_mut().filter(|l| l.tx == tx) else {
            return Next::Wait;
        };
        let call = CallId::from(self.id.as_str());
        let agent = leg.agent.clone();
        match response.status {
            180 | 183 => self.ctx.acd.input(acd::Input::AgentRinging { call, agent }),
            100..=199 => {}
            200..=299 => {
                if leg.dialog.is_none() {
                    let Ok(dialog) = Dialog::new_uac(&leg.invite, &response) else {
                        return Next::Wait;
                    };
                    let answer = SessionDescription::parse_bytes(&response.body).ok();
                    match answer.and_then(|a| leg.sdp.process_answer(&a).ok()) {
                        Some(n) => {
                            let params = MediaParams {
                                codec: media_codec(n.codec.codec),
                                remote: n
                                    .remote_rtp
                                    .filter(|a| self.ctx.config.sip.allowed.allows(a.ip())),
                                telephone_event_pt: n.telephone_event,
                                rtp_timeout: self.ctx.config.rtp.timeout,
                            };
                            let _ = leg.media.set_params(params);
                        }
                        None => {
                            tracing::warn!(call = %self.id, "the agent's answer has no usable SDP")
                        }
                    }
                    leg.dialog = Some(dialog);
                    self.queue_record.agent = Some(agent.as_str().to_string());
                    self.queue_record.agent_answered_at = Some(Utc::now());
                    self.ctx
                        .acd
                        .input(acd::Input::AgentAnswered { call, agent });
                }
                // ACK every 2xx (retransmissions included: our ACK may have been lost).
                if let Some(d) = leg.dialog.as_ref() {
                    let mut ack = d.create_ack(&response);
                    finish_request(
                        &mut ack,
                        self.ctx.local_sip,
                        leg.peer.transport,
                        &self.ctx.config.sip.user_agent,
                    );
                    self.ctx
                        .sip
                        .send_stateless(SipMessage::Request(ack), leg.peer);
                }
            }
            status => {
                let failure = match status {
                    486 | 600 | 603 => RingFailure::Rejected,
                    408 | 480 | 487 => RingFailure::NoAnswer,
                    s => RingFailure::Failed(format!("the agent's phone answered {s}")),
                };
                tracing::info!(call = %self.id, %agent, status, "agent leg failed");
                let call_id = leg.call_id.clone();
                let _ = leg.media.tap_inbound(None);
                q.leg = None;
                let _ = self.ctx.control.send(Control::LegEnded { call_id });
                if status != 487 {
                    self.ctx.acd.input(acd::Input::RingFailed {
                        call,
                        agent,
                        failure,
                    });
                }
            }
        }
        Next::Wait
    }

    pub(super) fn leg_timeout(&mut self, tx: ClientTxId) -> Next {
        let Waiting::Queue(q) = &mut self.waiting else {
            return Next::Wait;
        };
        if q.leg
            .as_ref()
            .is_some_and(|l| l.tx == tx && l.dialog.is_none())
        {
            if let Some(leg) = q.leg.take() {
                let _ = self.ctx.control.send(Control::LegEnded {
                    call_id: leg.call_id,
                });
                self.ctx.acd.input(acd::Input::RingFailed {
                    call: CallId::from(self.id.as_str()),
                    agent: leg.agent,
                    failure: RingFailure::NoAnswer,
                });
            }
        }
        Next::Wait
    }

    /// Connects caller and agent: each leg's inbound audio is the other's outbound audio.
    fn bridge(&mut self, agent: AgentId) -> Next {
        self.stop_playback();
        let Some((caller_media, _)) = self.media.as_ref() else {
            return Next::Wait;
        };
        let Waiting::Queue(q) = &mut self.waiting else {
            return Next::Wait;
        };
        let Some(leg) = q.leg.as_ref() else {
            return Next::Wait;
        };
        let (to_agent, from_caller) = mpsc::channel(RELAY_CAPACITY);
        let (to_caller, from_agent) = mpsc::channel(RELAY_CAPACITY);
        let ok = caller_media.tap_inbound(Some(to_agent)).is_ok()
            && leg.media.feed_live(Some(from_caller)).is_ok()
            && leg.media.tap_inbound(Some(to_caller)).is_ok()
            && caller_media.feed_live(Some(from_agent)).is_ok();
        q.bridged = ok;
        q.moh = None;
        tracing::info!(call = %self.id, %agent, "caller and agent bridged");
        Next::Resume(Input::QueueResult(QueueOutcome::Answered))
    }

    /// Whether this request belongs to the agent leg (its Call-ID).
    pub(super) fn is_leg_request(&self, req: &Request) -> bool {
        match &self.waiting {
            Waiting::Queue(q) => q
                .leg
                .as_ref()
                .is_some_and(|l| req.headers.call_id() == Some(l.call_id.as_str())),
            _ => false,
        }
    }

    /// A request from the agent in its leg's dialog: BYE ends the call, the rest is answered.
    pub(super) fn leg_request(
        &mut self,
        tx: Option<sip::endpoint::ServerTxId>,
        req: Request,
    ) -> Next {
        let answer = |status| {
            if let Some(tx) = tx {
                self.ctx
                    .sip
                    .send_response(tx, Response::for_request(&req, status));
            }
        };
        match req.method {
            Method::Ack => Next::Wait,
            Method::Bye => {
                answer(200);
                if let Waiting::Queue(q) = &mut self.waiting {
                    if let Some(leg) = q.leg.take() {
                        let _ = self.ctx.control.send(Control::LegEnded {
                            call_id: leg.call_id,
                        });
                    }
                }
                tracing::info!(call = %self.id, "the agent hung up");
                Next::End(crate::storage::EndReason::AgentHangup)
            }
            Method::Invite | Method::Update => {
                // Hold/resume from the agent's phone: answer from the leg's SDP session.
                let Waiting::Queue(q) = &mut self.waiting else {
                    return Next::Wait;
                };
                let Some(leg) = q.leg.as_mut() else {
                    return Next::Wait;
                };
                let reply = SessionDescription::parse_bytes(&req.body)
                    .ok()
                    .and_then(|o| leg.sdp.answer(&o).ok());
                if let Some(tx) = tx {
                    let mut r =
                        Response::for_request(&req, if reply.is_some() { 200 } else { 488 });
                    if let Some(a) = reply {
                        r.headers.push(
                            HeaderName::Contact,
                            NameAddr::new(contact(self.ctx.local_sip, leg.peer.transport))
                                .to_string(),
                        );
                        r.headers.push(HeaderName::ContentType, "application/sdp");
                        r.body = a.sdp.to_string().into_bytes().into();
                    }
                    self.ctx.sip.send_response(tx, r);
                }
                Next::Wait
            }
            _ => {
                answer(200);
                Next::Wait
            }
        }
    }

    pub(super) fn is_leg_tx(&self, tx: ClientTxId) -> bool {
        matches!(&self.waiting, Waiting::Queue(q) if q.leg.as_ref().is_some_and(|l| l.tx == tx))
    }

    /// The caller's side is over: tell the ACD and release the agent leg.
    pub(super) fn leave_queue(&mut self) {
        let Waiting::Queue(q) = &self.waiting else {
            return;
        };
        let call = self.call_key();
        let input = if q.bridged {
            acd::Input::CallEnded { call: call.clone() }
        } else {
            acd::Input::CallAbandoned { call: call.clone() }
        };
        self.ctx.acd.input(input);
        self.drop_leg(false);
        self.ctx.acd.leave(call);
    }
}
