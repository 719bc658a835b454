//! The outbound leg of a call: the engine, as a B2BUA, calls a second party (an agent the
//! ACD picked, or the target of a bridged transfer) and, once it answers, bridges the two
//! media streams through itself (each leg's inbound audio is the other's outbound audio,
//! relayed by the media workers' taps and feeds).
//!
//! One leg at a time per call. Its SIP events reach the call actor through the dispatcher
//! (`Control::Leg` registers the leg's Call-ID); what an answer or a failure means depends
//! on the leg's [`LegPurpose`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use sip::auth::{parse_challenges, random_cnonce, ChallengeKind, DigestClient, DigestRequest};
use sip::dialog::Dialog;
use sip::endpoint::{new_call_id, new_tag, ClientTxId, Peer, ServerTxId, Transport};
use sip::message::{HeaderName, Method, NameAddr, Request, Response, SipMessage, Uri};
use sip::sdp::{Direction, LocalMedia, Negotiated, SdpSession, SessionDescription};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{media_codec, Call, Next, Waiting};
use crate::acd::{self, AgentId, CallId, RingFailure};
use crate::call::signalling::{contact, finish_request, via};
use crate::call::CallContext;
use crate::dispatch::Control;
use crate::media::{Link, MediaEvent, MediaHandle, MediaParams, Prompt};
use crate::recording::{Recorder, RecordingError, RecordingInfo};
use crate::storage::EndReason;
use ivr_scripts::{Input, TransferOutcome};

/// Frames buffered in each direction of a bridge (100 ms); the media worker keeps at most
/// 60 ms of it queued for sending.
const RELAY_CAPACITY: usize = 5;
/// Frames buffered towards the recorder (1 s): absorbs the writer's scheduling delays.
const RECORD_TAP_CAPACITY: usize = 50;

/// Why the engine placed the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::call) enum LegPurpose {
    /// The ACD rings this agent for a queued call.
    Agent(AgentId),
    /// A `transfer` step in `bridged` mode.
    Transfer,
    /// A supervisor listening, whispering or barging in (see `supervise`).
    Supervisor,
    /// The caller, called back (see `callback`).
    Customer,
}

pub(in crate::call) struct Leg {
    pub purpose: LegPurpose,
    pub call_id: String,
    pub invite: Request,
    pub tx: ClientTxId,
    pub peer: Peer,
    pub dialog: Option<Dialog>,
    pub sdp: SdpSession,
    pub media: MediaHandle,
    pub events: mpsc::Receiver<MediaEvent>,
    /// Credentials of the trunk the leg goes through (the PBX may challenge the INVITE).
    digest: Option<DigestClient>,
    challenges: u8,
}

/// Where a leg goes: the request URI, the next hop, and the trunk's credentials when the
/// call goes through the PBX.
pub(super) struct LegTarget {
    pub uri: Uri,
    pub peer: Peer,
    pub digest: Option<DigestClient>,
}

/// Challenges answered per leg before giving up (a second one for the same realm means the
/// password is wrong).
const MAX_CHALLENGES: u8 = 2;

/// What a 2xx to a leg's INVITE is.
pub(super) enum Answer {
    /// A retransmission (ACKed again) or a 2xx that makes no dialog.
    Again,
    /// The answer: the dialog is up; what the SDP answer negotiated, if usable.
    First(Option<Negotiated>),
}

/// Common to every leg's 2xx: the dialog on the first, an ACK for each (retransmissions
/// included: our ACK may have been lost), the SDP answer processed on the first.
pub(super) fn accept_2xx(ctx: &CallContext, leg: &mut Leg, response: &Response) -> Answer {
    let first = leg.dialog.is_none();
    if first {
        let Ok(dialog) = Dialog::new_uac(&leg.invite, response) else {
            return Answer::Again;
        };
        leg.dialog = Some(dialog);
    }
    if let Some(d) = leg.dialog.as_ref() {
        let mut ack = d.create_ack(response);
        finish_request(
            &mut ack,
            ctx.local_sip,
            leg.peer.transport,
            &ctx.config.sip.user_agent,
        );
        ctx.sip.send_stateless(SipMessage::Request(ack), leg.peer);
    }
    if !first {
        return Answer::Again;
    }
    let answer = SessionDescription::parse_bytes(&response.body).ok();
    Answer::First(answer.and_then(|a| leg.sdp.process_answer(&a).ok()))
}

