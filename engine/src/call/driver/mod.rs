//! The call's driver (STYLE rule 2): one task per call that owns what the core may not
//! (channels, the call's media streams, the ACD's action channel, a connector call in
//! flight, the recorders) and does nothing but I/O. It waits on an input, a media event, an
//! ACD action, a connector result, recorded audio or the core's next deadline, feeds the
//! core, then performs every output the core has, feeding back the outcome of each.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

mod origin;
mod recorders;

pub(super) use origin::run as run_originated;

use ivr_scripts::ConnectorResult;
use sip::endpoint::{ClientTxId, Peer, ServerTxId};
use sip::message::{Method, Request, Response};
use sip::transport::SipEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::core::{
    AcdOut, CallCore, CallEnv, ContactBook, MediaOut, Output, ReqId, SipIn, SipOut, StreamId,
};
use super::live::LiveCall;
use super::media::{opening_params, StreamPort};
use super::message::Message;
use super::route::RouteGuard;
use super::survival::Replica;
use super::{CallContext, CallInput};
use crate::acd::{self, CallId};
use crate::media::{Link, MediaEvent};
use crate::recording::RecorderHandle;
use crate::storage::CallRecord;

/// Frames buffered in each direction of a bridge (100 ms); the media worker keeps at most
/// 60 ms of it queued for sending.
const RELAY_CAPACITY: usize = 5;
/// Frames buffered towards the recorder (1 s): absorbs the writer's scheduling delays.
const RECORD_TAP_CAPACITY: usize = 50;

impl ContactBook for tokio::sync::watch::Receiver<crate::agents::Contacts> {
    fn contact(&self, extension: &str) -> Option<sip::message::Uri> {
        self.borrow()
            .get(extension)
            .and_then(|c| c.first().cloned())
    }
}

/// An open stream of the call.
struct Stream {
    port: Box<dyn StreamPort>,
    events: Option<mpsc::Receiver<MediaEvent>>,
}

