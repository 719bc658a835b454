//! The SIP dispatcher: one task that receives every `SipEvent` from the transport driver,
//! answers what no call owns (OPTIONS, screening errors, 481 for unknown dialogs, 503 while
//! shutting down; peers outside the allow-list never get here: the transport refuses them), starts a call actor for each new
//! INVITE, and routes everything else to its owner by Call-ID (calls and trunk
//! registrations alike).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sip::endpoint::ServerTxId;
use sip::message::{HeaderName, Method, Request, Response};
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::{mpsc, oneshot, watch};

use crate::admission::{Admission, Refusal};
use crate::agents::AgentPhones;
use crate::call::{self, CallContext, CallInput, Route};
use crate::replication::Serving;
use crate::uas;

/// Who owns a Call-ID.
pub enum Owner {
    Call(mpsc::UnboundedSender<CallInput>),
    /// A leg the call placed itself (not counted as a call).
    Leg(mpsc::UnboundedSender<CallInput>),
    Trunk(mpsc::UnboundedSender<SipEvent>),
}

pub enum DispatcherInput {
    /// Register a trunk's Call-ID so its responses reach it.
    Trunk {
        call_id: String,
        events: mpsc::UnboundedSender<SipEvent>,
    },
    /// Refuse new calls and hang up those in progress; reply when none is left.
    Drain { done: oneshot::Sender<()> },
    /// Agent phone bindings replicated from the previously active node (this one just
    /// became active).
    AgentBindings(Vec<(String, Vec<(sip::message::Uri, Instant)>)>),
    /// Place a call (see `call::originate`), if this node takes calls now.
    Originate {
        order: call::Originate,
        reply: oneshot::Sender<Result<call::Originated, call::OriginateError>>,
    },
}

pub struct Dispatcher {
    sip: SipHandle,
    ctx: CallContext,
    owners: HashMap<String, Owner>,
    active: watch::Sender<usize>,
    draining: Option<Vec<oneshot::Sender<()>>>,
    agents: AgentPhones,
    /// Whether this node is the active one (HA); a standby refuses calls with 503.
    serving: Serving,
    /// `sip.max_calls_per_second`.
    admission: CallRate,
    /// New calls admitted and refused, for metrics.
    counts: std::sync::Arc<Admission>,
    /// New calls refused by the rate since the last warning (logged at most once a second).
    refused_by_rate: u64,
    last_rate_warning: Option<Instant>,
}

/// A token bucket for new calls: `rate` tokens a second, holding at most one second's worth,
/// so a burst of `rate` calls passes at once and a flood is cut to `rate` a second.
#[derive(Debug, Clone)]
pub struct CallRate {
    rate: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl CallRate {
    /// `per_second` 0: no limit.
    pub fn new(per_second: u32) -> Self {
        CallRate {
            rate: f64::from(per_second),
            tokens: f64::from(per_second),
            last: None,
        }
    }

    /// Takes a token for a new call at `now`; false when the rate is exceeded.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.rate);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Dispatcher {
    pub fn new(
        sip: SipHandle,
        ctx: CallContext,
        active: watch::Sender<usize>,
        agents: AgentPhones,
        serving: Serving,
        counts: std::sync::Arc<Admission>,
    ) -> Self {
        Dispatcher {
            admission: CallRate::new(ctx.config.sip.max_calls_per_second),
            counts,
            refused_by_rate: 0,
            last_rate_warning: None,
            serving,
            agents,
            sip,
            ctx,
            owners: HashMap::new(),
            active,
            draining: None,
        }
    }

    pub async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<SipEvent>,
        mut inputs: mpsc::UnboundedReceiver<DispatcherInput>,
        mut routes: mpsc::UnboundedReceiver<Route>,
    ) {
        loop {
            tokio::select! {
                // Routes first: a leg's route is registered before its INVITE is sent, so
                // it must be in place before any answer to that INVITE is routed.
                biased;
                Some(route) = routes.recv() => self.route(route),
                ev = events.recv() => match ev {
                    Some(ev) => self.event(ev),
                    None => break,
                },
                _ = registrations_expire(self.agents.poll_timeout()) => self.agents.expire(now()),
                Ok(()) = self.serving.active.changed() => {
                    if !*self.serving.active.borrow_and_update() {
                        // Fencing is for new work only: new calls get 503 from now on (the
                        // check in `request`), while the calls in progress keep their media,
                        // which is here, to their natural end; their records reach the log
                        // through the active node (the writer forwards or spools them).
                        tracing::warn!(calls = self.calls(), "this node is no longer active: new calls refused, calls in progress kept to their end");
                    }
                }
                c = inputs.recv() => match c {
                    Some(DispatcherInput::Trunk { call_id, events }) => { self.owners.insert(call_id, Owner::Trunk(events)); }
                    Some(DispatcherInput::AgentBindings(list)) => self.agents.restore(Instant::now(), list),
                    Some(DispatcherInput::Originate { order, reply }) => self.originate(order, reply),
                    Some(DispatcherInput::Drain { done }) => {
                        self.draining.get_or_insert_with(Vec::new).push(done);
                        for owner in self.owners.values() {
                            if let Owner::Call(tx) = owner {
                                let _ = tx.send(CallInput::Shutdown);
                            }
                        }
                        self.publish_active();
                    }
                    None => break,
                },
            }
        }
    }