/// Ends a leg: BYE when answered, CANCEL while ringing; its Call-ID is released.
pub(super) fn hang_up_leg(ctx: &CallContext, leg: &mut Leg) {
    match leg.dialog.as_mut() {
        Some(d) => {
            let mut bye = d.create_request(Method::Bye);
            finish_request(
                &mut bye,
                ctx.local_sip,
                leg.peer.transport,
                &ctx.config.sip.user_agent,
            );
            let sip = ctx.sip.clone();
            let peer = leg.peer;
            tokio::spawn(async move {
                let _ = sip.send_request(bye, peer).await;
            });
        }
        None => ctx.sip.cancel(leg.tx),
    }
    let _ = ctx.control.send(Control::LegEnded {
        call_id: leg.call_id.clone(),
    });
}

/// Answers a re-INVITE or UPDATE from `session`: our SDP answer (and what it negotiated), or
/// our offer when the request had none (RFC 3264 §8.4 lets either side offer).
pub(super) fn answer_reoffer(
    session: &mut SdpSession,
    req: &Request,
) -> Result<(Option<Negotiated>, SessionDescription), String> {
    if req.body.is_empty() {
        return Ok((None, session.offer(Direction::SendRecv)));
    }
    SessionDescription::parse_bytes(&req.body)
        .map_err(|e| e.to_string())
        .and_then(|offer| session.answer(&offer).map_err(|e| e.to_string()))
        .map(|a| (Some(a.negotiated), a.sdp))
}

/// Ringback while a bridged transfer rings: 425 Hz, 1.5 s on, 3.5 s off (the ETSI tone
/// used in France), when the prompt set has no `ringback` recording.
fn synthetic_ringback() -> Prompt {
    let on = 12_000;
    let pcm = (0..40_000)
        .map(|n| {
            if n < on {
                ((n as f64 * 2.0 * std::f64::consts::PI * 425.0 / 8000.0).sin() * 6000.0) as i16
            } else {
                0
            }
        })
        .collect();
    Prompt::from_pcm("ringback", pcm)
}

impl Call {
    /// A `transfer` step in `bridged` mode: the engine calls the target itself and bridges
    /// the caller to it on answer; the caller hears ringback meanwhile.
    pub(super) async fn bridged_transfer(&mut self, target: String, timeout: Duration) -> Next {
        let failed = |m: String| Next::Resume(Input::TransferResult(TransferOutcome::Failed(m)));
        if self.leg.is_some() {
            return failed("the call already has a second leg".into());
        }
        let to = match self.transfer_target(&target) {
            Ok(t) => t,
            Err(e) => return failed(format!("transfer target `{target}`: {e}")),
        };
        if let Err(e) = self.place_leg(to, LegPurpose::Transfer).await {
            return failed(e);
        }
        let ringback = self.play_ringback();
        self.waiting = Waiting::Bridging {
            deadline: Instant::now() + timeout,
            ringback,
        };
        Next::Wait
    }

    /// The URI and next hop of a transfer target: a SIP URI as given; an agent's extension
    /// at its registered phone; any other number through the PBX.
    pub(super) fn transfer_target(&self, target: &str) -> Result<LegTarget, String> {
        if let Some(to) = self.sip_uri_target(target) {
            return to;
        }
        if target.starts_with("tel:") {
            return Err("tel: URIs need a SIP URI or a number to route through the PBX".into());
        }
        let registered = self
            .ctx
            .agent_contacts
            .borrow()
            .get(target)
            .and_then(|c| c.first().cloned());
        if let Some(uri) = registered {
            return self.direct_target(uri);
        }
        self.via_pbx(target)
    }

    /// A target written as a SIP URI (None: not a `sip:`/`sips:` URI).
    pub(super) fn sip_uri_target(&self, text: &str) -> Option<Result<LegTarget, String>> {
        (text.starts_with("sip:") || text.starts_with("sips:")).then(|| {
            Uri::parse(text)
                .map_err(|e| e.to_string())
                .and_then(|uri| self.direct_target(uri))
        })
    }

    /// A leg sent straight to `uri` (an IP literal in the allowed networks), no credentials.
    pub(super) fn direct_target(&self, uri: Uri) -> Result<LegTarget, String> {
        let peer = self.leg_peer(&uri)?;
        Ok(LegTarget {
            uri,
            peer,
            digest: None,
        })
    }

    /// The ringback tone in `language`: its `ringback` prompt, else the synthetic one.
    pub(super) fn ringback_tone(&self, language: &str) -> Prompt {
        self.ctx
            .prompts
            .get(language, "ringback")
            .unwrap_or_else(synthetic_ringback)
    }

