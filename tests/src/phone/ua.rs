//! The phone's SIP side: one actor task over the `sip` crate's transport driver.
//!
//! The driver already does what any SIP element must (transactions and their
//! retransmissions, absorbing retransmitted requests and responses, 100 Trying, answering
//! CANCEL and matching it to its INVITE, repeating our 2xx until its ACK), so this actor only
//! holds the user agent's decisions: one call at a time (a second INVITE gets 486), its
//! dialog and offer/answer state, and an optional registration. It waits on a command from
//! the `Phone` handle, a SIP event, or its next deadline (auto-answer, registration refresh),
//! handles it, and reports [`PhoneEvent`]s. This file holds the actor, its registration and
//! the dispatch of SIP events; `call` holds everything about the call itself.

mod call;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use sip::endpoint::{ClientTxId, EndpointConfig, Peer, Transport};
use sip::message::{HeaderName, Headers, Request, Response, Uri};
use sip::register::{RegistrationClient, RegistrationConfig, RegistrationEvent};
use sip::sdp::LocalMedia;
use sip::transport::{DriverConfig, SipEvent, SipHandle};
use tokio::sync::{mpsc, oneshot};

use super::media::MediaCommand;
use super::{random_u64, Ended, PhoneConfig, PhoneError, PhoneEvent};
use call::{Call, CallState};

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
const SDP: &str = "application/sdp";

type Reply<T> = oneshot::Sender<Result<T, PhoneError>>;

#[derive(Debug)]
pub enum Command {
    Register {
        registrar: SocketAddr,
        reply: Reply<()>,
    },
    Unregister {
        reply: Reply<()>,
    },
    /// Replies with the call's number once the INVITE is sent.
    Call {
        uri: String,
        reply: Reply<u32>,
    },
    Answer {
        reply: Reply<()>,
    },
    Reject {
        status: u16,
        reply: Reply<()>,
    },
    Hangup {
        reply: Reply<()>,
    },
    InfoDtmf {
        digit: char,
        reply: Reply<()>,
    },
}

struct Registration {
    client: RegistrationClient,
    registrar: Peer,
    tx: Option<ClientTxId>,
    /// The `register`/`unregister` call waiting for the outcome.
    reply: Option<Reply<()>>,
}

pub struct Ua {
    config: PhoneConfig,
    sip: SipHandle,
    sip_events: mpsc::UnboundedReceiver<SipEvent>,
    local: SocketAddr,
    contact: Uri,
    rtp: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<PhoneEvent>,
    media: mpsc::UnboundedSender<MediaCommand>,
    registration: Option<Registration>,
    call: Option<Call>,
    /// Calls so far (incoming and outgoing), which numbers them.
    calls: u32,
}