/// A `record` step's capture.
struct Capture {
    stream: StreamId,
    message: Message,
    frames: Option<mpsc::Receiver<Vec<i16>>>,
}

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct Driver {
    ctx: CallContext,
    core: CallCore,
    /// The call's entry in the live-call registry, republished after every input.
    live: LiveCall,
    /// The caller's INVITE (None: a call the engine placed).
    invite_tx: Option<ServerTxId>,
    /// This call's input channel (legs' SIP events are routed to it).
    me: mpsc::UnboundedSender<CallInput>,
    streams: HashMap<StreamId, Stream>,
    requests: HashMap<ClientTxId, ReqId>,
    /// The call's own Call-ID, routed here until the record is written.
    call_route: Option<RouteGuard>,
    /// The legs' Call-IDs routed here.
    routes: HashMap<String, RouteGuard>,
    acd: Option<mpsc::UnboundedReceiver<acd::Action>>,
    connector: Option<Pending<ConnectorResult>>,
    recorder: Option<RecorderHandle>,
    capture: Option<Capture>,
    /// Told how the call ended, for whoever placed it.
    ended: Option<tokio::sync::oneshot::Sender<super::CallEnded>>,
    /// The call's replica (`[ha] call_survival`).
    replica: Option<Replica>,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Runs one call from its INVITE to its record.
pub(super) async fn run(
    ctx: CallContext,
    invite_tx: ServerTxId,
    invite: Request,
    from: Peer,
    inputs: mpsc::UnboundedReceiver<CallInput>,
    me: mpsc::UnboundedSender<CallInput>,
    call_route: RouteGuard,
) {
    let caller = ctx.media.open(opening_params(ctx.config.rtp.timeout)).await;
    let (stream, opened) = match caller {
        Ok((port, events)) => {
            let local = port.local_addr();
            let stream = Stream {
                port,
                events: Some(events),
            };
            (Some(stream), Ok(local))
        }
        Err(e) => (None, Err(e.to_string())),
    };
    let env = call_env(&ctx);
    let flows = ctx.flows.borrow().clone();
    let core = CallCore::new(now(), SystemTime::now(), env, &flows, invite, from, opened);
    let core = match core {
        Ok(core) => core,
        Err(refused) => {
            ctx.sip.send_response(invite_tx, refused.response);
            return write_record(&ctx, *refused.record).await;
        }
    };
    let mut streams = HashMap::new();
    if let Some(s) = stream {
        streams.insert(super::core::CALLER_STREAM, s);
    }
    let mut driver = Driver::new(ctx, core, me, streams, call_route);
    driver.invite_tx = Some(invite_tx);
    driver.drive(inputs).await;
}

/// What a call core reads of the engine's shared state.
fn call_env(ctx: &CallContext) -> CallEnv {
    CallEnv {
        config: ctx.config.clone(),
        prompts: ctx.prompts.clone(),
        local_sip: ctx.local_sip,
        contacts: Arc::new(ctx.agent_contacts.clone()),
    }
}

impl Driver {
    /// The driver of `core`, listed in the live-call registry.
    fn new(
        ctx: CallContext,
        core: CallCore,
        me: mpsc::UnboundedSender<CallInput>,
        streams: HashMap<StreamId, Stream>,
        call_route: RouteGuard,
    ) -> Driver {
        let deliver = me.clone();
        let live = ctx.live.register(core.view(), move |r| {
            deliver.send(CallInput::Command(r)).is_ok()
        });
        let replica = ctx.survival.as_ref().map(|s| s.replica(core.id()));
        Driver {
            replica,
            live,
            ctx,
            core,
            invite_tx: None,
            me,
            streams,
            requests: HashMap::new(),
            call_route: Some(call_route),
            routes: HashMap::new(),
            acd: None,
            connector: None,
            recorder: None,
            capture: None,
            ended: None,
        }
    }

    async fn drive(&mut self, mut inputs: mpsc::UnboundedReceiver<CallInput>) {
        self.drain().await;
        self.replicate(true);
        while !self.core.is_ended() {
            let deadline = self.core.poll_timeout().map(Instant::from_std);
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let acd = async {
                match self.acd.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let connector = async {
                match self.connector.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            };
            let frame = async {
                match self.capture.as_mut().and_then(|c| c.frames.as_mut()) {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let media = next_media_event(&mut self.streams);
            let refresh = self.replica.as_ref().and_then(Replica::poll_timeout);
            let refresh = async {
                match refresh {
                    Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            let moved = async {
                match self.replica.as_mut() {
                    Some(r) => r.moved().await,
                    None => std::future::pending().await,
                }
            };
            // Whether the core had an input (not only the replica's deadline).
            let mut fed = true;
            tokio::select! {
                input = inputs.recv() => self.input(input),
                () = refresh => fed = false,
                () = moved => self.core.handle_moved(now()),
                (stream, event) = media => match event {
                    Some(event) => self.core.handle_media(now(), stream, event),
                    None => {
                        if let Some(s) = self.streams.get_mut(&stream) {
                            s.events = None;
                        }
                    }
                },
                action = acd => match action {
                    Some(action) => self.core.handle_acd(now(), action),
                    None => {
                        self.acd = None;
                        self.core.handle_acd_lost(now());
                    }
                },
                result = connector => {
                    self.connector = None;
                    self.core.handle_connector(now(), result);
                }
                frame = frame => self.frame(frame),
                () = timer => self.core.handle_timeout(now()),
            }
            self.drain().await;
            self.replicate(fed);
        }
        self.refuse_late_requests(&mut inputs);
    }

    /// Hands the call's snapshot to its replica when due: after an input (`fed`), or at
    /// the replica's own deadline.
    fn replicate(&mut self, fed: bool) {
        if let Some(r) = self.replica.as_mut() {
            match fed {
                true => r.handle_input(now(), &self.core),
                false => r.handle_timeout(now(), &self.core),
            }
        }
    }

    /// Requests that reached the call's queue after its end (a caller's INFO crossing the
    /// answer to our BYE): the dialog is gone, 481, as the dispatcher answers once the
    /// call's route is dropped.
    fn refuse_late_requests(&self, inputs: &mut mpsc::UnboundedReceiver<CallInput>) {
        while let Ok(input) = inputs.try_recv() {
            let CallInput::Sip(event) = input else {
                continue;
            };
            if let SipEvent::Request {
                tx: Some(tx),
                request,
                ..
            } = *event
            {
                if request.method != Method::Ack {
                    let gone = Response::for_request(&request, 481);
                    self.ctx.sip.send_response(tx, gone);
                }
            }
        }
    }

    fn input(&mut self, input: Option<CallInput>) {
        match input {
            Some(CallInput::Sip(ev)) => self.sip_event(*ev),
            Some(CallInput::Command(request)) => {
                let _ = request
                    .reply
                    .send(self.core.handle_command(now(), request.command));
            }
            Some(CallInput::Shutdown) | None => self.core.handle_shutdown(now()),
        }
    }

    /// The transport's events as the core sees them: client transactions by its ids.
    fn sip_event(&mut self, event: SipEvent) {
        let event = match event {
            SipEvent::Request { tx, request, from } => SipIn::Request { tx, request, from },
            SipEvent::Response { tx, response } => match self.requests.get(&tx) {
                Some(req) => SipIn::Response {
                    req: *req,
                    response,
                },
                None => return,
            },
            SipEvent::Timeout { tx, .. } => match self.requests.remove(&tx) {
                Some(req) => SipIn::Timeout { req },
                None => return,
            },
            SipEvent::Cancelled { .. } => SipIn::Cancelled,
            SipEvent::AckTimeout { .. } => SipIn::AckTimeout,
        };
        self.core.handle_sip(now(), event);
    }

    fn frame(&mut self, frame: Option<Vec<i16>>) {
        let Some(capture) = self.capture.as_mut() else {
            return;
        };
        match frame {
            Some(f) => {
                // Frames arrive every 20 ms from the worker; more than two missing is a gap
                // in the caller's RTP, kept as silence.
                capture
                    .message
                    .pad_to(Instant::now(), Duration::from_millis(60));
                capture.message.push(&f);
            }
            None => capture.frames = None,
        }
    }

    /// Performs every output of the core, feeding back what each one gives.
    async fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Sip(out) => self.sip(out).await,
                Output::Media(out) => self.media(out).await,
                Output::Acd(out) => self.acd(out),
                Output::Connector {
                    action,
                    name,
                    params,
                    timeout,
                } => {
                    let connectors = self.ctx.connectors.clone();
                    self.connector = Some(Box::pin(async move {
                        if action {
                            connectors.action(&name, params.reveal(), timeout).await
                        } else {
                            connectors.lookup(&name, params.reveal(), timeout).await
                        }
                    }));
                }
                Output::Recording(out) => self.recording(out).await,
                Output::Message(out) => self.message(out).await,
                Output::Record {
                    mut record,
                    caller_stream,
                } => {
                    if let Some(s) = self.streams.get(&caller_stream) {
                        let stats = s.port.stats();
                        record.rtp_sent = stats.packets_sent;
                        record.rtp_received = stats.packets_received;
                    }
                    // Its record is fixed: the call leaves the live calls.
                    self.live.end(record.end_reason);
                    let ended = super::CallEnded {
                        reason: record.end_reason,
                        answered: record.answered_at.is_some(),
                    };
                    write_record(&self.ctx, *record).await;
                    // Whoever placed the call learns how it ended once its record is stored.
                    if let Some(tx) = self.ended.take() {
                        let _ = tx.send(ended);
                    }
                    self.core.handle_record_stored(now());
                }
            }
        }
        if self.core.is_over() && self.call_route.is_some() {
            // Record stored and caller told: out of the dispatcher's count; legs still
            // finishing keep their own routes.
            self.call_route = None;
        }
        self.live.set(self.core.view());
    }

    async fn sip(&mut self, out: SipOut) {
        let sip = &self.ctx.sip;
        match out {
            SipOut::AnswerInvite(r) => {
                if let Some(tx) = self.invite_tx {
                    sip.send_response(tx, r);
                }
            }
            SipOut::Respond { tx, response } => sip.send_response(tx, response),
            SipOut::Stateless { message, to } => sip.send_stateless(message, to),
            SipOut::Request { req, request, to } => match sip.send_request(request, to).await {
                Ok(tx) => {
                    self.requests.insert(tx, req);
                }
                Err(e) => {
                    tracing::warn!(call = %self.core.id(), error = %e, "request not sent");
                    self.core.handle_sip(now(), SipIn::Timeout { req });
                }
            },
            SipOut::Route { call_id } => {
                let guard = self.ctx.routes.leg(call_id.clone(), self.me.clone());
                self.routes.insert(call_id, guard);
            }
            SipOut::Unroute { call_id } => {
                self.routes.remove(&call_id);
            }
            SipOut::Cancel { req } => {
                if let Some(tx) = self
                    .requests
                    .iter()
                    .find(|(_, r)| **r == req)
                    .map(|(t, _)| *t)
                {
                    sip.cancel(tx);
                }
            }
        }
    }

    async fn media(&mut self, out: MediaOut) {
        let id = self.core.id().to_string();
        let failed = |what: &str, e: crate::media::MediaError| {
            tracing::debug!(call = %id, error = %e, "media {what} not applied");
        };
        match out {
            MediaOut::Open { stream } => {
                let params = opening_params(self.ctx.config.rtp.timeout);
                let opened = match self.ctx.media.open(params).await {
                    Ok((port, events)) => {
                        let local = port.local_addr();
                        let s = Stream {
                            port,
                            events: Some(events),
                        };
                        self.streams.insert(stream, s);
                        Ok(local)
                    }
                    Err(e) => Err(e.to_string()),
                };
                self.core.handle_stream_opened(now(), stream, opened);
            }
            MediaOut::Close { stream } => {
                self.streams.remove(&stream);
            }
            MediaOut::Bridge { caller, peer } => {
                let ok = match (self.streams.get(&caller), self.streams.get(&peer)) {
                    (Some(c), Some(p)) => {
                        let (to_peer, from_caller) = mpsc::channel(RELAY_CAPACITY);
                        let (to_caller, from_peer) = mpsc::channel(RELAY_CAPACITY);
                        c.port.add_tap(Link::Relay, to_peer).is_ok()
                            && p.port.add_feed(Link::Relay, from_caller).is_ok()
                            && p.port.add_tap(Link::Relay, to_caller).is_ok()
                            && c.port.add_feed(Link::Relay, from_peer).is_ok()
                    }
                    _ => false,
                };
                tracing::info!(call = %id, ok, "caller and second leg bridged");
            }
            MediaOut::Route {
                from,
                tap,
                to,
                feed,
                capacity,
            } => {
                let (tx, rx) = mpsc::channel(capacity);
                if let Some(s) = self.streams.get(&from) {
                    let _ = s.port.add_tap(tap, tx).map_err(|e| failed("tap", e));
                }
                if let Some(s) = self.streams.get(&to) {
                    let _ = s.port.add_feed(feed, rx).map_err(|e| failed("feed", e));
                }
            }
            other => {
                let Some(s) = self.streams.get(&stream_of(&other)) else {
                    return;
                };
                let port = &s.port;
                let done = match other {
                    MediaOut::Params { params, .. } => port.set_params(params),
                    MediaOut::Play { id, prompts, .. } => port.play(id, prompts),
                    MediaOut::StopPlayback { .. } => port.stop_playback(),
                    MediaOut::SendDtmf { digit, .. } => port.send_dtmf(digit),
                    MediaOut::Unroute { link, .. } => {
                        port.remove_tap(link).and_then(|()| port.remove_feed(link))
                    }
                    _ => Ok(()),
                };
                let _ = done.map_err(|e| failed("command", e));
            }
        }
    }

    fn acd(&mut self, out: AcdOut) {
        let call = CallId::from(self.core.id());
        match out {
            AcdOut::Join(input) => self.acd = Some(self.ctx.acd.join(call, input)),
            AcdOut::Input(input) => self.ctx.acd.input(input),
            AcdOut::Leave => {
                self.acd = None;
                self.ctx.acd.leave(call);
            }
        }
    }
}

fn stream_of(out: &MediaOut) -> StreamId {
    match out {
        MediaOut::Open { stream }
        | MediaOut::Params { stream, .. }
        | MediaOut::Play { stream, .. }
        | MediaOut::StopPlayback { stream }
        | MediaOut::SendDtmf { stream, .. }
        | MediaOut::Unroute { stream, .. }
        | MediaOut::Close { stream } => *stream,
        MediaOut::Route { from, .. } => *from,
        MediaOut::Bridge { caller, .. } => *caller,
    }
}

/// The next event of any of the call's streams (None: that stream's workers are gone).
async fn next_media_event(
    streams: &mut HashMap<StreamId, Stream>,
) -> (StreamId, Option<MediaEvent>) {
    poll_fn(|cx| {
        for (id, s) in streams.iter_mut() {
            if let Some(events) = s.events.as_mut() {
                if let Poll::Ready(ev) = events.poll_recv(cx) {
                    return Poll::Ready((*id, ev));
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes the call's record (and its recording's index entry first). The writer returns
/// once they are durable: committed, or in its fsynced local spool.
async fn write_record(ctx: &CallContext, record: CallRecord) {
    let id = record.id.clone();
    let (flow, reason, steps) = (record.flow.clone(), record.end_reason, record.path.len());
    if let Some(entry) = crate::recording::IndexEntry::for_record(&record) {
        if let Err(e) = ctx
            .writer
            .put_doc(
                crate::recording::index::COLLECTION.into(),
                id.clone(),
                entry.to_doc(),
            )
            .await
        {
            tracing::error!(call = %id, error = %e, "could not index the recording");
        }
    }
    if let Err(e) = ctx.writer.write_call(record).await {
        tracing::error!(call = %id, error = %e, "could not write the call record");
    }
    tracing::info!(call = %id, flow = flow.as_deref().unwrap_or("-"), reason = reason.as_str(), steps, "call ended");
}
