//! The driver of a call the engine places: no INVITE to answer and no caller stream to
//! open first (the called number's leg opens its own); otherwise the same driver.

use std::collections::HashMap;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::{call_env, now, Driver};
use crate::call::core::{CallCore, Originate, OriginateError};
use crate::call::route::RouteGuard;
use crate::call::{CallContext, CallInput, Originated};

/// Runs a call the engine places, from its first INVITE to its record. `reply` gets the
/// call's id (and how it will end) once its number is about to ring, or why it cannot.
pub(in crate::call) async fn run(
    ctx: CallContext,
    order: Originate,
    inputs: mpsc::UnboundedReceiver<CallInput>,
    me: mpsc::UnboundedSender<CallInput>,
    call_route: RouteGuard,
    reply: oneshot::Sender<Result<Originated, OriginateError>>,
) {
    let flows = ctx.flows.borrow().clone();
    let core = CallCore::originate(now(), SystemTime::now(), call_env(&ctx), &flows, order);
    let core = match core {
        Ok(core) => core,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let call = core.id().to_string();
    let mut driver = Driver::new(ctx, core, me, HashMap::new(), call_route);
    let (ended_tx, ended) = oneshot::channel();
    driver.ended = Some(ended_tx);
    let _ = reply.send(Ok(Originated { call, ended }));
    driver.drive(inputs).await;
}
