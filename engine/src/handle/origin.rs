//! Calls the engine places: an order goes to the dispatcher, which counts the call like any
//! other (refused on a standby, while draining, at `sip.max_calls`) and starts its driver.
//! And the alarm webhook, which wakes the alarm call-out that places such calls.

use tokio::sync::oneshot;

use super::{EngineHandle, HandleError, Part};
use crate::call::{Originate, OriginateError, Originated};
use crate::callout::webhook::PushError;
use crate::dispatch::DispatcherInput;

impl EngineHandle {
    /// Places a call: its number rings, and when it answers it runs the order's flow. The
    /// call's id (and how it will end, once its record is written), or why it was not
    /// placed.
    pub async fn originate(&self, order: Originate) -> Result<Originated, HandleError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || HandleError::unavailable(Part::Telephony, "the engine is stopping");
        self.engine()?
            .dispatcher
            .send(DispatcherInput::Originate { order, reply })
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(HandleError::from)
    }
}

impl EngineHandle {
    /// An alarm pushed by the access-control system to the webhook route: checks the
    /// signature and wakes the alarm call-out (see `callout::webhook`); the alarm's id.
    /// Its own error, not a [`HandleError`]: the caller is a system holding a shared
    /// secret, not an operator (401 for a bad signature, 404 when no webhook is set).
    pub fn alarm_pushed(&self, body: &[u8], signature: Option<&str>) -> Result<String, PushError> {
        let running = self.engine().map_err(|_| PushError::NotConfigured)?;
        running
            .alarm_webhook
            .as_ref()
            .ok_or(PushError::NotConfigured)?
            .push(body, signature)
    }
}

impl From<OriginateError> for HandleError {
    fn from(e: OriginateError) -> Self {
        match e {
            OriginateError::NotServing => HandleError::unavailable(Part::Telephony, e),
            other => HandleError::Refused {
                reason: other.to_string(),
            },
        }
    }
}