    fn route(&mut self, route: Route) {
        match route {
            Route::Leg { call_id, call } => {
                self.owners.insert(call_id, Owner::Leg(call));
            }
            Route::Gone { call_id } => {
                if let Some(Owner::Call(_)) = self.owners.remove(&call_id) {
                    self.publish_active();
                    tracing::info!(active_calls = self.calls(), "call closed");
                }
            }
        }
    }

    /// Places a call, counted as any other: not on a standby, not while draining, not at
    /// `sip.max_calls`.
    fn originate(
        &mut self,
        order: call::Originate,
        reply: oneshot::Sender<Result<call::Originated, call::OriginateError>>,
    ) {
        let full = self.calls() >= self.ctx.config.sip.max_calls;
        if full || self.draining.is_some() || !self.serving.now() {
            let _ = reply.send(Err(call::OriginateError::NotServing));
            return;
        }
        // Not a SIP Call-ID: the number's leg routes its own.
        let key = format!("originated-{:016x}", rand::random::<u64>());
        let input = call::originate(self.ctx.clone(), order, key.clone(), reply);
        self.owners.insert(key, Owner::Call(input));
        self.publish_active();
    }

    fn calls(&self) -> usize {
        self.owners
            .values()
            .filter(|o| matches!(o, Owner::Call(_)))
            .count()
    }

