//! The call actor's loop. See the module docs of `call`.

mod callback;
mod leg;
mod queue;
mod supervise;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_scripts::{
    CallInfo, Effect, EffectKind, Input, Interpreter, PromptRef, TransferMode, TransferOutcome,
};
use sip::dialog::Dialog;
use sip::endpoint::{new_tag, ClientTxId, Peer, ServerTxId};
use sip::message::{HeaderName, Method, Request, Response};
use sip::sdp::{Direction, LocalMedia, Negotiated, SdpSession, SessionDescription};
use sip::transport::SipEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::{synthetic_beep, Recording, TAP_CAPACITY};
use super::signalling::{contact, finish_request, next_hop};
use super::transfer::{refer_target, sipfrag_status};
use super::{dtmf_from_info, CallContext, CallInput};
use crate::collect::{CollectSpec, Collected, DigitCollector};
use crate::flows::LoadedFlow;
use crate::media::{Codec, MediaEvent, MediaHandle, MediaParams, Prompt};
use crate::pii::Pii;
use crate::storage::{CallRecord, EndReason};

/// How long the actor waits for the answer to its BYE before closing the call anyway (the
/// transaction keeps retransmitting on its own).
const BYE_WAIT: Duration = Duration::from_secs(2);
/// RTP silence tolerated while the caller holds the call.
const HOLD_RTP_TIMEOUT: Duration = Duration::from_secs(3600);

/// What the actor waits for after performing an effect.
enum Waiting {
    Nothing,
    /// In an ACD queue, then bridged to an agent.
    Queue(Box<queue::Queued>),
    /// The `record` step: prompts, then the caller's audio until terminator/limit.
    Record(Box<Recording>),
    /// A bridged transfer: the target's phone rings (the caller hears ringback).
    Bridging {
        deadline: Instant,
        ringback: Option<u64>,
    },
    /// A blind transfer: our REFER is out; NOTIFYs report the outcome.
    Transfer {
        tx: ClientTxId,
        deadline: Instant,
    },
    /// A lookup or action runs in its own task; the call stays responsive meanwhile.
    Connector {
        action: bool,
        result: tokio::sync::oneshot::Receiver<ivr_scripts::ConnectorResult>,
    },
    Play {
        id: u64,
        barge_in: bool,
    },
    Collect {
        id: Option<u64>,
        collector: DigitCollector,
    },
}

/// Output of the current wait's own I/O.
enum WaitIo {
    Connector(Input),
    Acd(Option<crate::acd::Action>),
    Frame(Option<Vec<i16>>),
}

/// The next move of the loop.
enum Next {
    Wait,
    Resume(Input),
    End(EndReason),
}

pub(super) struct Call {
    ctx: CallContext,
    tx: ServerTxId,
    invite: Request,
    from: Peer,
    id: String,
    started_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    caller: Pii<String>,
    called: Pii<String>,
    flow: Option<Arc<LoadedFlow>>,
    interp: Option<Interpreter>,
    dialog: Option<Dialog>,
    sdp: Option<SdpSession>,
    /// The INVITE had no offer: ours went in the 200, the answer comes in the ACK.
    late_offer: bool,
    /// Our SDP answer to the INVITE's offer, sent in the 200.
    answer_sdp: Option<SessionDescription>,
    media: Option<(MediaHandle, mpsc::Receiver<MediaEvent>)>,
    params: MediaParams,
    codec: Option<Codec>,
    waiting: Waiting,
    /// This actor's own input channel (agent legs register it for their SIP events).
    me: mpsc::UnboundedSender<CallInput>,
    queue_record: queue::QueueRecord,
    /// The second leg (agent or bridged-transfer target), and whether it is bridged.
    leg: Option<leg::Leg>,
    /// Agent legs ringing besides `leg` (the ring-all strategy).
    extra_legs: Vec<leg::Leg>,
    bridged: bool,
    /// The recording of the bridge, while it runs.
    recording: Option<crate::recording::RecorderHandle>,
    /// The agent's previous digit (feature codes such as `*7`).
    agent_digit: Option<char>,
    supervision: Option<supervise::Supervision>,
    /// A callback the caller asked for (the caller's leg may be gone meanwhile).
    callback: Option<callback::Callback>,
}

fn media_codec(c: sip::sdp::Codec) -> Codec {
    match c {
        sip::sdp::Codec::Pcma => Codec::Pcma,
        sip::sdp::Codec::Pcmu => Codec::Pcmu,
    }
}

