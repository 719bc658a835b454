//! Registration of the engine's SIP user with an IPBX: a thin driver around the sans-IO
//! `RegistrationClient`. The IPBX then sends calls to our Contact. Unregistering on
//! shutdown (and, with HA, when this node stops being the active one) is what keeps two
//! nodes from being registered at once; with HA, a fresh registration also first removes
//! every binding of the user (`Contact: *`: the other node's, if it died registered), and
//! every REGISTER that adds or refreshes our binding is sent only if the lease, read at
//! that instant, says this node may serve (a node resuming from a freeze past its lease
//! sends no refresh: it unregisters instead).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sip::endpoint::Peer;
use sip::message::{HeaderName, Uri};
use sip::register::{RegistrationClient, RegistrationConfig, RegistrationEvent};
use sip::transport::{SipEvent, SipHandle};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::alarm::{AlarmHandle, AlarmKind, Condition, Severity};
use crate::config::TrunkConfig;
use crate::dispatch::DispatcherInput;
use crate::replication::Serving;

enum Command {
    Unregister(oneshot::Sender<()>),
}

pub struct TrunkHandle {
    name: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl TrunkHandle {
    /// Removes the binding (Expires: 0) and waits for the registrar, at most `timeout`.
    pub async fn unregister(self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Unregister(tx)).is_ok()
            && tokio::time::timeout(timeout, rx).await.is_err()
        {
            tracing::warn!(trunk = %self.name, "registrar did not confirm the unregistration in time");
        }
    }
}

fn uri(s: &str) -> Option<Uri> {
    Uri::parse(s).ok()
}

/// Resolves the registrar's host (IP literal or DNS name).
async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port)).await.ok()?.next()
}

/// `ha_pair`: the node has an `[ha]` section (the default of `clear_bindings`).
pub fn start(
    cfg: TrunkConfig,
    sip: SipHandle,
    local: crate::call::LocalSip,
    dispatcher: mpsc::UnboundedSender<DispatcherInput>,
    serving: Serving,
    ha_pair: bool,
    alarms: AlarmHandle,
) -> TrunkHandle {
    let (commands, rx) = mpsc::unbounded_channel();
    let name = cfg.name.clone();
    let mut cfg = cfg;
    cfg.clear_bindings = Some(cfg.clear_bindings.unwrap_or(ha_pair));
    tokio::spawn(run(cfg, sip, local, dispatcher, rx, serving, alarms));
    TrunkHandle { name, commands }
}