    fn publish_active(&mut self) {
        let n = self.calls();
        self.active.send_replace(n);
        if n == 0 {
            if let Some(waiters) = self.draining.as_mut() {
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        }
    }

    /// Sends a final answer of the UAS core, with the To tag RFC 3261 §8.2.6.2 requires.
    fn reply(&self, tx: Option<ServerTxId>, r: Response) {
        let r = r.with_to_tag(&sip::endpoint::new_tag());
        if let Some(tx) = tx {
            self.sip.send_response(tx, r);
        }
    }

    fn event(&mut self, ev: SipEvent) {
        let call_id = match &ev {
            SipEvent::Request { request, .. } => request.headers.call_id().map(str::to_string),
            SipEvent::Response { response, .. } => response.headers.call_id().map(str::to_string),
            SipEvent::Timeout { call_id, .. }
            | SipEvent::Cancelled { call_id, .. }
            | SipEvent::AckTimeout { call_id, .. } => call_id.clone(),
        };
        let Some(call_id) = call_id else { return };
        if let SipEvent::Request { tx, request, from } = ev {
            return self.request(call_id, tx, request, from);
        }
        match self.owners.get(&call_id) {
            Some(Owner::Call(c) | Owner::Leg(c)) => {
                let _ = c.send(CallInput::Sip(Box::new(ev)));
            }
            Some(Owner::Trunk(t)) => {
                let _ = t.send(ev);
            }
            None => tracing::debug!("SIP event for no owner (late or stray)"),
        }
    }

    fn request(
        &mut self,
        call_id: String,
        tx: Option<ServerTxId>,
        request: Request,
        from: sip::endpoint::Peer,
    ) {
        // The lease is read now, not only the published role: see `replication::Serving`.
        if matches!(
            request.method,
            Method::Invite | Method::Register | Method::Options
        ) && !in_dialog_request(&request)
            && !self.serving.now()
        {
            // A standby keeps the PBX on the active node ("dissuasion"). OPTIONS gets the
            // answer an INVITE would (RFC 3261 §11): a dispatcher probing with OPTIONS sees
            // the standby unavailable, and the answer itself shows it alive.
            self.count_refusal(&request, Refusal::Standby);
            let mut r = Response::for_request(&request, 503);
            r.headers.push(HeaderName::RetryAfter, "30");
            r.headers
                .push(HeaderName::Warning, "399 svi \"standby node\"");
            return self.reply(tx, r);
        }
        if request.method == Method::Register && self.agents.enabled() {
            let r = self.agents.handle(now(), &request, from);
            return self.reply(tx, r);
        }
        if let Some(r) = uas::screen(&request) {
            return self.reply(tx, r);
        }
        let in_dialog = in_dialog_request(&request);
        match (&request.method, self.owners.get(&call_id)) {
            (Method::Options, _) if !in_dialog || !self.owners.contains_key(&call_id) => {
                self.reply(
                    tx,
                    uas::options_answer(&request, &self.ctx.config.sip.user_agent),
                );
            }
            (_, Some(Owner::Leg(c))) if in_dialog => {
                let _ = c.send(CallInput::Sip(Box::new(SipEvent::Request {
                    tx,
                    request,
                    from,
                })));
            }
            (_, Some(Owner::Call(c))) => {
                if !in_dialog && request.method == Method::Invite {
                    // Same Call-ID, no To tag, new transaction: a merged request (RFC 3261 §8.2.2.2).
                    return self.reply(tx, Response::for_request(&request, 482));
                }
                let _ = c.send(CallInput::Sip(Box::new(SipEvent::Request {
                    tx,
                    request,
                    from,
                })));
            }
            (Method::Invite, None)
                if !in_dialog
                    && self.agents.enabled()
                    && crate::agents::AgentPhones::is_feature_code(&request) =>
            {
                let r = self.agents.feature_code(now(), &request, from);
                self.reply(tx, r);
            }
            (Method::Invite, None) if !in_dialog => {
                if self.calls() >= self.ctx.config.sip.max_calls {
                    // Overload protection: the PBX retries elsewhere or later instead of the
                    // engine degrading every call in progress.
                    tracing::warn!(
                        calls = self.calls(),
                        "sip.max_calls reached: new call refused with 503"
                    );
                    self.counts.refused(Refusal::Overloaded);
                    let mut r = Response::for_request(&request, 503);
                    r.headers.push(HeaderName::RetryAfter, "5");
                    r.headers
                        .push(HeaderName::Warning, "399 svi \"overloaded\"");
                    return self.reply(tx, r);
                }
                if self.draining.is_some() {
                    self.counts.refused(Refusal::Draining);
                    let mut r = Response::for_request(&request, 503);
                    r.headers.push(HeaderName::RetryAfter, "30");
                    return self.reply(tx, r);
                }
                if !self.admission.admit(now()) {
                    self.counts.refused(Refusal::RateLimit);
                    self.warn_refused_by_rate();
                    let mut r = Response::for_request(&request, 503);
                    r.headers.push(HeaderName::RetryAfter, "1");
                    r.headers
                        .push(HeaderName::Warning, "399 svi \"call rate limit\"");
                    return self.reply(tx, r);
                }
                let Some(tx) = tx else { return };
                self.counts.admitted();
                let input = call::spawn(self.ctx.clone(), tx, request, from, call_id.clone());
                self.owners.insert(call_id, Owner::Call(input));
                self.publish_active();
            }
            (Method::Ack, _) => {} // ACK for a call that is gone: nothing to do.
            _ => self.reply(tx, Response::for_request(&request, 481)),
        }
    }

    /// Counts a refused request if it is a new call (an INVITE outside a dialog).
    fn count_refusal(&self, request: &Request, why: Refusal) {
        if request.method == Method::Invite && !in_dialog_request(request) {
            self.counts.refused(why);
        }
    }

    /// A flood would log a line per refused call: one line a second says how many.
    fn warn_refused_by_rate(&mut self) {
        self.refused_by_rate += 1;
        let now = now();
        if self
            .last_rate_warning
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        tracing::warn!(
            refused = self.refused_by_rate,
            limit = self.ctx.config.sip.max_calls_per_second,
            "sip.max_calls_per_second exceeded: new calls refused with 503"
        );
        self.refused_by_rate = 0;
        self.last_rate_warning = Some(now);
    }
}

/// Sleeps until the next registration expiry, if any.
/// Tokio's clock, as the call drivers read it: paused in tests, the wall clock otherwise.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn registrations_expire(at: Option<std::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

fn in_dialog_request(r: &Request) -> bool {
    r.headers.to_addr().ok().is_some_and(|t| t.tag().is_some())
}

#[cfg(test)]
mod tests {
    use super::CallRate;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_of_one_second_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut rate = CallRate::new(100);
        let admitted = (0..250).filter(|_| rate.admit(t0)).count();
        assert_eq!(admitted, 100, "the burst is one second's worth");
        // 10 ms later: one more token.
        assert!(rate.admit(t0 + Duration::from_millis(10)));
        assert!(!rate.admit(t0 + Duration::from_millis(10)));
        // Over the next second, a flood of 1,000 attempts gets about 100 through.
        let through = (1..=1000)
            .filter(|i| rate.admit(t0 + Duration::from_millis(10) + Duration::from_millis(*i)))
            .count();
        assert!((99..=101).contains(&through), "{through}");
        // After a quiet second the burst is back, and no more than it.
        let later = t0 + Duration::from_secs(5);
        assert_eq!((0..250).filter(|_| rate.admit(later)).count(), 100);
    }

    #[test]
    fn zero_means_no_limit() {
        let t0 = Instant::now();
        let mut rate = CallRate::new(0);
        assert!((0..100_000).all(|_| rate.admit(t0)));
    }
}
