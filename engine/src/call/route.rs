//! Which SIP Call-IDs the dispatcher routes to a call: the call's own (registered by the
//! dispatcher when it starts the call) and those of the legs the call places (registered
//! when their stream opens). Each registration is a guard: dropping it unregisters, so no
//! route outlives what it leads to, however the leg or the call ends.

use tokio::sync::mpsc;

use super::CallInput;

/// A change to the dispatcher's routes.
#[derive(Debug)]
pub enum Route {
    /// The SIP events of `call_id` (a leg's dialog) go to `call`.
    Leg {
        call_id: String,
        call: mpsc::UnboundedSender<CallInput>,
    },
    /// `call_id` leads nowhere any more: a leg is over, or a call ended.
    Gone { call_id: String },
}

/// The calls' side of the dispatcher's routes (cheap to clone).
#[derive(Debug, Clone)]
pub struct Routes {
    tx: mpsc::UnboundedSender<Route>,
}

impl Routes {
    /// The routes and the dispatcher's receiver of their changes.
    pub fn new() -> (Routes, mpsc::UnboundedReceiver<Route>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Routes { tx }, rx)
    }

    /// Routes the SIP events of a leg's `call_id` to `call` while the guard lives.
    pub fn leg(&self, call_id: String, call: mpsc::UnboundedSender<CallInput>) -> RouteGuard {
        let _ = self.tx.send(Route::Leg {
            call_id: call_id.clone(),
            call,
        });
        RouteGuard {
            call_id,
            tx: self.tx.clone(),
        }
    }

    /// The guard of a call's own Call-ID, which the dispatcher registered itself.
    pub fn call(&self, call_id: String) -> RouteGuard {
        RouteGuard {
            call_id,
            tx: self.tx.clone(),
        }
    }
}

/// Unregisters its Call-ID when dropped.
#[derive(Debug)]
pub struct RouteGuard {
    call_id: String,
    tx: mpsc::UnboundedSender<Route>,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let call_id = std::mem::take(&mut self.call_id);
        let _ = self.tx.send(Route::Gone { call_id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_lasts_as_long_as_its_guard() {
        let (routes, mut rx) = Routes::new();
        let (call, _inputs) = mpsc::unbounded_channel();
        let guard = routes.leg("leg-1".into(), call);
        assert!(matches!(rx.try_recv(), Ok(Route::Leg { call_id, .. }) if call_id == "leg-1"));
        assert!(rx.try_recv().is_err());
        drop(guard);
        assert!(matches!(rx.try_recv(), Ok(Route::Gone { call_id }) if call_id == "leg-1"));
        drop(routes.call("call-1".into()));
        assert!(matches!(rx.try_recv(), Ok(Route::Gone { call_id }) if call_id == "call-1"));
    }
}