async fn run(
    cfg: TrunkConfig,
    sip: SipHandle,
    local: crate::call::LocalSip,
    dispatcher: mpsc::UnboundedSender<DispatcherInput>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    serving: Serving,
    alarms: AlarmHandle,
) {
    let mut active: watch::Receiver<bool> = serving.active.clone();
    // Each trunk reports its own condition (cleared on success or when unregistered).
    let source = format!("trunk {}", cfg.name);
    // Over TLS (`sips:` or `;transport=tls`), our Contact names the TLS port.
    let transport = uri(&cfg.registrar)
        .as_ref()
        .and_then(sip::endpoint::NextHop::from_uri)
        .map_or(sip::endpoint::Transport::Udp, |h| h.transport);
    let at = local.over(transport);
    let param = transport
        .uri_param()
        .map(|t| format!(";transport={t}"))
        .unwrap_or_default();
    let (Some(registrar), Some(aor), Some(contact)) = (
        uri(&cfg.registrar),
        uri(&format!("sip:{}@{}", cfg.username, cfg.domain)),
        uri(&format!(
            "sip:{}@{}:{}{param}",
            cfg.username,
            crate::call::host(at.ip()),
            at.port()
        )),
    ) else {
        tracing::error!(trunk = %cfg.name, registrar = %cfg.registrar, "cannot build the registration URIs; not registering");
        return;
    };
    let mut rc =
        RegistrationConfig::new(registrar, aor, contact, &cfg.auth_username, &cfg.password);
    rc.expires = cfg.expires;
    rc.clear_first = cfg.clear_bindings.unwrap_or(false);
    rc.instance_id = cfg.instance_id.clone();
    rc.reg_id = cfg.reg_id;
    let mut client = RegistrationClient::new(rc);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let _ = dispatcher.send(DispatcherInput::Trunk {
        call_id: client.call_id().to_string(),
        events: events_tx,
    });
    // Only the active node is registered with the IPBX: both nodes of a pair must never be
    // registered at the same time (the standby registers when it becomes active).
    let mut registered = *active.borrow_and_update();
    if registered {
        client.register(Instant::now().into_std());
    }
    let mut waiting_unregister: Option<oneshot::Sender<()>> = None;
    loop {
        while let Some(mut req) = client.poll_request() {
            if RegistrationClient::adds_binding(&req) && !serving.now() {
                // The lease ran out (or the role is gone) since the request was queued:
                // never add a binding then; remove ours instead.
                tracing::warn!(trunk = %cfg.name, "not serving: registration not sent; unregistering from the IPBX");
                registered = false;
                client.unregister(Instant::now().into_std());
                continue;
            }
            let Some(hop) = client.next_hop() else { break };
            let default_port = if hop.secure { 5061 } else { 5060 };
            let Some(addr) = resolve(&hop.host, hop.port.unwrap_or(default_port)).await else {
                tracing::warn!(trunk = %cfg.name, host = %hop.host, "cannot resolve the registrar");
                client.handle_transaction_timeout(Instant::now().into_std());
                continue;
            };
            if hop.secure && hop.host.parse::<IpAddr>().is_err() {
                // The registrar's certificate is checked against the name we were given.
                sip.set_tls_server_name(addr, hop.host.clone());
            }
            req.headers
                .set(HeaderName::Via, crate::call::via(local, hop.transport));
            if req.headers.get(&HeaderName::UserAgent).is_none() {
                req.headers.push(HeaderName::UserAgent, sip_user_agent());
            }
            if sip
                .send_request(
                    req,
                    Peer {
                        transport: hop.transport,
                        addr,
                    },
                )
                .await
                .is_err()
            {
                return;
            }
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                RegistrationEvent::Registered {
                    expires, refreshed, ..
                } => {
                    tracing::info!(trunk = %cfg.name, expires, refreshed, "registered with the IPBX");
                    alarms.report(source.clone(), Vec::new());
                }
                RegistrationEvent::Failed {
                    status,
                    error,
                    retry_at,
                } => {
                    let retry = retry_at.saturating_duration_since(Instant::now().into_std());
                    tracing::warn!(trunk = %cfg.name, status, %error, retry_in = ?retry, "registration failed");
                    alarms.report(
                        source.clone(),
                        vec![Condition {
                            kind: AlarmKind::TrunkRegistration,
                            subject: cfg.name.clone(),
                            severity: Severity::Major,
                            message: format!(
                                "registration with {} failed ({status} {error}); retrying in {} s",
                                cfg.registrar,
                                retry.as_secs()
                            ),
                        }],
                    );
                }
                RegistrationEvent::Cleared => {
                    tracing::info!(trunk = %cfg.name, "every binding of the trunk user removed before adding ours");
                }
                RegistrationEvent::ClearRefused { status } => {
                    tracing::error!(trunk = %cfg.name, status, "the registrar refused to remove the other bindings of the trunk user (Contact: *): another node's binding may stay until it expires");
                }
                RegistrationEvent::Unregistered { clean } => {
                    tracing::info!(trunk = %cfg.name, clean, "unregistered from the IPBX");
                    alarms.report(source.clone(), Vec::new());
                    if let Some(w) = waiting_unregister.take() {
                        let _ = w.send(());
                        return;
                    }
                }
            }
        }
        let timer = async {
            match client.poll_timeout() {
                Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events.recv() => match ev {
                Some(SipEvent::Response { response, .. }) if response.status >= 200 => {
                    client.handle_response(Instant::now().into_std(), &response);
                }
                Some(SipEvent::Timeout { .. }) => client.handle_transaction_timeout(Instant::now().into_std()),
                Some(_) => {}
                None => return,
            },
            cmd = commands.recv() => match cmd {
                Some(Command::Unregister(done)) if !registered => {
                    let _ = done.send(());
                    return;
                }
                Some(Command::Unregister(done)) => {
                    waiting_unregister = Some(done);
                    client.unregister(Instant::now().into_std());
                }
                None => return,
            },
            Ok(()) = active.changed() => {
                let now_active = *active.borrow_and_update();
                if now_active && !registered {
                    tracing::warn!(trunk = %cfg.name, "this node is active: registering with the IPBX");
                    client.register(Instant::now().into_std());
                } else if !now_active && registered {
                    tracing::warn!(trunk = %cfg.name, "this node is no longer active: unregistering from the IPBX");
                    client.unregister(Instant::now().into_std());
                }
                registered = now_active;
            }
            _ = timer => client.handle_timeout(Instant::now().into_std()),
            // Unregistered on a lapsed lease while the role still says active: register
            // again once the lease is renewed (or the role change comes).
            _ = tokio::time::sleep(LEASE_RECHECK), if !registered && *active.borrow() => {
                if serving.now() {
                    tracing::warn!(trunk = %cfg.name, "the lease is valid again: registering with the IPBX");
                    client.register(Instant::now().into_std());
                    registered = true;
                }
            }
        }
    }
}

/// How often a trunk that dropped its registration on a lapsed lease looks at it again.
const LEASE_RECHECK: Duration = Duration::from_millis(100);

fn sip_user_agent() -> String {
    format!("svi/{}", env!("CARGO_PKG_VERSION"))
}