impl Call {
    pub(super) fn new(
        ctx: CallContext,
        tx: ServerTxId,
        invite: Request,
        from: Peer,
        me: mpsc::UnboundedSender<CallInput>,
    ) -> Self {
        let caller = invite
            .headers
            .from_addr()
            .ok()
            .and_then(|f| f.uri.user().map(str::to_string))
            .unwrap_or_default();
        let called = invite
            .uri
            .user()
            .map(str::to_string)
            .or_else(|| {
                invite
                    .headers
                    .to_addr()
                    .ok()
                    .and_then(|t| t.uri.user().map(str::to_string))
            })
            .unwrap_or_default();
        let params = MediaParams {
            rtp_timeout: ctx.config.rtp.timeout,
            ..MediaParams::default()
        };
        Call {
            id: format!("{:016x}", rand::random::<u64>()),
            ctx,
            tx,
            invite,
            from,
            started_at: Utc::now(),
            answered_at: None,
            caller: Pii::new(caller),
            called: Pii::new(called),
            flow: None,
            interp: None,
            dialog: None,
            sdp: None,
            late_offer: false,
            answer_sdp: None,
            media: None,
            params,
            codec: None,
            waiting: Waiting::Nothing,
            me,
            queue_record: queue::QueueRecord::default(),
            leg: None,
            extra_legs: Vec::new(),
            bridged: false,
            recording: None,
            agent_digit: None,
            supervision: None,
            callback: None,
        }
    }