    fn play_ringback(&mut self) -> Option<u64> {
        let tone = self.ringback_tone(&self.ctx.config.default_language);
        self.media
            .as_ref()
            .and_then(|(m, _)| m.play(vec![tone]).ok())
    }

    /// The end of a ringback round: ring again while the target has not answered.
    pub(super) fn ringback_finished(&mut self, id: u64) -> bool {
        let Waiting::Bridging { ringback, .. } = &self.waiting else {
            return false;
        };
        if *ringback != Some(id) {
            return false;
        }
        let next = self.play_ringback();
        if let Waiting::Bridging { ringback, .. } = &mut self.waiting {
            *ringback = next;
        }
        true
    }

    /// The target did not answer within the step's timeout: CANCEL, `failed` branch.
    pub(super) fn bridging_timeout(&mut self) -> Next {
        tracing::info!(call = %self.id, "bridged transfer: no answer in time");
        self.drop_leg(false);
        self.stop_playback();
        self.waiting = Waiting::Nothing;
        Next::Resume(Input::TransferResult(TransferOutcome::Failed(
            "no answer from the target".into(),
        )))
    }

    /// A number dialled through the PBX: `sip:<number>@<first trunk's registrar>` with that
    /// trunk's credentials; without a trunk, back to the PBX the call came from.
    pub(super) fn via_pbx(&self, number: &str) -> Result<LegTarget, String> {
        if number.is_empty()
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#-._".contains(c))
        {
            return Err(format!(
                "`{number}` is not a number, an extension or a SIP URI"
            ));
        }
        let Some(trunk) = self.ctx.config.trunks.first() else {
            let pbx = self.from.addr;
            let uri = Uri::parse(&format!(
                "sip:{number}@{}:{}",
                crate::call::signalling::host(pbx.ip()),
                pbx.port()
            ))
            .map_err(|e| e.to_string())?;
            return Ok(LegTarget {
                uri,
                peer: self.from,
                digest: None,
            });
        };
        let registrar = Uri::parse(&trunk.registrar)
            .map_err(|e| format!("trunk `{}` registrar: {e}", trunk.name))?;
        let peer = self
            .leg_peer(&registrar)
            .map_err(|e| format!("trunk `{}`: {e}", trunk.name))?;
        let host = registrar
            .as_sip()
            .map(|u| u.host.clone())
            .unwrap_or_default();
        let uri = Uri::parse(&format!("sip:{number}@{host}:{}", peer.addr.port()))
            .map_err(|e| e.to_string())?;
        Ok(LegTarget {
            uri,
            peer,
            digest: Some(DigestClient::new(
                trunk.auth_username.clone(),
                trunk.password.clone(),
            )),
        })
    }