/// `request` with one Via, ours, first (the endpoint adds the branch).
fn with_via(local: SocketAddr, mut request: Request) -> Request {
    let mut headers = Headers::new();
    headers.push(HeaderName::Via, format!("SIP/2.0/UDP {local};rport"));
    for h in request.headers.iter().filter(|h| h.name != HeaderName::Via) {
        headers.push(h.name.clone(), h.value.clone());
    }
    request.headers = headers;
    request
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Ua {
    pub async fn start(
        config: PhoneConfig,
        rtp: SocketAddr,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<PhoneEvent>,
        media: mpsc::UnboundedSender<MediaCommand>,
    ) -> Result<Ua, PhoneError> {
        // The phone talks to the engine on loopback only.
        let edge = sip::transport::EdgeConfig {
            allowed: sip::acl::Acl::new(
                ["127.0.0.0/8", "::1/128"]
                    .iter()
                    .filter_map(|n| sip::acl::Network::parse(n))
                    .collect(),
            ),
            ..Default::default()
        };
        let (sip, sip_events, _task) = sip::transport::start(DriverConfig {
            tcp: false,
            endpoint: EndpointConfig {
                user_agent: "svi-test-phone".to_string(),
                ..EndpointConfig::default()
            },
            ..DriverConfig::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), edge)
        })
        .await?;
        let local = sip.local_addr();
        let contact = Uri::parse(&format!("sip:{}@{local}", config.user))
            .map_err(|_| PhoneError::BadUri(config.user.clone()))?;
        Ok(Ua {
            config,
            sip,
            sip_events,
            local,
            contact,
            rtp,
            commands,
            events,
            media,
            registration: None,
            call: None,
            calls: 0,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub async fn run(mut self) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None => break,
                    Some(cmd) => self.command(cmd).await,
                },
                ev = self.sip_events.recv() => match ev {
                    None => break,
                    Some(ev) => self.sip_event(ev).await,
                },
                _ = sleep_until(deadline) => self.timers(Instant::now()).await,
            }
            self.drain_registration().await;
        }
        self.sip.shutdown();
    }

    fn emit(&self, event: PhoneEvent) {
        let _ = self.events.send(event);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let ring = match &self.call {
            Some(Call {
                state: CallState::Ringing { answer_at, .. },
                ..
            }) => *answer_at,
            _ => None,
        };
        let reg = self
            .registration
            .as_ref()
            .and_then(|r| r.client.poll_timeout());
        ring.into_iter().chain(reg).min()
    }

    async fn timers(&mut self, now: Instant) {
        if let Some(r) = self.registration.as_mut() {
            r.client.handle_timeout(now);
        }
        if let Some(Call {
            state:
                CallState::Ringing {
                    answer_at: Some(at),
                    ..
                },
            ..
        }) = &self.call
        {
            if *at <= now {
                let _ = self.answer();
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register { registrar, reply } => self.register(registrar, reply),
            Command::Unregister { reply } => match self.registration.as_mut() {
                Some(r) => {
                    r.client.unregister(Instant::now());
                    r.reply = Some(reply);
                }
                None => {
                    let _ = reply.send(Ok(()));
                }
            },
            Command::Call { uri, reply } => {
                let _ = reply.send(self.place_call(&uri).await);
            }
            Command::Answer { reply } => {
                let _ = reply.send(self.answer());
            }
            Command::Reject { status, reply } => {
                let _ = reply.send(self.reject(status));
            }
            Command::Hangup { reply } => {
                let _ = reply.send(self.hangup().await);
            }
            Command::InfoDtmf { digit, reply } => {
                let _ = reply.send(self.send_info(digit).await);
            }
        }
    }

    fn register(&mut self, registrar: SocketAddr, reply: Reply<()>) {
        let user = &self.config.user;
        let domain = self
            .config
            .domain
            .clone()
            .unwrap_or_else(|| registrar.ip().to_string());
        let uris = (
            Uri::parse(&format!("sip:{registrar}")),
            Uri::parse(&format!("sip:{user}@{domain}")),
        );
        let (Ok(registrar_uri), Ok(aor)) = uris else {
            let _ = reply.send(Err(PhoneError::BadUri(format!("sip:{user}@{domain}"))));
            return;
        };
        let mut config = RegistrationConfig::new(
            registrar_uri,
            aor,
            self.contact.clone(),
            user,
            self.config.password.as_deref().unwrap_or_default(),
        );
        config.expires = self.config.expires;
        let mut client = RegistrationClient::new(config);
        client.register(Instant::now());
        self.registration = Some(Registration {
            client,
            registrar: Peer {
                transport: Transport::Udp,
                addr: registrar,
            },
            tx: None,
            reply: Some(reply),
        });
    }

    /// Sends what the registration client wants sent and answers the waiting caller.
    async fn drain_registration(&mut self) {
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        while let Some(request) = reg.client.poll_request() {
            let request = with_via(self.local, request);
            reg.tx = self.sip.send_request(request, reg.registrar).await.ok();
        }
        while let Some(event) = reg.client.poll_event() {
            let result = match event {
                // The test phone never clears other bindings.
                RegistrationEvent::Cleared | RegistrationEvent::ClearRefused { .. } => continue,
                RegistrationEvent::Registered { .. }
                | RegistrationEvent::Unregistered { clean: true } => Ok(()),
                RegistrationEvent::Failed { status, error, .. } => Err(PhoneError::Registration(
                    format!("status {status}: {error}"),
                )),
                RegistrationEvent::Unregistered { clean: false } => Err(PhoneError::Registration(
                    "the registrar did not confirm the removal".to_string(),
                )),
            };
            if let Some(reply) = reg.reply.take() {
                let _ = reply.send(result);
            }
        }
    }

    fn local_media(&self) -> LocalMedia {
        LocalMedia {
            codecs: self.config.codecs.clone(),
            ..LocalMedia::new(self.rtp.ip(), self.rtp.port(), random_u64() >> 1)
        }
    }

    /// Ends the current call: media stops and `why` is reported.
    fn end_call(&mut self, why: Ended) {
        if let Some(call) = self.call.take() {
            let _ = self.media.send(MediaCommand::Stop);
            self.emit(PhoneEvent::Ended {
                call: call.number,
                why,
            });
        }
    }

    // ---- SIP events ----

    async fn sip_event(&mut self, event: SipEvent) {
        let now = Instant::now();
        match event {
            SipEvent::Request { tx, request, from } => self.request(tx, request, from).await,
            SipEvent::Response { tx, response } => {
                if let Some(reg) = self.registration.as_mut().filter(|r| r.tx == Some(tx)) {
                    reg.client.handle_response(now, &response);
                    return;
                }
                let Some(call) = &self.call else {
                    return;
                };
                if call.invite_tx == Some(tx) {
                    self.invite_response(response).await;
                } else if let CallState::Ending { tx: bye, why } = call.state {
                    if bye == tx && response.status >= 200 {
                        self.end_call(why);
                    }
                }
            }
            SipEvent::Timeout { tx, .. } => {
                if let Some(reg) = self.registration.as_mut().filter(|r| r.tx == Some(tx)) {
                    reg.client.handle_transaction_timeout(now);
                    return;
                }
                let Some(call) = &self.call else {
                    return;
                };
                match call.state {
                    CallState::Calling { .. } if call.invite_tx == Some(tx) => {
                        self.end_call(Ended::Timeout)
                    }
                    CallState::Ending { tx: bye, why } if bye == tx => self.end_call(why),
                    _ => {}
                }
            }
            SipEvent::Cancelled { tx, .. } => {
                if let Some(Call {
                    state:
                        CallState::Ringing {
                            tx: ringing,
                            invite,
                            ..
                        },
                    dialog,
                    ..
                }) = &self.call
                {
                    if *ringing == tx {
                        let mut terminated = Response::for_request(invite, 487);
                        if let Some(d) = dialog {
                            terminated = terminated.with_to_tag(&d.id.local_tag);
                        }
                        self.sip.send_response(tx, terminated);
                        self.end_call(Ended::RemoteCancel);
                    }
                }
            }
            SipEvent::AckTimeout { tx, .. } => {
                if let Some(Call {
                    state: CallState::Answered { tx: answered },
                    ..
                }) = &self.call
                {
                    if *answered == tx {
                        self.send_bye(Ended::NoAck).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_via_replaces_any_other() {
        let mut r = Request::new(
            sip::message::Method::Info,
            Uri::parse("sip:a@127.0.0.1").expect("uri"),
        );
        r.headers
            .push(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx");
        let r = with_via("127.0.0.1:5062".parse().expect("addr"), r);
        assert_eq!(r.headers.count(&HeaderName::Via), 1);
        let via = r.headers.top_via().expect("via");
        assert_eq!((via.host.as_str(), via.port), ("127.0.0.1", Some(5062)));
        assert_eq!(via.branch(), None);
    }
}