    pub(super) async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<CallInput>,
    ) -> CallRecord {
        if let Ok(mut live) = self.ctx.live.lock() {
            live.insert(self.id.clone(), self.me.clone());
        }
        let reason = self.drive(&mut inputs).await;
        if let Ok(mut live) = self.ctx.live.lock() {
            live.remove(&self.id);
        }
        self.stop_supervision();
        let recorded = self.stop_call_recording().await;
        self.leave_queue(reason);
        self.drop_leg(false);
        self.drop_extra_legs();
        if let Some(callback::Callback::Dialing { mut leg, .. }) = self.callback.take() {
            leg::hang_up_leg(&self.ctx, &mut leg);
        }
        if self.answered_at.is_some() && !matches!(reason, EndReason::CallerHangup) {
            self.send_bye(&mut inputs).await;
        }
        if let (Some(interp), true) = (self.interp.as_mut(), reason == EndReason::CallerHangup) {
            interp.resume(Utc::now(), Input::CallerHangup);
        }
        let mut record = self.record(reason);
        if let Some(info) = recorded {
            record.recording = Some(info.path.display().to_string());
            record.recording_sha256 = Some(info.sha256);
            record.recording_ms = Some(info.duration.as_millis() as u64);
        }
        record
    }

    fn record(&mut self, reason: EndReason) -> CallRecord {
        let path = self
            .interp
            .as_ref()
            .map(|i| i.path().to_vec())
            .unwrap_or_default();
        CallRecord {
            id: self.id.clone(),
            sip_call_id: self
                .invite
                .headers
                .call_id()
                .unwrap_or_default()
                .to_string(),
            started_at: self.started_at,
            answered_at: self.answered_at,
            ended_at: Utc::now(),
            caller: self.caller.reveal().clone(),
            called: self.called.reveal().clone(),
            flow: self.flow.as_ref().map(|f| f.flow.name().to_string()),
            flow_version: self.flow.as_ref().map(|f| f.version.clone()),
            path,
            end_reason: reason,
            codec: self.codec.map(|c| c.to_string()),
            node: self.ctx.config.node_name.clone(),
            rtp_sent: self
                .media
                .as_ref()
                .map(|m| m.0.stats().packets_sent)
                .unwrap_or(0),
            rtp_received: self
                .media
                .as_ref()
                .map(|m| m.0.stats().packets_received)
                .unwrap_or(0),
            queue: self.queue_record.queue.clone(),
            agent: self.queue_record.agent.clone(),
            queued_at: self.queue_record.queued_at,
            agent_answered_at: self.queue_record.agent_answered_at,
            queue_outcome: self.queue_record.outcome,
            recording: None,
            recording_sha256: None,
            recording_ms: None,
        }
    }

    /// Final answer other than 2xx to the INVITE (Warning code 399, miscellaneous).
    fn reject(&self, status: u16, warning: Option<String>) {
        self.reject_with(status, warning.map(|w| (399, w)));
    }

    fn reject_with(&self, status: u16, warning: Option<(u16, String)>) {
        let mut r = Response::for_request(&self.invite, status).with_to_tag(&new_tag());
        if let Some((code, w)) = warning {
            r.headers.push(
                HeaderName::Warning,
                format!("{code} svi \"{}\"", w.replace('"', "'")),
            );
        }
        self.ctx.sip.send_response(self.tx, r);
    }

    /// Offer/answer, ports, flow. Returns the first effect or the reason the call ends.
    async fn setup(&mut self) -> Result<Effect, EndReason> {
        let flow_name = self.ctx.config.flow_for(self.called.reveal()).to_string();
        let Some(flow) = self.ctx.flows.borrow().get(&flow_name) else {
            tracing::error!(call = %self.id, flow = %flow_name, "no such flow loaded; answering 480");
            self.reject(480, Some(format!("flow {flow_name} is not loaded")));
            return Err(EndReason::Rejected);
        };
        self.flow = Some(flow.clone());

        let offer = if self.invite.body.is_empty() {
            None
        } else {
            match SessionDescription::parse_bytes(&self.invite.body) {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    tracing::warn!(call = %self.id, error = %e, "unreadable SDP offer; answering 488");
                    self.reject(488, Some(format!("bad SDP: {e}")));
                    return Err(EndReason::Rejected);
                }
            }
        };
        let allocation = match self.ctx.ports.allocate().await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "no RTP port; answering 503");
                self.reject(503, Some("no media port available".into()));
                return Err(EndReason::Rejected);
            }
        };
        let rtp_ip = match self.ctx.config.rtp.ip {
            ip if ip.is_unspecified() => self.ctx.local_sip.ip(),
            ip => ip,
        };
        let local = LocalMedia::new(rtp_ip, allocation.port(), rand::random::<u32>() as u64);
        let mut session = SdpSession::new(local);
        match offer {
            Some(offer) => match session.answer(&offer) {
                Ok(answer) => {
                    self.apply_negotiated(&answer.negotiated);
                    self.answer_sdp = Some(answer.sdp);
                }
                Err(e) => {
                    tracing::info!(call = %self.id, error = %e, "offer not acceptable; answering 488");
                    // 305: incompatible media format (RFC 3261 §20.43).
                    self.reject_with(488, Some((305, e.to_string())));
                    return Err(EndReason::Rejected);
                }
            },
            None => self.late_offer = true,
        }
        self.sdp = Some(session);
        match self.ctx.media.open(self.params.clone(), allocation) {
            Ok(m) => self.media = Some(m),
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "media stream failed to open; answering 503");
                self.reject(503, Some("media unavailable".into()));
                return Err(EndReason::Rejected);
            }
        }
        let info = CallInfo {
            caller: self.caller.reveal().clone(),
            called: self.called.reveal().clone(),
            call_id: self.id.clone(),
            language: None,
        };
        let mut interp = Interpreter::new(flow.flow.clone(), info);
        let first = interp.resume(Utc::now(), Input::Start);
        self.interp = Some(interp);
        tracing::info!(call = %self.id, caller = %self.caller, called = %self.called, flow = %flow_name, version = %flow.version, "call started");
        Ok(first)
    }

    fn apply_negotiated(&mut self, n: &Negotiated) {
        self.codec = Some(media_codec(n.codec.codec));
        self.params.codec = media_codec(n.codec.codec);
        self.params.telephone_event_pt = n.telephone_event;
        let allowed = |a: &std::net::SocketAddr| self.ctx.config.sip.allowed.allows(a.ip());
        // Send where the SDP says only if that address is allowed; otherwise wait for the
        // peer's RTP and answer its source (latching), so the engine reflects to no one.
        self.params.remote = n.remote_rtp.filter(|a| n.direction.sends() && allowed(a));
        self.params.rtp_timeout = if n.direction.receives() {
            self.ctx.config.rtp.timeout
        } else {
            HOLD_RTP_TIMEOUT
        };
    }

    /// Answers the INVITE with 200 and our SDP, creating the dialog.
    fn answer(&mut self) {
        if self.answered_at.is_some() {
            return;
        }
        let local_contact = contact(self.ctx.local_sip, self.from.transport);
        let dialog = match Dialog::new_uas(&self.invite, &new_tag(), local_contact) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "cannot create a dialog from this INVITE");
                self.reject(400, Some(e.to_string()));
                return;
            }
        };
        let mut r = Response::for_request(&self.invite, 200);
        dialog.prepare_response(&mut r);
        r.headers.push(HeaderName::Allow, crate::uas::ALLOW);
        if let Some(session) = self.sdp.as_mut() {
            let sdp = if self.late_offer {
                Some(session.offer(Direction::SendRecv))
            } else {
                self.answer_sdp.clone()
            };
            if let Some(sdp) = sdp {
                r.headers.push(HeaderName::ContentType, "application/sdp");
                r.body = sdp.to_string().into_bytes().into();
            }
        }
        self.ctx.sip.send_response(self.tx, r);
        self.dialog = Some(dialog);
        self.answered_at = Some(Utc::now());
    }

    fn prompts(&self, refs: &[PromptRef]) -> Vec<Prompt> {
        refs.iter()
            .filter_map(|p| {
                let found = self.ctx.prompts.get(&p.language, &p.name);
                if found.is_none() {
                    tracing::warn!(call = %self.id, prompt = %p, "prompt not found; skipped");
                }
                found
            })
            .collect()
    }

    fn play(&mut self, refs: &[PromptRef]) -> Option<u64> {
        let prompts = self.prompts(refs);
        if prompts.is_empty() {
            return None;
        }
        self.media.as_ref().and_then(|(m, _)| m.play(prompts).ok())
    }

    fn stop_playback(&self) {
        if let Some((m, _)) = &self.media {
            let _ = m.stop_playback();
        }
    }

    /// Performs one effect of the interpreter.
    async fn perform(&mut self, effect: Effect) -> Next {
        tracing::debug!(call = %self.id, step = %effect.step, "effect");
        if self.answered_at.is_none()
            && !matches!(
                effect.kind,
                EffectKind::Answer | EffectKind::Hangup { .. } | EffectKind::Finished { .. }
            )
        {
            // A flow that plays before answering gets an implicit answer (no early media).
            self.answer();
        }
        let now = Instant::now().into_std();
        match effect.kind {
            EffectKind::Answer => {
                self.answer();
                if self.answered_at.is_some() {
                    Next::Resume(Input::Answered)
                } else {
                    Next::End(EndReason::Error)
                }
            }
            EffectKind::Play { prompts, barge_in } => match self.play(&prompts) {
                Some(id) => {
                    self.waiting = Waiting::Play { id, barge_in };
                    Next::Wait
                }
                None => Next::Resume(Input::PlaybackDone),
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
                let id = self.play(&prompts);
                if id.is_none() {
                    collector.prompts_finished(now);
                }
                self.waiting = Waiting::Collect { id, collector };
                Next::Wait
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
            } => self.enter_queue(queue, priority, max_wait),
            EffectKind::Transfer {
                target,
                mode,
                timeout,
            } => self.transfer(target, mode, timeout).await,
            EffectKind::Record {
                prompts,
                beep,
                max_length,
                terminator,
            } => {
                let path = self.ctx.config.data_dir.join("messages").join(format!(
                    "{}-{}.wav",
                    self.id,
                    effect.step.replace('/', "_")
                ));
                let mut rec = Recording::new(path, max_length, terminator);
                let mut list = self.prompts(&prompts);
                if beep {
                    let lang = prompts
                        .first()
                        .map(|p| p.language.clone())
                        .unwrap_or_else(|| self.ctx.config.default_language.clone());
                    list.push(
                        self.ctx
                            .prompts
                            .get(&lang, "beep")
                            .unwrap_or_else(synthetic_beep),
                    );
                }
                rec.prompt_id = self.media.as_ref().and_then(|(m, _)| m.play(list).ok());
                self.waiting = Waiting::Record(Box::new(rec));
                if self.recording_prompts_done() {
                    Next::Wait
                } else {
                    Next::End(EndReason::Error)
                }
            }
            EffectKind::Hangup { .. } => {
                if self.answered_at.is_none() {
                    self.reject(480, None);
                    Next::End(EndReason::Rejected)
                } else {
                    Next::End(EndReason::EngineHangup)
                }
            }
            // Answered by an agent: the flow is done, the bridge goes on until a hangup.
            EffectKind::Finished { .. } if self.bridged => Next::Wait,
            EffectKind::Finished { .. } => Next::End(if self.answered_at.is_some() {
                EndReason::EngineHangup
            } else {
                EndReason::Rejected
            }),
        }
    }

    /// Starts capturing the caller once the record step's prompts are over.
    fn recording_prompts_done(&mut self) -> bool {
        let Waiting::Record(rec) = &mut self.waiting else {
            return true;
        };
        if rec.prompt_id.is_some() {
            return true;
        }
        let (tx, rx) = mpsc::channel(TAP_CAPACITY);
        let Some((m, _)) = &self.media else {
            return false;
        };
        if m.tap_inbound(Some(tx)).is_err() {
            return false;
        }
        rec.frames = Some(rx);
        rec.started = Some(Instant::now());
        true
    }

    /// Ends the record step (terminator, limit or hangup) and writes the file.
    async fn finish_recording(&mut self) -> Option<Input> {
        let Waiting::Record(rec) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return None;
        };
        let mut rec = *rec;
        if let Some((m, _)) = &self.media {
            let _ = m.tap_inbound(None);
        }
        if let Some(mut frames) = rec.frames.take() {
            while let Ok(f) = frames.try_recv() {
                rec.push(&f);
            }
        }
        rec.pad_to(Instant::now(), Duration::from_millis(20));
        if rec.started.is_none() {
            return Some(Input::RecordDone {
                path: String::new(),
                duration: Duration::ZERO,
            });
        }
        match rec.save().await {
            Ok((path, duration)) => {
                tracing::info!(call = %self.id, file = %path.display(), ?duration, "message recorded");
                Some(Input::RecordDone {
                    path: path.display().to_string(),
                    duration,
                })
            }
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "could not write the recorded message");
                Some(Input::RecordDone {
                    path: String::new(),
                    duration: Duration::ZERO,
                })
            }
        }
    }

    /// A blind transfer with REFER; the result comes from the REFER's answer and NOTIFYs.
    async fn transfer(&mut self, target: String, mode: TransferMode, timeout: Duration) -> Next {
        if matches!(mode, TransferMode::Bridged) {
            return self.bridged_transfer(target, timeout).await;
        }
        let Some(dialog) = self.dialog.as_mut() else {
            return Next::Resume(Input::TransferResult(TransferOutcome::Failed(
                "the call is not answered".into(),
            )));
        };
        let refer_to = refer_target(&target, dialog);
        let mut refer = dialog.create_request(Method::Refer);
        let hop = dialog.target_addr();
        let local_uri = dialog.local_uri.uri.to_string();
        let peer = next_hop(hop, self.from, &self.ctx.config.sip.allowed);
        finish_request(
            &mut refer,
            self.ctx.local_sip,
            self.from.transport,
            &self.ctx.config.sip.user_agent,
        );
        refer
            .headers
            .push(HeaderName::ReferTo, format!("<{refer_to}>"));
        refer
            .headers
            .push(HeaderName::ReferredBy, format!("<{local_uri}>"));
        match self.ctx.sip.send_request(refer, peer).await {
            Ok(tx) => {
                tracing::info!(call = %self.id, "blind transfer requested (REFER)");
                self.waiting = Waiting::Transfer {
                    tx,
                    deadline: Instant::now() + timeout,
                };
                Next::Wait
            }
            Err(e) => Next::Resume(Input::TransferResult(TransferOutcome::Failed(
                e.to_string(),
            ))),
        }
    }

    /// Starts a connector call; its (bounded) result comes back through `Waiting::Connector`.
    fn connector(
        &mut self,
        action: bool,
        name: String,
        params: serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
    ) -> Next {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let connectors = self.ctx.connectors.clone();
        tokio::spawn(async move {
            let r = if action {
                connectors.action(&name, &params, timeout).await
            } else {
                connectors.lookup(&name, &params, timeout).await
            };
            let _ = tx.send(r);
        });
        self.waiting = Waiting::Connector { action, result: rx };
        Next::Wait
    }

    async fn drive(&mut self, inputs: &mut mpsc::UnboundedReceiver<CallInput>) -> EndReason {
        let first = match self.setup().await {
            Ok(e) => e,
            Err(reason) => return reason,
        };
        let mut next = self.perform(first).await;
        loop {
            match next {
                Next::End(reason) => return reason,
                Next::Resume(input) => {
                    let Some(interp) = self.interp.as_mut() else {
                        return EndReason::Error;
                    };
                    let effect = interp.resume(Utc::now(), input);
                    for e in interp.take_errors() {
                        tracing::warn!(call = %self.id, "{e}");
                    }
                    if !self.bridged {
                        self.waiting = Waiting::Nothing;
                    }
                    next = self.perform(effect).await;
                    continue;
                }
                Next::Wait => {}
            }
            let deadline = match &self.waiting {
                Waiting::Collect { collector, .. } => collector.deadline().map(Instant::from_std),
                Waiting::Record(rec) => rec.deadline(),
                Waiting::Transfer { deadline, .. } | Waiting::Bridging { deadline, .. } => {
                    Some(*deadline)
                }
                _ => None,
            };
            let media_event = async {
                match self.media.as_mut() {
                    Some((_, events)) => events.recv().await,
                    None => std::future::pending().await,
                }
            };
            let leg_event = async {
                match self.leg.as_mut() {
                    Some(leg) => leg.events.recv().await,
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            // What the current wait itself produces: a connector result or recorded audio.
            let waiting_io = async {
                match &mut self.waiting {
                    Waiting::Connector { action, result } => {
                        let r = result
                            .await
                            .unwrap_or_else(|_| Err("the connector task ended".into()));
                        WaitIo::Connector(if *action {
                            Input::ActionResult(r)
                        } else {
                            Input::LookupResult(r)
                        })
                    }
                    Waiting::Record(rec) => match rec.frames.as_mut() {
                        Some(rx) => WaitIo::Frame(rx.recv().await),
                        None => std::future::pending().await,
                    },
                    Waiting::Queue(q) => WaitIo::Acd(q.actions.recv().await),
                    _ => std::future::pending().await,
                }
            };
            next = tokio::select! {
                input = inputs.recv() => match input {
                    Some(CallInput::Sip(ev)) => self.sip_event(*ev).await,
                    Some(CallInput::Supervise { mode, target, reply }) => {
                        let _ = reply.send(self.supervise(mode, target).await);
                        Next::Wait
                    }
                    Some(CallInput::Recording { pause, reply }) => {
                        let _ = reply.send(self.pause_recording(pause));
                        Next::Wait
                    }
                    Some(CallInput::Shutdown) | None => {
                        if self.answered_at.is_none() {
                            self.reject(503, Some("shutting down".into()));
                        }
                        Next::End(EndReason::Shutdown)
                    }
                },
                Some(ev) = media_event => self.media_event(ev),
                Some(ev) = leg_event => self.leg_media_event(ev),
                _ = timer => self.collect_timeout(),
                io = waiting_io => match (io, &mut self.waiting) {
                    (WaitIo::Connector(input), _) => Next::Resume(input),
                    (WaitIo::Acd(Some(action)), _) => self.acd_action(action).await,
                    (WaitIo::Acd(None), _) => {
                        tracing::error!(call = %self.id, "the ACD stopped");
                        Next::End(EndReason::Error)
                    }
                    (WaitIo::Frame(Some(f)), Waiting::Record(rec)) => {
                        // Frames arrive every 20 ms from the worker; more than two missing
                        // is a gap in the caller's RTP, kept as silence.
                        rec.pad_to(Instant::now(), Duration::from_millis(60));
                        rec.push(&f);
                        Next::Wait
                    }
                    (WaitIo::Frame(None), Waiting::Record(rec)) => {
                        rec.frames = None;
                        Next::Wait
                    }
                    _ => Next::Wait,
                },
            };
            if let Next::End(EndReason::CallerHangup) = next {
                // A message left before hanging up is kept (voicemail behaviour).
                if matches!(self.waiting, Waiting::Record(_)) {
                    let _ = self.finish_recording().await;
                }
            }
            if let Next::Resume(Input::RecordDone { .. }) = next {
                if let Some(input) = self.finish_recording().await {
                    next = Next::Resume(input);
                }
            }
        }
    }

    fn collect_timeout(&mut self) -> Next {
        let now = Instant::now();
        if let Waiting::Bridging { deadline, .. } = self.waiting {
            return if now >= deadline {
                self.bridging_timeout()
            } else {
                Next::Wait
            };
        }
        match &mut self.waiting {
            Waiting::Collect { collector, .. } => match collector.timeout(now.into_std()) {
                Some(done) => Next::Resume(collected_input(done)),
                None => Next::Wait,
            },
            Waiting::Record(rec) if rec.deadline().is_some_and(|d| now >= d) => {
                Next::Resume(record_done())
            }
            Waiting::Transfer { deadline, .. } if now >= *deadline => Next::Resume(
                Input::TransferResult(TransferOutcome::Failed("the transfer timed out".into())),
            ),
            _ => Next::Wait,
        }
    }

    fn digit(&mut self, d: char) -> Next {
        if self.relay_digit(d) {
            return Next::Wait;
        }
        if matches!(self.waiting, Waiting::Queue(_)) && d == callback::CALLBACK_DIGIT {
            return self.request_callback();
        }
        let now = Instant::now().into_std();
        match &mut self.waiting {
            Waiting::Record(rec) if rec.started.is_some() && rec.terminator == Some(d) => {
                Next::Resume(record_done())
            }
            Waiting::Play { barge_in: true, .. } => {
                self.stop_playback();
                Next::Resume(Input::Digits {
                    digits: d.to_string(),
                })
            }
            Waiting::Collect { collector, .. } => {
                let out = collector.digit(now, d);
                if out.stop_playback {
                    self.stop_playback();
                }
                match out.result {
                    Some(done) => Next::Resume(collected_input(done)),
                    None => Next::Wait,
                }
            }
            _ => Next::Wait,
        }
    }

    fn media_event(&mut self, ev: MediaEvent) -> Next {
        match ev {
            MediaEvent::Dtmf { digit, source } => {
                tracing::debug!(call = %self.id, ?source, "digit received");
                self.digit(digit.to_char())
            }
            MediaEvent::PlaybackFinished { id } if self.music_finished(id) => Next::Wait,
            MediaEvent::PlaybackFinished { id } if self.ringback_finished(id) => Next::Wait,
            MediaEvent::PlaybackFinished { id } if self.callback_prompt_finished(id) => Next::Wait,
            MediaEvent::PlaybackFinished { id } => match &mut self.waiting {
                Waiting::Record(rec) if rec.prompt_id == Some(id) => {
                    rec.prompt_id = None;
                    if self.recording_prompts_done() {
                        Next::Wait
                    } else {
                        Next::Resume(record_done())
                    }
                }
                Waiting::Play { id: playing, .. } if *playing == id => {
                    Next::Resume(Input::PlaybackDone)
                }
                Waiting::Collect {
                    id: Some(playing),
                    collector,
                } if *playing == id => {
                    collector.prompts_finished(Instant::now().into_std());
                    Next::Wait
                }
                _ => Next::Wait,
            },
            MediaEvent::PlaybackStopped { .. } => Next::Wait,
            MediaEvent::FirstPacket { from } => {
                tracing::debug!(call = %self.id, %from, "first RTP packet");
                Next::Wait
            }
            MediaEvent::RtpTimeout => {
                tracing::info!(call = %self.id, "no RTP for {:?}; ending the call", self.params.rtp_timeout);
                Next::End(EndReason::RtpTimeout)
            }
        }
    }

    fn respond(&self, tx: Option<ServerTxId>, req: &Request, status: u16) {
        if let Some(tx) = tx {
            let mut r = Response::for_request(req, status);
            if let Some(d) = &self.dialog {
                r = r.with_to_tag(&d.id.local_tag);
            }
            self.ctx.sip.send_response(tx, r);
        }
    }

    async fn sip_event(&mut self, ev: SipEvent) -> Next {
        match ev {
            SipEvent::Request { tx, request, .. } if self.is_supervisor_request(&request) => {
                self.supervisor_request(tx, request)
            }
            SipEvent::Response { tx, response } if self.is_supervisor_tx(tx) => {
                self.supervisor_response(response)
            }
            SipEvent::Timeout { tx, .. } if self.is_supervisor_tx(tx) => self.supervisor_timeout(),
            SipEvent::Response { tx, response } if self.is_customer_tx(tx) => {
                self.customer_response(response)
            }
            SipEvent::Timeout { tx, .. } if self.is_customer_tx(tx) => self.customer_timeout(),
            SipEvent::Request { tx, request, .. } if self.is_leg_request(&request) => {
                self.leg_request(tx, request)
            }
            SipEvent::Request { tx, request, .. } => self.request(tx, request),
            SipEvent::Cancelled { .. } => {
                if self.answered_at.is_none() {
                    self.reject(487, None);
                    Next::End(EndReason::Cancelled)
                } else {
                    Next::Wait
                }
            }
            SipEvent::AckTimeout { .. } => {
                tracing::warn!(call = %self.id, "our 200 OK was never acknowledged; ending the call");
                Next::End(EndReason::AckTimeout)
            }
            SipEvent::Response { tx, response } if self.is_leg_tx(tx) => {
                self.leg_response(tx, response).await
            }
            SipEvent::Timeout { tx, .. } if self.is_leg_tx(tx) => self.leg_timeout(tx),
            SipEvent::Response { tx, response } => match &self.waiting {
                Waiting::Transfer { tx: refer, .. } if *refer == tx && response.status >= 300 => {
                    Next::Resume(Input::TransferResult(TransferOutcome::Failed(format!(
                        "REFER refused: {} {}",
                        response.status, response.reason
                    ))))
                }
                _ => Next::Wait,
            },
            SipEvent::Timeout { tx, .. } => match &self.waiting {
                Waiting::Transfer { tx: refer, .. } if *refer == tx => Next::Resume(
                    Input::TransferResult(TransferOutcome::Failed("no answer to the REFER".into())),
                ),
                _ => Next::Wait,
            },
        }
    }

    fn request(&mut self, tx: Option<ServerTxId>, req: Request) -> Next {
        if req.method == Method::Ack {
            if self.late_offer {
                self.late_offer = false;
                let answer = SessionDescription::parse_bytes(&req.body).ok();
                let negotiated =
                    answer.and_then(|a| self.sdp.as_mut().and_then(|s| s.process_answer(&a).ok()));
                match negotiated {
                    Some(n) => {
                        self.apply_negotiated(&n);
                        self.push_params();
                    }
                    None => {
                        tracing::warn!(call = %self.id, "the ACK carried no usable SDP answer to our offer; ending the call");
                        return Next::End(EndReason::Error);
                    }
                }
            }
            return Next::Wait;
        }
        if let Some(d) = self.dialog.as_mut() {
            if let Err(e) = d.handle_request(&req) {
                tracing::debug!(call = %self.id, error = %e, "in-dialog request refused");
                self.respond(tx, &req, 500);
                return Next::Wait;
            }
        } else if req.method != Method::Invite {
            // Before our 2xx there is no dialog for the peer to use.
            self.respond(tx, &req, 481);
            return Next::Wait;
        }
        match req.method {
            Method::Bye => {
                self.respond(tx, &req, 200);
                if matches!(self.callback, Some(callback::Callback::Confirming { .. })) {
                    // Hung up during the confirmation: the callback stands.
                    self.caller_leaves_for_callback(false);
                    return Next::Wait;
                }
                Next::End(EndReason::CallerHangup)
            }
            Method::Info => {
                let digit = dtmf_from_info(req.headers.content_type().as_deref(), &req.body);
                self.respond(
                    tx,
                    &req,
                    if digit.is_some() || req.body.is_empty() {
                        200
                    } else {
                        415
                    },
                );
                match digit {
                    Some(d) => self.digit(d),
                    None => Next::Wait,
                }
            }
            Method::Invite | Method::Update => {
                self.reoffer(tx, &req);
                Next::Wait
            }
            Method::Notify => {
                self.respond(tx, &req, 200);
                let status = sipfrag_status(&req.body);
                match (&self.waiting, status) {
                    (Waiting::Transfer { .. }, Some(200..=299)) => {
                        tracing::info!(call = %self.id, "transfer completed");
                        Next::Resume(Input::TransferResult(TransferOutcome::Completed))
                    }
                    (Waiting::Transfer { .. }, Some(s)) if s >= 300 => {
                        Next::Resume(Input::TransferResult(TransferOutcome::Failed(format!(
                            "the target answered {s}"
                        ))))
                    }
                    _ => Next::Wait,
                }
            }
            Method::Options => {
                self.respond(tx, &req, 200);
                Next::Wait
            }
            _ => {
                self.respond(tx, &req, 405);
                Next::Wait
            }
        }
    }

    /// A re-INVITE or UPDATE: hold, resume, new address or codec.
    fn reoffer(&mut self, tx: Option<ServerTxId>, req: &Request) {
        let Some(tx) = tx else { return };
        let Some(session) = self.sdp.as_mut() else {
            return self.respond(Some(tx), req, 488);
        };
        let body = leg::answer_reoffer(session, req);
        match body {
            Ok((negotiated, sdp)) => {
                if let Some(n) = negotiated {
                    tracing::info!(call = %self.id, direction = ?n.direction, "media renegotiated");
                    self.apply_negotiated(&n);
                    self.push_params();
                }
                let mut r = Response::for_request(req, 200);
                if let Some(d) = &self.dialog {
                    d.prepare_response(&mut r);
                    r.headers.remove(&HeaderName::RecordRoute);
                }
                r.headers.push(HeaderName::ContentType, "application/sdp");
                r.body = sdp.to_string().into_bytes().into();
                self.ctx.sip.send_response(tx, r);
            }
            Err(e) => {
                let mut r = Response::for_request(req, 488);
                r.headers.push(
                    HeaderName::Warning,
                    format!("305 svi \"{}\"", e.replace('"', "'")),
                );
                if let Some(d) = &self.dialog {
                    r = r.with_to_tag(&d.id.local_tag);
                }
                self.ctx.sip.send_response(tx, r);
            }
        }
    }

    fn push_params(&self) {
        if let Some((m, _)) = &self.media {
            let _ = m.set_params(self.params.clone());
        }
    }

    /// Sends BYE and waits briefly for its answer (answering what crosses it).
    async fn send_bye(&mut self, inputs: &mut mpsc::UnboundedReceiver<CallInput>) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let mut bye = dialog.create_request(Method::Bye);
        let hop = dialog.target_addr();
        let peer = next_hop(hop, self.from, &self.ctx.config.sip.allowed);
        finish_request(
            &mut bye,
            self.ctx.local_sip,
            self.from.transport,
            &self.ctx.config.sip.user_agent,
        );
        bye.headers.push(
            HeaderName::Reason,
            "SIP;cause=200;text=\"Call completed by the IVR\"",
        );
        self.stop_playback();
        let Ok(bye_tx) = self.ctx.sip.send_request(bye, peer).await else {
            return;
        };
        let deadline = Instant::now() + BYE_WAIT;
        loop {
            let input = tokio::select! {
                i = inputs.recv() => i,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            let ev = match input {
                Some(CallInput::Sip(ev)) => *ev,
                Some(CallInput::Shutdown) => continue,
                Some(CallInput::Supervise { reply, .. } | CallInput::Recording { reply, .. }) => {
                    let _ = reply.send(Err("the call is ending".into()));
                    continue;
                }
                None => return,
            };
            match ev {
                SipEvent::Response { tx, response } if tx == bye_tx && response.status >= 200 => {
                    return
                }
                SipEvent::Timeout { tx, .. } if tx == bye_tx => return,
                // A BYE crossing ours, a late INFO...: answer and keep waiting.
                SipEvent::Request { tx, request, .. } if request.method != Method::Ack => {
                    self.respond(tx, &request, 200)
                }
                _ => {}
            }
        }
    }
}

/// Placeholder the loop replaces with the saved recording's `RecordDone`.
fn record_done() -> Input {
    Input::RecordDone {
        path: String::new(),
        duration: Duration::ZERO,
    }
}

fn collected_input(c: Collected) -> Input {
    match c {
        Collected::Digits(digits) => Input::Digits { digits },
        Collected::Timeout(_) => Input::Timeout,
    }
}