    /// The PBX challenged the leg's INVITE (401/407): the same INVITE again, with
    /// credentials, in a new transaction. False when there is nothing (more) to answer with.
    async fn answer_leg_challenge(&mut self, response: &Response) -> bool {
        let Some(leg) = self.leg.as_mut() else {
            return false;
        };
        let Some(digest) = leg.digest.as_mut() else {
            return false;
        };
        leg.challenges += 1;
        if leg.challenges > MAX_CHALLENGES {
            return false;
        }
        let (kind, header) = if response.status == 407 {
            (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
        } else {
            (ChallengeKind::Www, HeaderName::WwwAuthenticate)
        };
        let challenges: Vec<_> = response
            .headers
            .get_all(&header)
            .filter_map(|v| parse_challenges(v).ok())
            .flatten()
            .collect();
        if let Err(e) = digest.on_challenge(kind, &challenges) {
            tracing::warn!(call = %self.id, error = %e, "the PBX's challenge cannot be answered");
            return false;
        }
        let mut invite = leg.invite.clone();
        let seq = invite.headers.cseq().map(|c| c.seq + 1).unwrap_or(2);
        invite
            .headers
            .set(HeaderName::CSeq, format!("{seq} INVITE"));
        invite.headers.remove(&HeaderName::Via);
        invite.headers.remove(&HeaderName::Authorization);
        invite.headers.remove(&HeaderName::ProxyAuthorization);
        invite
            .headers
            .push(HeaderName::Via, via(self.ctx.local_sip, leg.peer.transport));
        let uri = invite.uri.to_string();
        let request = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: Some(&invite.body),
        };
        match digest.authorize(&request, &random_cnonce()) {
            Ok(auths) => {
                for a in auths {
                    invite.headers.push(
                        match a.kind {
                            ChallengeKind::Www => HeaderName::Authorization,
                            ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
                        },
                        a.header_value(),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "cannot compute digest credentials");
                return false;
            }
        }
        match self.ctx.sip.send_request(invite.clone(), leg.peer).await {
            Ok(tx) => {
                leg.tx = tx;
                leg.invite = invite;
                true
            }
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "cannot resend the INVITE");
                false
            }
        }
    }

    /// Where a SIP URI given as contact or target is sent: its host must be an IP literal (no
    /// DNS for contacts) inside `sip.allowed_networks`.
    pub(super) fn leg_peer(&self, uri: &Uri) -> Result<Peer, String> {
        let sip = uri.as_sip().ok_or("not a SIP URI")?;
        let ip: IpAddr = sip
            .host_unbracketed()
            .parse()
            .map_err(|_| format!("`{}` is not an IP address (no DNS for targets)", sip.host))?;
        if !self.ctx.config.sip.allowed.allows(ip) {
            return Err(format!("{ip} is outside sip.allowed_networks"));
        }
        let transport = if sip.transport().as_deref() == Some("tcp") {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        Ok(Peer {
            transport,
            addr: SocketAddr::new(ip, sip.port.unwrap_or(5060)),
        })
    }

    /// Media parameters of a leg from what its answer negotiated.
    pub(super) fn leg_params(&self, n: &Negotiated) -> MediaParams {
        MediaParams {
            codec: media_codec(n.codec.codec),
            remote: n
                .remote_rtp
                .filter(|a| self.ctx.config.sip.allowed.allows(a.ip())),
            telephone_event_pt: n.telephone_event,
            rtp_timeout: self.ctx.config.rtp.timeout,
        }
    }

    /// Places the leg: RTP ports, an SDP offer, the INVITE. The response arrives as a SIP
    /// event of this call (see [`Call::leg_response`]).
    pub(super) async fn place_leg(
        &mut self,
        target: LegTarget,
        purpose: LegPurpose,
    ) -> Result<(), String> {
        // The called party sees the caller's number (personal data, sent on purpose).
        let from = self.caller.reveal().clone();
        let leg = self.new_leg(target, purpose, &from).await?;
        match &self.leg {
            // Ring-all: another agent's phone rings already.
            Some(_) => self.extra_legs.push(leg),
            None => self.leg = Some(leg),
        }
        Ok(())
    }

    /// A new outbound leg from `from_user`: ports, offer, INVITE sent, Call-ID registered
    /// with the dispatcher so its SIP events come to this call.
    pub(super) async fn new_leg(
        &mut self,
        target: LegTarget,
        purpose: LegPurpose,
        from_user: &str,
    ) -> Result<Leg, String> {
        let (uri, peer) = (target.uri.clone(), target.peer);
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
        let from = format!("<sip:{from_user}@{}>;tag={}", self.ctx.local_sip, new_tag());
        invite.headers.push(HeaderName::From, from);
        invite
            .headers
            .push(HeaderName::To, NameAddr::new(uri).to_string());
        invite.headers.push(HeaderName::CallId, call_id.clone());
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(
            HeaderName::Contact,
            NameAddr::new(contact(self.ctx.local_sip, peer.transport)).to_string(),
        );
        invite.headers.push(
            HeaderName::UserAgent,
            self.ctx.config.sip.user_agent.clone(),
        );
        invite
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        invite.body = offer.to_string().into_bytes().into();
        let _ = self.ctx.control.send(Control::Leg {
            call_id: call_id.clone(),
            call: self.me.clone(),
        });
        let tx = match self.ctx.sip.send_request(invite.clone(), peer).await {
            Ok(tx) => tx,
            Err(e) => {
                let _ = self.ctx.control.send(Control::LegEnded { call_id });
                return Err(e.to_string());
            }
        };
        tracing::info!(call = %self.id, ?purpose, "second leg placed");
        Ok(Leg {
            purpose,
            call_id,
            invite,
            tx,
            peer,
            dialog: None,
            sdp,
            media,
            events,
            digest: target.digest,
            challenges: 0,
        })
    }

    /// Ends the leg: BYE when answered, CANCEL while ringing (unless `answered_only`).
    pub(super) fn drop_leg(&mut self, answered_only: bool) {
        if answered_only && self.leg.as_ref().is_some_and(|l| l.dialog.is_none()) {
            return;
        }
        let Some(mut leg) = self.leg.take() else {
            return;
        };
        hang_up_leg(&self.ctx, &mut leg);
        self.unbridge(&leg);
    }

    /// Stops the relay between the caller and `leg`.
    fn unbridge(&mut self, leg: &Leg) {
        let _ = leg.media.tap_inbound(None);
        let _ = leg.media.feed_live(None);
        if self.bridged {
            if let Some((m, _)) = &self.media {
                let _ = m.tap_inbound(None);
                let _ = m.feed_live(None);
            }
            self.bridged = false;
        }
    }

    /// Starts recording the bridge when the call's queue or flow asks for it: the caller on
    /// the left channel, the second party on the right (second taps of both streams).
    async fn start_call_recording(&mut self) {
        let cfg = &self.ctx.config.recording;
        let flow = self.flow.as_ref().map(|f| f.flow.name().to_string());
        if !cfg
            .policy(self.queue_record.queue.as_deref(), flow.as_deref())
            .draw()
        {
            return;
        }
        let settings = cfg.settings(&self.ctx.config.data_dir);
        let (left_tx, left) = mpsc::channel(RECORD_TAP_CAPACITY);
        let (right_tx, right) = mpsc::channel(RECORD_TAP_CAPACITY);
        let tapped = match (self.media.as_ref(), self.leg.as_ref()) {
            (Some((caller, _)), Some(leg)) => {
                caller.add_tap(Link::Record, left_tx).is_ok()
                    && leg.media.add_tap(Link::Record, right_tx).is_ok()
            }
            _ => false,
        };
        if !tapped {
            return;
        }
        // What the record would say if the engine died now: found again at the next start.
        let journal = serde_json::to_value(self.record(EndReason::EngineFailure))
            .unwrap_or(serde_json::Value::Null);
        match Recorder::start(settings, &self.id, journal, left, right).await {
            Ok(handle) => {
                tracing::info!(call = %self.id, file = %handle.path().display(), "recording the call");
                self.recording = Some(handle);
            }
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "the call is not recorded");
                self.remove_record_taps();
            }
        }
    }

    fn remove_record_taps(&self) {
        if let Some((m, _)) = &self.media {
            let _ = m.remove_tap(Link::Record);
        }
        if let Some(leg) = &self.leg {
            let _ = leg.media.remove_tap(Link::Record);
        }
    }

    /// Ends the call's recording: the file is completed and hashed. A recording cut short
    /// (disk full, read-only) keeps what was written.
    pub(super) async fn stop_call_recording(&mut self) -> Option<RecordingInfo> {
        let handle = self.recording.take()?;
        self.remove_record_taps();
        match handle.finish().await {
            Ok(info) => Some(info),
            Err(RecordingError::Interrupted { source, partial }) => {
                tracing::warn!(call = %self.id, error = %source, "the recording was cut short");
                partial
            }
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "the recording is lost");
                None
            }
        }
    }

    /// Connects the caller and the leg: each one's inbound audio is the other's outbound.
    pub(super) async fn bridge_leg(&mut self) -> bool {
        self.stop_playback();
        if let Some(leg) = &self.leg {
            // Ringback the agent heard while a callback dialled the caller.
            let _ = leg.media.stop_playback();
        }
        let (Some((caller_media, _)), Some(leg)) = (self.media.as_ref(), self.leg.as_ref()) else {
            return false;
        };
        let (to_leg, from_caller) = mpsc::channel(RELAY_CAPACITY);
        let (to_caller, from_leg) = mpsc::channel(RELAY_CAPACITY);
        self.bridged = caller_media.tap_inbound(Some(to_leg)).is_ok()
            && leg.media.feed_live(Some(from_caller)).is_ok()
            && leg.media.tap_inbound(Some(to_caller)).is_ok()
            && caller_media.feed_live(Some(from_leg)).is_ok();
        tracing::info!(call = %self.id, purpose = ?leg.purpose, ok = self.bridged, "caller and second leg bridged");
        if self.bridged {
            self.start_call_recording().await;
        }
        self.bridged
    }

    /// An event of the leg's media stream: its digits go to the caller (RFC 4733 both ways
    /// through the bridge); silence past the RTP timeout means the phone vanished.
    pub(super) fn leg_media_event(&mut self, ev: MediaEvent) -> Next {
        match ev {
            MediaEvent::Dtmf { digit, .. } if self.bridged => {
                if let Some((m, _)) = &self.media {
                    let _ = m.send_dtmf(digit);
                }
                self.agent_feature_code(digit.to_char());
                Next::Wait
            }
            MediaEvent::RtpTimeout if self.leg.as_ref().is_some_and(|l| l.dialog.is_some()) => {
                tracing::warn!(call = %self.id, "no RTP from the second leg; ending the call");
                self.drop_leg(false);
                Next::End(EndReason::RtpTimeout)
            }
            _ => Next::Wait,
        }
    }

    /// `svi record pause|resume`.
    pub(super) fn pause_recording(&mut self, pause: bool) -> Result<String, String> {
        let rec = self
            .recording
            .as_ref()
            .ok_or("the call is not being recorded")?;
        if pause {
            rec.pause();
        } else {
            rec.resume();
        }
        let what = if pause { "paused" } else { "resumed" };
        tracing::info!(call = %self.id, "recording {what} by an operator");
        Ok(format!("recording {what}"))
    }

    /// Feature codes keyed by the agent during the bridge: `*7` pauses the recording (a
    /// card number is coming), `*8` resumes it.
    fn agent_feature_code(&mut self, digit: char) {
        let previous = self.agent_digit.replace(digit);
        let Some(rec) = &self.recording else { return };
        match (previous, digit) {
            (Some('*'), '7') => {
                rec.pause();
                tracing::info!(call = %self.id, "recording paused by the agent");
            }
            (Some('*'), '8') => {
                rec.resume();
                tracing::info!(call = %self.id, "recording resumed by the agent");
            }
            _ => {}
        }
    }

    /// A caller's digit during the bridge goes on to the second party.
    pub(super) fn relay_digit(&self, digit: char) -> bool {
        let Some(leg) = self.leg.as_ref().filter(|_| self.bridged) else {
            return false;
        };
        if let Some(d) = crate::media::DtmfDigit::from_char(digit) {
            let _ = leg.media.send_dtmf(d);
        }
        true
    }

    /// A response to the leg's INVITE.
    pub(super) async fn leg_response(&mut self, tx: ClientTxId, response: Response) -> Next {
        if let Some(i) = self.extra_legs.iter().position(|l| l.tx == tx) {
            if !self.focus_extra_leg(i, response.status) {
                return Next::Wait;
            }
        }
        if !self.leg.as_ref().is_some_and(|l| l.tx == tx) {
            return Next::Wait;
        }
        if matches!(response.status, 401 | 407) && self.answer_leg_challenge(&response).await {
            return Next::Wait;
        }
        let Some(leg) = self.leg.as_mut() else {
            return Next::Wait;
        };
        let purpose = leg.purpose.clone();
        match response.status {
            100..=199 => {
                if let (180 | 183, LegPurpose::Agent(agent)) = (response.status, &purpose) {
                    self.ctx.acd.input(acd::Input::AgentRinging {
                        call: CallId::from(self.id.as_str()),
                        agent: agent.clone(),
                    });
                }
                Next::Wait
            }
            200..=299 => {
                let negotiated = match accept_2xx(&self.ctx, leg, &response) {
                    Answer::Again => return Next::Wait,
                    Answer::First(n) => n,
                };
                let Some(n) = negotiated else {
                    // No common codec or no SDP: the leg cannot carry audio. Hang it up
                    // rather than bridge the caller to silence.
                    tracing::warn!(call = %self.id, ?purpose, "the second leg answered without a usable SDP answer");
                    self.drop_leg(false);
                    return self.leg_failed(
                        purpose,
                        "the called party answered without a usable codec".into(),
                    );
                };
                let params = self.leg_params(&n);
                if let Some(leg) = self.leg.as_ref() {
                    let _ = leg.media.set_params(params);
                }
                match purpose {
                    LegPurpose::Agent(agent) => {
                        self.queue_record.agent = Some(agent.as_str().to_string());
                        self.queue_record.agent_answered_at = Some(Utc::now());
                        self.ctx.acd.input(acd::Input::AgentAnswered {
                            call: CallId::from(self.id.as_str()),
                            agent,
                        });
                        // A callback: now that the agent is there, call the caller back.
                        self.dial_caller_back().await;
                        Next::Wait
                    }
                    // Supervisor and callback legs are never the call's second leg.
                    LegPurpose::Supervisor | LegPurpose::Customer => Next::Wait,
                    LegPurpose::Transfer => {
                        self.waiting = Waiting::Nothing;
                        if self.bridge_leg().await {
                            tracing::info!(call = %self.id, "bridged transfer answered");
                            Next::Resume(Input::TransferResult(TransferOutcome::Completed))
                        } else {
                            self.drop_leg(false);
                            Next::Resume(Input::TransferResult(TransferOutcome::Failed(
                                "the media bridge could not be set up".into(),
                            )))
                        }
                    }
                }
            }
            status => {
                tracing::info!(call = %self.id, ?purpose, status, "second leg failed");
                if let Some(leg) = self.leg.take() {
                    self.unbridge(&leg);
                    let _ = self.ctx.control.send(Control::LegEnded {
                        call_id: leg.call_id,
                    });
                }
                let reason = format!("the called party answered {status} {}", response.reason);
                match (&purpose, status) {
                    // 487 answers our own CANCEL: whoever cancelled already moved on.
                    (_, 487) => Next::Wait,
                    (LegPurpose::Agent(agent), _) => {
                        let failure = match status {
                            486 | 600 | 603 => RingFailure::Rejected,
                            408 | 480 => RingFailure::NoAnswer,
                            _ => RingFailure::Failed(reason),
                        };
                        self.ctx.acd.input(acd::Input::RingFailed {
                            call: CallId::from(self.id.as_str()),
                            agent: agent.clone(),
                            failure,
                        });
                        Next::Wait
                    }
                    (LegPurpose::Transfer | LegPurpose::Supervisor | LegPurpose::Customer, _) => {
                        self.leg_failed(purpose, reason)
                    }
                }
            }
        }
    }

    /// What a failed leg means for the call: the ACD rings someone else; a bridged transfer
    /// takes its `failed` branch.
    fn leg_failed(&mut self, purpose: LegPurpose, reason: String) -> Next {
        match purpose {
            LegPurpose::Agent(agent) => {
                self.ctx.acd.input(acd::Input::RingFailed {
                    call: CallId::from(self.id.as_str()),
                    agent,
                    failure: RingFailure::Failed(reason),
                });
                Next::Wait
            }
            LegPurpose::Transfer => {
                self.stop_playback();
                self.waiting = Waiting::Nothing;
                Next::Resume(Input::TransferResult(TransferOutcome::Failed(reason)))
            }
            LegPurpose::Supervisor | LegPurpose::Customer => Next::Wait,
        }
    }

    /// The leg's INVITE got no final answer (transaction timeout).
    pub(super) fn leg_timeout(&mut self, tx: ClientTxId) -> Next {
        if let Some(i) = self.extra_legs.iter().position(|l| l.tx == tx) {
            if !self.focus_extra_leg(i, 408) {
                return Next::Wait;
            }
        }
        if !self
            .leg
            .as_ref()
            .is_some_and(|l| l.tx == tx && l.dialog.is_none())
        {
            return Next::Wait;
        }
        let Some(leg) = self.leg.take() else {
            return Next::Wait;
        };
        let _ = self.ctx.control.send(Control::LegEnded {
            call_id: leg.call_id,
        });
        match leg.purpose {
            LegPurpose::Agent(agent) => {
                self.ctx.acd.input(acd::Input::RingFailed {
                    call: CallId::from(self.id.as_str()),
                    agent,
                    failure: RingFailure::NoAnswer,
                });
                Next::Wait
            }
            purpose => self.leg_failed(purpose, "no answer from the called party".into()),
        }
    }

    /// Whether this request belongs to the leg (its Call-ID).
    pub(super) fn is_leg_request(&self, req: &Request) -> bool {
        self.leg
            .iter()
            .chain(&self.extra_legs)
            .any(|l| req.headers.call_id() == Some(l.call_id.as_str()))
    }

    pub(super) fn is_leg_tx(&self, tx: ClientTxId) -> bool {
        self.leg.iter().chain(&self.extra_legs).any(|l| l.tx == tx)
    }

    /// Ring-all: several agent legs ring at once; the one a response is about becomes the
    /// call's leg (the others wait in `extra_legs`) so that the usual handling applies.
    /// Not while the call's leg is answered: then a late answer is hung up and a failure
    /// just forgotten (the ACD has moved on). False when the response needs nothing more.
    fn focus_extra_leg(&mut self, i: usize, status: u16) -> bool {
        if self.leg.as_ref().is_some_and(|l| l.dialog.is_some()) {
            if status >= 200 {
                let mut late = self.extra_legs.swap_remove(i);
                hang_up_leg(&self.ctx, &mut late);
            }
            return false;
        }
        let extra = self.extra_legs.swap_remove(i);
        if let Some(current) = self.leg.replace(extra) {
            self.extra_legs.push(current);
        }
        true
    }

    /// `CancelRing` for one agent: its leg only (ring-all rings several).
    pub(super) fn cancel_agent_leg(&mut self, agent: &AgentId) {
        let mine = |l: &Leg| l.purpose == LegPurpose::Agent(agent.clone()) && l.dialog.is_none();
        if self.leg.as_ref().is_some_and(mine) {
            self.drop_leg(false);
            if !self.extra_legs.is_empty() {
                self.leg = Some(self.extra_legs.swap_remove(0));
            }
        } else if let Some(i) = self.extra_legs.iter().position(mine) {
            let mut leg = self.extra_legs.swap_remove(i);
            hang_up_leg(&self.ctx, &mut leg);
        }
    }

    /// Every leg still ringing besides the call's own (at the end of the call).
    pub(super) fn drop_extra_legs(&mut self) {
        for mut leg in std::mem::take(&mut self.extra_legs) {
            hang_up_leg(&self.ctx, &mut leg);
        }
    }

    /// A request from the second party in the leg's dialog: BYE ends the call, re-INVITEs
    /// (hold/resume) are answered from the leg's SDP session, the rest gets 200.
    pub(super) fn leg_request(&mut self, tx: Option<ServerTxId>, req: Request) -> Next {
        if self
            .leg
            .as_ref()
            .is_none_or(|l| req.headers.call_id() != Some(l.call_id.as_str()))
        {
            // A ring-all leg that never became the call's: nothing of it lives on.
            if let (Some(tx), true) = (tx, req.method != Method::Ack) {
                self.ctx
                    .sip
                    .send_response(tx, Response::for_request(&req, 481));
            }
            return Next::Wait;
        }
        let Some(leg) = self.leg.as_mut() else {
            return Next::Wait;
        };
        let local_tag = leg.dialog.as_ref().map(|d| d.id.local_tag.clone());
        let respond = |sip: &sip::transport::SipHandle, status: u16| {
            if let Some(tx) = tx {
                let mut r = Response::for_request(&req, status);
                if let Some(tag) = &local_tag {
                    r = r.with_to_tag(tag);
                }
                sip.send_response(tx, r);
            }
        };
        if req.method == Method::Ack {
            return Next::Wait;
        }
        if let Some(d) = leg.dialog.as_mut() {
            if d.handle_request(&req).is_err() {
                respond(&self.ctx.sip, 500);
                return Next::Wait;
            }
        }
        match req.method {
            Method::Bye => {
                respond(&self.ctx.sip, 200);
                let purpose = leg.purpose.clone();
                if let Some(leg) = self.leg.take() {
                    self.unbridge(&leg);
                    let _ = self.ctx.control.send(Control::LegEnded {
                        call_id: leg.call_id,
                    });
                }
                tracing::info!(call = %self.id, ?purpose, "the second party hung up");
                Next::End(match purpose {
                    LegPurpose::Agent(_) => EndReason::AgentHangup,
                    LegPurpose::Transfer | LegPurpose::Supervisor | LegPurpose::Customer => {
                        EndReason::TargetHangup
                    }
                })
            }
            Method::Invite | Method::Update => {
                let Some(tx) = tx else { return Next::Wait };
                let reply = answer_reoffer(&mut leg.sdp, &req);
                let mut r = Response::for_request(&req, if reply.is_ok() { 200 } else { 488 });
                if let Some(d) = &leg.dialog {
                    d.prepare_response(&mut r);
                    r.headers.remove(&HeaderName::RecordRoute);
                }
                match reply {
                    Ok((negotiated, sdp)) => {
                        r.headers.push(
                            HeaderName::Contact,
                            NameAddr::new(contact(self.ctx.local_sip, leg.peer.transport))
                                .to_string(),
                        );
                        r.headers.push(HeaderName::ContentType, "application/sdp");
                        r.body = sdp.to_string().into_bytes().into();
                        if let Some(n) = negotiated {
                            let params = self.leg_params(&n);
                            if let Some(leg) = self.leg.as_ref() {
                                let _ = leg.media.set_params(params);
                            }
                        }
                    }
                    Err(e) => r.headers.push(
                        HeaderName::Warning,
                        format!("305 svi \"{}\"", e.replace('"', "'")),
                    ),
                }
                self.ctx.sip.send_response(tx, r);
                Next::Wait
            }
            _ => {
                respond(&self.ctx.sip, 200);
                Next::Wait
            }
        }
    }
}
